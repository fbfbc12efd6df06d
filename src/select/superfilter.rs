//! `superfilter`: Superfiltering (Li et al. 2024, arXiv 2402.00530): IFD from a small proxy
//! model instead of the student, i.e. with `score.rd_weights` naming the proxy. Its code divides
//! perplexities, not losses: PPL(r | q) / PPL(r) = exp(loss(r | q) − loss(r))
//! ([`Scored::superfilter`]), which orders a question's rationales differently from the loss
//! ratio of [`super::ifd`]. Like Cherry it drops scores ≥ 1 and keeps the highest first.

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// Perplexity-ratio IFD < 1, highest first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(
        cands,
        p.correct_only,
        |s| s.superfilter().filter(|&x| x < 1.0),
        false,
    );
    v.truncate(p.per_question);
    v
}
