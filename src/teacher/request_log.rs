//! The durable per-request cache of API teachers: an append-only JSON-lines log under the
//! cache root (`requests/<model>.jsonl`). Every finished completion is appended (under an
//! exclusive file lock) and synced as it arrives, so a run killed at any moment and restarted
//! sends no request whose answer was already received. A torn last line (a kill mid-write) is
//! ignored on reading.

use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One finished completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    /// Request key: BLAKE3 over model, rendered prompt, sampling parameters and sample index.
    pub key: String,
    /// The question it answers.
    pub question_id: String,
    /// Sample index (0-based) for that question.
    pub sample: usize,
    /// The seed sent.
    pub seed: u64,
    /// The request's sampling parameters (no URL, no key).
    pub params: serde_json::Value,
    /// The completion text.
    pub text: String,
    /// The server's finish reason.
    pub finish_reason: Option<String>,
    /// Prompt tokens (usage).
    pub prompt_tokens: u64,
    /// Completion tokens (usage).
    pub completion_tokens: u64,
}

/// An open request log.
pub struct RequestLog {
    path: PathBuf,
    done: Mutex<HashMap<String, Completion>>,
}

impl RequestLog {
    /// Opens (creating) the log of a model under `dir`.
    pub fn open(dir: &Path, model: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let slug: String = model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{slug}.jsonl"));
        let mut done = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Ok(c) = serde_json::from_str::<Completion>(line) {
                    done.insert(c.key.clone(), c);
                }
            }
        }
        Ok(RequestLog {
            path,
            done: Mutex::new(done),
        })
    }

    /// The completion of a request key, if already received.
    pub fn get(&self, key: &str) -> Option<Completion> {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Appends a finished completion durably.
    pub fn append(&self, c: &Completion) -> Result<()> {
        use fs4::fs_std::FileExt;
        let mut line = serde_json::to_vec(c).map_err(Error::run)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        f.lock_exclusive().at(&self.path)?;
        // A torn line left by a killed writer would glue onto ours: start on a fresh line.
        let len = f.metadata().at(&self.path)?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut r = std::fs::File::open(&self.path).at(&self.path)?;
            r.seek(SeekFrom::Start(len - 1)).at(&self.path)?;
            let mut last = [0u8];
            r.read_exact(&mut last).at(&self.path)?;
            if last[0] != b'\n' {
                f.write_all(b"\n").at(&self.path)?;
            }
        }
        f.write_all(&line).at(&self.path)?;
        f.sync_data().at(&self.path)?;
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.key.clone(), c.clone());
        Ok(())
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: &str) -> Completion {
        Completion {
            key: key.into(),
            question_id: "q".into(),
            sample: 0,
            seed: 1,
            params: serde_json::json!({}),
            text: "t".into(),
            finish_reason: None,
            prompt_tokens: 1,
            completion_tokens: 2,
        }
    }

    #[test]
    fn survives_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = RequestLog::open(dir.path(), "m/x").unwrap();
        log.append(&c("a")).unwrap();
        // A kill mid-write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap();
        f.write_all(b"{\"key\": \"b\", \"questi").unwrap();
        drop(f);
        let log = RequestLog::open(dir.path(), "m/x").unwrap();
        assert!(log.get("a").is_some() && log.get("b").is_none());
        log.append(&c("c")).unwrap();
        let log = RequestLog::open(dir.path(), "m/x").unwrap();
        assert!(log.get("a").is_some() && log.get("c").is_some());
    }
}
