//! `morsd`: the paper's selector — accuracy (correct only), then diversity (near-duplicates
//! removed, walking in ascending RD so the easier of two duplicates survives), then the
//! `per_question` lowest-RD rationales.

use super::{Params, Scored, by_rd, dedup_in_order};
use rand::rngs::StdRng;

/// correct → dedup → k lowest RD.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    // 1. Accuracy.
    let correct = (0..cands.len()).filter(|&i| cands[i].correct);
    // 2. Diversity, in ascending RD.
    let order = by_rd(cands, correct);
    let mut kept = dedup_in_order(cands, &order, p.dedup_threshold, p.ngram);
    // 3. Difficulty: the k lowest RD (kept is already in ascending RD).
    kept.truncate(p.per_question);
    kept
}
