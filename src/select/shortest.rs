//! `shortest`: the shortest correct rationales ([`Scored::length`], words): the length baseline
//! every selection method must beat.

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// Fewest words first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(cands, p.correct_only, |s| Some(s.length() as f64), true);
    v.truncate(p.per_question);
    v
}
