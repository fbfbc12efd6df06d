//! `all`: every rationale the teacher wrote (the full-set baseline); ignores `per_question`.

use super::{Params, Scored};
use rand::rngs::StdRng;

/// Keeps every candidate.
pub fn pick(cands: &[&Scored], _p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    (0..cands.len()).collect()
}
