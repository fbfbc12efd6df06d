//! Mean and 95 % confidence intervals over seeds, and `summary.md`.

use super::{RunRow, Stored};
use crate::spec::resolve::show;
use std::collections::BTreeMap;

/// Two-sided 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df == 0 {
        f64::NAN
    } else if df <= 30 {
        T[df - 1]
    } else {
        1.96
    }
}

/// Mean and half-width of the 95 % CI (NaN half-width for a single value).
pub fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, t975(n - 1) * (var / n as f64).sqrt())
}

/// Runs grouped by their setting (the swept values without the seed).
pub fn groups(stored: &Stored) -> BTreeMap<Vec<String>, Vec<&RunRow>> {
    let mut g: BTreeMap<Vec<String>, Vec<&RunRow>> = BTreeMap::new();
    for r in &stored.runs {
        let key: Vec<String> = stored
            .sweep_keys
            .iter()
            .map(|k| r.swept.get(k).map(show).unwrap_or_default())
            .collect();
        g.entry(key).or_default().push(r);
    }
    g
}

fn pct(mean: f64, ci: f64) -> String {
    if ci.is_nan() {
        format!("{:.1}", 100.0 * mean)
    } else {
        format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * ci)
    }
}

/// The markdown summary.
pub fn summary_md(stored: &Stored) -> String {
    let mut s = format!(
        "# {}\n\nSpec: `{}`. Runs: {}.\n\n",
        stored.experiment,
        stored.spec,
        stored.runs.len()
    );
    let total: usize = stored.runs.len() * 5;
    let executed: usize = stored.runs.iter().map(|r| r.executed.len()).sum();
    s.push_str(&format!(
        "Stage executions by the last `morsd run`: {executed} of {total} stage instances; the rest ({}) came from the cache \
         or were shared with another run (generate and score are shared across selection settings and seeds).\n\n",
        total - executed
    ));
    // API teachers: usage of each distinct generate stage, counted once.
    let mut usage: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &stored.runs {
        if let (Some(t), Some(k)) = (r.teacher_tokens, r.keys.get("generate")) {
            usage.insert(k.as_str(), t);
        }
    }
    if !usage.is_empty() {
        let (p, c) = usage.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        s.push_str(&format!(
            "Teacher API usage: {p} prompt tokens, {c} completion tokens.\n\n"
        ));
    }
    // Recorded rationales: what each file of each distinct generate stage gave.
    let mut files: BTreeMap<&str, &[String]> = BTreeMap::new();
    for r in &stored.runs {
        if let (false, Some(k)) = (r.sources.is_empty(), r.keys.get("generate")) {
            files.insert(k.as_str(), &r.sources);
        }
    }
    if !files.is_empty() {
        s.push_str("Rationale files:\n\n");
        for (k, notes) in files {
            for n in notes.iter() {
                s.push_str(&format!("- generate `{k}`: {n}\n"));
            }
        }
        s.push('\n');
    }
    s.push_str("Test accuracy in %, mean ± 95% CI (Student t) over seeds.\n\n");
    let mut head: Vec<String> = stored.sweep_keys.clone();
    head.extend(
        [
            "seeds",
            "accuracy %",
            "val accuracy %",
            "rationales",
            "training tokens",
        ]
        .map(String::from),
    );
    s.push_str(&format!(
        "| {} |\n|{}\n",
        head.join(" | "),
        "---|".repeat(head.len())
    ));
    for (key, runs) in groups(stored) {
        let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
        let val: Vec<f64> = runs.iter().filter_map(|r| r.val_accuracy).collect();
        let (m, c) = mean_ci(&acc);
        let (vm, vc) = mean_ci(&val);
        let rat = runs.iter().map(|r| r.rationales as f64).sum::<f64>() / runs.len() as f64;
        let tok = runs.iter().map(|r| r.training_tokens as f64).sum::<f64>() / runs.len() as f64;
        let mut row = key.clone();
        row.extend([
            runs.len().to_string(),
            pct(m, c),
            pct(vm, vc),
            format!("{rat:.0}"),
            format!("{tok:.0}"),
        ]);
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_uses_student_t() {
        let (m, c) = mean_ci(&[0.5, 0.6, 0.7]);
        assert!((m - 0.6).abs() < 1e-12);
        // sd = 0.1, se = 0.1/sqrt(3), t(2) = 4.303
        assert!((c - 4.303 * 0.1 / 3f64.sqrt()).abs() < 1e-9);
        assert!(mean_ci(&[0.4]).1.is_nan());
    }
}
