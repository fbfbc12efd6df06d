//! Format 2: Fine-tune-CoT completion JSON: `{"metadata": {...}, "data": {"<index>": [{question,
//! answer, reasoning_completion, completion, ...}]}}`. The rationale is the reasoning completion
//! followed by the answer-stage prompt and completion ("Therefore, the answer is" + completion).

use super::Row;
use crate::error::Result;
use serde_json::Value;
use std::path::Path;

/// Reads every row.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    super::read_with(path, parse)
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let data = v
        .get("data")
        .and_then(Value::as_object)
        .ok_or("not a Fine-tune-CoT completion file: no `data` object")?;
    let mut keys: Vec<(usize, &String)> = data
        .keys()
        .map(|k| (k.parse().unwrap_or(usize::MAX), k))
        .collect();
    keys.sort();
    let mut rows = Vec::new();
    for (idx, k) in keys {
        let list = data[k].as_array().ok_or(format!("data[{k}]: not a list"))?;
        for (j, c) in list.iter().enumerate() {
            let get = |f: &str| {
                c.get(f)
                    .and_then(Value::as_str)
                    .ok_or(format!("data[{k}][{j}]: no `{f}`"))
            };
            let body = get("reasoning_completion")?.trim().to_string();
            let completion = get("completion")?;
            rows.push(Row {
                line: idx,
                question: Some(get("question")?.trim().to_string()),
                rationale: format!("{body}\nTherefore, the answer is{completion}"),
                body: Some(body),
                answer: None,
                answer_text: None,
                id: None,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn real_excerpt_and_malformed() {
        let ok = r#"{"metadata": {}, "data": {"0": [{"sample_index": 0, "question": "Each pack costs 76 dollars. How much?", "answer": "51.0", "reasoning_completion": " \n\n$76 - $25 = \n\n$51", "completion": " $51."}]}}"#;
        let rows = super::parse(ok).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].rationale.ends_with("Therefore, the answer is $51."));
        assert_eq!(
            crate::answer::extract(crate::answer::AnswerType::Number, &rows[0].rationale)
                .as_deref(),
            Some("51")
        );
        assert!(
            super::parse(r#"{"data": {"0": [{"question": "q"}]}}"#)
                .unwrap_err()
                .contains("reasoning_completion")
        );
        assert!(super::parse(r#"[1, 2]"#).unwrap_err().contains("no `data`"));
    }
}
