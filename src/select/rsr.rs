//! `rsr`: the Rank-Surprisal Ratio (arXiv 2601.14249, UmeanNever/RankSurprisalRatio): the mean
//! rank of the response's tokens under the student's next-token distribution (clipped at
//! [`super::scores::RANK_CLIP`], as upstream) over their mean NLL ([`Scored::rsr`]); lower is
//! better: tokens the student ranks high but does not find certain.

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// Lowest RSR first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(cands, p.correct_only, Scored::rsr, true);
    v.truncate(p.per_question);
    v
}
