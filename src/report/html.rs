//! `report.html`: one self-contained page (inline CSS, JS and SVG; no network request) with the
//! run table (with where and why each run stopped and whether it converged), the summary with
//! CIs, the accuracy chart, the learning curves (`curves.svg`, a section left out when no run
//! recorded a curve) and a rationale browser. The browser's
//! data is `selection.json` (written beside `selection.parquet` by `morsd run`: every scored
//! rationale, its question and gold answer, and which runs selected it), so `morsd report DIR`
//! rebuilds the page from the folder alone. The page is rendered from
//! `templates/report/report.html.jinja`; its script reads filters and the sort order from the
//! URL fragment (`report.html#strategy=morsd&sort=rd`), which is what the browser test drives.

use super::stats::{groups, mean_ci};
use super::{Stored, atomic_write};
use crate::error::{Error, Result};
use crate::resolve::show;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A training question as the browser shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Question {
    /// Question id (`train-17`).
    pub id: String,
    /// The question text.
    pub text: String,
    /// Its gold answer (empty where the task has none).
    pub gold: String,
}

/// A run as the browser shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelRun {
    /// The run's label (as in `runs.json` and the `selected: LABEL` columns of selection.parquet).
    pub label: String,
    /// Its strategy.
    pub strategy: String,
    /// `select.per_question`.
    pub per_question: usize,
    /// Seed.
    pub seed: u64,
}

/// One scored rationale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rationale {
    /// Rationale id (unique within its score entry).
    pub id: String,
    /// Score entry key (12 hex).
    pub score_key: String,
    /// Index into [`SelectionData::questions`].
    pub q: usize,
    /// Teacher source.
    pub source: String,
    /// Extracted answer.
    pub extracted: Option<String>,
    /// Extracted answer equals the label.
    pub correct: bool,
    /// Diversity.
    pub diversity: Option<f64>,
    /// Rationale Difficulty.
    pub rd: Option<f64>,
    /// Full text.
    pub text: String,
    /// Indexes into [`SelectionData::runs`] of the runs that selected it.
    pub sel: Vec<usize>,
}

/// What `selection.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SelectionData {
    /// Runs, in `runs.json` order.
    pub runs: Vec<SelRun>,
    /// Training questions that have rationales.
    pub questions: Vec<Question>,
    /// Every scored rationale.
    pub rationales: Vec<Rationale>,
}

/// A finite number or nothing (JSON has no NaN).
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Writes `selection.json`.
pub fn write_selection_json(dir: &Path, data: &SelectionData) -> Result<()> {
    let json = serde_json::to_vec(data).map_err(Error::run)?;
    atomic_write(&dir.join("selection.json"), &json)
}

fn read_selection(dir: &Path) -> Result<Option<SelectionData>> {
    let path = dir.join("selection.json");
    let Some(data): Option<SelectionData> = super::read_optional_json(&path)? else {
        return Ok(None);
    };
    let bad = data
        .rationales
        .iter()
        .find(|r| r.q >= data.questions.len() || r.sel.iter().any(|&i| i >= data.runs.len()));
    if let Some(r) = bad {
        return Err(Error::Input {
            path,
            message: format!(
                "rationale {} points at a question or run that is not listed",
                r.id
            ),
        });
    }
    Ok(Some(data))
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}", 100.0 * x)
    } else {
        "–".into()
    }
}

/// JSON safe inside `<script type="application/json">` (no `</script>`, no `<!--`).
fn script_json(v: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string(v)
        .map_err(Error::run)?
        .replace('<', "\\u003c"))
}

/// A chart's SVG (`accuracy.svg`, `curves.svg`) without an XML declaration, for inlining; empty
/// when the file is absent.
fn inline_svg(dir: &Path, name: &str) -> String {
    let s = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    match s.find("<svg") {
        Some(i) => s[i..].to_string(),
        None => String::new(),
    }
}

/// Renders `report.html` into `dir` (after the tables, `accuracy.svg` and `curves.svg` are
/// written).
pub fn write(dir: &Path, stored: &Stored, reading: &str) -> Result<()> {
    let html = render(dir, stored, reading)?;
    atomic_write(&dir.join("report.html"), html.as_bytes())
}

/// The page's text.
pub fn render(dir: &Path, stored: &Stored, reading: &str) -> Result<String> {
    let selection = read_selection(dir)?;
    let mut run_head: Vec<String> = stored.sweep_keys.clone();
    run_head.extend(
        [
            "seed",
            "strategy",
            "k",
            "rationales",
            "training tokens",
            "best step",
            "stopped at",
            "stop reason",
            "converged",
            "val acc %",
            "test acc %",
        ]
        .map(String::from),
    );
    let run_rows: Vec<Vec<String>> = stored
        .runs
        .iter()
        .map(|r| {
            let mut v: Vec<String> = stored
                .sweep_keys
                .iter()
                .map(|k| r.swept.get(k).map(show).unwrap_or_default())
                .collect();
            v.extend([
                r.seed.to_string(),
                r.strategy.clone(),
                r.per_question.to_string(),
                r.rationales.to_string(),
                r.training_tokens.to_string(),
                r.best_step.to_string(),
                r.stopped_step.map_or_else(|| "–".into(), |s| s.to_string()),
                r.stop_reason.clone().unwrap_or_else(|| "–".into()),
                match r.converged {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "–".into(),
                },
                r.val_accuracy.map(pct).unwrap_or_default(),
                pct(r.accuracy),
            ]);
            v
        })
        .collect();
    let mut sum_head: Vec<String> = stored.sweep_keys.clone();
    sum_head.extend(
        [
            "seeds",
            "test acc % (mean)",
            "95 % CI",
            "val acc % (mean)",
            "rationales",
        ]
        .map(String::from),
    );
    let sum_rows: Vec<Vec<String>> = groups(stored)
        .into_iter()
        .map(|(key, runs)| {
            let acc: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
            let val: Vec<f64> = runs.iter().filter_map(|r| r.val_accuracy).collect();
            let (m, c) = mean_ci(&acc);
            let (vm, _) = mean_ci(&val);
            let ci = if c.is_finite() {
                format!("{} – {}", pct(m - c), pct(m + c))
            } else {
                "one seed: none".into()
            };
            let rat = runs.iter().map(|r| r.rationales as f64).sum::<f64>() / runs.len() as f64;
            let mut row = key;
            row.extend([
                runs.len().to_string(),
                pct(m),
                ci,
                pct(vm),
                format!("{rat:.0}"),
            ]);
            row
        })
        .collect();
    // Only a folder whose runs recorded curves has a chart of them (a stale file is not shown).
    let curves = if super::chart::curve_lines(stored).is_empty() {
        String::new()
    } else {
        inline_svg(dir, "curves.svg")
    };
    let has_selection = selection.is_some();
    let data = script_json(&selection.unwrap_or_default())?;
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", crate::templates::REPORT_HTML)
        .map_err(|e| Error::run(format!("report template: {e}")))?;
    let t = env
        .get_template("report.html")
        .map_err(|e| Error::run(format!("report template: {e}")))?;
    t.render(minijinja::context! {
        experiment => stored.experiment,
        spec => stored.spec,
        runs => stored.runs.len(),
        run_head,
        run_rows,
        sum_head,
        sum_rows,
        reading,
        svg => minijinja::Value::from_safe_string(inline_svg(dir, "accuracy.svg")),
        has_curves => !curves.is_empty(),
        curves => minijinja::Value::from_safe_string(curves),
        data => minijinja::Value::from_safe_string(data),
        has_selection,
    })
    .map_err(|e| Error::run(format!("report template: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let s = script_json(&vec!["</script><script>alert(1)</script>"]).unwrap();
        assert!(!s.contains("</"));
        let back: Vec<String> = serde_json::from_str(&s).unwrap();
        assert_eq!(back[0], "</script><script>alert(1)</script>");
    }

    #[test]
    fn learning_curves_section_only_when_runs_recorded_curves() {
        let dir = tempfile::tempdir().unwrap();
        let mut stored = Stored {
            experiment: "t".into(),
            runs: vec![crate::report::test_row("morsd", 2, 0, 0.5)],
            ..Default::default()
        };
        // An older folder: no curves, and the stop columns say nothing.
        super::super::chart::curves(dir.path(), &stored).unwrap();
        let html = render(dir.path(), &stored, "r").unwrap();
        assert!(!html.contains("id=\"curves\""));
        for h in ["stopped at", "stop reason", "converged"] {
            assert!(html.contains(&format!("<th>{h}</th>")), "{h}");
        }
        // best step, then stopped at, stop reason, converged.
        assert!(html.contains("<td>0</td><td>–</td><td>–</td><td>–</td>"));
        stored.runs[0] = crate::report::RunRow {
            train_steps: Some(8),
            stopped_step: Some(8),
            stop_reason: Some("budget".into()),
            converged: Some(false),
            best_step: 8,
            val_curve: vec![(4, 0.25), (8, 0.5)],
            loss_curve: vec![(4, 2.0), (8, 1.0)],
            ..stored.runs[0].clone()
        };
        super::super::chart::curves(dir.path(), &stored).unwrap();
        let html = render(dir.path(), &stored, "r").unwrap();
        assert!(html.contains("<section id=\"curves\">\n<h2>Learning curves</h2>"));
        assert!(html.contains("<td>budget</td><td>no</td>"));
        assert_eq!(
            html.matches("<svg").count(),
            1,
            "no accuracy chart was written"
        );
    }

    #[test]
    fn page_escapes_rationale_text_and_has_no_network_reference() {
        let dir = tempfile::tempdir().unwrap();
        let data = SelectionData {
            runs: vec![SelRun {
                label: "seed=0".into(),
                strategy: "morsd".into(),
                per_question: 1,
                seed: 0,
            }],
            questions: vec![Question {
                id: "train-0".into(),
                text: "<b>q</b>".into(),
                gold: "7".into(),
            }],
            rationales: vec![Rationale {
                id: "r0".into(),
                score_key: "abc".into(),
                q: 0,
                source: "programmatic".into(),
                extracted: Some("7".into()),
                correct: true,
                diversity: Some(0.5),
                rd: None,
                text: "</script>3 + 4 = 7".into(),
                sel: vec![0],
            }],
        };
        write_selection_json(dir.path(), &data).unwrap();
        let stored = Stored {
            experiment: "t".into(),
            spec: "<spec>".into(),
            sweep_keys: vec![],
            runs: vec![],
            ..Default::default()
        };
        let html = render(dir.path(), &stored, "a reading").unwrap();
        assert!(html.contains("&lt;spec&gt;"));
        assert_eq!(
            html.matches("</script>").count(),
            html.matches("<script").count()
        );
        for bad in ["src=\"http", "href=\"http", "@import", "url(http"] {
            assert!(!html.contains(bad), "{bad}");
        }
    }
}
