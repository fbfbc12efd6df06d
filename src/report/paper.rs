//! The paper-style reading of a reproduction folder (`morsd paper DIR`, run by
//! `just reproduce`): from the `runs.json` of each experiment under DIR it writes
//! - `main.md` / `main.csv`: task × strategy at the main k, accuracy mean ± 95 % CI over seeds
//!   and the rationales each trained on (experiments whose name starts with `main`);
//! - `ablation.md`: accuracy against k per strategy (experiments starting with `ablation`; their
//!   own folders hold the chart);
//! - `rd-minmax.md`: rd-min (or morsd) against rd-max at equal k (experiments starting with
//!   `rd-minmax`);
//! - `selectors.md`: the field's other selectors (IFD, Superfiltering, GRAPE, RSR, length,
//!   answer-only) against `morsd` and `all`, paired (experiments starting with `selectors`);
//! - `CLAIMS.md`: the paper's three claims, the numbers that bear on each, and a verdict computed
//!   from them by the rules stated in the file.
//!
//! Nothing here is hand-entered: every number comes from the stored runs.

use super::paired::{self, Decision, Paired};
use super::predictions::Outcomes;
use super::stats::{self, mean_ci};
use super::{RunRow, Stored, predictions};
use crate::error::{Error, IoContext, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Mean, CI half-width, seeds, mean rationales of one group of runs.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    /// Mean test accuracy.
    pub mean: f64,
    /// 95 % CI half-width (NaN with one seed).
    pub ci: f64,
    /// Seeds.
    pub n: usize,
    /// Mean training rationales.
    pub rationales: f64,
}

fn cell(runs: &[&RunRow]) -> Cell {
    let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
    let (mean, ci) = mean_ci(&acc);
    Cell {
        mean,
        ci,
        n: runs.len(),
        rationales: runs.iter().map(|r| r.rationales as f64).sum::<f64>()
            / runs.len().max(1) as f64,
    }
}

fn pct(c: &Cell) -> String {
    if c.ci.is_nan() {
        format!("{:.1}", 100.0 * c.mean)
    } else {
        format!("{:.1} ± {:.1}", 100.0 * c.mean, 100.0 * c.ci)
    }
}

/// (task, strategy, k) → cell, over every experiment whose folder name starts with `prefix`.
fn cells(stored: &[(String, Stored)], prefix: &str) -> BTreeMap<(String, String, usize), Cell> {
    runs_of(stored, prefix)
        .into_iter()
        .map(|(k, v)| (k, cell(&v)))
        .collect()
}

/// The task as the tables name it: the task, or `task (folder)` when two experiments with the
/// prefix ran the same task (e.g. arithmetic with the scratch and with the SmolLM2 student),
/// so that their runs are never pooled.
fn task_label(stored: &[(String, Stored)], prefix: &str, folder: &str, task: &str) -> String {
    let folders = stored
        .iter()
        .filter(|(n, s)| n.starts_with(prefix) && s.runs.iter().any(|r| r.task == task))
        .count();
    if folders > 1 {
        format!("{task} ({folder})")
    } else {
        task.to_string()
    }
}

/// The tasks of a cell map, in order, once each (keys sort by task first).
fn tasks_of(cells: &BTreeMap<(String, String, usize), Cell>) -> Vec<String> {
    let mut t: Vec<String> = cells.keys().map(|(t, _, _)| t.clone()).collect();
    t.dedup();
    t
}

/// Every experiment folder under a reproduction folder, with the per-question outcomes of all of
/// them. Run labels are prefixed with their folder (`main-synthetic/select.strategy=all seed=0`),
/// so that the outcomes of folders sharing a label stay apart.
pub struct Loaded {
    /// Folder name → stored runs.
    pub folders: Vec<(String, Stored)>,
    /// `folder/label` → question id → correct, for folders with a `predictions.parquet`.
    pub outcomes: Outcomes,
    /// Folders without a `predictions.parquet` (no paired statistics for their runs).
    pub unpaired: Vec<String>,
}

/// Reads every `*/runs.json` (and `*/predictions.parquet`) under `dir`.
pub fn load(dir: &Path) -> Result<Loaded> {
    let mut out = Loaded {
        folders: Vec::new(),
        outcomes: Outcomes::new(),
        unpaired: Vec::new(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Input {
        path: dir.to_path_buf(),
        message: format!("not a results folder: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let f = p.join("runs.json");
        if !f.exists() {
            continue;
        }
        let bytes = std::fs::read(&f).at(&f)?;
        let mut s: Stored = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
            path: f.clone(),
            message: e.to_string(),
        })?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match predictions::read(&p)? {
            Some(o) => out
                .outcomes
                .extend(o.into_iter().map(|(l, q)| (format!("{name}/{l}"), q))),
            None => out.unpaired.push(name.clone()),
        }
        for r in &mut s.runs {
            r.label = format!("{name}/{}", r.label);
        }
        out.folders.push((name, s));
    }
    if out.folders.is_empty() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            message: "no experiment folder with a runs.json here (run `just reproduce` first)"
                .into(),
        });
    }
    Ok(out)
}

/// The paper's effect for claim 1 (+4.6 points averaged over seven datasets), used as the
/// smallest effect of interest of every claim (see the verdict rules in `CLAIMS.md`).
pub const PAPER_EFFECT: f64 = 0.046;

/// (task, strategy, k) → its runs, over every experiment whose folder name starts with `prefix`.
type Runs<'a> = BTreeMap<(String, String, usize), Vec<&'a RunRow>>;

fn runs_of<'a>(stored: &'a [(String, Stored)], prefix: &str) -> Runs<'a> {
    let mut by: Runs<'a> = BTreeMap::new();
    for (name, s) in stored.iter().filter(|(n, _)| n.starts_with(prefix)) {
        for r in &s.runs {
            let task = task_label(stored, prefix, name, &r.task);
            by.entry((task, r.strategy.clone(), r.per_question))
                .or_default()
                .push(r);
        }
    }
    by
}

/// The runs of (task, strategy, k); `all` ignores k, so any of its k. An experiment that ran a
/// strategy at a single other k (e.g. the SmolLM2 arm at k = 2) gives that k's runs.
fn arm<'a, 'b>(runs: &'b Runs<'a>, t: &str, s: &str, k: usize) -> Option<&'b Vec<&'a RunRow>> {
    let mut of_task = runs.iter().filter(|((tt, ss, _), _)| tt == t && ss == s);
    if s == "all" {
        return of_task.next().map(|(_, v)| v);
    }
    runs.get(&(t.to_string(), s.to_string(), k)).or_else(|| {
        let only = of_task.next()?;
        of_task.next().is_none().then_some(only.1)
    })
}

/// One comparison of a claim: its strata (name, a's runs, b's runs) → paired statistics.
fn paired_over(strata: &[(String, &[&RunRow], &[&RunRow])], o: &Outcomes) -> Option<Paired> {
    let st: Vec<_> = strata
        .iter()
        .map(|(n, a, b)| stats::stratum(n, a, b, o))
        .collect();
    paired::compare_named(&st)
}

/// `| +2.1 [−0.4, +4.6] | 0.031 | 3.2 | +1.0, … |` cells of a paired comparison.
fn paired_cells(p: Option<&Paired>) -> String {
    match p {
        Some(p) => format!(
            "{} | {} | {:.1} | {} | {} | {}",
            paired::points(p),
            paired::p_text(p),
            100.0 * p.mde,
            paired::per_seed_text(p),
            paired::tokens_text(p),
            paired::learned_text(p)
        ),
        None => "– | – | – | – | – | –".into(),
    }
}

fn mean_of(runs: &[&RunRow], f: impl Fn(&RunRow) -> f64) -> f64 {
    runs.iter().map(|r| f(r)).sum::<f64>() / runs.len().max(1) as f64
}

/// Writes main.md, main.csv, ablation.md, rd-minmax.md and CLAIMS.md into `dir`; returns CLAIMS.md.
pub fn write(dir: &Path, main_k: usize, setting: Option<&Path>) -> Result<String> {
    let loaded = load(dir)?;
    let stored = &loaded.folders;
    let o = &loaded.outcomes;
    let main = cells(stored, "main");
    let abl = cells(stored, "ablation");
    let mm = cells(stored, "rd-minmax");
    let (main_runs, abl_runs, mm_runs) = (
        runs_of(stored, "main"),
        runs_of(stored, "ablation"),
        runs_of(stored, "rd-minmax"),
    );
    let strategies = ["all", "random", "correct", "dedup", "rd-max", "morsd"];
    // 1. Main table.
    let tasks = tasks_of(&main);
    // The main table's cells: the same runs as claim 1 takes (`arm`: `all` at any k, another
    // strategy at the main k or at the single k its experiment ran).
    let at = |_: &BTreeMap<(String, String, usize), Cell>, t: &str, s: &str, k: usize| {
        arm(&main_runs, t, s, k).map(|v| cell(v))
    };
    let mut md = format!(
        "# Main table: test accuracy (%) at k = {main_k}, mean ± 95 % CI over seeds\n\nEach cell: accuracy, then (training rationales, seeds). An experiment that ran a strategy at one other k only (e.g. the SmolLM2 arm at k = 2) shows that k's runs.\n\n| task | {} |\n|---|{}\n",
        strategies.join(" | "),
        "---|".repeat(strategies.len())
    );
    let mut csv = String::from("task,strategy,k,accuracy_mean,accuracy_ci95,seeds,rationales\n");
    for t in &tasks {
        let mut row = vec![t.clone()];
        for s in strategies {
            match at(&main, t, s, main_k) {
                Some(c) => {
                    row.push(format!("{} ({:.0}, {})", pct(&c), c.rationales, c.n));
                    let _ = writeln!(
                        csv,
                        "{t},{s},{main_k},{:.4},{:.4},{},{:.0}",
                        c.mean, c.ci, c.n, c.rationales
                    );
                }
                None => row.push("–".into()),
            }
        }
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    crate::report::atomic_write(&dir.join("main.md"), md.as_bytes())?;
    crate::report::atomic_write(&dir.join("main.csv"), csv.as_bytes())?;
    // 2. Ablation over k.
    let ks: Vec<usize> = {
        let mut k: Vec<usize> = abl.keys().map(|(_, _, k)| *k).collect();
        k.sort();
        k.dedup();
        k
    };
    let mut amd =
        String::from("# Ablation: test accuracy (%) against rationales per question k\n\n");
    let abl_tasks = tasks_of(&abl);
    for t in &abl_tasks {
        let _ = write!(
            amd,
            "## {t}\n\n| strategy | {} |\n|---|{}\n",
            ks.iter()
                .map(|k| format!("k = {k}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(ks.len())
        );
        for s in ["random", "correct", "morsd"] {
            let row: Vec<String> = ks
                .iter()
                .map(|&k| {
                    abl.get(&(t.clone(), s.to_string(), k))
                        .map_or("–".into(), pct)
                })
                .collect();
            let _ = writeln!(amd, "| {s} | {} |", row.join(" | "));
        }
        amd.push('\n');
    }
    amd.push_str("Charts: `accuracy.svg` / `accuracy.png` in each ablation experiment's folder.\n");
    crate::report::atomic_write(&dir.join("ablation.md"), amd.as_bytes())?;
    // 3. min- vs max-RD at equal k.
    let mut pairs_mm: Vec<(String, usize, String, Cell, Cell)> = Vec::new();
    for ((t, s, k), c) in &mm {
        if s == "rd-max" {
            let lo = ["rd-min", "morsd"]
                .into_iter()
                .find_map(|n| mm.get(&(t.clone(), n.into(), *k)).map(|c| (n, c)));
            if let Some((n, lo)) = lo {
                pairs_mm.push((t.clone(), *k, n.to_string(), *lo, *c));
            }
        }
    }
    let mm_strata = |only: Option<(&str, usize)>| -> Vec<(String, &[&RunRow], &[&RunRow])> {
        pairs_mm
            .iter()
            .filter(|(t, k, ..)| only.is_none_or(|(ot, ok)| ot == t && ok == *k))
            .filter_map(|(t, k, n, ..)| {
                let a = mm_runs.get(&(t.clone(), n.clone(), *k))?;
                let b = mm_runs.get(&(t.clone(), "rd-max".into(), *k))?;
                Some((format!("{t} k={k}"), a.as_slice(), b.as_slice()))
            })
            .collect()
    };
    let mut mmd = String::from(
        "# Minimum- vs maximum-RD rationales at equal k: test accuracy (%)\n\nmin − max paired by seed and test question: the mean difference in points [95 % bootstrap CI], the sign-flip p over seeds, the MDE (points), the per-seed differences, each arm's training tokens per run and whether every run had finished learning.\n\n| task | k | min RD | max RD | min − max [95 % CI] | p | MDE | per seed | training tokens min / max | learned? |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (t, k, _, lo, hi) in &pairs_mm {
        let p = paired_over(&mm_strata(Some((t, *k))), o);
        let _ = writeln!(
            mmd,
            "| {t} | {k} | {} | {} | {} |",
            pct(lo),
            pct(hi),
            paired_cells(p.as_ref())
        );
    }
    crate::report::atomic_write(&dir.join("rd-minmax.md"), mmd.as_bytes())?;
    // 4. The field's selectors beside MoRSD (experiments starting with `selectors`).
    selectors_md(dir, stored, o, main_k)?;
    // 5. CLAIMS.md.
    let e = PAPER_EFFECT;
    let mut claims = String::from(
        "# The paper's claims, checked\n\nGenerated by `morsd paper` from the stored runs in this folder. Every comparison is paired: the two arms ran at the same seeds and were scored on the same test questions (`predictions.parquet` in each experiment folder), so it reports the mean difference in points with its 95 % bootstrap CI (seeds resampled, then questions within each seed), the exact sign-flip p over seeds, the minimum detectable effect (MDE: 80 % power at α = 0.05) and the per-seed differences. The verdict rules and the method are at the end.\n\n",
    );
    if !loaded.unpaired.is_empty() {
        let _ = writeln!(
            claims,
            "Folders without `predictions.parquet` (written by an older morsd; their comparisons are \"not measured\" until `morsd run` rewrites them from the cache): {}.\n",
            loaded.unpaired.join(", ")
        );
    }
    // Claim 1: morsd − all at the main k, per task and pooled over tasks.
    let c1_strata: Vec<(String, &[&RunRow], &[&RunRow])> = tasks
        .iter()
        .filter_map(|t| {
            Some((
                t.clone(),
                arm(&main_runs, t, "morsd", main_k)?.as_slice(),
                arm(&main_runs, t, "all", main_k)?.as_slice(),
            ))
        })
        .collect();
    let c1 = paired_over(&c1_strata, o);
    let v1 = Decision::of(c1.as_ref(), e);
    let _ = write!(
        claims,
        "## 1. Selecting by accuracy, diversity and low RD beats training on all rationales (paper: +4.6 points on average, with fewer rationales)\n\nVerdict: {}. morsd − all at k = {main_k}, averaged over {} task(s): {}.\n\n| task | morsd | all | morsd − all [95 % CI] | p | MDE | per seed | training tokens morsd / all | learned? | verdict | rationales morsd / all |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        v1.text(e),
        c1_strata.len(),
        c1.as_ref().map_or("no paired runs".into(), |p| format!(
            "{} points ({}, MDE {:.1} points)",
            paired::points(p),
            paired::p_sentence(p),
            100.0 * p.mde
        ))
    );
    for (t, a, b) in &c1_strata {
        let p = paired_over(&[(t.clone(), a, b)], o);
        let k = a.first().map_or(main_k, |r| r.per_question);
        let t = if k == main_k {
            t.clone()
        } else {
            format!("{t}, k = {k}")
        };
        let _ = writeln!(
            claims,
            "| {t} | {} | {} | {} | {} | {:.0} / {:.0} |",
            pct(&cell(a)),
            pct(&cell(b)),
            paired_cells(p.as_ref()),
            Decision::of(p.as_ref(), e).text(e),
            mean_of(a, |r| r.rationales as f64),
            mean_of(b, |r| r.rationales as f64),
        );
    }
    // The efficiency reading: training tokens.
    if !c1_strata.is_empty() {
        let ta: f64 = c1_strata
            .iter()
            .map(|(_, a, _)| mean_of(a, |r| r.training_tokens as f64))
            .sum();
        let tb: f64 = c1_strata
            .iter()
            .map(|(_, _, b)| mean_of(b, |r| r.training_tokens as f64))
            .sum();
        let _ = writeln!(
            claims,
            "\nTraining compute: morsd trained on {:.0} % of the tokens `all` trained on (summed over the tasks' mean per run). With a `train.epochs` budget that is the efficiency the paper claims; with a `train.steps` budget both arms train on the same number of sequences, and only *which* sequences differ. Chart: `tokens.svg` in each main experiment's folder.",
            100.0 * ta / tb.max(1.0)
        );
    }
    // The other baselines, for context (no verdict: the paper's claim is against `all`).
    let others = ["random", "correct", "dedup", "rd-max"];
    let other_rows: Vec<String> = tasks
        .iter()
        .filter_map(|t| {
            let m = arm(&main_runs, t, "morsd", main_k)?;
            let row: Vec<String> = others
                .iter()
                .map(|s| {
                    arm(&main_runs, t, s, main_k)
                        .and_then(|b| paired_over(&[(t.clone(), m, b)], o))
                        .map_or("–".into(), |p| paired::points(&p))
                })
                .collect();
            Some(format!("| {t} | {} |\n", row.join(" | ")))
        })
        .collect();
    if !other_rows.is_empty() {
        let _ = write!(
            claims,
            "\nmorsd − each other baseline at k = {main_k}, paired (points [95 % CI]; `correct` is the Fine-tune-CoT baseline):\n\n| task | {} |\n|---|{}\n{}",
            others.join(" | "),
            "---|".repeat(others.len()),
            other_rows.concat()
        );
    }
    // Claim 2: min − max RD, pooled over every (task, k) pair.
    let c2 = paired_over(&mm_strata(None), o);
    let v2 = Decision::of(c2.as_ref(), e);
    let _ = write!(
        claims,
        "\n## 2. Minimum-RD rationales beat maximum-RD ones\n\nVerdict: {}. min − max averaged over {} (task, k) pair(s): {} (table, per pair: `rd-minmax.md`).\n\n",
        v2.text(e),
        pairs_mm.len(),
        c2.as_ref().map_or("no paired runs".into(), |p| format!(
            "{} points ({}, MDE {:.1} points; per seed {})",
            paired::points(p),
            paired::p_sentence(p),
            100.0 * p.mde,
            paired::per_seed_text(p)
        ))
    );
    // Claim 3: morsd at k = 6 against the smallest k (more rationales help up to ~6) and the
    // largest k against k = 6 (more than ~6 does not pay), per task and pooled.
    let _ = write!(
        claims,
        "## 3. About 6 rationales per question is the best trade-off\n\n"
    );
    let (kmin, kmax) = (ks.first().copied(), ks.last().copied());
    let mut rise: Vec<(String, &[&RunRow], &[&RunRow])> = Vec::new();
    let mut beyond: Vec<(String, &[&RunRow], &[&RunRow])> = Vec::new();
    if let (Some(kmin), Some(kmax)) = (kmin, kmax) {
        for t in &abl_tasks {
            let get = |k| {
                abl_runs
                    .get(&(t.clone(), "morsd".to_string(), k))
                    .map(|v| v.as_slice())
            };
            if let (Some(six), Some(lo)) = (get(6), get(kmin))
                && kmin < 6
            {
                rise.push((t.clone(), six, lo));
            }
            if let (Some(six), Some(hi)) = (get(6), get(kmax))
                && kmax > 6
            {
                beyond.push((t.clone(), hi, six));
            }
        }
    }
    let (pr, pb) = (paired_over(&rise, o), paired_over(&beyond, o));
    let v3 = claim3(pr.as_ref(), pb.as_ref(), e);
    let _ = write!(
        claims,
        "Verdict: {}. Over {} task(s), {}; {} (table: `ablation.md`).\n\n| task | comparison | difference [95 % CI] | p | MDE | per seed | training tokens a / b | learned? |\n|---|---|---|---|---|---|---|---|\n",
        v3.text(e),
        abl_tasks.len(),
        match (kmin, &pr) {
            (Some(k), Some(p)) => format!("morsd at k = 6 − k = {k}: {}", paired::points(p)),
            _ => "no morsd runs at k = 6 and a smaller k".into(),
        },
        match (kmax, &pb) {
            (Some(k), Some(p)) => format!("k = {k} − k = 6: {}", paired::points(p)),
            _ => "no k above 6 was run".into(),
        },
    );
    for (t, a, b) in &rise {
        let p = paired_over(&[(t.clone(), a, b)], o);
        let _ = writeln!(
            claims,
            "| {t} | k = 6 − k = {} | {} |",
            kmin.unwrap_or(0),
            paired_cells(p.as_ref())
        );
    }
    for (t, a, b) in &beyond {
        let p = paired_over(&[(t.clone(), a, b)], o);
        let _ = writeln!(
            claims,
            "| {t} | k = {} − k = 6 | {} |",
            kmax.unwrap_or(0),
            paired_cells(p.as_ref())
        );
    }
    claims.push('\n');
    let _ = write!(
        claims,
        "## Verdict rules\n\n\
         Each claim is one paired comparison, a − b with the claimed side a > b (claim 1: morsd − all at k = {main_k}, averaged over the tasks; claim 2: min-RD − max-RD at equal k, averaged over the (task, k) pairs — `rd-min`, or `morsd` where `rd-min` was not run):\n\n\
         - **reproduced**: the paired 95 % CI lies wholly above 0;\n\
         - **contradicted**: it lies wholly below 0;\n\
         - **no effect at the paper's size**: the CI contains 0 and the MDE is at most {effect:.1} points;\n\
         - **inconclusive (MDE X points)**: the CI contains 0 and the study could only have detected an effect of X points;\n\
         - **inconclusive (one seed)**: some task has a single seed, so the noise between training runs is not measured and no verdict is given;\n\
         - **inconclusive (not converged: N of M runs still improving)**: before any of the above, when N of the comparison's M runs had not finished learning (README, \"Reading a verdict\": a run has converged when at least `train.patience` validations, 3 without it, followed the first one that reached its best accuracy; a run of an older folder without learning curves counts as still improving when its best checkpoint is its last step). Between such runs the difference measures the training budget as much as the selection.\n\n\
         The effect of interest is {effect:.1} points for every claim. For claim 1 it is the paper's average gain of morsd over `all`. Claims 2 and 3 have no single effect size that this repository can cite from the paper, and an RD ordering or a choice of k that moves accuracy by much less than the method's whole claimed gain would not support the paper's recommendation, so the same {effect:.1} points is the smallest effect worth detecting for them.\n\n\
         Claim 3 is two comparisons of morsd over k: k = 6 − the smallest k run (the claimed side: more rationales help up to about 6) and the largest k run − k = 6 (the claimed side: more than about 6 does not pay). **Reproduced** when the first CI lies above 0 and the second's upper end is below {effect:.1} points (no gain of the paper's size beyond 6); **contradicted** when the first CI lies below 0, or the second lies wholly above 0 with a mean of at least {effect:.1} points (more rationales pay); **no effect at the paper's size** when the first CI contains 0 with an MDE of at most {effect:.1} points (k barely matters here); **inconclusive (MDE X points)** otherwise, X being the first comparison's MDE.\n\n\
         ## Method\n\n\
         - **Pairing.** Two runs are paired when they have the same seed; their outcomes are paired by test question id. Tasks (or (task, k) pairs) are strata: a claim's statistic is the mean over strata of each stratum's mean over seeds of the per-seed accuracy difference.\n\
         - **CI.** {reps} bootstrap replicates (seeded, so a rebuilt report is identical): within each stratum, seeds are drawn with replacement, then each drawn seed's test questions with replacement; the 2.5 and 97.5 percentiles of the replicated statistic.\n\
         - **p.** Two-sided exact sign-flip test over seeds: under no difference each seed's difference is as likely negated; p is the share of the 2^seeds sign patterns whose statistic is at least as far from 0 as the observed one (Monte Carlo above 20 seeds). Its floor is 2 / 2^seeds: 0.0625 with 5 seeds, 0.031 with 6.\n\
         - **MDE.** (t(0.975, df) + t(0.80, df)) × SE, the SE from each stratum's between-seed variance of the differences (never below its within-seed question variance), df = Σ (seeds − 1): the true difference this design would detect 80 % of the time at α = 0.05. Quantiles come from `statrs`.\n\n",
        effect = 100.0 * e,
        reps = paired::REPLICATES,
    );
    claims.push_str("## Stage executions\n\n");
    for (name, s) in stored {
        let _ = writeln!(
            claims,
            "### {name}\n\n{}",
            super::provenance::executions_md(s)
        );
    }
    if let Some(p) = setting {
        claims.push_str(&std::fs::read_to_string(p).map_err(|e| Error::Input {
            path: p.to_path_buf(),
            message: e.to_string(),
        })?);
    }
    crate::report::atomic_write(&dir.join("CLAIMS.md"), claims.as_bytes())?;
    Ok(claims)
}

/// The selector strategies `selectors.md` lists, in order (those a folder ran).
const SELECTORS: [&str; 13] = [
    "ifd",
    "superfilter",
    "grape",
    "rsr",
    "shortest",
    "longest",
    "answer-only",
    "random",
    "correct",
    "dedup",
    "rd-min",
    "rd-max",
    "morsd",
];

/// `selectors.md`: per task, each selector's accuracy and its paired difference against `morsd`
/// and against `all` (experiments whose folder starts with `selectors`); nothing when none ran.
fn selectors_md(dir: &Path, stored: &[(String, Stored)], o: &Outcomes, k: usize) -> Result<()> {
    let runs = runs_of(stored, "selectors");
    if runs.is_empty() {
        return Ok(());
    }
    let mut md = format!(
        "# The field's selectors beside MoRSD at k = {k}: test accuracy (%)\n\nEach selector paired against `morsd` and against `all` by seed and test question: the mean difference in points [95 % bootstrap CI] and the sign-flip p over seeds. A difference is a verdict only where both arms had finished learning (last column; README, \"Reading a verdict\"). Scores and sources: README, \"Selection strategies beside MoRSD\"; how the scores relate: `summary.md` of each selectors folder.\n\n| task | strategy | accuracy (rationales, seeds) | training tokens | − morsd | − all | learned? |\n|---|---|---|---|---|---|---|\n"
    );
    let mut tasks: Vec<&String> = runs.keys().map(|(t, ..)| t).collect();
    tasks.dedup();
    let diff = |t: &str, a: &[&RunRow], b: Option<&Vec<&RunRow>>| -> (String, Option<Paired>) {
        let p = b.and_then(|b| paired_over(&[(t.to_string(), a, b.as_slice())], o));
        let text = p.as_ref().map_or("–".into(), |p| {
            format!("{} (p {})", paired::points(p), paired::p_text(p))
        });
        (text, p)
    };
    for t in tasks {
        let (morsd, all) = (arm(&runs, t, "morsd", k), arm(&runs, t, "all", k));
        for s in SELECTORS.iter().chain(&["all"]) {
            let Some(a) = arm(&runs, t, s, k) else {
                continue;
            };
            let c = cell(a);
            let (dm, pm) = if *s == "morsd" {
                ("–".into(), None)
            } else {
                diff(t, a, morsd)
            };
            let (da, pa) = if *s == "all" {
                ("–".into(), None)
            } else {
                diff(t, a, all)
            };
            let learned = pm.or(pa).map_or("–".into(), |p| paired::learned_text(&p));
            let _ = writeln!(
                md,
                "| {t} | {s} | {} ({:.0}, {}) | {:.0} | {dm} | {da} | {learned} |",
                pct(&c),
                c.rationales,
                c.n,
                mean_of(a, |r| r.training_tokens as f64)
            );
        }
    }
    crate::report::atomic_write(&dir.join("selectors.md"), md.as_bytes())
}

/// Claim 3's verdict from its two comparisons (see the rules in `CLAIMS.md`).
pub fn claim3(rise: Option<&Paired>, beyond: Option<&Paired>, e: f64) -> Decision {
    let Some(r) = rise else {
        return Decision::Unmeasured;
    };
    let (n, m) = [Some(r), beyond]
        .into_iter()
        .flatten()
        .fold((0, 0), |(n, m), p| (n + p.still_improving, m + p.runs));
    if n > 0 {
        return Decision::NotConverged(n, m);
    }
    if r.min_seeds < 2 || beyond.is_some_and(|b| b.min_seeds < 2) {
        return Decision::OneSeed;
    }
    let beyond_hi = beyond.map_or(f64::INFINITY, |b| b.ci.1);
    // More than 6 pays: a gain shown to be positive and on average of at least the effect size.
    let pays = beyond.is_some_and(|b| b.ci.0 > 0.0 && b.mean >= e);
    if r.ci.1 < 0.0 || pays {
        Decision::Contradicted
    } else if r.ci.0 > 0.0 && beyond_hi < e {
        Decision::Reproduced
    } else if r.ci.0 <= 0.0 && r.mde <= e {
        Decision::NoEffect
    } else {
        Decision::Inconclusive(r.mde)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lo: f64, hi: f64, mde: f64) -> Paired {
        Paired::with_ci(lo, hi, mde)
    }

    #[test]
    fn claim3_follows_its_rules() {
        let e = PAPER_EFFECT;
        // k = 6 clearly above the smallest k, nothing of the paper's size beyond 6.
        let good = p(0.02, 0.08, 0.03);
        assert_eq!(
            claim3(Some(&good), Some(&p(-0.02, 0.03, 0.03)), e),
            Decision::Reproduced
        );
        // More rationales clearly better beyond 6, by the paper's effect size.
        assert_eq!(
            claim3(Some(&good), Some(&p(0.02, 0.08, 0.03)), e),
            Decision::Contradicted
        );
        // Reliably but slightly better beyond 6, possibly by up to 6 points: not shown either way.
        assert_eq!(
            claim3(Some(&good), Some(&p(0.01, 0.06, 0.03)), e),
            Decision::Inconclusive(0.03)
        );
        // k barely matters, and the study could have seen it.
        assert_eq!(
            claim3(Some(&p(-0.01, 0.02, 0.03)), Some(&p(-0.02, 0.03, 0.03)), e),
            Decision::NoEffect
        );
        assert_eq!(
            claim3(Some(&p(-0.05, 0.10, 0.09)), None, e),
            Decision::Inconclusive(0.09)
        );
        assert_eq!(claim3(None, None, e), Decision::Unmeasured);
    }

    /// Writes a reproduction folder with main / rd-minmax / ablation experiments whose
    /// per-question outcomes give known paired differences, and checks the verdicts of
    /// `CLAIMS.md`.
    #[test]
    fn claims_are_decided_from_the_paired_outcomes() {
        use crate::report::predictions::Prediction;
        let dir = tempfile::tempdir().unwrap();
        // (folder, [(strategy, k, questions right of 200)]) at seeds 0..6; the first ones right.
        type Arms<'a> = &'a [(&'a str, usize, usize)];
        let folders: [(&str, Arms); 4] = [
            ("main-synthetic", &[("morsd", 6, 120), ("all", 6, 100)]),
            // The same task with another student: a stratum of its own, never pooled with the
            // first (morsd − all = −2 points here).
            ("main-smollm2", &[("morsd", 2, 96), ("all", 2, 100)]),
            ("rd-minmax", &[("rd-min", 4, 100), ("rd-max", 4, 100)]),
            (
                "ablation-k",
                &[("morsd", 1, 60), ("morsd", 6, 120), ("morsd", 10, 121)],
            ),
        ];
        for (name, arms) in folders {
            let mut runs = Vec::new();
            let mut preds = Vec::new();
            for seed in 0..6u64 {
                for (s, k, right) in arms {
                    // Odd seeds get one more right in every arm: the arms' outcomes differ
                    // only by the gains above.
                    let right = right + (seed as usize % 2);
                    let mut r = crate::report::test_row(s, *k, seed, right as f64 / 200.0);
                    r.label = format!("{s} k={k} seed={seed}");
                    runs.push(r);
                    preds.push(
                        (0..200)
                            .map(|i| Prediction {
                                id: format!("q{i:03}"),
                                output: String::new(),
                                extracted: None,
                                gold: "1".into(),
                                correct: i < right,
                            })
                            .collect::<Vec<_>>(),
                    );
                }
            }
            let st = Stored {
                experiment: name.into(),
                spec: "s".into(),
                sweep_keys: vec![],
                runs,
                ..Default::default()
            };
            crate::report::write(&dir.path().join(name), &st, &preds).unwrap();
        }
        let claims = write(dir.path(), 6, None).unwrap();
        let section =
            |a: &str, b: &str| claims[claims.find(a).unwrap()..claims.find(b).unwrap()].to_string();
        // Claim 1: +10 and −2 points at every seed → +4 on average, reproduced.
        let c1 = section("## 1.", "## 2.");
        assert!(c1.contains("Verdict: **reproduced**"), "{c1}");
        assert!(c1.contains("averaged over 2 task(s): +4.0 [+"), "{c1}");
        assert!(c1.contains("| arithmetic (main-synthetic) | 60.2 "), "{c1}");
        // Its morsd ran at k = 2 only: claim 1 takes that k and says so.
        assert!(
            c1.contains("| arithmetic (main-smollm2), k = 2 | 48.2 "),
            "{c1}"
        );
        assert!(c1.contains("| −2.0 [") || c1.contains("| -2.0 ["), "{c1}");
        // Claim 2: identical outcomes → a CI of [0, 0] and an MDE of 0: no effect at the
        // paper's size.
        let c2 = section("## 2.", "## 3.");
        assert!(
            c2.contains("Verdict: **no effect at the paper's size**"),
            "{c2}"
        );
        // Claim 3: k = 6 − k = 1 is +30 points, k = 10 − k = 6 is +0.5 → reproduced.
        let c3 = section("## 3.", "## Verdict rules");
        assert!(c3.contains("Verdict: **reproduced**"), "{c3}");
        assert!(c3.contains("| k = 6 − k = 1 | +30.0 ["), "{c3}");
        assert!(c3.contains("| k = 10 − k = 6 | +0.5 ["), "{c3}");
        assert!(claims.contains("## Method"));
    }
}
