//! `correct`: only rationales whose final answer is right (the Fine-tune-CoT filter), then
//! `per_question` of them at random.

use super::{Params, Scored};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Correct candidates, a seeded random `per_question` of them.
pub fn pick(cands: &[&Scored], p: &Params, rng: &mut StdRng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cands.len()).filter(|&i| cands[i].correct).collect();
    idx.shuffle(rng);
    idx.truncate(p.per_question);
    idx
}
