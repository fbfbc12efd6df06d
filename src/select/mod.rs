//! Selection strategies: which scored rationales a run trains on. One file per strategy; adding
//! one is a file here and an arm in [`pick`] (plus the name in [`Strategy`]).
//!
//! Every strategy works per question on that question's candidates and returns at most
//! `per_question` of them (except `all`); a global cap (`select.max_total`) then keeps the best
//! ranked ones round-robin across questions.
//!
//! The field's other selectors (`ifd`, `superfilter`, `grape`, `rsr`) rank by scores derived in
//! [`scores`] from the NLLs and ranks the score stage measures; `shortest`/`longest` rank by
//! length; `answer-only` keeps one correct rationale per question, whose answer alone the train
//! stage teaches.

pub mod all;
pub mod answer_only;
pub mod correct;
pub mod dedup;
pub mod grape;
pub mod ifd;
pub mod longest;
pub mod morsd;
pub mod random;
pub mod rd_max;
pub mod rd_min;
pub mod rsr;
pub mod scores;
pub mod shortest;
pub mod superfilter;

use crate::spec::Strategy;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A rationale with its scores, as the score stage writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scored {
    /// Rationale id.
    pub id: String,
    /// Question id.
    pub question_id: String,
    /// Teacher source.
    pub source: String,
    /// The full rationale text.
    pub text: String,
    /// Its extracted answer, if any.
    pub extracted: Option<String>,
    /// Whether the extracted answer equals the gold answer (accuracy).
    pub correct: bool,
    /// 1 − the highest n-gram Jaccard similarity to another rationale of the same question.
    pub diversity: f64,
    /// Mean NLL of the gold answer given question + rationale.
    pub nll_with: f64,
    /// Mean NLL of the gold answer given the question alone.
    pub nll_without: f64,
    /// Rationale Difficulty PPL(a|q,r) / PPL(a|q) = exp(nll_with − nll_without).
    pub rd: f64,
    /// Mean NLL per token of the response (the training target: rationale, answer, `<eos>`)
    /// given the question; measured only for runs whose strategy needs it
    /// ([`crate::spec::Strategy::needs_response_scores`]), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nll_response: Option<f64>,
    /// Mean NLL per token of the response without the question (IFD's denominator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nll_response_alone: Option<f64>,
    /// Mean rank (1 = the most likely token, clipped at [`scores::RANK_CLIP`]) of each
    /// response token under the scoring model's next-token distribution, given the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_rank: Option<f64>,
}

/// Selection settings of one run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Rationales per question.
    pub per_question: usize,
    /// Global cap.
    pub max_total: Option<usize>,
    /// Jaccard threshold of near-duplicates.
    pub dedup_threshold: f64,
    /// n of the n-grams.
    pub ngram: usize,
    /// Seed of the random choices.
    pub seed: u64,
    /// The score and length strategies rank only correct rationales (`select.correct_only`).
    pub correct_only: bool,
}

/// Word n-grams of a text (lowercased, punctuation split off).
pub fn ngrams(text: &str, n: usize) -> HashSet<Vec<String>> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace())
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < n {
        return std::iter::once(words).collect();
    }
    words.windows(n).map(|w| w.to_vec()).collect()
}

/// Jaccard similarity of two n-gram sets.
pub fn jaccard(a: &HashSet<Vec<String>>, b: &HashSet<Vec<String>>) -> f64 {
    let inter = a.intersection(b).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Greedy near-duplicate removal: walks `order` and keeps a candidate unless it is at least
/// `threshold`-similar to one already kept. Returns the kept indices in walk order.
pub fn dedup_in_order(cands: &[&Scored], order: &[usize], threshold: f64, n: usize) -> Vec<usize> {
    let grams: Vec<_> = cands.iter().map(|c| ngrams(&c.text, n)).collect();
    let mut kept: Vec<usize> = Vec::new();
    for &i in order {
        if kept
            .iter()
            .all(|&j| jaccard(&grams[i], &grams[j]) < threshold)
        {
            kept.push(i);
        }
    }
    kept
}

/// Indices of `cands` sorted by RD (ascending), ties by id.
pub fn by_rd(cands: &[&Scored], idx: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = idx.into_iter().collect();
    v.sort_by(|&a, &b| {
        cands[a]
            .rd
            .total_cmp(&cands[b].rd)
            .then_with(|| cands[a].id.cmp(&cands[b].id))
    });
    v
}

/// Indices of `cands` (the correct ones when `correct_only`) that have a `key`, sorted by it
/// (`ascending` or not), ties by id. The score strategies are this with their score.
pub fn rank_by(
    cands: &[&Scored],
    correct_only: bool,
    key: impl Fn(&Scored) -> Option<f64>,
    ascending: bool,
) -> Vec<usize> {
    let mut v: Vec<(usize, f64)> = (0..cands.len())
        .filter(|&i| !correct_only || cands[i].correct)
        .filter_map(|i| key(cands[i]).filter(|x| !x.is_nan()).map(|x| (i, x)))
        .collect();
    v.sort_by(|(a, x), (b, y)| {
        let by = if ascending {
            x.total_cmp(y)
        } else {
            y.total_cmp(x)
        };
        by.then_with(|| cands[*a].id.cmp(&cands[*b].id))
    });
    v.into_iter().map(|(i, _)| i).collect()
}

/// Selects from all scored rationales; returns the ids kept, in rank order per question.
pub fn pick(strategy: Strategy, scored: &[Scored], p: &Params) -> Vec<String> {
    // 1. Group by question (stable order).
    let mut groups: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    for s in scored {
        groups.entry(s.question_id.as_str()).or_default().push(s);
    }
    // 2. Each strategy ranks a question's candidates and keeps its share.
    let mut ranked: Vec<Vec<&str>> = Vec::new();
    for (qi, (_, cands)) in groups.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(
            p.seed
                .wrapping_mul(0x5851_F42D_4C95_7F2D)
                .wrapping_add(qi as u64),
        );
        let chosen = match strategy {
            Strategy::All => all::pick(cands, p, &mut rng),
            Strategy::Random => random::pick(cands, p, &mut rng),
            Strategy::Correct => correct::pick(cands, p, &mut rng),
            Strategy::Dedup => dedup::pick(cands, p, &mut rng),
            Strategy::RdMin => rd_min::pick(cands, p, &mut rng),
            Strategy::RdMax => rd_max::pick(cands, p, &mut rng),
            Strategy::Morsd => morsd::pick(cands, p, &mut rng),
            Strategy::Ifd => ifd::pick(cands, p, &mut rng),
            Strategy::Superfilter => superfilter::pick(cands, p, &mut rng),
            Strategy::Grape => grape::pick(cands, p, &mut rng),
            Strategy::Rsr => rsr::pick(cands, p, &mut rng),
            Strategy::Shortest => shortest::pick(cands, p, &mut rng),
            Strategy::Longest => longest::pick(cands, p, &mut rng),
            Strategy::AnswerOnly => answer_only::pick(cands, p, &mut rng),
        };
        ranked.push(chosen.into_iter().map(|i| cands[i].id.as_str()).collect());
    }
    // 3. Global cap: round-robin by rank across questions.
    let total: usize = ranked.iter().map(Vec::len).sum();
    let cap = p.max_total.unwrap_or(usize::MAX);
    if total <= cap {
        return ranked.into_iter().flatten().map(String::from).collect();
    }
    let mut out = Vec::new();
    let depth = ranked.iter().map(Vec::len).max().unwrap_or(0);
    'outer: for r in 0..depth {
        for q in &ranked {
            if out.len() == cap {
                break 'outer;
            }
            if let Some(id) = q.get(r) {
                out.push(id.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
