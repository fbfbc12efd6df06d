//! Format 5: generic JSON lines for users' own rationales, many lines per question allowed:
//!
//! ```json
//! {"question": "...", "rationale": "...", "answer": "42"}
//! {"id": "train-17", "rationale": "..."}
//! ```
//!
//! A line names its question by `question` (joined on the question text) or `id` (a morsd
//! example id such as `train-17`); `answer` is optional: when given and the rationale has no
//! answer sentence, "The answer is <answer>." is appended. `answer_text` is optional too: a
//! recorded second-stage output (what followed "Therefore, the answer ... is"); when present the
//! answer is read from it, as from the `openai` teacher's answer stage, and the rationale is
//! stored as its reasoning plus "The answer is X.".

use super::Row;
use crate::error::Result;
use serde_json::Value;
use std::path::Path;

/// Rows read, and (line, reason) for each line that could not be read.
pub type Parsed = (Vec<Row>, Vec<(usize, String)>);

/// Reads a JSONL file; malformed lines are returned with their line numbers.
pub fn read(path: &Path) -> Result<Parsed> {
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
        // The same ids a custom question file accepts: a non-empty string (trimmed) or an integer.
        let id = match v.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(x)) if x.is_u64() || x.is_i64() => Some(x.to_string()),
            _ => None,
        };
        if question.is_none() && id.is_none() {
            bad.push((n, "needs `question` or `id`".into()));
            continue;
        }
        let answer = v.get("answer").map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let answer_text = match v.get("answer_text") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                bad.push((n, "`answer_text` must be a string".into()));
                continue;
            }
        };
        rows.push(Row {
            line: n,
            question,
            rationale: rationale.trim().to_string(),
            body: None,
            answer,
            answer_text,
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

    #[test]
    fn answer_text_is_read_and_checked() {
        let (rows, bad) = super::parse(
            "{\"id\": \"train-1\", \"rationale\": \"heads up\", \"answer_text\": \" Yes.\"}\n{\"id\": \"train-2\", \"rationale\": \"r\"}\n{\"id\": \"train-3\", \"rationale\": \"r\", \"answer_text\": 3}\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].answer_text.as_deref(), Some(" Yes."));
        assert_eq!(rows[1].answer_text, None);
        assert_eq!(bad, vec![(3, "`answer_text` must be a string".to_string())]);
    }
}
