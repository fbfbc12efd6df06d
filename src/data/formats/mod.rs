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
    let text = read_text(path).map_err(|message| Error::Input {
        path: path.into(),
        message,
    })?;
    parse(&text).map_err(|message| Error::Input {
        path: path.into(),
        message,
    })
}

/// Reads a UTF-8 text file; the error (without the path) says where the first bad byte is.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| utf8_message(e.as_bytes(), e.utf8_error()))
}

/// "line L, column C: not valid UTF-8 (byte 0xNN at offset O)" for a decoding error of `bytes`.
pub fn utf8_message(bytes: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to().min(bytes.len());
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = std::str::from_utf8(&before[start..]).map_or(0, |s| s.chars().count()) + 1;
    let byte = bytes
        .get(at)
        .map(|b| format!("byte 0x{b:02x}"))
        .unwrap_or_else(|| "end of file".into());
    format!("line {line}, column {column}: not valid UTF-8 ({byte} at offset {at})")
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
    /// A recorded second-stage output ("Therefore, the answer ... is" and what followed; generic
    /// JSONL `answer_text`): the answer is read from it.
    pub answer_text: Option<String>,
    /// A morsd example id the row names directly (generic JSONL `id`).
    pub id: Option<String>,
}
