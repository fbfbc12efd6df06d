//! Results: one row per run (`runs.json`, the stored metrics and which invocation built each
//! stage entry ([`provenance`]), and its `runs.parquet` / `runs.csv` tables), `stages.json`
//! (each run's key documents, for `morsd report --check`: [`check`]), the per-rationale
//! `selection.parquet`, `summary.md` (mean ± 95 % CI over seeds), the accuracy, tokens and
//! learning-curve charts ([`chart`]) and the self-contained `report.html` ([`html`]).

pub mod chart;
pub mod check;
pub mod html;
pub mod paired;
pub mod paper;
pub mod predictions;
pub mod provenance;
pub mod stats;
pub mod tables;

use crate::error::{Error, IoContext, Result};
use crate::invocation::Invocation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One run's results, as stored in `runs.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRow {
    /// `key=value ... seed=N`.
    pub label: String,
    /// Swept key → value.
    pub swept: BTreeMap<String, Value>,
    /// Seed.
    pub seed: u64,
    /// Task.
    pub task: String,
    /// Strategy.
    pub strategy: String,
    /// `select.per_question`.
    pub per_question: usize,
    /// Rationales trained on.
    pub rationales: u64,
    /// Training tokens processed.
    pub training_tokens: u64,
    /// Optimiser steps the train stage ran (absent in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_steps: Option<u64>,
    /// `train.epochs` when training was budgeted in epochs (absent under `train.steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Test accuracy.
    pub accuracy: f64,
    /// Validation accuracy of the chosen checkpoint.
    pub val_accuracy: Option<f64>,
    /// Step of the chosen checkpoint.
    pub best_step: u64,
    /// The last step trained (`train_steps` unless early stopping ended the run sooner; absent
    /// in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_step: Option<u64>,
    /// Why training stopped: `patience` or `budget` (absent in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// `train.patience` of the run, if it stopped early on validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<u64>,
    /// Whether the run had finished learning
    /// ([`crate::student::train::converged`]: enough validations after its first best; absent
    /// in older folders, see [`RunRow::still_improving`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged: Option<bool>,
    /// Validation questions the checkpoint was chosen on (absent in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_questions: Option<u64>,
    /// (step, validation accuracy) at every validation (empty in older folders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_curve: Vec<(u64, f64)>,
    /// (step, mean training loss since the previous validation) (empty in older folders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<(u64, f64)>,
    /// Stage name → seconds it took when it ran.
    pub wall_s: BTreeMap<String, f64>,
    /// Stages executed by the invocation that wrote this row (the rest came from the cache).
    pub executed: Vec<String>,
    /// Stage name → key (12 hex).
    pub keys: BTreeMap<String, String>,
    /// API teacher usage of the run's generate stage: (prompt, completion) tokens.
    #[serde(default)]
    pub teacher_tokens: Option<(u64, u64)>,
    /// Test questions the accuracy was measured on (eval's `total`; absent in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_questions: Option<u64>,
    /// Per rationale file of the run's generate stage: rows joined, held out, unmatched and
    /// unparsed, with the first reasons (empty for built-in teachers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Stage name → id of the invocation that built the entry this run used (one of
    /// [`Stored::invocations`]); a stage is absent when its entry has no record (built before
    /// invocations were recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub built_by: BTreeMap<String, String>,
    /// The score entry's within-question Spearman correlations, `"a~b"` → (ρ averaged over
    /// questions, questions), when it measured the response scores (IFD, GRAPE, RSR…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub score_spearman: BTreeMap<String, (f64, u64)>,
    /// The generate entry's `teacher.budget` record (kind, rounds, samples asked and correct,
    /// per difficulty bucket questions, samples and completion tokens), when it had a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_budget: Option<Value>,
}

impl RunRow {
    /// Whether the run was still improving when training ended: the negation of `converged`;
    /// in an older folder without it, `true` when the best checkpoint was the last step (the
    /// plainest case of a run cut off while improving), else unknown.
    pub fn still_improving(&self) -> Option<bool> {
        match (self.converged, self.train_steps) {
            (Some(c), _) => Some(!c),
            (None, Some(steps)) if steps > 0 && self.best_step >= steps => Some(true),
            _ => None,
        }
    }

    /// Training tokens at `step`, at the run's mean tokens per step (the trainer counts tokens
    /// in total, not per validation).
    pub fn tokens_at(&self, step: u64) -> f64 {
        let steps = self.stopped_step.or(self.train_steps).unwrap_or(0).max(1);
        self.training_tokens as f64 * step as f64 / steps as f64
    }
}

/// What `runs.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stored {
    /// Experiment name.
    pub experiment: String,
    /// The spec file it came from.
    pub spec: String,
    /// Swept keys, in order.
    pub sweep_keys: Vec<String>,
    /// Every run.
    pub runs: Vec<RunRow>,
    /// Every invocation that built an entry the runs use, and the one that wrote this folder,
    /// oldest first (absent in older folders).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invocations: Vec<Invocation>,
    /// Id of the invocation that wrote this folder (absent in older folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
}

/// Writes `runs.json`, `predictions.parquet` (`preds[i]`: the test predictions of
/// `stored.runs[i]`) and everything derived from them. Returns the folder's reading.
pub fn write(
    dir: &Path,
    stored: &Stored,
    preds: &[Vec<predictions::Prediction>],
) -> Result<String> {
    std::fs::create_dir_all(dir).at(dir)?;
    predictions::write(dir, stored, preds)?;
    let json = serde_json::to_vec_pretty(stored).map_err(Error::run)?;
    atomic_write(&dir.join("runs.json"), &json)?;
    rebuild(dir)
}

/// Rebuilds the tables, summary and charts of a results folder from its `runs.json` and, when
/// there is one, its `predictions.parquet`. Returns the folder's reading.
pub fn rebuild(dir: &Path) -> Result<String> {
    let stored = read_stored(dir)?;
    let outcomes = predictions::read(dir)?;
    tables::write_runs(dir, &stored)?;
    let reading = stats::reading(&stored, outcomes.as_ref());
    let mut summary = stats::summary_md(&stored, outcomes.as_ref());
    summary.push_str(&format!(
        "\n**What these numbers can and cannot show.** {reading}\n"
    ));
    atomic_write(&dir.join("summary.md"), summary.as_bytes())?;
    chart::accuracy(dir, &stored)?;
    chart::tokens(dir, &stored)?;
    chart::curves(dir, &stored)?;
    html::write(dir, &stored, &reading)?;
    Ok(reading)
}

/// Reads `DIR/runs.json` (a missing or unreadable one is an input error naming the file).
pub fn read_stored(dir: &Path) -> Result<Stored> {
    let path = dir.join("runs.json");
    let bytes = std::fs::read(&path).map_err(|e| Error::Input {
        path: path.clone(),
        message: format!("no stored metrics: {e}"),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: path.clone(),
        message: e.to_string(),
    })
}

/// Reads a JSON file of a results folder: `None` when it is absent, an input error naming the
/// file when it cannot be read or parsed.
pub fn read_optional_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Input {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Input {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Writes a file through a temp file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// A temp name beside `path`, unique per process and call (concurrent writers never share one).
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the extension last: plotters picks the image format from it.
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.tmp.{ext}", std::process::id()))
}

/// A run row for unit tests: `strategy` at k = `per_question`, seed `seed`, test accuracy
/// `accuracy`; everything else minimal.
#[cfg(test)]
pub(crate) fn test_row(strategy: &str, per_question: usize, seed: u64, accuracy: f64) -> RunRow {
    RunRow {
        label: format!("{strategy} {per_question} {seed}"),
        swept: Default::default(),
        seed,
        task: "arithmetic".into(),
        strategy: strategy.to_string(),
        per_question,
        rationales: 1,
        training_tokens: 1,
        train_steps: None,
        epochs: None,
        accuracy,
        val_accuracy: None,
        best_step: 0,
        stopped_step: None,
        stop_reason: None,
        patience: None,
        converged: None,
        val_questions: None,
        val_curve: vec![],
        loss_curve: vec![],
        wall_s: Default::default(),
        executed: vec![],
        keys: Default::default(),
        teacher_tokens: None,
        test_questions: None,
        sources: vec![],
        built_by: Default::default(),
        score_spearman: Default::default(),
        teacher_budget: None,
    }
}
