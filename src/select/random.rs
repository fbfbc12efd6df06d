//! `random`: `per_question` rationales drawn uniformly without replacement.

use super::{Params, Scored};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A seeded uniform sample of `per_question` candidates.
pub fn pick(cands: &[&Scored], p: &Params, rng: &mut StdRng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cands.len()).collect();
    idx.shuffle(rng);
    idx.truncate(p.per_question);
    idx
}
