//! Format 5: generic JSON lines for users' own rationales, many lines per question allowed:
//!
//! ```json
//! {"question": "...", "rationale": "...", "answer": "42"}
//! {"id": "train-17", "rationale": "..."}
//! ```
//!
//! A line names its question by `question` (joined on the question text) or `id` (a morsd
//! example id such as `train-17`); `answer` is optional: when given and the rationale has no
//! answer sentence, "The answer is <answer>." is appended.

use super::Row;
use crate::error::Result;
use serde_json::Value;
use std::path::Path;

/// Reads a JSONL file; malformed lines are returned with their line numbers.
pub fn read(path: &Path) -> Result<(Vec<Row>, Vec<(usize, String)>)> {
    super::read_with(path, |text| Ok(parse(text)))
}

/// Parses JSONL text into rows and (line, reason) for lines it could not read.
pub fn parse(text: &str) -> (Vec<Row>, Vec<(usize, String)>) {
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                bad.push((n, format!("not JSON: {e}")));
                continue;
            }
        };
        let Some(rationale) = v.get("rationale").and_then(Value::as_str) else {
            bad.push((n, "no string field `rationale`".into()));
            continue;
        };
        let question = v
            .get("question")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string());
        let id = v.get("id").and_then(Value::as_str).map(String::from);
        if question.is_none() && id.is_none() {
            bad.push((n, "needs `question` or `id`".into()));
            continue;
        }
        let answer = v.get("answer").map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        rows.push(Row {
            line: n,
            question,
            rationale: rationale.trim().to_string(),
            body: None,
            answer,
            id,
        });
    }
    (rows, bad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_and_errors() {
        let (rows, bad) = super::parse(
            "{\"question\": \"q1\", \"rationale\": \"r\", \"answer\": 3}\n\n{\"id\": \"train-2\", \"rationale\": \"s\"}\n{oops\n{\"question\": \"q\"}\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].answer.as_deref(), Some("3"));
        assert_eq!(rows[1].id.as_deref(), Some("train-2"));
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5]);
    }
}
