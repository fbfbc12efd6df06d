//! Selection strategies: which scored rationales a run trains on. One file per strategy; adding
//! one is a file here and an arm in [`pick`] (plus the name in [`Strategy`]).
//!
//! Every strategy works per question on that question's candidates and returns at most
//! `per_question` of them (except `all`); a global cap (`select.max_total`) then keeps the best
//! ranked ones round-robin across questions.

pub mod all;
pub mod correct;
pub mod dedup;
pub mod morsd;
pub mod random;
pub mod rd_max;
pub mod rd_min;

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
