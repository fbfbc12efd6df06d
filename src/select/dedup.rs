//! `dedup`: near-duplicate removal by word n-gram Jaccard (walked in a random order), then
//! `per_question` of the survivors.

use super::{Params, Scored, dedup_in_order};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Diverse candidates (no two at or above the threshold), at most `per_question`.
pub fn pick(cands: &[&Scored], p: &Params, rng: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.shuffle(rng);
    let mut kept = dedup_in_order(cands, &order, p.dedup_threshold, p.ngram);
    kept.truncate(p.per_question);
    kept
}
