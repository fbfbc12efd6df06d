//! `longest`: the longest correct rationales ([`Scored::length`], words), the other length
//! baseline.

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// Most words first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(cands, p.correct_only, |s| Some(s.length() as f64), false);
    v.truncate(p.per_question);
    v
}
