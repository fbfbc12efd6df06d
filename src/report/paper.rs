//! The paper-style reading of a reproduction folder (`morsd paper DIR`, run by
//! `just reproduce`): from the `runs.json` of each experiment under DIR it writes
//! - `main.md` / `main.csv`: task × strategy at the main k, accuracy mean ± 95 % CI over seeds
//!   and the rationales each trained on (experiments whose name starts with `main`);
//! - `ablation.md`: accuracy against k per strategy (experiments starting with `ablation`; their
//!   own folders hold the chart);
//! - `rd-minmax.md`: rd-min (or morsd) against rd-max at equal k (experiments starting with
//!   `rd-minmax`);
//! - `CLAIMS.md`: the paper's three claims, the numbers that bear on each, and a verdict computed
//!   from them by the rules stated in the file.
//!
//! Nothing here is hand-entered: every number comes from the stored runs.

use super::stats::mean_ci;
use super::{RunRow, Stored};
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

impl Cell {
    /// The CI half-width, 0 where there is none (one seed): the margin of every comparison.
    fn half(&self) -> f64 {
        if self.ci.is_nan() { 0.0 } else { self.ci }
    }
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
    let mut by: BTreeMap<(String, String, usize), Vec<&RunRow>> = BTreeMap::new();
    for (_, s) in stored.iter().filter(|(n, _)| n.starts_with(prefix)) {
        for r in &s.runs {
            by.entry((r.task.clone(), r.strategy.clone(), r.per_question))
                .or_default()
                .push(r);
        }
    }
    by.into_iter().map(|(k, v)| (k, cell(&v))).collect()
}

/// The tasks of a cell map, in order, once each (keys sort by task first).
fn tasks_of(cells: &BTreeMap<(String, String, usize), Cell>) -> Vec<String> {
    let mut t: Vec<String> = cells.keys().map(|(t, _, _)| t.clone()).collect();
    t.dedup();
    t
}

/// Reads every `*/runs.json` under `dir` (folder name → stored runs).
pub fn load(dir: &Path) -> Result<Vec<(String, Stored)>> {
    let mut out = Vec::new();
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
        let s: Stored = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
            path: f.clone(),
            message: e.to_string(),
        })?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, s));
    }
    if out.is_empty() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            message: "no experiment folder with a runs.json here (run `just reproduce` first)"
                .into(),
        });
    }
    Ok(out)
}

/// Which verdict a comparison earns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Holds everywhere it was measured, beyond the 95 % CIs somewhere.
    Reproduced,
    /// Holds in the means in some places, or only inside the CIs.
    Partly,
    /// Does not hold in the means anywhere.
    Not,
    /// The runs needed for it are not in this folder.
    Unmeasured,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Reproduced => "**reproduced**",
            Verdict::Partly => "**partly reproduced**",
            Verdict::Not => "**not reproduced**",
            Verdict::Unmeasured => "**not measured**",
        }
    }
}

/// The verdict of "a beats b" over a list of (a, b) pairs: reproduced when a's mean is higher in
/// every pair and its CI lies above b's in at least one; partly when higher in some; not otherwise.
pub fn beats(pairs: &[(Cell, Cell)]) -> Verdict {
    let wins = pairs.iter().filter(|(a, b)| a.mean > b.mean).count();
    let clear = pairs
        .iter()
        .any(|(a, b)| a.n > 1 && b.n > 1 && a.mean - a.half() > b.mean + b.half());
    if pairs.is_empty() {
        Verdict::Unmeasured
    } else if wins == 0 {
        Verdict::Not
    } else if wins == pairs.len() && clear {
        Verdict::Reproduced
    } else {
        Verdict::Partly
    }
}

/// Writes main.md, main.csv, ablation.md, rd-minmax.md and CLAIMS.md into `dir`; returns CLAIMS.md.
pub fn write(dir: &Path, main_k: usize, setting: Option<&Path>) -> Result<String> {
    let stored = load(dir)?;
    let main = cells(&stored, "main");
    let abl = cells(&stored, "ablation");
    let mm = cells(&stored, "rd-minmax");
    let strategies = ["all", "random", "correct", "dedup", "rd-max", "morsd"];
    // 1. Main table.
    let tasks = tasks_of(&main);
    let at = |c: &BTreeMap<(String, String, usize), Cell>, t: &str, s: &str, k: usize| {
        // `all` keeps every rationale: its k is whatever the spec had; take any.
        if s == "all" {
            c.iter()
                .find(|((tt, ss, _), _)| tt == t && ss == s)
                .map(|(_, v)| *v)
        } else {
            c.get(&(t.to_string(), s.to_string(), k)).copied()
        }
    };
    let mut md = format!(
        "# Main table: test accuracy (%) at k = {main_k}, mean ± 95 % CI over seeds\n\nEach cell: accuracy, then (training rationales, seeds).\n\n| task | {} |\n|---|{}\n",
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
    let mut pairs_mm: Vec<(String, usize, Cell, Cell)> = Vec::new();
    for ((t, s, k), c) in &mm {
        if s == "rd-max" {
            let lo = mm
                .get(&(t.clone(), "rd-min".into(), *k))
                .or_else(|| mm.get(&(t.clone(), "morsd".into(), *k)));
            if let Some(lo) = lo {
                pairs_mm.push((t.clone(), *k, *lo, *c));
            }
        }
    }
    let mut mmd = String::from(
        "# Minimum- vs maximum-RD rationales at equal k: test accuracy (%)\n\n| task | k | min RD | max RD | difference (points) |\n|---|---|---|---|---|\n",
    );
    for (t, k, lo, hi) in &pairs_mm {
        let _ = writeln!(
            mmd,
            "| {t} | {k} | {} | {} | {:+.1} |",
            pct(lo),
            pct(hi),
            100.0 * (lo.mean - hi.mean)
        );
    }
    crate::report::atomic_write(&dir.join("rd-minmax.md"), mmd.as_bytes())?;
    // 4. CLAIMS.md.
    let c1: Vec<(Cell, Cell)> = tasks
        .iter()
        .filter_map(|t| Some((at(&main, t, "morsd", main_k)?, at(&main, t, "all", main_k)?)))
        .collect();
    let c2: Vec<(Cell, Cell)> = pairs_mm.iter().map(|(_, _, a, b)| (*a, *b)).collect();
    let mut claims = String::from(
        "# The paper's claims, checked\n\nGenerated by `morsd paper` from the stored runs in this folder; the verdict rules are at the end.\n\n",
    );
    // Claim 1.
    let v1 = beats(&c1);
    let avg = |v: &[(Cell, Cell)]| {
        if v.is_empty() {
            "no runs".to_string()
        } else {
            let d = v.iter().map(|(a, b)| a.mean - b.mean).sum::<f64>() / v.len() as f64;
            format!("{:+.1} points", 100.0 * d)
        }
    };
    let _ = write!(
        claims,
        "## 1. Selecting by accuracy, diversity and low RD beats training on all rationales (paper: +4.6 points on average, with fewer rationales)\n\nVerdict: {}. morsd − all at k = {main_k}, averaged over {} task(s): {}.\n\n| task | morsd | all | morsd − all | rationales morsd / all |\n|---|---|---|---|---|\n",
        v1.text(),
        c1.len(),
        avg(&c1)
    );
    for t in &tasks {
        if let (Some(a), Some(b)) = (at(&main, t, "morsd", main_k), at(&main, t, "all", main_k)) {
            let _ = writeln!(
                claims,
                "| {t} | {} | {} | {:+.1} | {:.0} / {:.0} |",
                pct(&a),
                pct(&b),
                100.0 * (a.mean - b.mean),
                a.rationales,
                b.rationales
            );
        }
    }
    // The other baselines, for context (no verdict: the paper's claim is against `all`).
    let others = ["random", "correct", "dedup", "rd-max"];
    let other_rows: Vec<String> = tasks
        .iter()
        .filter_map(|t| {
            let m = at(&main, t, "morsd", main_k)?;
            let row: Vec<String> = others
                .iter()
                .map(|s| {
                    at(&main, t, s, main_k).map_or("–".into(), |b| {
                        format!("{:+.1}", 100.0 * (m.mean - b.mean))
                    })
                })
                .collect();
            Some(format!("| {t} | {} |\n", row.join(" | ")))
        })
        .collect();
    if !other_rows.is_empty() {
        let _ = write!(
            claims,
            "\nmorsd − each other baseline at k = {main_k} (points; `correct` is the Fine-tune-CoT baseline):\n\n| task | {} |\n|---|{}\n{}",
            others.join(" | "),
            "---|".repeat(others.len()),
            other_rows.concat()
        );
    }
    // Claim 2.
    let v2 = beats(&c2);
    let _ = write!(
        claims,
        "\n## 2. Minimum-RD rationales beat maximum-RD ones\n\nVerdict: {}. min − max averaged over {} (task, k) pair(s): {} (table: `rd-minmax.md`).\n\n",
        v2.text(),
        c2.len(),
        avg(&c2)
    );
    // Claim 3.
    let _ = write!(
        claims,
        "## 3. About 6 rationales per question is the best trade-off\n\n"
    );
    let mut v3s = Vec::new();
    for t in &abl_tasks {
        let pts: Vec<(usize, Cell)> = ks
            .iter()
            .filter_map(|&k| Some((k, *abl.get(&(t.clone(), "morsd".into(), k))?)))
            .collect();
        if let Some((best_k, best)) = pts.iter().max_by(|a, b| a.1.mean.total_cmp(&b.1.mean)) {
            let six = pts.iter().find(|(k, _)| *k == 6).map(|x| x.1);
            let within = six.is_some_and(|s| s.mean + s.half() >= best.mean);
            // "Clearly" better than one rationale: its CI lies wholly above k = 1's.
            let clear = pts.first().is_some_and(|(_, one)| {
                best.n > 1 && best.mean - best.half() > one.mean + one.half()
            });
            let v = if six.is_none() {
                Verdict::Unmeasured
            } else if (4..=8).contains(best_k) && clear {
                Verdict::Reproduced
            } else if (4..=8).contains(best_k) || within {
                Verdict::Partly
            } else {
                Verdict::Not
            };
            v3s.push(v);
            let _ = writeln!(
                claims,
                "- {t}: morsd is best at k = {best_k} ({}); at k = 6: {}. Verdict for this task: {}.",
                pct(best),
                six.map_or("not run".into(), |s| pct(&s)),
                v.text()
            );
        }
    }
    let v3 = if v3s.is_empty() || v3s.iter().all(|v| *v == Verdict::Unmeasured) {
        Verdict::Unmeasured
    } else if v3s.iter().all(|v| *v == Verdict::Reproduced) {
        Verdict::Reproduced
    } else if v3s.iter().any(|v| *v != Verdict::Not) {
        Verdict::Partly
    } else {
        Verdict::Not
    };
    let _ = write!(
        claims,
        "\nVerdict: {} (table: `ablation.md`).\n\n",
        v3.text()
    );
    claims.push_str("## Verdict rules\n\n- Claims 1 and 2 (\"a beats b\"): **reproduced** when a's mean is higher in every compared setting and a's 95 % CI lies wholly above b's in at least one; **partly** when a's mean is higher in some settings (or everywhere, but only inside the CIs); **not** when it is higher in none.\n- Claim 3: per task, **reproduced** when morsd's best k is between 4 and 8 and its CI lies wholly above that of the smallest k; **partly** when the best k is between 4 and 8 only in the means, or k = 6 is within its CI of the best; **not** otherwise; **not measured** when k = 6 was not run. Overall: reproduced if every task is, partly if some are.\n\n");
    claims.push_str("## Stage executions\n\n");
    for (name, s) in &stored {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(mean: f64, ci: f64) -> Cell {
        Cell {
            mean,
            ci,
            n: 3,
            rationales: 1.0,
        }
    }

    #[test]
    fn verdicts_follow_the_rules() {
        assert_eq!(beats(&[(c(0.6, 0.02), c(0.5, 0.02))]), Verdict::Reproduced);
        assert_eq!(beats(&[(c(0.52, 0.05), c(0.5, 0.05))]), Verdict::Partly);
        assert_eq!(
            beats(&[(c(0.6, 0.01), c(0.5, 0.01)), (c(0.4, 0.01), c(0.5, 0.01))]),
            Verdict::Partly
        );
        assert_eq!(beats(&[(c(0.4, 0.01), c(0.5, 0.01))]), Verdict::Not);
        assert_eq!(beats(&[]), Verdict::Unmeasured);
    }
}
