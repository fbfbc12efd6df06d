//! `ifd`: Instruction-Following Difficulty as Cherry LLM computes it (Li et al. 2023, arXiv
//! 2308.12032, `cherry_seletion/data_by_IFD.py`): the scoring model's mean token loss of the
//! response given the question over its mean loss without the question, a ratio of mean
//! losses ([`Scored::ifd`]). Cherry drops IFD ≥ 1 (the question does not help) and keeps the
//! highest IFD first; here per question, the correct rationales only unless
//! `select.correct_only = false`.

use super::{Params, Scored, rank_by};
use rand::rngs::StdRng;

/// IFD < 1, highest first.
pub fn pick(cands: &[&Scored], p: &Params, _rng: &mut StdRng) -> Vec<usize> {
    let mut v = rank_by(
        cands,
        p.correct_only,
        |s| s.ifd().filter(|&x| x < 1.0),
        false,
    );
    v.truncate(p.per_question);
    v
}
