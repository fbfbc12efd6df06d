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
    s.push_str(&super::provenance::executions_md(stored));
    s.push('\n');
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

/// Half-width of the 95 % Wilson score interval of a proportion `p` over `n` trials.
pub fn wilson_half(p: f64, n: f64) -> f64 {
    let z = 1.96f64;
    z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n)
}

/// One plain paragraph on what the stored numbers can and cannot show: seeds per setting,
/// test questions, whether the two best settings' 95 % CIs overlap. Printed by `morsd run`
/// and repeated in `summary.md` and `report.html`.
pub fn reading(stored: &Stored) -> String {
    let g = groups(stored);
    if g.is_empty() {
        return "No finished runs, so nothing to read.".into();
    }
    let seeds = g.values().map(|r| r.len()).min().unwrap_or(0);
    let tq = stored.runs.iter().filter_map(|r| r.test_questions).max();
    let tq_text = match tq {
        Some(n) => format!("{n} test questions"),
        None => "an unrecorded number of test questions".to_string(),
    };
    let accs: Vec<f64> = stored
        .runs
        .iter()
        .map(|r| r.accuracy)
        .filter(|a| a.is_finite())
        .collect();
    let p = if accs.is_empty() {
        0.5
    } else {
        accs.iter().sum::<f64>() / accs.len() as f64
    };
    let binom = tq
        .filter(|&n| n > 0)
        .map(|n| 100.0 * wilson_half(p, n as f64));
    let binom_text = match binom {
        Some(b) => format!(
            " A single run's accuracy on {tq_text} is itself uncertain by about ±{b:.1} points (95 % Wilson interval at the mean accuracy)."
        ),
        None => String::new(),
    };
    let mut rows: Vec<(String, f64, f64)> = g
        .iter()
        .map(|(key, runs)| {
            let label = if key.is_empty() {
                "all runs".to_string()
            } else {
                stored
                    .sweep_keys
                    .iter()
                    .zip(key)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
            let (m, c) = mean_ci(&acc);
            (label, m, c)
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let show = |r: &(String, f64, f64)| {
        if r.2.is_finite() {
            format!("{} ({} %)", r.0, pct(r.1, r.2))
        } else {
            format!("{} ({:.1} %)", r.0, 100.0 * r.1)
        }
    };
    if rows.len() < 2 {
        return format!(
            "One setting only ({} seed(s), {tq_text}): there is nothing to compare.{binom_text}",
            seeds
        );
    }
    let (a, b) = (&rows[0], &rows[1]);
    let gap = 100.0 * (a.1 - b.1);
    if seeds < 2 {
        return format!(
            "{seeds} seed per setting and {tq_text}: there is no CI over seeds, so the gap of {gap:.1} points \
             between {} and {} cannot be told apart from seed-to-seed noise.{binom_text} \
             Run more seeds (experiment.seeds) before reading anything into it.",
            show(a),
            show(b)
        );
    }
    let overlap = a.1 - a.2 <= b.1 + b.2;
    if overlap {
        format!(
            "{seeds} seeds per setting and {tq_text}: the 95 % CIs over seeds of {} and {} overlap, so this \
             study cannot tell them apart: the gap of {gap:.1} points is within the seed-to-seed noise.{binom_text} \
             It shows the pipeline and the size of the noise, not that one setting is better; more seeds \
             (experiment.seeds) and test questions (data.test) narrow the CIs.",
            show(a),
            show(b)
        )
    } else {
        format!(
            "{seeds} seeds per setting and {tq_text}: the 95 % CI over seeds of {} lies above that of {}, \
             so on this one setting the gap of {gap:.1} points is larger than the seed-to-seed spread.{binom_text} \
             Non-overlapping CIs are not a paired test, and one task, student and budget say nothing about others.",
            show(a),
            show(b)
        )
    }
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

    fn stored(accs: &[(&str, f64)]) -> Stored {
        let runs = accs
            .iter()
            .enumerate()
            .map(|(i, (s, a))| RunRow {
                swept: [("select.strategy".to_string(), serde_json::json!(s))].into(),
                test_questions: Some(100),
                ..crate::report::test_row(s, 2, i as u64, *a)
            })
            .collect();
        Stored {
            experiment: "e".into(),
            spec: "s".into(),
            sweep_keys: vec!["select.strategy".into()],
            runs,
            ..Default::default()
        }
    }

    #[test]
    fn reading_says_when_cis_overlap_and_when_there_is_no_ci() {
        let one = reading(&stored(&[("random", 0.31), ("morsd", 0.28)]));
        assert!(one.contains("no CI over seeds"), "{one}");
        assert!(one.contains("100 test questions"), "{one}");
        let overlap = reading(&stored(&[
            ("random", 0.30),
            ("random", 0.34),
            ("morsd", 0.33),
            ("morsd", 0.29),
        ]));
        assert!(overlap.contains("overlap"), "{overlap}");
        let apart = reading(&stored(&[
            ("random", 0.20),
            ("random", 0.21),
            ("morsd", 0.50),
            ("morsd", 0.51),
        ]));
        assert!(apart.contains("lies above"), "{apart}");
        assert!(apart.starts_with("2 seeds"), "{apart}");
    }
}
