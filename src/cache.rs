//! The content-addressed stage cache.
//!
//! # Design
//!
//! Every stage instance (one stage of one run) has a **key**: a BLAKE3 hash over a canonical
//! JSON document. Two instances with the same key compute the same thing, so a sweep over
//! `select.*` shares its `generate` and `score` entries, and a second `morsd run` of the same
//! spec executes nothing.
//!
//! | goes into the key                       | why                                                        |
//! |-----------------------------------------|------------------------------------------------------------|
//! | stage name + stage version              | a code change that alters a stage's output bumps its version |
//! | the canonical spec subset the stage reads (e.g. `select.*` for select; `student.*`, `train.*` for train) | exactly the settings that change its output; serde_json sorts object keys, so TOML order does not matter |
//! | generate with the `openai` teacher: the texts of the templates its requests are rendered from — `prompt_template`; with the answer stage on, `answer_stage` (the trigger template and the second request's `max_tokens`); with `teacher.hint`, `hint_template`. With the `file` teacher and `teacher.jsonl` files, `jsonl_answer_text = true` | a new template text is a new request set; whether the answer stage runs (`auto` on a zero-shot prompt, or `always`) is what it does, not how the mode is spelled; JSONL rows' `answer_text` is read since that marker exists |
//! | score with a scratch student warming up (`rd_model = "warmup"`, the default, with `score.warmup_steps` > 0 and no `score.rd_weights`): `warmup_train` = the `train.batch_size`, `train.lr`, `train.warmup_steps` (capped at half the warm-up), `train.weight_decay` and `train.group_by_length` the warm-up trains with | the warm-up student reads them; a transferred or pretrained RD model does not, so there they stay out (with `score.rd_weights` no warm-up runs) |
//! | train with a LoRA student (a pretrained `kind`, `lora_rank` > 0): `lora_entry = "adapters"` | such an entry holds the adapters alone (PEFT layout), initialised from the run seed, since that marker exists (before: the merged model, from unseeded adapters); scratch and full fine-tuning entries keep their keys |
//! | the keys of its upstream entries        | a changed upstream changes everything downstream            |
//! | generate of a BIG-bench multiple-choice task (Date, shuffled objects): `data.bigbench_option_order = "file"` | its option letters follow the file's order since then (before: sorted keys); a loader version for those tasks alone |
//! | content hashes of input files: a real task's data files, a custom task's question files (`data.questions`, `validation_questions`, `test_questions`, keyed by role) and `teacher.jsonl` files (keyed by their position in the list and file name), a pretrained student's checkpoint files (`student.weights`, `score.rd_weights`; none for the synthetic default) | the same path with new content is new input; the same content under another path or model name is the same input |
//! | the run seed, for seeded stages only (select, train, eval) | generate and score do not read the run seed, so seeds share them |
//!
//! | left out                                | why                                                        |
//! |-----------------------------------------|------------------------------------------------------------|
//! | absolute paths, the working directory, the spec file's name, `student.weights` / `score.rd_weights` strings, `data.root`, the `data.*questions` and `teacher.jsonl` paths | moving a project or renaming a spec must not invalidate it |
//! | `teacher.answer_stage` and `teacher.answer_max_tokens` as written (generate)  | the `answer_stage` section above holds what they do         |
//! | the `openai` teacher's `base_url`, `api_key_env`, `concurrency`, `max_retries`, `timeout_s`, `max_body_bytes`, `backoff_s`, `rpm`, `tpm`, `use_n` (generate) | where and how fast the requests are sent, not what is asked |
//! | `data.strict` when false (the default; when true it is in the key) | a lenient run of the same data builds the same entry as before the setting existed |
//! | train: `train.epochs` when unset (a steps budget: `train.steps` is in the key, 300 when neither is written); `train.steps` under an epoch budget (`train.epochs` is in the key) | a steps-budgeted spec keeps the key it had before `train.epochs` existed; an epoch budget's step count follows from the selection, whose key is upstream |
//! | train: `train.patience` when unset (no early stopping; when set it is in the key) | a spec without early stopping keeps the key it had before `train.patience` existed |
//! | mtimes                                  | touching a file does not change its content                 |
//! | thread counts, `--jobs`, the progress display | they change speed, not results                       |
//! | experiment name and output folder       | two specs asking for the same computation share it          |
//! | the invocation that builds an entry (its id, command line, start time, host, morsd version) | it is recorded in the manifest, not hashed: who built an entry does not change what it holds |
//!
//! # Entries
//!
//! An entry is a folder `entries/<stage>/<key>/` holding the stage's files and a
//! `manifest.json` written last: the key document, each file's size and BLAKE3 hash, the
//! stage's metrics, its wall time and the invocation that built it
//! ([`crate::invocation::Invocation`]: id, command line, start time, host, morsd version;
//! absent in entries built before it was recorded). Entries are built in `tmp/` and renamed into place, so a
//! reader never sees a half-written entry. An entry whose manifest is missing or whose files do
//! not match it is *corrupt*: it is reported with a warning and treated as missing.
//!
//! Builders take an exclusive file lock `locks/<key>.lock` (flock, released by the kernel when a
//! process dies) and check again for a fresh entry after taking it, so two `morsd run` on one
//! cache never build the same key twice and never corrupt it.
//!
//! `slots/` remembers, per (experiment, run, stage), the key document last built or used there;
//! `morsd plan` diffs against it to say *why* a stage is stale (`select.per_question changed`).
//!
//! `requests/<model>.jsonl` holds the API teachers' durable request logs
//! ([`crate::teacher::request_log`]): not entries, but listed beside them by `morsd cache ls`.
//!
//! # Collection
//!
//! `morsd cache gc` plans every spec under `experiments/` (or `--specs DIR`) and removes
//!
//! | what                      | when                                                        |
//! |---------------------------|-------------------------------------------------------------|
//! | an entry                  | no run of any spec (after sweeps) has its key               |
//! | a request log             | no run of any spec has an `openai` teacher writing to it, and no other process holds its lock (then a note says it was kept) |
//!
//! A spec that cannot be planned (named in a warning) might reach anything: every entry some
//! spec last built or used (its slot) and every request log are then kept. `--all` removes
//! every entry and keeps every request log (re-sending requests costs money and time).

use crate::error::{Error, IoContext, Result};
use crate::invocation::Invocation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The document a stage key hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyDoc {
    /// Stage name.
    pub stage: String,
    /// Stage version.
    pub version: u32,
    /// The canonical spec subset the stage reads.
    pub config: Value,
    /// Upstream stage name → upstream key.
    pub upstream: BTreeMap<String, String>,
    /// Input file name → content hash.
    pub inputs: BTreeMap<String, String>,
    /// The run seed, for seeded stages.
    pub seed: Option<u64>,
}

impl KeyDoc {
    /// The key: BLAKE3 over the canonical JSON (object keys sorted), hex.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("key documents serialize");
        blake3::hash(&json).to_hex().to_string()
    }

    /// Why `self` differs from an earlier document of the same slot, in user terms.
    pub fn diff(&self, old: &KeyDoc) -> Vec<String> {
        let mut why = Vec::new();
        if self.version != old.version {
            why.push(format!(
                "{} version changed ({} → {})",
                self.stage, old.version, self.version
            ));
        }
        let mut paths = Vec::new();
        diff_values("", &self.config, &old.config, &mut paths);
        why.extend(paths.into_iter().map(|p| format!("{p} changed")));
        for (name, key) in &self.upstream {
            if old.upstream.get(name) != Some(key) {
                why.push(format!("upstream {name} changed"));
            }
        }
        for (name, sum) in &self.inputs {
            if old.inputs.get(name) != Some(sum) {
                why.push(format!("input {name} changed"));
            }
        }
        for name in old.inputs.keys().filter(|n| !self.inputs.contains_key(*n)) {
            why.push(format!("input {name} removed"));
        }
        if self.seed != old.seed {
            why.push("seed changed".into());
        }
        why
    }
}

fn diff_values(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_values(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// Size and hash of one file of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSum {
    /// Bytes.
    pub size: u64,
    /// BLAKE3, hex.
    pub blake3: String,
}

/// The manifest of a finished entry (written last).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The key.
    pub key: String,
    /// The key document.
    pub doc: KeyDoc,
    /// Every file of the entry (relative path → sum).
    pub files: BTreeMap<String, FileSum>,
    /// What the stage reported.
    pub metrics: Value,
    /// Seconds the stage took when it ran.
    pub wall_s: f64,
    /// Unix time it was written.
    pub created: u64,
    /// The process that built it (absent in entries built before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<Invocation>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A complete entry that passes its check.
    Fresh(Box<Manifest>),
    /// No entry.
    Missing,
    /// An entry that fails its check (the reason).
    Corrupt(String),
}

/// One entry as `morsd cache ls` lists it.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Stage name.
    pub stage: String,
    /// Key.
    pub key: String,
    /// Bytes on disk.
    pub size: u64,
    /// Seconds since it was written.
    pub age_s: u64,
    /// Its folder.
    pub path: PathBuf,
}

/// One API teacher's request log (`requests/<model>.jsonl`) as `morsd cache ls` lists it.
#[derive(Debug, Clone)]
pub struct LogInfo {
    /// The file's name without `.jsonl` (the model name, as the file spells it).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Seconds since it was last written.
    pub age_s: u64,
    /// The file.
    pub path: PathBuf,
}

/// A cache rooted at a folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// An exclusive build lock on one key; released on drop (or when the process dies).
pub struct KeyLock {
    _file: fs::File,
}

impl Cache {
    /// `MORSD_CACHE` if set, else `.morsd/cache` under the working directory.
    pub fn default_root() -> PathBuf {
        std::env::var_os("MORSD_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".morsd/cache"))
    }

    /// Opens (creating) a cache at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["entries", "tmp", "locks", "slots", "trash"] {
            fs::create_dir_all(root.join(sub)).at(root.join(sub))?;
        }
        Ok(Cache { root })
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the API teachers' durable request logs
    /// ([`crate::teacher::request_log`]).
    pub fn requests_dir(&self) -> PathBuf {
        self.root.join("requests")
    }

    /// Where the entry of `doc` lives.
    pub fn entry_dir(&self, doc: &KeyDoc) -> PathBuf {
        self.root.join("entries").join(&doc.stage).join(doc.key())
    }

    /// Looks an entry up and checks it (manifest present, key matches, every file's size and hash).
    pub fn lookup(&self, doc: &KeyDoc) -> Lookup {
        let dir = self.entry_dir(doc);
        if !dir.exists() {
            return Lookup::Missing;
        }
        match check(&dir, &doc.key()) {
            Ok(m) => Lookup::Fresh(Box::new(m)),
            Err(why) => Lookup::Corrupt(why),
        }
    }

    /// Takes the build lock of `doc`'s key, waiting for another builder to finish.
    pub fn lock(&self, doc: &KeyDoc) -> Result<KeyLock> {
        use fs4::fs_std::FileExt;
        let path = self.root.join("locks").join(format!("{}.lock", doc.key()));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        file.lock_exclusive().at(&path)?;
        Ok(KeyLock { _file: file })
    }

    /// Builds the entry of `doc` with `f` (which writes its files into the given folder and
    /// returns its metrics), then publishes it atomically. Call with the key's lock held.
    pub fn build(&self, doc: &KeyDoc, f: impl FnOnce(&Path) -> Result<Value>) -> Result<Manifest> {
        let key = doc.key();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = self.root.join("tmp").join(format!(
            "{}-{}-{}-{nanos}",
            doc.stage,
            &key[..12],
            std::process::id()
        ));
        fs::create_dir_all(&tmp).at(&tmp)?;
        let started = std::time::Instant::now();
        // 1. The stage writes into a private temp folder.
        let metrics = match f(&tmp) {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let wall_s = started.elapsed().as_secs_f64();
        // 2. Hash every file, write the manifest last.
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(&tmp).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::run(format!("{}: {e}", tmp.display())))?;
            if entry.file_type().is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(&tmp)
                    .expect("under tmp")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, sum(entry.path())?);
            }
        }
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let manifest = Manifest {
            key: key.clone(),
            doc: doc.clone(),
            files,
            metrics,
            wall_s,
            created,
            invocation: Some(crate::invocation::current().clone()),
        };
        let mpath = tmp.join("manifest.json");
        write_synced(
            &mpath,
            &serde_json::to_vec_pretty(&manifest).map_err(Error::run)?,
        )?;
        // 3. Move a corrupt previous entry aside, then rename into place.
        let dest = self.entry_dir(doc);
        fs::create_dir_all(dest.parent().expect("has parent")).at(&dest)?;
        if dest.exists() {
            let trash = self
                .root
                .join("trash")
                .join(format!("{}-{nanos}", &key[..12]));
            fs::rename(&dest, &trash).at(&dest)?;
            let _ = fs::remove_dir_all(&trash);
        }
        fs::rename(&tmp, &dest).at(&dest)?;
        Ok(manifest)
    }

    /// Remembers the key document used for a slot (experiment/run/stage).
    pub fn record_slot(&self, slot: &str, doc: &KeyDoc) -> Result<()> {
        let path = self.slot_path(slot);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, serde_json::to_vec(doc).map_err(Error::run)?).at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)
    }

    /// The key document last used for a slot.
    pub fn slot(&self, slot: &str) -> Option<KeyDoc> {
        let bytes = fs::read(self.slot_path(slot)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn slot_path(&self, slot: &str) -> PathBuf {
        self.root.join("slots").join(format!(
            "{}.json",
            &blake3::hash(slot.as_bytes()).to_hex()[..24]
        ))
    }

    /// The key of every slot's last key document: what some spec last built or used, whether
    /// or not that spec can still be planned (`cache gc` keeps these when one cannot).
    pub fn slot_keys(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(self.root.join("slots")) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<KeyDoc>(&b).ok())
            .map(|d| d.key())
            .collect()
    }

    /// Every entry on disk.
    pub fn list(&self) -> Result<Vec<EntryInfo>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        let entries = self.root.join("entries");
        for stage in fs::read_dir(&entries).at(&entries)? {
            let stage = stage.at(&entries)?;
            if !stage.path().is_dir() {
                continue;
            }
            for e in fs::read_dir(stage.path()).at(stage.path())? {
                let e = e.at(stage.path())?;
                let path = e.path();
                let size = walkdir::WalkDir::new(&path)
                    .into_iter()
                    .filter_map(|x| x.ok())
                    .filter_map(|x| x.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum();
                let age_s = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                out.push(EntryInfo {
                    stage: stage.file_name().to_string_lossy().into_owned(),
                    key: e.file_name().to_string_lossy().into_owned(),
                    size,
                    age_s,
                    path,
                });
            }
        }
        out.sort_by(|a, b| (&a.stage, &a.key).cmp(&(&b.stage, &b.key)));
        Ok(out)
    }

    /// Every request log on disk (`requests/*.jsonl`), by name; none when the folder is absent.
    pub fn request_logs(&self) -> Result<Vec<LogInfo>> {
        let dir = self.requests_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(&dir),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for e in rd {
            let e = e.at(&dir)?;
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() || path.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let age_s = meta
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            out.push(LogInfo {
                name,
                size: meta.len(),
                age_s,
                path,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes an entry (moved aside first, so a reader never sees half of it).
    pub fn remove(&self, entry: &EntryInfo) -> Result<()> {
        let trash = self
            .root
            .join("trash")
            .join(format!("{}-{}", entry.stage, entry.key));
        fs::rename(&entry.path, &trash).at(&entry.path)?;
        fs::remove_dir_all(&trash).at(&trash)
    }

    /// Removes leftovers of interrupted builds that no process is building any more.
    pub fn clean_tmp(&self) {
        if let Ok(rd) = fs::read_dir(self.root.join("tmp")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid: Option<u32> = name.split('-').rev().nth(1).and_then(|p| p.parse().ok());
                let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if !alive {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Size and BLAKE3 of a file (entries' files, and the input files of stage keys).
pub fn file_sum(path: &Path) -> std::io::Result<FileSum> {
    let mut hasher = blake3::Hasher::new();
    let mut f = fs::File::open(path)?;
    let size = std::io::copy(&mut f, &mut hasher)?;
    Ok(FileSum {
        size,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

fn sum(path: &Path) -> Result<FileSum> {
    file_sum(path).at(path)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path).at(path)?;
    f.write_all(bytes).at(path)?;
    f.sync_all().at(path)
}

fn check(dir: &Path, key: &str) -> Result<Manifest, String> {
    let mpath = dir.join("manifest.json");
    let bytes = fs::read(&mpath).map_err(|_| "manifest.json missing".to_string())?;
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("manifest.json unreadable: {e}"))?;
    if m.key != key {
        return Err(format!(
            "manifest key {} does not match",
            &m.key[..12.min(m.key.len())]
        ));
    }
    for (name, want) in &m.files {
        let p = dir.join(name);
        let got = sum(&p).map_err(|_| format!("{name} missing"))?;
        if got.size != want.size || got.blake3 != want.blake3 {
            return Err(format!("{name} does not match its hash"));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(stage: &str, x: i64) -> KeyDoc {
        KeyDoc {
            stage: stage.into(),
            version: 1,
            config: serde_json::json!({"select": {"per_question": x, "strategy": "morsd"}}),
            upstream: BTreeMap::new(),
            inputs: BTreeMap::new(),
            seed: Some(0),
        }
    }

    #[test]
    fn build_then_fresh_and_corruption_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = doc("select", 2);
        assert!(matches!(cache.lookup(&d), Lookup::Missing));
        cache
            .build(&d, |out| {
                fs::write(out.join("a.json"), b"[1,2]").unwrap();
                Ok(serde_json::json!({"n": 2}))
            })
            .unwrap();
        assert!(matches!(cache.lookup(&d), Lookup::Fresh(_)));
        fs::write(cache.entry_dir(&d).join("a.json"), b"[1,3]").unwrap();
        assert!(matches!(cache.lookup(&d), Lookup::Corrupt(_)));
        fs::remove_file(cache.entry_dir(&d).join("manifest.json")).unwrap();
        assert!(matches!(cache.lookup(&d), Lookup::Corrupt(_)));
    }

    #[test]
    fn manifest_records_the_invocation_outside_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = doc("select", 2);
        let key = d.key();
        let m = cache.build(&d, |_| Ok(serde_json::json!({}))).unwrap();
        assert_eq!(m.invocation.as_ref(), Some(crate::invocation::current()));
        assert_eq!((m.key.as_str(), d.key()), (key.as_str(), key.clone()));
        let Lookup::Fresh(back) = cache.lookup(&d) else {
            panic!("the entry just built is fresh")
        };
        assert_eq!(back.invocation, m.invocation);
        // A manifest written before invocations were recorded still reads, as unrecorded.
        let mpath = cache.entry_dir(&d).join("manifest.json");
        let mut v: Value = serde_json::from_slice(&fs::read(&mpath).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("invocation");
        fs::write(&mpath, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(cache.lookup(&d), Lookup::Fresh(m) if m.invocation.is_none()));
    }

    #[test]
    fn diff_names_the_changed_key() {
        let why = doc("select", 3).diff(&doc("select", 2));
        assert_eq!(why, vec!["select.per_question changed".to_string()]);
        assert_ne!(doc("select", 3).key(), doc("select", 2).key());
    }
}
