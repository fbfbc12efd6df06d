//! The durable per-request cache of API teachers: an append-only JSON-lines log under the
//! cache root (`requests/<model>.jsonl`). Every finished completion is appended (under an
//! exclusive file lock) and synced as it arrives, so a run killed at any moment and restarted
//! sends no request whose answer was already received. A torn last line (a kill mid-write, even
//! one ending inside a multi-byte character) is ignored on reading; every other line is kept.
//! A rationale (stage 1) and the answer-extracting request about it (stage 2) are separate
//! lines with separate keys.
//!
//! `morsd cache gc` removes the logs no spec's `openai` teacher reaches ([`log_path`] names a
//! model's file, for the teacher and for gc alike), under the same lock and never one that
//! another process holds ([`remove_unless_locked`]); an append that waited on such a removal
//! writes to the log afresh, not to the removed file.

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
    /// 1: a rationale; 2: the answer-extracting second request about one (Kojima et al.'s
    /// "Therefore, the answer ... is"). Lines written before stages existed are stage 1.
    #[serde(default = "stage_one", skip_serializing_if = "is_stage_one")]
    pub stage: u8,
}

fn stage_one() -> u8 {
    1
}

fn is_stage_one(s: &u8) -> bool {
    *s == 1
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
        let path = log_path(dir, model);
        let mut done = HashMap::new();
        // Line by line as bytes: a torn last line may end inside a multi-byte character, and
        // that must cost that line only, not the whole log. A log that cannot be read is an
        // error, not an empty log (that would re-send every request).
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).at(&path),
        };
        for line in bytes.split(|&b| b == b'\n') {
            if let Ok(c) = serde_json::from_slice::<Completion>(line) {
                done.insert(c.key.clone(), c);
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
        // `morsd cache gc` removes a log under this lock: if it did so while we waited for
        // it, our handle is to the removed file, so open the log afresh (at most a few times).
        for _ in 0..8 {
            if is_current(&f, &self.path) {
                break;
            }
            drop(f);
            f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .at(&self.path)?;
            f.lock_exclusive().at(&self.path)?;
        }
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

/// The log file of a model's requests under `dir`: `<model>.jsonl`, every character but ASCII
/// letters, digits, `-` and `.` replaced by `_`. The one place the name is made: the teacher
/// opens this file and `morsd cache gc` asks it which logs a spec reaches.
pub fn log_path(dir: &Path, model: &str) -> PathBuf {
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
    dir.join(format!("{slug}.jsonl"))
}

/// Whether an open handle still is the file at `path` (not one removed or replaced since).
fn is_current(f: &std::fs::File, path: &Path) -> bool {
    let (Ok(open), Ok(now)) = (f.metadata(), std::fs::metadata(path)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (open.dev(), open.ino()) == (now.dev(), now.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (open, now);
        true
    }
}

/// Removes a log unless another process holds its lock (a teacher appending to it): takes the
/// lock without waiting, removes the file under it and says whether it did. A log that is
/// already gone counts as removed.
pub fn remove_unless_locked(path: &Path) -> Result<bool> {
    use fs4::fs_std::FileExt;
    let f = match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).at(path),
    };
    match f.try_lock_exclusive() {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
        Err(e) => return Err(e).at(path),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).at(path),
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
            stage: 1,
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

    #[test]
    fn a_line_torn_inside_a_character_costs_only_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = RequestLog::open(dir.path(), "m").unwrap();
        let mut a = c("a");
        a.text = "Schritt 1: 2 × 3 = 6. Die Antwort ist 6 ✓".into();
        log.append(&a).unwrap();
        // A kill mid-write of a completion with non-ASCII text: the file ends inside "✓".
        let mut torn = serde_json::to_vec(&Completion {
            key: "b".into(),
            ..a.clone()
        })
        .unwrap();
        let check = torn.windows(3).position(|w| w == "✓".as_bytes()).unwrap();
        torn.truncate(check + 1);
        assert!(std::str::from_utf8(&torn).is_err());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap();
        f.write_all(&torn).unwrap();
        drop(f);
        let log = RequestLog::open(dir.path(), "m").unwrap();
        assert_eq!(log.get("a").unwrap().text, a.text);
        assert!(log.get("b").is_none());
        log.append(&c("c")).unwrap();
        let log = RequestLog::open(dir.path(), "m").unwrap();
        assert!(log.get("a").is_some() && log.get("c").is_some());
    }

    #[test]
    fn a_locked_log_is_not_removed() {
        use fs4::fs_std::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let log = RequestLog::open(dir.path(), "m").unwrap();
        log.append(&c("a")).unwrap();
        // Another handle (as another process's) holds the lock: the log stays.
        let held = std::fs::File::open(log.path()).unwrap();
        held.lock_exclusive().unwrap();
        assert!(!remove_unless_locked(log.path()).unwrap());
        assert!(log.path().exists());
        drop(held);
        assert!(remove_unless_locked(log.path()).unwrap());
        assert!(!log.path().exists());
        // Already gone counts as removed; the next append starts the log afresh.
        assert!(remove_unless_locked(log.path()).unwrap());
        log.append(&c("b")).unwrap();
        let log = RequestLog::open(dir.path(), "m").unwrap();
        assert!(log.get("a").is_none() && log.get("b").is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_handle_to_a_removed_or_replaced_log_is_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path(), "m/x");
        assert_eq!(path, dir.path().join("m_x.jsonl"));
        std::fs::write(&path, b"").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        assert!(is_current(&f, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!is_current(&f, &path));
        std::fs::write(&path, b"").unwrap();
        assert!(!is_current(&f, &path));
    }

    #[test]
    fn an_unreadable_log_is_an_error_not_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the log file should be.
        std::fs::create_dir_all(dir.path().join("m.jsonl")).unwrap();
        assert!(RequestLog::open(dir.path(), "m").is_err());
    }

    #[test]
    fn stages_are_kept_apart_and_old_lines_are_stage_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = RequestLog::open(dir.path(), "m").unwrap();
        let mut two = c("b");
        two.stage = 2;
        log.append(&c("a")).unwrap();
        log.append(&two).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        // Stage one is written as before (no `stage` field), stage two says so.
        assert!(!text.lines().next().unwrap().contains("\"stage\""));
        assert!(text.lines().nth(1).unwrap().contains("\"stage\":2"));
        let log = RequestLog::open(dir.path(), "m").unwrap();
        assert_eq!(
            (log.get("a").unwrap().stage, log.get("b").unwrap().stage),
            (1, 2)
        );
    }
}
