//! Parsers of recorded-rationale formats, one file per format. Each yields [`Row`]s that
//! [`crate::data::sources`] joins to a task's questions.

pub mod dsbs;
pub mod fine_tune_cot;
pub mod jsonl;
pub mod mcc_kd;
pub mod zscot_log;

use crate::error::{Error, Result};
use std::path::Path;

/// Reads `path` as text and parses it; either failure is an input error naming the file.
pub fn read_with<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Input {
        path: path.into(),
        message: e.to_string(),
    })?;
    parse(&text).map_err(|message| Error::Input {
        path: path.into(),
        message,
    })
}

/// One recorded rationale before joining.
#[derive(Debug, Clone)]
pub struct Row {
    /// Line or item number in its file (for reports).
    pub line: usize,
    /// The question text, where the format has it.
    pub question: Option<String>,
    /// The rationale as recorded (with its answer sentence where it has one).
    pub rationale: String,
    /// The reasoning without the answer part, where the format separates them.
    pub body: Option<String>,
    /// An answer given beside the rationale (generic JSONL).
    pub answer: Option<String>,
    /// A morsd example id the row names directly (generic JSONL `id`).
    pub id: Option<String>,
}
