//! `predictions.parquet`: one row per (run, test question) — the run's label, sweep values and
//! seed, the question id, the student's output, the extracted and the gold answer, and whether it
//! was correct (lm-eval's `--log_samples`). The paired statistics ([`super::paired`]) are computed
//! from it, so anyone can recompute them from a results folder alone.

use super::Stored;
use crate::error::{Error, Result};
use polars::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file name in a results folder.
pub const FILE: &str = "predictions.parquet";

/// One prediction of an eval entry's `predictions.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Prediction {
    /// Test question id.
    pub id: String,
    /// The student's decoded output.
    pub output: String,
    /// The extracted answer (none when nothing could be extracted).
    pub extracted: Option<String>,
    /// The gold answer.
    pub gold: String,
    /// Whether the extracted answer matches the gold one.
    pub correct: bool,
}

/// Per run label: question id → correct.
pub type Outcomes = BTreeMap<String, BTreeMap<String, bool>>;

/// Writes `predictions.parquet` into `dir`: `preds[i]` belongs to `stored.runs[i]`.
pub fn write(dir: &Path, stored: &Stored, preds: &[Vec<Prediction>]) -> Result<()> {
    let rows = || {
        stored
            .runs
            .iter()
            .zip(preds)
            .flat_map(|(r, ps)| ps.iter().map(move |p| (r, p)))
    };
    let mut cols = vec![Column::new(
        "run".into(),
        rows().map(|(r, _)| r.label.clone()).collect::<Vec<_>>(),
    )];
    for k in &stored.sweep_keys {
        cols.push(Column::new(
            k.as_str().into(),
            rows()
                .map(|(r, _)| r.swept.get(k).map(crate::resolve::show).unwrap_or_default())
                .collect::<Vec<_>>(),
        ));
    }
    cols.extend([
        Column::new(
            "seed".into(),
            rows().map(|(r, _)| r.seed as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "task".into(),
            rows().map(|(r, _)| r.task.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "strategy".into(),
            rows().map(|(r, _)| r.strategy.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "per_question".into(),
            rows()
                .map(|(r, _)| r.per_question as i64)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "question_id".into(),
            rows().map(|(_, p)| p.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "output".into(),
            rows().map(|(_, p)| p.output.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "extracted".into(),
            rows().map(|(_, p)| p.extracted.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "gold".into(),
            rows().map(|(_, p)| p.gold.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "correct".into(),
            rows().map(|(_, p)| p.correct).collect::<Vec<_>>(),
        ),
    ]);
    // A swept key may share a fixed column's name (`seed` cannot be swept; none do today).
    let mut seen = std::collections::HashSet::new();
    cols.retain(|c| seen.insert(c.name().to_string()));
    let mut df = DataFrame::new_infer_height(cols)
        .map_err(|e| Error::run(format!("predictions table: {e}")))?;
    super::tables::write_parquet(&dir.join(FILE), &mut df)
}

/// Reads the per-question outcomes of `dir/predictions.parquet`; `None` when the folder has
/// none (written before the file existed).
pub fn read(dir: &Path) -> Result<Option<Outcomes>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |e: PolarsError| Error::Input {
        path: path.clone(),
        message: e.to_string(),
    };
    let f = std::fs::File::open(&path).map_err(|e| Error::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let df = ParquetReader::new(f).finish().map_err(bad)?;
    let run = df
        .column("run")
        .and_then(|c| c.str().cloned())
        .map_err(bad)?;
    let q = df
        .column("question_id")
        .and_then(|c| c.str().cloned())
        .map_err(bad)?;
    let ok = df
        .column("correct")
        .and_then(|c| c.bool().cloned())
        .map_err(bad)?;
    let mut out: Outcomes = BTreeMap::new();
    for ((r, q), c) in run.iter().zip(q.iter()).zip(ok.iter()) {
        match (r, q, c) {
            (Some(r), Some(q), Some(c)) => {
                out.entry(r.to_string())
                    .or_default()
                    .insert(q.to_string(), c);
            }
            _ => {
                return Err(Error::Input {
                    path: path.clone(),
                    message: "a row with an empty run, question_id or correct".into(),
                });
            }
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = crate::report::test_row("morsd", 6, 0, 0.5);
        a.label = "select.strategy=morsd seed=0".into();
        let mut b = crate::report::test_row("all", 6, 0, 1.0);
        b.label = "select.strategy=all seed=0".into();
        let stored = Stored {
            experiment: "e".into(),
            spec: "s".into(),
            sweep_keys: vec!["select.strategy".into()],
            runs: vec![a, b],
            ..Default::default()
        };
        let p = |id: &str, ok: bool| Prediction {
            id: id.into(),
            output: format!("The answer is {id}."),
            extracted: ok.then(|| id.to_string()),
            gold: id.into(),
            correct: ok,
        };
        write(
            dir.path(),
            &stored,
            &[
                vec![p("q1", true), p("q2", false)],
                vec![p("q1", true), p("q2", true)],
            ],
        )
        .unwrap();
        let o = read(dir.path()).unwrap().unwrap();
        assert_eq!(o.len(), 2);
        assert!(!o["select.strategy=morsd seed=0"]["q2"]);
        assert!(o["select.strategy=all seed=0"]["q2"]);
        assert!(read(&dir.path().join("none")).unwrap().is_none());
    }
}
