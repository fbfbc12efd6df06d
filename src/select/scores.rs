//! The field's selection scores, derived from what the score stage measures per rationale (the
//! response's mean NLL with and without the question, and its tokens' mean rank), and their
//! rank correlations within questions.
//!
//! | score | formula | source |
//! |---|---|---|
//! | RD | exp(nll(a \| q, r) − nll(a \| q)) | MoRSD |
//! | IFD | nll(r \| q) / nll(r) | Cherry LLM, a ratio of mean losses |
//! | Superfiltering | exp(nll(r \| q) − nll(r)) | Superfiltering's code, a ratio of perplexities |
//! | GRAPE | −nll(r \| q) | GRAPE, length-normalised log-likelihood |
//! | RSR | mean clipped rank(r \| q) / nll(r \| q) | Rank-Surprisal Ratio |
//! | length | words of the rationale | the length baseline |
//!
//! Here `r` is the whole response the student trains on (rationale, answer, `<eos>`) and `nll`
//! a mean over its tokens.

use super::Scored;
use std::collections::BTreeMap;

/// Ranks above this count as this (the Rank-Surprisal Ratio code's `rank_clip_r`).
pub const RANK_CLIP: usize = 100;

impl Scored {
    /// IFD (Cherry LLM): mean loss of the response given the question over its mean loss alone.
    pub fn ifd(&self) -> Option<f64> {
        let (w, a) = (self.nll_response?, self.nll_response_alone?);
        (a > 0.0).then(|| w / a)
    }
    /// Superfiltering's IFD, a ratio of perplexities: exp(loss(r | q) − loss(r)).
    pub fn superfilter(&self) -> Option<f64> {
        Some((self.nll_response? - self.nll_response_alone?).exp())
    }
    /// GRAPE: the response's mean log-likelihood given the question.
    pub fn grape(&self) -> Option<f64> {
        self.nll_response.map(|x| -x)
    }
    /// Rank-Surprisal Ratio: mean clipped rank over mean NLL (per token, given the question).
    pub fn rsr(&self) -> Option<f64> {
        let (r, n) = (self.mean_rank?, self.nll_response?);
        Some(r / n.max(1e-12))
    }
    /// Length in words (whitespace-separated) of the rationale's text.
    pub fn length(&self) -> usize {
        self.text.split_whitespace().count()
    }
}

/// The scores compared in `summary.md`, by name.
pub const NAMES: [&str; 6] = ["rd", "ifd", "superfilter", "grape", "rsr", "length"];

/// A score of a rationale by its name in [`NAMES`].
pub fn score_of(s: &Scored, name: &str) -> Option<f64> {
    match name {
        "rd" => Some(s.rd),
        "ifd" => s.ifd(),
        "superfilter" => s.superfilter(),
        "grape" => s.grape(),
        "rsr" => s.rsr(),
        "length" => Some(s.length() as f64),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// Ranks of `xs` from 1, ties sharing their mean rank.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = mean;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson's of the tie-averaged ranks); `None` when either side is
/// constant or there are fewer than 3 pairs.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Every pair of [`NAMES`] that the rationales carry: the mean over questions of Spearman's
/// correlation among each question's rationales (questions where it is undefined are left
/// out), keyed `"a~b"`, with the number of questions it averages.
pub fn within_question_spearman(scored: &[Scored]) -> BTreeMap<String, (f64, usize)> {
    let mut groups: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    for s in scored {
        groups.entry(s.question_id.as_str()).or_default().push(s);
    }
    let mut out = BTreeMap::new();
    for (i, a) in NAMES.iter().enumerate() {
        for b in &NAMES[i + 1..] {
            let (mut sum, mut n) = (0.0, 0usize);
            for g in groups.values() {
                let pairs: Vec<(f64, f64)> = g
                    .iter()
                    .filter_map(|s| Some((score_of(s, a)?, score_of(s, b)?)))
                    .collect();
                let (x, y): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
                if let Some(r) = spearman(&x, &y) {
                    sum += r;
                    n += 1;
                }
            }
            if n > 0 {
                out.insert(format!("{a}~{b}"), (sum / n as f64, n));
            }
        }
    }
    out
}
