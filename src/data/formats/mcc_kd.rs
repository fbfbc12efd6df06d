//! Format 1: MCC-KD multi-rationale JSON: a list of `{"instruction": question, "output":
//! [rationales] (an empty string in dev/test), "label": answer}`.

use super::Row;
use crate::error::Result;
use serde_json::Value;
use std::path::Path;

/// Reads every (question, rationale) row; a malformed item is an error naming its index.
pub fn read(path: &Path) -> Result<Vec<Row>> {
    super::read_with(path, parse)
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let items = v
        .as_array()
        .ok_or("not an MCC-KD file: expected a JSON list of {instruction, output, label}")?;
    let mut rows = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let q = it
            .get("instruction")
            .and_then(Value::as_str)
            .ok_or(format!("item {i}: no `instruction` (not an MCC-KD file?)"))?;
        let outputs: Vec<&str> = match it.get("output") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) if s.is_empty() => vec![],
            Some(Value::String(s)) => vec![s.as_str()],
            _ => return Err(format!("item {i}: no `output` list")),
        };
        for o in outputs {
            rows.push(Row {
                line: i,
                question: Some(q.trim().to_string()),
                rationale: o.trim().to_string(),
                body: None,
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
        let ok = r#"[{"instruction": "Danny found 15 caps. How many?\n", "output": ["15 + 18 = 33.", "He has 33."], "label": "33"}]"#;
        let rows = super::parse(ok).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].rationale, "He has 33.");
        assert!(
            super::parse(r#"[{"question": "x"}]"#)
                .unwrap_err()
                .contains("instruction")
        );
        assert!(super::parse("{").is_err());
    }
}
