//! Provenance of a results folder: each cache entry records the invocation that built it, so a
//! study run in pieces (several `morsd run`, or Slurm array tasks and their collect job) is
//! credited piece by piece in `runs.json` and `summary.md`.

mod common;
use common::*;
use serde_json::Value;

const STAGES: [&str; 5] = ["generate", "score", "select", "train", "eval"];

fn two_seeds() -> String {
    TINY.replace("seeds = [0]\n", "seeds = [0, 1]\n")
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    text(o)
}

/// Stage → invocation id of the run labelled `label`.
fn built_by(runs: &Value, label: &str) -> Vec<(String, String)> {
    let row = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == label)
        .unwrap_or_else(|| panic!("no run {label}: {runs}"));
    STAGES
        .iter()
        .map(|s| {
            (
                s.to_string(),
                row["built_by"][s].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn ids(runs: &Value) -> Vec<String> {
    runs["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The counts of the summary's "- N entries by ..." / "- N entries without a record" lines.
fn entry_counts(summary: &str) -> Vec<usize> {
    summary
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter(|l| {
            l.contains(" entries by ") || l.contains(" entry by ") || l.contains("without a record")
        })
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn by(first: &str, second: &str) -> Vec<(String, String)> {
    STAGES
        .iter()
        .map(|s| {
            let id = if matches!(*s, "generate" | "score") {
                first
            } else {
                second
            };
            (s.to_string(), id.to_string())
        })
        .collect()
}

#[test]
fn a_study_run_in_two_invocations_credits_both() {
    let p = Project::new(&two_seeds());
    let spec = p.spec();
    let spec = spec.to_str().unwrap();
    ok(&p.morsd(&["run", spec, "--set", "experiment.seeds=[0]"]));
    let first = p.runs_json("tiny");
    let a = first["written_by"].as_str().unwrap().to_string();
    assert_eq!(built_by(&first, "seed=0"), by(&a, &a));
    // The entry's manifest records who built it: the command line as typed, no environment.
    let m = p.read_entry("generate", "manifest.json");
    assert_eq!(m["invocation"]["id"], a.as_str());
    let argv: Vec<&str> = m["invocation"]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(argv[1..], ["run", spec, "--set", "experiment.seeds=[0]"]);
    assert_eq!(m["invocation"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        m["invocation"]["started_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The full spec as a second invocation: seed 1 shares generate and score with seed 0.
    ok(&p.morsd(&["run", spec]));
    let second = p.runs_json("tiny");
    let b = second["written_by"].as_str().unwrap().to_string();
    assert_ne!(a, b);
    assert_eq!(ids(&second), vec![a.clone(), b.clone()]);
    assert_eq!(built_by(&second, "seed=0"), by(&a, &a));
    assert_eq!(built_by(&second, "seed=1"), by(&a, &b));
    assert_eq!(
        executed(&second),
        vec![
            vec![],
            vec!["select".to_string(), "train".into(), "eval".into()]
        ]
    );

    let summary = std::fs::read_to_string(p.path().join("results/tiny/summary.md")).unwrap();
    assert!(!summary.contains("last `morsd run`:"), "{summary}");
    assert!(summary.contains("are 10 stage instances"), "{summary}");
    assert!(
        summary
            .contains("8 distinct cache entries (generate 1, score 1, select 2, train 2, eval 2)"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "- 5 entries by `morsd run {spec} --set experiment.seeds=[0]` ("
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("- 3 entries by `morsd run {spec}` (")),
        "{summary}"
    );
    assert!(summary.contains(&format!("invocation `{a}`")), "{summary}");
    assert_eq!(entry_counts(&summary).iter().sum::<usize>(), 8, "{summary}");
    assert!(
        summary.contains("executed 3 of the 10 stage instances"),
        "{summary}"
    );

    // `morsd report` rebuilds the same account from runs.json alone.
    ok(&p.morsd(&["report", "results/tiny"]));
    let rebuilt = std::fs::read_to_string(p.path().join("results/tiny/summary.md")).unwrap();
    assert_eq!(rebuilt, summary);
}

#[test]
fn slurm_array_tasks_record_their_own_invocations() {
    // What the Slurm job scripts run, locally: one process per array task, then the collect job.
    let p = Project::new(&two_seeds());
    let spec = p.spec();
    let spec = spec.to_str().unwrap();
    ok(&p.morsd(&["run", spec, "--run-index", "0"]));
    ok(&p.morsd(&["run", spec, "--run-index", "1"]));
    assert!(p.runs_json_opt().is_none());
    ok(&p.morsd(&["run", spec, "--collect"]));
    let runs = p.runs_json("tiny");
    let ids = ids(&runs);
    assert_eq!(ids.len(), 3, "{runs}");
    let (t0, t1, collect) = (&ids[0], &ids[1], &ids[2]);
    assert_eq!(runs["written_by"], collect.as_str());
    assert_eq!(built_by(&runs, "seed=0"), by(t0, t0));
    assert_eq!(built_by(&runs, "seed=1"), by(t0, t1));
    let argv = |id: &str| -> Vec<String> {
        let inv = runs["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap();
        serde_json::from_value(inv["argv"].clone()).unwrap()
    };
    assert!(argv(t1).ends_with(&["--run-index".to_string(), "1".to_string()]));
    let summary = std::fs::read_to_string(p.path().join("results/tiny/summary.md")).unwrap();
    assert_eq!(entry_counts(&summary), vec![5, 3], "{summary}");
    assert!(
        summary.contains(&format!(
            "- 3 entries by `morsd run {spec} --run-index 1` ("
        )),
        "{summary}"
    );
    assert!(
        summary.contains("--collect`") && summary.contains("executed 0 of the 10"),
        "{summary}"
    );
}
