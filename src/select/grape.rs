//! `grape`: GRAPE (Zhang et al. 2025, arXiv 2502.04194): per question, the responses the
//! student already finds most likely: the highest length-normalised log-likelihood of the
//! response given the question ([`Scored::grape`] = −mean token NLL).

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// Highest mean log-likelihood first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(cands, p.correct_only, Scored::grape, false);
    v.truncate(p.per_question);
    v
}
