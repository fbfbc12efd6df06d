//! Helpers shared by the integration tests: a fresh temp project and the `morsd` binary.

#![allow(dead_code)]

pub mod llama;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A tiny spec: seconds per run on a CPU.
pub const TINY: &str = r#"
[experiment]
name = "tiny"
seeds = [0]

[data]
task = "arithmetic"
train = 24
validation = 8
test = 8
steps = [1, 1]

[teacher]
samples = 4

[student]
d_model = 32
layers = 1
heads = 2
max_seq_len = 96
vocab_size = 320

[score]
warmup_steps = 6
batch_size = 16

[select]
strategy = "morsd"
per_question = 2

[train]
steps = 8
batch_size = 8
warmup_steps = 2
eval_every = 4

[eval]
max_new_tokens = 12
batch_size = 16
"#;

/// A fresh folder with a spec in it.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(spec: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
        std::fs::write(dir.path().join("experiments/tiny.toml"), spec).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn spec(&self) -> PathBuf {
        self.path().join("experiments/tiny.toml")
    }

    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_morsd"));
        c.current_dir(self.path())
            .env("MORSD_CACHE", self.path().join("cache"))
            .env_remove("MORSD_DEVICE");
        c
    }

    pub fn morsd(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// The (first) cache entry folder of a stage.
    pub fn entry(&self, stage: &str) -> PathBuf {
        std::fs::read_dir(self.path().join("cache/entries").join(stage))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    }

    /// A JSON file of a stage's (first) cache entry.
    pub fn read_entry(&self, stage: &str, file: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.entry(stage).join(file)).unwrap()).unwrap()
    }

    pub fn runs_json_opt(&self) -> Option<serde_json::Value> {
        let p = self.path().join("results/tiny/runs.json");
        serde_json::from_slice(&std::fs::read(&p).ok()?).ok()
    }

    pub fn runs_json(&self, name: &str) -> serde_json::Value {
        let p = self.path().join("results").join(name).join("runs.json");
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The stages each run of `runs.json` executed.
pub fn executed(runs: &serde_json::Value) -> Vec<Vec<String>> {
    runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["executed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The shared data root (`MORSD_DATA`, else `../shared/data` beside the checkout), absolute.
pub fn data_root() -> PathBuf {
    std::env::var_os("MORSD_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
        .canonicalize()
        .expect("the shared data root (set MORSD_DATA)")
}

/// A test's time limit on a GPU backend, where a hung shader would otherwise stall CI: while
/// the returned guard lives, a thread waits `MORSD_TEST_TIMEOUT` seconds (default 600) and then
/// ends the whole test process with exit status 124, naming `what`. Off wgpu and tch-cuda the
/// guard does nothing.
pub fn watchdog(what: &str) -> Watchdog {
    let device = std::env::var("MORSD_DEVICE").unwrap_or_default();
    if !(device.starts_with("wgpu") || device.starts_with("tch-cuda")) {
        return Watchdog(None);
    }
    let secs: u64 = std::env::var("MORSD_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let what = what.to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(std::time::Duration::from_secs(secs))
        {
            eprintln!(
                "{what}: still running after {secs} s on MORSD_DEVICE={device}: a hung kernel? (MORSD_TEST_TIMEOUT)"
            );
            std::process::exit(124);
        }
    });
    Watchdog(Some(tx))
}

/// Cancels [`watchdog`]'s timer when dropped.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
