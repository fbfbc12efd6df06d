//! Mean and 95 % confidence intervals over seeds (Student t from statrs), `summary.md` with its
//! paired comparisons ([`super::paired`]), and the plain-words reading of a results folder.

use super::paired::{self, Decision, Paired, Stratum};
use super::predictions::Outcomes;
use super::{RunRow, Stored};
use crate::resolve::show;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Two-sided 97.5 % quantile of Student's t with `df` degrees of freedom (statrs).
pub fn t975(df: usize) -> f64 {
    if df == 0 {
        f64::NAN
    } else {
        super::paired::quantile_t(0.975, df)
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

/// The markdown summary (with the paired section when the folder's per-question outcomes are
/// known).
pub fn summary_md(stored: &Stored, outcomes: Option<&Outcomes>) -> String {
    let mut s = format!(
        "# {}\n\nSpec: `{}`. Runs: {}.\n\n",
        stored.experiment,
        stored.spec,
        stored.runs.len()
    );
    s.push_str(&super::provenance::executions_md(stored));
    s.push('\n');
    s.push_str(&score_correlations_md(stored));
    s.push_str(&teacher_budget_md(stored));
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
    s.push_str(&paired_md(stored, outcomes));
    s
}

/// Pairs two groups of runs by seed, and each seed's two runs by test question id.
pub fn stratum(name: &str, a: &[&RunRow], b: &[&RunRow], outcomes: &Outcomes) -> Stratum {
    let by_seed = |runs: &[&RunRow]| -> BTreeMap<u64, String> {
        runs.iter().map(|r| (r.seed, r.label.clone())).collect()
    };
    let (sa, sb) = (by_seed(a), by_seed(b));
    let seeds: Vec<paired::SeedDiffs> = sa
        .iter()
        .filter_map(|(seed, la)| {
            let (qa, qb) = (outcomes.get(la)?, outcomes.get(sb.get(seed)?)?);
            Some(paired::SeedDiffs::pair(*seed, qa, qb))
        })
        .collect();
    // The runs behind the paired seeds: how many were still improving, and each arm's tokens.
    let paired_seeds: std::collections::BTreeSet<u64> = seeds.iter().map(|d| d.seed).collect();
    let (ra, rb): (Vec<&RunRow>, Vec<&RunRow>) = (
        a.iter()
            .copied()
            .filter(|r| paired_seeds.contains(&r.seed))
            .collect(),
        b.iter()
            .copied()
            .filter(|r| paired_seeds.contains(&r.seed))
            .collect(),
    );
    let tokens = |runs: &[&RunRow]| {
        runs.iter().map(|r| r.training_tokens as f64).sum::<f64>() / runs.len().max(1) as f64
    };
    let improving = |want: Option<bool>| {
        ra.iter()
            .chain(&rb)
            .filter(|r| r.still_improving() == want)
            .count()
    };
    Stratum {
        name: name.to_string(),
        seeds,
        runs: ra.len() + rb.len(),
        still_improving: improving(Some(true)),
        unknown: improving(None),
        tokens: (tokens(&ra), tokens(&rb)),
    }
}

fn paired_reading(a: &str, b: &str, p: &Paired, seeds: usize, tq: &str) -> String {
    let head = format!(
        "{} per setting and {tq}. The two best settings, {a} and {b}, paired by seed and \
         test question: difference {} points (95 % bootstrap CI over seeds and questions), sign-flip \
         {}, per seed {}; training tokens per run {}.",
        if seeds == 1 {
            "1 seed".to_string()
        } else {
            format!("{seeds} seeds")
        },
        paired::points(p),
        paired::p_sentence(p),
        paired::per_seed_text(p),
        paired::tokens_text(p)
    );
    let mde = 100.0 * p.mde;
    if let Decision::NotConverged(n, m) = Decision::of(Some(p), 0.0) {
        format!(
            "{head} Verdict: inconclusive (not converged: {n} of {m} runs still improving). Their best \
             validation accuracy came at one of their last validations, so the difference measures \
             the training budget as much as the settings. Train until validation stops improving \
             (train.patience with a larger train.steps or train.epochs; README: \"Reading a verdict\")."
        )
    } else if p.min_seeds < 2 {
        format!(
            "{head} With one seed this CI covers only the test questions' noise, not the noise \
             between training runs, which is usually larger: run more seeds (experiment.seeds) \
             before reading anything into it."
        )
    } else if p.ci.0 > 0.0 {
        format!(
            "{head} The CI lies above 0: on this setting the first is better. One task, student and \
             budget say nothing about others."
        )
    } else {
        format!(
            "{head} The CI contains 0, so this study cannot tell them apart. With this many seeds and \
             questions and this spread, it would detect a difference of {mde:.1} points 80 % of the \
             time (MDE, α = 0.05); a smaller true difference may be there. More seeds \
             (experiment.seeds) and test questions (data.test) lower the MDE."
        )
    }
}

/// The reference strategy each strategy of a folder is compared with: `all`, else `random`,
/// else the first in name order.
pub fn reference_strategy(stored: &Stored) -> Option<String> {
    let names: std::collections::BTreeSet<&str> =
        stored.runs.iter().map(|r| r.strategy.as_str()).collect();
    ["all", "random"]
        .into_iter()
        .find(|s| names.contains(s))
        .or_else(|| names.first().copied())
        .map(String::from)
}

/// `summary.md`'s "Teacher budget": per generate entry with a `teacher.budget`, its rounds and
/// the requests (samples) and completion tokens per difficulty bucket of the first round.
pub fn teacher_budget_md(stored: &Stored) -> String {
    let mut by_key: BTreeMap<&str, (&str, &serde_json::Value)> = BTreeMap::new();
    for r in &stored.runs {
        if let (Some(b), Some(k)) = (&r.teacher_budget, r.keys.get("generate")) {
            by_key.insert(k.as_str(), (r.task.as_str(), b));
        }
    }
    if by_key.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Teacher budget\n\nRationale requests in rounds (`teacher.budget`; README, \"A teacher budget\"); questions bucketed by their failure rate in the first round.\n\n",
    );
    for (key, (task, b)) in by_key {
        let _ = writeln!(
            s,
            "{task} (generate entry {key}): `{}`, {} round(s), {} samples asked, {} correct.\n",
            b["kind"].as_str().unwrap_or("?"),
            b["rounds"],
            b["asked"],
            b["correct"]
        );
        s.push_str("| bucket | questions | samples | samples per question | completion tokens |\n|---|---|---|---|---|\n");
        for x in b["buckets"].as_array().into_iter().flatten() {
            let (q, n) = (
                x["questions"].as_u64().unwrap_or(0),
                x["samples"].as_u64().unwrap_or(0),
            );
            let tokens = x["completion_tokens"].as_u64().unwrap_or(0);
            let _ = writeln!(
                s,
                "| {} | {q} | {n} | {} | {} |",
                x["bucket"].as_str().unwrap_or("?"),
                if q > 0 {
                    format!("{:.1}", n as f64 / q as f64)
                } else {
                    "–".into()
                },
                if tokens > 0 {
                    tokens.to_string()
                } else {
                    "–".into()
                }
            );
        }
        s.push('\n');
    }
    s
}

/// `summary.md`'s "How the scores relate": per task, each pair of selection scores' Spearman
/// correlation within questions (from the score entries that measured the response scores, each
/// entry once). Empty when no run's score entry did.
pub fn score_correlations_md(stored: &Stored) -> String {
    type Pairs = BTreeMap<String, (f64, u64)>;
    let mut by_task: BTreeMap<&str, BTreeMap<&str, &Pairs>> = BTreeMap::new();
    for r in &stored.runs {
        if let (false, Some(k)) = (r.score_spearman.is_empty(), r.keys.get("score")) {
            by_task
                .entry(r.task.as_str())
                .or_default()
                .insert(k.as_str(), &r.score_spearman);
        }
    }
    if by_task.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## How the scores relate\n\nSpearman's ρ between selection scores among each question's rationales, averaged over the questions where it is defined (README, \"Selection strategies\"). RD and a loss ratio order a question's rationales alike (PPL(a | q) is shared), so one RD column serves both; GRAPE is −nll(r | q), IFD's numerator negated.\n\n",
    );
    for (task, entries) in by_task {
        for (key, pairs) in entries {
            let _ = writeln!(s, "{task} (score entry {key}):\n");
            s.push_str("| pair | ρ | questions |\n|---|---|---|\n");
            for (pair, (rho, n)) in pairs {
                let _ = writeln!(s, "| {} | {rho:+.2} | {n} |", pair.replace('~', " ~ "));
            }
            s.push('\n');
        }
    }
    s
}

/// `summary.md`'s paired section: within each setting of the other swept keys, every strategy
/// against the reference strategy.
fn paired_md(stored: &Stored, outcomes: Option<&Outcomes>) -> String {
    let strategies: std::collections::BTreeSet<&str> =
        stored.runs.iter().map(|r| r.strategy.as_str()).collect();
    if strategies.len() < 2 {
        return String::new();
    }
    let Some(reference) = reference_strategy(stored) else {
        return String::new();
    };
    let Some(o) = outcomes else {
        return format!(
            "\n## Paired differences\n\nThis folder has no `{}` (it was written before that file \
             existed), so there are no paired statistics; `morsd run` of its spec writes it, taking \
             every stage from the cache.\n",
            super::predictions::FILE
        );
    };
    // Group by every swept value except the strategy.
    let others: Vec<&String> = stored
        .sweep_keys
        .iter()
        .filter(|k| k.as_str() != "select.strategy")
        .collect();
    let mut by: BTreeMap<Vec<String>, BTreeMap<&str, Vec<&RunRow>>> = BTreeMap::new();
    for r in &stored.runs {
        let key = others
            .iter()
            .map(|k| r.swept.get(*k).map(show).unwrap_or_default())
            .collect();
        by.entry(key)
            .or_default()
            .entry(r.strategy.as_str())
            .or_default()
            .push(r);
    }
    let mut head: Vec<String> = others.iter().map(|k| k.to_string()).collect();
    head.extend(
        [
            "comparison",
            "difference, points [95 % CI]",
            "sign-flip p",
            "MDE (points)",
            "per seed",
            "training tokens per run",
            "learned?",
        ]
        .map(String::from),
    );
    let mut s = format!(
        "\n## Paired differences\n\nEach strategy against `{reference}` at the same seeds and on the \
         same test questions (`{}`): the mean difference in points with its 95 % bootstrap CI \
         ({} replicates, resampling seeds and, within them, questions), the two-sided exact \
         sign-flip p over seeds (its floor is 2 / 2^seeds), the minimum detectable effect (80 % \
         power at α = 0.05, from the observed paired variance), each seed's difference, each \
         arm's training tokens per run (strategy / reference) and whether every run had finished \
         learning: a comparison with a run still improving is inconclusive, whatever its CI. How \
         to read them: the README's \"Reading a verdict\".\n\n| {} |\n|{}\n",
        super::predictions::FILE,
        paired::REPLICATES,
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for (key, arms) in &by {
        let Some(base) = arms.get(reference.as_str()) else {
            continue;
        };
        for (name, runs) in arms {
            if *name == reference {
                continue;
            }
            let Some(p) = paired::compare(&[stratum("", runs, base, o)]) else {
                continue;
            };
            let mut row = key.clone();
            row.extend([
                format!("{name} − {reference}"),
                paired::points(&p),
                paired::p_text(&p),
                format!("{:.1}", 100.0 * p.mde),
                paired::per_seed_text(&p),
                paired::tokens_text(&p),
                paired::learned_text(&p),
            ]);
            s.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    s
}

/// Half-width of the 95 % Wilson score interval of a proportion `p` over `n` trials.
pub fn wilson_half(p: f64, n: f64) -> f64 {
    let z = 1.96f64;
    z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n)
}

/// The validation split's binomial noise: `Checkpoints were chosen on N validation questions,
/// where one accuracy has a standard error of X points (…)`; empty when unrecorded.
pub fn validation_se_text(stored: &Stored) -> String {
    let Some(n) = stored.runs.iter().filter_map(|r| r.val_questions).min() else {
        return String::new();
    };
    let vals: Vec<f64> = stored
        .runs
        .iter()
        .filter_map(|r| r.val_accuracy)
        .filter(|a| a.is_finite())
        .collect();
    if n == 0 || vals.is_empty() {
        return String::new();
    }
    let p = vals.iter().sum::<f64>() / vals.len() as f64;
    let se = 100.0 * (p * (1.0 - p) / n as f64).sqrt();
    format!(
        " Checkpoints were chosen on {n} validation questions, where one accuracy has a binomial standard error of {se:.1} points (at the mean validation accuracy, {:.1} %): validation differences smaller than about twice that are noise to early stopping.",
        100.0 * p
    )
}

/// One plain paragraph on what the stored numbers can and cannot show: seeds per setting,
/// test questions, and the paired difference of the two best settings (or, for a folder without
/// `predictions.parquet`, whether their 95 % CIs overlap). Printed by `morsd run` and repeated in
/// `summary.md` and `report.html`.
pub fn reading(stored: &Stored, outcomes: Option<&Outcomes>) -> String {
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
    let mut binom_text = match binom {
        Some(b) => format!(
            " A single run's accuracy on {tq_text} is itself uncertain by about ±{b:.1} points (95 % Wilson interval at the mean accuracy)."
        ),
        None => String::new(),
    };
    binom_text.push_str(&validation_se_text(stored));
    let mut rows: Vec<(String, f64, f64, &Vec<String>)> = g
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
            (label, m, c, key)
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let show = |r: &(String, f64, f64, &Vec<String>)| {
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
    if let Some(o) = outcomes {
        let st = stratum("", &g[a.3], &g[b.3], o);
        if let Some(p) = paired::compare(&[st]) {
            return paired_reading(&show(a), &show(b), &p, seeds, &tq_text)
                + &validation_se_text(stored);
        }
    }
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
        // sd = 0.1, se = 0.1/sqrt(3), qt(.975, 2) = 4.302653 (R)
        assert!((c - 4.302653 * 0.1 / 3f64.sqrt()).abs() < 1e-6);
        // qt(.975, 30) = 2.042272, qt(.975, 100) = 1.983972: no table cut-off at 30.
        assert!((t975(30) - 2.042272).abs() < 1e-6);
        assert!((t975(100) - 1.983972).abs() < 1e-6);
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

    /// Runs of two strategies over `seeds` seeds on 100 questions; morsd gets `gain` more
    /// questions right than random at every seed, with the rest of the outcomes identical.
    fn paired_folder(seeds: u64, gain: usize) -> (Stored, Outcomes) {
        let mut runs = Vec::new();
        let mut outcomes = Outcomes::new();
        for seed in 0..seeds {
            for (s, extra) in [("random", 0), ("morsd", gain)] {
                let label = format!("select.strategy={s} seed={seed}");
                let right = 40 + extra;
                let q: BTreeMap<String, bool> =
                    (0..100).map(|i| (format!("q{i:03}"), i < right)).collect();
                outcomes.insert(label.clone(), q);
                runs.push(RunRow {
                    label,
                    swept: [("select.strategy".to_string(), serde_json::json!(s))].into(),
                    test_questions: Some(100),
                    ..crate::report::test_row(s, 6, seed, right as f64 / 100.0)
                });
            }
        }
        let stored = Stored {
            experiment: "e".into(),
            spec: "s".into(),
            sweep_keys: vec!["select.strategy".into()],
            runs,
            ..Default::default()
        };
        (stored, outcomes)
    }

    #[test]
    fn paired_reading_and_summary_use_the_per_question_outcomes() {
        // morsd right on 10 more questions at each of 6 seeds: +10 points, CI above 0,
        // p = 2/64 (all seeds agree).
        let (stored, o) = paired_folder(6, 10);
        let r = reading(&stored, Some(&o));
        assert!(r.contains("+10.0 ["), "{r}");
        assert!(r.contains("p = 0.031"), "{r}");
        assert!(r.contains("lies above 0"), "{r}");
        let md = summary_md(&stored, Some(&o));
        assert!(md.contains("| morsd − random | +10.0 ["), "{md}");
        // No gain: the CI contains 0 and the reading says what the study could detect.
        let (stored, o) = paired_folder(6, 0);
        let r = reading(&stored, Some(&o));
        assert!(r.contains("cannot tell them apart"), "{r}");
        assert!(r.contains("MDE"), "{r}");
        // Without predictions.parquet, summary.md says why there is no paired section.
        let md = summary_md(&stored, None);
        assert!(md.contains("no `predictions.parquet`"), "{md}");
    }

    #[test]
    fn a_comparison_with_a_run_still_improving_gets_no_verdict() {
        // The +10-point folder, with convergence recorded: all converged keeps its reading.
        let (mut stored, o) = paired_folder(6, 10);
        for r in &mut stored.runs {
            r.converged = Some(true);
        }
        let r = reading(&stored, Some(&o));
        assert!(
            r.contains("lies above 0") && !r.contains("not converged"),
            "{r}"
        );
        let md = summary_md(&stored, Some(&o));
        assert!(md.contains("all 12 converged"), "{md}");
        // Two runs still improving: inconclusive, in the reading and in summary.md.
        stored.runs[1].converged = Some(false);
        stored.runs[4].converged = Some(false);
        let r = reading(&stored, Some(&o));
        assert!(
            r.contains("inconclusive (not converged: 2 of 12 runs still improving)"),
            "{r}"
        );
        assert!(!r.contains("lies above 0"), "{r}");
        let md = summary_md(&stored, Some(&o));
        assert!(
            md.contains("**inconclusive (not converged: 2 of 12 runs still improving)**"),
            "{md}"
        );
        // An older folder without curves: a best checkpoint at the last step counts as still
        // improving, an earlier one as unknown.
        for r in &mut stored.runs {
            (r.converged, r.train_steps, r.best_step) = (None, Some(100), 60);
        }
        stored.runs[0].best_step = 100;
        let md = summary_md(&stored, Some(&o));
        assert!(md.contains("not converged: 1 of 12"), "{md}");
    }

    #[test]
    fn reading_says_when_cis_overlap_and_when_there_is_no_ci() {
        let one = reading(&stored(&[("random", 0.31), ("morsd", 0.28)]), None);
        assert!(one.contains("no CI over seeds"), "{one}");
        assert!(one.contains("100 test questions"), "{one}");
        let overlap = reading(
            &stored(&[
                ("random", 0.30),
                ("random", 0.34),
                ("morsd", 0.33),
                ("morsd", 0.29),
            ]),
            None,
        );
        assert!(overlap.contains("overlap"), "{overlap}");
        let apart = reading(
            &stored(&[
                ("random", 0.20),
                ("random", 0.21),
                ("morsd", 0.50),
                ("morsd", 0.51),
            ]),
            None,
        );
        assert!(apart.contains("lies above"), "{apart}");
        assert!(apart.starts_with("2 seeds"), "{apart}");
    }
}
