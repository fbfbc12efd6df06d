//! Format 3: distilling-step-by-step chunk lists: `llm/train_CoT_<n>.json` files, each a JSON
//! list of strings, concatenated in `n` order, one chunk per training item. A chunk runs on
//! into the model's next few-shot example: cut it at the next `\n\nQ:`. The answer follows
//! `The answer is`.

use super::Row;
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The chunk files of a split (`train` or `test`) in `n` order.
pub fn files(dir: &Path, split: &str) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Input {
        path: dir.into(),
        message: e.to_string(),
    })?;
    let prefix = format!("{split}_CoT_");
    let mut v: Vec<(usize, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    Ok(v.into_iter().map(|(_, p)| p).collect())
}

/// Cuts a chunk at the model's next question.
pub fn cut(chunk: &str) -> &str {
    chunk.split("\n\nQ:").next().unwrap_or(chunk).trim()
}

/// Reads the train chunks in order (one per training item of the folder's inputs).
pub fn read(dir: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let files = files(dir, "train")?;
    if files.is_empty() {
        return Err(Error::Input {
            path: dir.into(),
            message: "no train_CoT_<n>.json files".into(),
        });
    }
    for f in files {
        let chunks = super::read_with(&f, parse)?;
        for (i, c) in chunks.into_iter().enumerate() {
            rows.push(Row {
                line: i,
                question: None,
                rationale: c,
                body: None,
                answer: None,
                answer_text: None,
                id: None,
            });
        }
    }
    Ok(rows)
}

/// Parses one chunk file's text into cut rationales.
pub fn parse(text: &str) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .as_array()
        .ok_or("not a chunk list: expected a JSON list of strings")?;
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_str()
                .map(|s| cut(s).to_string())
                .ok_or(format!("item {i}: not a string"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn real_excerpt_and_malformed() {
        let ok = r#"["Luke scored 84 points after 2 rounds. 84 / 2 = 42. The answer is (84 / 2).\n\nQ: There are 120 students. 1/3 of them are boys.\nA: There are 120 students."]"#;
        let v = super::parse(ok).unwrap();
        assert_eq!(
            v[0],
            "Luke scored 84 points after 2 rounds. 84 / 2 = 42. The answer is (84 / 2)."
        );
        assert_eq!(
            crate::answer::extract(crate::answer::AnswerType::Number, &v[0]).as_deref(),
            Some("42")
        );
        assert!(super::parse("[1]").unwrap_err().contains("not a string"));
        assert!(super::parse(r#"{"a": 1}"#).is_err());
    }
}
