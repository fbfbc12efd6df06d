//! polars tables: `runs.parquet` / `runs.csv` (one row per run) and `selection.parquet`
//! (one row per rationale, its scores, and one boolean column per run: selected or not).

use super::Stored;
use crate::error::{Error, IoContext, Result};
use crate::select::Scored;
use polars::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;

fn perr(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::run(format!("{}: {e}", path.display()))
}

/// A column from JSON values: integers, floats, booleans or (otherwise) strings.
fn json_column(name: &str, values: &[Value]) -> Column {
    let name = PlSmallStr::from(name);
    if values.iter().all(|v| v.is_i64()) {
        Column::new(name, values.iter().map(|v| v.as_i64()).collect::<Vec<_>>())
    } else if values.iter().all(|v| v.is_number()) {
        Column::new(name, values.iter().map(|v| v.as_f64()).collect::<Vec<_>>())
    } else if values.iter().all(|v| v.is_boolean()) {
        Column::new(name, values.iter().map(|v| v.as_bool()).collect::<Vec<_>>())
    } else {
        Column::new(
            name,
            values.iter().map(crate::resolve::show).collect::<Vec<_>>(),
        )
    }
}

/// The runs table.
pub fn runs_frame(stored: &Stored) -> Result<DataFrame> {
    let r = &stored.runs;
    let mut cols: Vec<Column> = stored
        .sweep_keys
        .iter()
        .map(|k| {
            json_column(
                k,
                &r.iter()
                    .map(|x| x.swept.get(k).cloned().unwrap_or(Value::Null))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    cols.push(Column::new(
        "seed".into(),
        r.iter().map(|x| x.seed as i64).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "task".into(),
        r.iter().map(|x| x.task.clone()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "strategy".into(),
        r.iter().map(|x| x.strategy.clone()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "per_question".into(),
        r.iter().map(|x| x.per_question as i64).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "rationales".into(),
        r.iter().map(|x| x.rationales as i64).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "training_tokens".into(),
        r.iter()
            .map(|x| x.training_tokens as i64)
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "train_steps".into(),
        r.iter()
            .map(|x| x.train_steps.map(|v| v as i64))
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "epochs".into(),
        r.iter()
            .map(|x| x.epochs.map(|v| v as i64))
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "accuracy".into(),
        r.iter().map(|x| x.accuracy).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "val_accuracy".into(),
        r.iter().map(|x| x.val_accuracy).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "best_step".into(),
        r.iter().map(|x| x.best_step as i64).collect::<Vec<_>>(),
    ));
    // Where and why training stopped, and whether the run had finished learning (null in
    // folders written before these were recorded).
    cols.push(Column::new(
        "stopped_step".into(),
        r.iter()
            .map(|x| x.stopped_step.map(|v| v as i64))
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "stop_reason".into(),
        r.iter().map(|x| x.stop_reason.clone()).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "converged".into(),
        r.iter().map(|x| x.converged).collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "val_questions".into(),
        r.iter()
            .map(|x| x.val_questions.map(|v| v as i64))
            .collect::<Vec<_>>(),
    ));
    for stage in ["generate", "score", "select", "train", "eval"] {
        cols.push(Column::new(
            format!("wall_{stage}_s").into(),
            r.iter()
                .map(|x| x.wall_s.get(stage).copied())
                .collect::<Vec<_>>(),
        ));
    }
    cols.push(Column::new(
        "executed".into(),
        r.iter().map(|x| x.executed.join(",")).collect::<Vec<_>>(),
    ));
    let mut cols = cols;
    // Swept keys may repeat a fixed column's name (none do today); keep names unique.
    let mut seen = HashSet::new();
    cols.retain(|c| seen.insert(c.name().to_string()));
    DataFrame::new_infer_height(cols).map_err(|e| Error::run(format!("runs table: {e}")))
}

/// Writes `runs.parquet` and `runs.csv`.
pub fn write_runs(dir: &Path, stored: &Stored) -> Result<()> {
    let mut df = runs_frame(stored)?;
    write_parquet(&dir.join("runs.parquet"), &mut df)?;
    let path = dir.join("runs.csv");
    let tmp = super::tmp_path(&path);
    let f = std::fs::File::create(&tmp).at(&tmp)?;
    CsvWriter::new(f).finish(&mut df).map_err(perr(&path))?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// Writes a DataFrame as parquet through a temp file.
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = super::tmp_path(path);
    let f = std::fs::File::create(&tmp).at(&tmp)?;
    ParquetWriter::new(f).finish(df).map_err(perr(path))?;
    std::fs::rename(&tmp, path).at(path)
}

/// Writes `selection.parquet`: every scored rationale and, per run, whether it was selected.
pub fn write_selection(
    dir: &Path,
    scored: &[(String, Scored)],
    runs: &[(String, String, HashSet<String>)],
) -> Result<()> {
    let mut cols = vec![
        Column::new(
            "score_key".into(),
            scored.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "rationale_id".into(),
            scored.iter().map(|(_, s)| s.id.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "question_id".into(),
            scored
                .iter()
                .map(|(_, s)| s.question_id.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "source".into(),
            scored
                .iter()
                .map(|(_, s)| s.source.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "extracted".into(),
            scored
                .iter()
                .map(|(_, s)| s.extracted.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "correct".into(),
            scored.iter().map(|(_, s)| s.correct).collect::<Vec<_>>(),
        ),
        Column::new(
            "diversity".into(),
            scored.iter().map(|(_, s)| s.diversity).collect::<Vec<_>>(),
        ),
        Column::new(
            "nll_with".into(),
            scored.iter().map(|(_, s)| s.nll_with).collect::<Vec<_>>(),
        ),
        Column::new(
            "nll_without".into(),
            scored
                .iter()
                .map(|(_, s)| s.nll_without)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "rd".into(),
            scored.iter().map(|(_, s)| s.rd).collect::<Vec<_>>(),
        ),
        Column::new(
            "text".into(),
            scored
                .iter()
                .map(|(_, s)| s.text.clone())
                .collect::<Vec<_>>(),
        ),
    ];
    for (label, score_key, ids) in runs {
        cols.push(Column::new(
            format!("selected: {label}").into(),
            scored
                .iter()
                .map(|(k, s)| k == score_key && ids.contains(&s.id))
                .collect::<Vec<_>>(),
        ));
    }
    let mut df = DataFrame::new_infer_height(cols)
        .map_err(|e| Error::run(format!("selection table: {e}")))?;
    write_parquet(&dir.join("selection.parquet"), &mut df)
}
