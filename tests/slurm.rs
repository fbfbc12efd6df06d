//! The Slurm executor against a real single-node Slurm (scripts/slurm-up.sh: Debian's
//! slurm-wlm on 127.0.0.1): a sweep submitted as an array finishes with the same results as a
//! local run, and a killed array task is resubmitted alone.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn slurm_up() {
    let o = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-up.sh"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/slurm-up.sh failed (needs root and Debian's slurm-wlm): {}",
        text(&o)
    );
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
    slurm_up();
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
