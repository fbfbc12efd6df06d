//! The cache as a user sees it through the binary: second runs execute nothing, a changed
//! select key re-runs exactly select/train/eval, a changed teacher re-runs everything, and
//! `morsd plan` says why.

mod common;
use common::*;

#[test]
fn rerun_executes_nothing_and_changes_rerun_exactly_what_they_should() {
    let p = Project::new(TINY);
    let spec = p.spec();
    let spec = spec.to_str().unwrap();

    // 1. First run executes all five stages and writes the results folder.
    let o = p.morsd(&["run", spec]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        executed(&p.runs_json("tiny")),
        vec![vec!["generate", "score", "select", "train", "eval"]]
    );
    for f in [
        "runs.parquet",
        "runs.csv",
        "selection.parquet",
        "summary.md",
        "accuracy.svg",
        "accuracy.png",
    ] {
        assert!(
            p.path().join("results/tiny").join(f).exists(),
            "missing {f}"
        );
    }
    let first = p.runs_json("tiny");

    // 2. Second run: nothing executes, same results.
    let o = p.morsd(&["run", spec]);
    assert!(o.status.success(), "{}", text(&o));
    let second = p.runs_json("tiny");
    assert_eq!(executed(&second), vec![Vec::<String>::new()]);
    assert_eq!(first["runs"][0]["accuracy"], second["runs"][0]["accuracy"]);

    // 3. plan names the changed key for select and the upstream for train/eval.
    let o = p.morsd(&["plan", spec, "--set", "select.per_question=1"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let line = |stage: &str| {
        out.lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("no {stage} line in {out}"))
            .to_string()
    };
    assert!(line("generate").contains("fresh"), "{out}");
    assert!(line("score").contains("fresh"), "{out}");
    assert!(
        line("select").contains("stale") && line("select").contains("select.per_question changed"),
        "{out}"
    );
    assert!(line("train").contains("upstream select changed"), "{out}");

    // 4. One select.* key changed: exactly select, train and eval run.
    let o = p.morsd(&["run", spec, "--set", "select.per_question=1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        executed(&p.runs_json("tiny")),
        vec![vec!["select", "train", "eval"]]
    );

    // 5. The teacher changed (through the environment): everything re-runs.
    let o = p
        .cmd()
        .args(["run", spec])
        .env("MORSD_TEACHER__SAMPLES", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        executed(&p.runs_json("tiny")),
        vec![vec!["generate", "score", "select", "train", "eval"]]
    );

    // 6. cache ls lists the entries; report rebuilds the tables from runs.json.
    let o = p.morsd(&["cache", "ls"]);
    assert!(
        text(&o).contains("generate") && text(&o).contains("eval"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(p.path().join("results/tiny/runs.csv")).unwrap();
    let o = p.morsd(&["report", "results/tiny"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.path().join("results/tiny/runs.csv").exists());

    // 7. gc keeps what experiments/ reaches (the current spec) and removes the rest.
    let before = p.morsd(&["cache", "ls"]);
    let o = p.morsd(&["cache", "gc"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("removed 0 "),
        "older entries should go: {}",
        text(&o)
    );
    let o = p.morsd(&["plan", spec]);
    assert!(
        text(&o).contains("5 fresh"),
        "gc must keep reachable entries: {}\n{}",
        text(&o),
        text(&before)
    );
}

#[test]
fn sweep_shares_generate_and_score_and_runs_in_parallel() {
    let spec = format!("{TINY}\n[sweep]\n\"select.strategy\" = [\"random\", \"morsd\"]\n");
    let p = Project::new(&spec);
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--jobs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let ex = executed(&p.runs_json("tiny"));
    let count = |s: &str| ex.iter().filter(|e| e.iter().any(|x| x == s)).count();
    assert_eq!(count("generate"), 1, "{ex:?}");
    assert_eq!(count("score"), 1, "{ex:?}");
    assert_eq!(count("train"), 2, "{ex:?}");
    let o = p.morsd(&["cache", "ls"]);
    let t = text(&o);
    assert_eq!(
        t.lines().filter(|l| l.starts_with("generate")).count(),
        1,
        "{t}"
    );
    assert_eq!(
        t.lines().filter(|l| l.starts_with("train")).count(),
        2,
        "{t}"
    );
}

#[test]
fn two_concurrent_runs_build_each_key_once() {
    let p = Project::new(TINY);
    let spec = p.spec();
    // 1. Two processes on one cache, started together.
    let spawn = || {
        p.cmd()
            .args(["run", spec.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", text(&a));
    assert!(b.status.success(), "{}", text(&b));
    // 2. Every stage was built by exactly one of them.
    let ran = |o: &std::process::Output| {
        text(o)
            .lines()
            .filter(|l| l.starts_with("ran "))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut all = ran(&a);
    all.extend(ran(&b));
    all.sort();
    assert_eq!(
        all,
        ["eval", "generate", "score", "select", "train"],
        "a: {}\nb: {}",
        text(&a),
        text(&b)
    );
    let o = p.morsd(&["plan", spec.to_str().unwrap()]);
    assert!(text(&o).contains("5 fresh"), "{}", text(&o));
}

#[test]
fn force_recomputes_only_that_stage() {
    let p = Project::new(TINY);
    let spec = p.spec();
    let o = p.morsd(&["run", spec.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.morsd(&["run", spec.to_str().unwrap(), "--force", "select"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(executed(&p.runs_json("tiny")), vec![vec!["select"]]);
}

/// A spec under experiments/ that cannot be planned does not stop `cache gc`: it warns, keeps
/// every entry a spec last built or used (so that spec's entries survive), and still removes
/// what nothing uses any more.
#[test]
fn gc_keeps_an_unplannable_specs_entries_and_collects_the_rest() {
    let p = Project::new(TINY);
    let other = TINY
        .replace("name = \"tiny\"", "name = \"other\"")
        .replace("per_question = 2", "per_question = 1");
    let other_path = p.path().join("experiments/other.toml");
    std::fs::write(&other_path, &other).unwrap();
    let spec = p.spec();
    let spec = spec.to_str().unwrap();
    for s in [spec, other_path.to_str().unwrap()] {
        let o = p.morsd(&["run", s]);
        assert!(o.status.success(), "{}", text(&o));
    }
    // The tiny spec changes: its old train and eval entries are used by nothing now.
    std::fs::write(p.spec(), TINY.replace("steps = 8", "steps = 9")).unwrap();
    let o = p.morsd(&["run", spec]);
    assert!(o.status.success(), "{}", text(&o));
    // The other spec breaks.
    std::fs::write(&other_path, format!("{other}\n[bogus]\n")).unwrap();
    let o = p.morsd(&["cache", "gc"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("warning:") && t.contains("other.toml"), "{t}");
    assert!(
        t.contains("removed 2 entries"),
        "the superseded train and eval go: {t}"
    );
    // Fixed again, the other spec finds all of its entries.
    std::fs::write(&other_path, &other).unwrap();
    let o = p.morsd(&["plan", other_path.to_str().unwrap()]);
    assert!(text(&o).contains("5 fresh"), "{}", text(&o));
}
