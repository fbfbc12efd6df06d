//! `report.html`: one self-contained page (inline CSS, JS and SVG; no network request) with the
//! run table, the summary with CIs, the accuracy chart and a rationale browser. The browser's
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

/// The accuracy chart's SVG without an XML declaration, for inlining.
fn inline_svg(dir: &Path) -> String {
    let s = std::fs::read_to_string(dir.join("accuracy.svg")).unwrap_or_default();
    match s.find("<svg") {
        Some(i) => s[i..].to_string(),
        None => String::new(),
    }
}

/// Renders `report.html` into `dir` (after the tables and `accuracy.svg` are written).
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
        svg => minijinja::Value::from_safe_string(inline_svg(dir)),
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
