//! `rd-min`: the `per_question` rationales with the lowest Rationale Difficulty, nothing else.

use super::{Params, Scored, by_rd};
use rand::rngs::StdRng;

/// Lowest RD first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = by_rd(cands, 0..cands.len());
    v.truncate(p.per_question);
    v
}
