//! `answer-only`: question → answer, no rationale (the Fine-tune-CoT baseline that tells
//! whether rationales helped at all). It keeps one rationale per question, the first correct
//! one by id (any first one with `select.correct_only = false`), whose final answer alone the
//! train stage teaches ([`crate::spec::Strategy::AnswerOnly`]).

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// One rationale per question, the first (correct) by id.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(cands, p.correct_only, |_| Some(0.0), true);
    v.truncate(1);
    v
}
