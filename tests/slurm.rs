//! The Slurm executor against a real single-node Slurm (scripts/slurm-up.sh: Debian's
//! slurm-wlm on 127.0.0.1): a sweep submitted as an array finishes with the same results as a
//! local run, a killed array task is resubmitted alone, and hostile paths and values run
//! nothing on the node.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SLURM: Mutex<()> = Mutex::new(());

/// Brings Slurm up; the tests hold the guard so that they run one at a time (one small node,
/// and the killed-task test needs its array task to get a CPU).
fn slurm_up() -> MutexGuard<'static, ()> {
    let guard = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    let o = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-up.sh"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/slurm-up.sh failed (needs root and Debian's slurm-wlm): {}",
        text(&o)
    );
    guard
}

fn sweep_spec(steps: usize) -> String {
    format!(
        "{}\n[sweep]\n\"select.strategy\" = [\"random\", \"morsd\"]\n",
        TINY.replace("steps = 8\n", &format!("steps = {steps}\n"))
    )
}

fn wait_for(p: &Project, mut done: impl FnMut(&str) -> bool, secs: u64) -> String {
    let t = Instant::now();
    loop {
        let o = p.morsd(&["status", p.spec().to_str().unwrap()]);
        let s = text(&o);
        if done(&s) {
            return s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out; last status:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn accuracies(p: &Project) -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<(String, serde_json::Value)> = p.runs_json("tiny")["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["label"].as_str().unwrap().to_string(),
                r["accuracy"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn wait_results(p: &Project) {
    let t = Instant::now();
    while !p.path().join("results/tiny/runs.json").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the collect job wrote no results"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sweep_on_slurm_matches_local_and_resubmits_a_killed_task() {
    let _slurm = slurm_up();
    // 1. Reference: the same sweep locally.
    let local = Project::new(&sweep_spec(60));
    let o = local.morsd(&["run", local.spec().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // 2. On Slurm: shared job, array, collect; every run finishes.
    let p = Project::new(&sweep_spec(60));
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--executor", "slurm"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("shared generate+score job")
            && out.contains("array job")
            && out.contains("for runs [0, 1]"),
        "{out}"
    );
    wait_for(&p, |s| s.contains("2 done"), 300);
    wait_results(&p);
    assert_eq!(accuracies(&p), accuracies(&local));
    // Nothing left to submit.
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--executor", "slurm"]);
    assert!(text(&o).contains("all 2 runs are done"), "{}", text(&o));

    // 3. A killed array task shows as failed and is resubmitted alone.
    let q = Project::new(&sweep_spec(400));
    let o = q.morsd(&["run", q.spec().to_str().unwrap(), "--executor", "slurm"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = wait_for(&q, |s| s.lines().any(|l| l.ends_with("running")), 300);
    let victim = s.lines().position(|l| l.ends_with("running")).unwrap();
    let subs: serde_json::Value = serde_json::from_slice(
        &std::fs::read(q.path().join("cache/slurm/tiny/submissions.json")).unwrap(),
    )
    .unwrap();
    let array = subs[0]["array"].as_str().unwrap().to_string();
    let c = std::process::Command::new("scancel")
        .arg(format!("{array}_{victim}"))
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", text(&c));
    let s = wait_for(
        &q,
        |s| {
            s.lines().nth(victim).is_some_and(|l| l.contains("failed"))
                && !s.contains("running")
                && !s.contains("queued")
        },
        300,
    );
    assert!(s.contains("1 done"), "the other run finishes: {s}");
    let o = q.morsd(&["run", q.spec().to_str().unwrap(), "--executor", "slurm"]);
    let out = text(&o);
    assert!(
        out.contains(&format!("for runs [{victim}]")) && !out.contains("shared generate"),
        "{out}"
    );
    wait_for(&q, |s| s.contains("2 done"), 300);
    let t = Instant::now();
    while q
        .runs_json_opt()
        .is_none_or(|r| r["runs"].as_array().map(|a| a.len()) != Some(2))
    {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no complete results"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A path component (no `/`) with everything a shell or sbatch's `#SBATCH` parser acts on.
fn hostile(tag: &str) -> String {
    format!(
        "{tag} $(touch PWNED) `touch PWNED` x$(touch${{IFS}}PWNED) ;touch PWNED; &touch PWNED& \
         |touch PWNED| 'sq' \"dq\" %j %A %% \n touch PWNED #\r\t~ * ?"
    )
}

/// Every `PWNED` file under `root` (the hostile folder names only hold the word inside).
fn pwned(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("PWNED"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

#[test]
fn hostile_paths_and_values_run_nothing_on_slurm() {
    let _slurm = slurm_up();
    // Where a job that could not enter its --chdir would run.
    let elsewhere = [
        "/tmp/PWNED",
        "/PWNED",
        "/var/spool/slurmd/PWNED",
        "/root/PWNED",
    ];
    let before: Vec<bool> = elsewhere.iter().map(|p| Path::new(p).exists()).collect();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let work = r.join(hostile("work \\back"));
    let cache = r.join(hostile("cache"));
    let bin = r.join(hostile("bin \\back"));
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let spec = work.join(format!("experiments/{}.toml", hostile("ti'ny")));
    std::fs::write(&spec, TINY).unwrap();
    let exe = bin.join("morsd");
    std::fs::copy(env!("CARGO_BIN_EXE_morsd"), &exe).unwrap();
    let output = format!("results/{}", hostile("out"));
    let sets = [
        format!("experiment.output={output}"),
        "select.strategy=\"morsd\"".to_string(),
    ];
    let morsd = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.current_dir(&work)
            .env("MORSD_CACHE", &cache)
            .env("MORSD_DATA", r.join(hostile("data")))
            .env(
                "MORSD_OPENAI_BASE_URL",
                format!("http://127.0.0.1:9/{}", hostile("url")),
            )
            .env_remove("MORSD_DEVICE")
            .env_remove("MORSD_SBATCH")
            .arg(args[0])
            .arg(&spec);
        for s in &sets {
            c.arg("--set").arg(s);
        }
        c.args(&args[1..]).output().unwrap()
    };
    let o = morsd(&[
        "run",
        "--executor",
        "slurm",
        "--partition",
        "debug",
        "--time",
        "0-00:10:00",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("for runs [0]"), "{}", text(&o));
    // The run finishes and the collect job writes the (hostile) results folder.
    let t = Instant::now();
    loop {
        let s = text(&morsd(&["status"]));
        if s.contains("1 done") {
            break;
        }
        assert!(
            !s.contains("failed") && t.elapsed() < Duration::from_secs(300),
            "{s}\nlogs: {:?}",
            std::fs::read_dir(cache.join("slurm/tiny/logs")).map(|d| d
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs = work.join(&output).join("runs.json");
    let t = Instant::now();
    while !runs.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the collect job wrote no {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the collect job finish writing its marker.
    let collect_marker = cache.join("slurm/tiny/markers/morsd-tiny-collect.exit");
    let t = Instant::now();
    while !collect_marker.exists() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read_to_string(&collect_marker).unwrap().trim(),
        "0"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&runs).unwrap()).unwrap();
    assert_eq!(json["runs"].as_array().map(|a| a.len()), Some(1), "{json}");
    // Slurm wrote the logs where asked: the literal folder, `%` not expanded.
    let mut logs: Vec<String> = std::fs::read_dir(cache.join("slurm/tiny/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(
        logs[0].starts_with("collect-")
            && logs[1].starts_with("runs-")
            && logs[1].ends_with("_0.log")
            && logs[2].starts_with("shared-"),
        "{logs:?}"
    );
    // Nothing ran: not in the project, not where a job without its folder would be.
    assert!(pwned(r).is_empty(), "{:?}", pwned(r));
    let after: Vec<bool> = elsewhere.iter().map(|p| Path::new(p).exists()).collect();
    assert_eq!(after, before, "{elsewhere:?}");

    // The experiment name itself cannot be hostile: refused before anything is submitted.
    let bad = work.join("experiments/bad.toml");
    std::fs::write(
        &bad,
        TINY.replace("name = \"tiny\"", "name = \"x$(touch${IFS}PWNED)\""),
    )
    .unwrap();
    let o = Command::new(&exe)
        .current_dir(&work)
        .env("MORSD_CACHE", &cache)
        .args(["run", bad.to_str().unwrap(), "--executor", "slurm"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("experiment.name") && text(&o).contains("'$'"),
        "{}",
        text(&o)
    );
    let dirs: Vec<_> = std::fs::read_dir(cache.join("slurm"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(dirs, vec![std::ffi::OsString::from("tiny")]);
    assert!(pwned(r).is_empty(), "{:?}", pwned(r));
}
