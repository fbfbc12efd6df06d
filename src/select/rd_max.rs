//! `rd-max`: the `per_question` rationales with the highest Rationale Difficulty (the paper's
//! counterpart to min-RD).

use super::{Params, Scored, by_rd};
use rand::rngs::StdRng;

/// Highest RD first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = by_rd(cands, 0..cands.len());
    v.reverse();
    v.truncate(p.per_question);
    v
}
