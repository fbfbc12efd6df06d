//! The cache as a user sees it through the binary: second runs execute nothing, a changed
//! select key re-runs exactly select/train/eval, a changed teacher re-runs everything, and
//! `morsd plan` says why; `cache ls` lists entries and request logs, and `cache gc` removes
//! the entries and the request logs no spec reaches (keeping those a teacher holds locked).

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

/// A spec folder holding one `openai`-teacher spec sweeping two models (`org/teacher-7b`,
/// whose log is `requests/org_teacher-7b.jsonl`, and `swept`), and a cache with both models'
/// logs and another model's, one line each. Nothing runs: gc only plans the spec.
struct Logs {
    p: Project,
    /// The first run's log.
    kept: std::path::PathBuf,
    /// The second run's log (reached through the sweep).
    swept: std::path::PathBuf,
    /// A model no spec names.
    other: std::path::PathBuf,
}

fn project_with_request_logs() -> Logs {
    let p = Project::new(TINY);
    let openai = TINY.replace("name = \"tiny\"", "name = \"api\"").replace(
        "samples = 4",
        "kind = \"openai\"\nmodel = \"org/teacher-7b\"\nsamples = 2\n\
             base_url = \"http://127.0.0.1:9/v1\"",
    );
    let openai =
        format!("{openai}\n[sweep]\n\"teacher.model\" = [\"org/teacher-7b\", \"swept\"]\n");
    std::fs::create_dir_all(p.path().join("specs")).unwrap();
    std::fs::write(p.path().join("specs/api.toml"), openai).unwrap();
    let o = p.morsd(&["plan", "specs/api.toml"]);
    assert!(o.status.success(), "the openai spec plans: {}", text(&o));
    let dir = p.path().join("cache/requests");
    std::fs::create_dir_all(&dir).unwrap();
    let logs = Logs {
        kept: dir.join("org_teacher-7b.jsonl"),
        swept: dir.join("swept.jsonl"),
        other: dir.join("other-model.jsonl"),
        p,
    };
    std::fs::write(&logs.kept, "{\"key\":\"a\",\"question_id\":\"q1\"}\n").unwrap();
    std::fs::write(&logs.swept, "{\"key\":\"c\"}\n").unwrap();
    std::fs::write(
        &logs.other,
        "{\"key\":\"b\",\"question_id\":\"q22\",\"x\":1}\n",
    )
    .unwrap();
    logs
}

/// The `cache ls` row of a request log, if listed.
fn log_row(ls: &str, name: &str) -> Option<String> {
    ls.lines()
        .find(|l| l.split_whitespace().take(2).eq(["requests", name]))
        .map(str::to_string)
}

/// `cache ls` lists the request logs with their sizes; `cache gc` removes the one no spec's
/// `openai` teacher reaches and keeps that spec's; `--all` keeps request logs.
#[test]
fn gc_collects_request_logs_no_spec_reaches() {
    let Logs {
        p,
        kept,
        swept,
        other,
    } = project_with_request_logs();
    let size = |f: &std::path::Path| format!("{} B", std::fs::metadata(f).unwrap().len());
    let (kept_size, other_size) = (size(&kept), size(&other));
    assert_ne!(kept_size, other_size);

    // 1. ls: every log, with its size, counted in the total.
    let o = p.morsd(&["cache", "ls"]);
    let ls = text(&o);
    assert!(o.status.success(), "{ls}");
    let row = log_row(&ls, "org_teacher-7b").unwrap_or_else(|| panic!("no row: {ls}"));
    assert!(row.contains(&kept_size), "{row}");
    let row = log_row(&ls, "other-model").unwrap_or_else(|| panic!("no row: {ls}"));
    assert!(row.contains(&other_size), "{row}");
    assert!(log_row(&ls, "swept").is_some(), "{ls}");
    assert!(ls.contains("0 entries, 3 request logs, "), "{ls}");
    // The columns stay in line whatever a log's name: every row (header included) is as wide.
    let rows: Vec<&str> = ls.lines().take(ls.lines().count() - 1).collect();
    assert!(
        rows.iter()
            .all(|r| r.chars().count() == rows[0].chars().count()),
        "columns out of line:\n{ls}"
    );
    // A specs folder that is not there (a typo) removes nothing: it is an error.
    let o = p.morsd(&["cache", "gc", "--specs", "no-such-folder"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no-such-folder"), "{}", text(&o));
    assert!(other.exists() && kept.exists());

    // 2. gc over the spec folder: the other model's log goes, the spec's runs' stay.
    let o = p.morsd(&["cache", "gc", "--specs", "specs"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "removed 0 entries (0 B) and 1 request log ({other_size})"
        )),
        "{t}"
    );
    assert!(kept.exists() && swept.exists() && !other.exists(), "{t}");
    let o = p.morsd(&["cache", "ls"]);
    let ls = text(&o);
    let row = log_row(&ls, "org_teacher-7b").unwrap_or_else(|| panic!("no row: {ls}"));
    assert!(row.contains(&kept_size), "{row}");
    assert!(log_row(&ls, "other-model").is_none(), "{ls}");
    assert!(ls.contains("0 entries, 2 request logs, "), "{ls}");

    // 3. experiments/ (a programmatic teacher) reaches no log, but `--all` is about entries:
    //    the logs stay. A plain gc over experiments/ then removes them.
    let o = p.morsd(&["cache", "gc", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        kept.exists() && swept.exists(),
        "--all keeps request logs: {}",
        text(&o)
    );
    let o = p.morsd(&["cache", "gc"]);
    assert!(
        text(&o).contains("and 2 request logs") && !kept.exists() && !swept.exists(),
        "{}",
        text(&o)
    );
}

/// A spec that cannot be planned keeps every request log; a log a teacher holds locked is
/// kept with a note, and collected once the lock is released.
#[test]
fn gc_keeps_request_logs_when_unsure_or_locked() {
    use fs4::fs_std::FileExt;
    let Logs { p, kept, other, .. } = project_with_request_logs();
    std::fs::write(p.path().join("specs/broken.toml"), "[bogus]\n").unwrap();
    let o = p.morsd(&["cache", "gc", "--specs", "specs"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("warning:") && t.contains("broken.toml"), "{t}");
    assert!(t.contains("and 0 request logs"), "{t}");
    assert!(kept.exists() && other.exists(), "{t}");
    std::fs::remove_file(p.path().join("specs/broken.toml")).unwrap();

    // Another process appending to the unreached log holds its lock.
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&other)
        .unwrap();
    f.lock_exclusive().unwrap();
    let o = p.morsd(&["cache", "gc", "--specs", "specs"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("other-model.jsonl is locked"), "{t}");
    assert!(t.contains("and 0 request logs"), "{t}");
    assert!(other.exists(), "{t}");
    drop(f);
    let o = p.morsd(&["cache", "gc", "--specs", "specs"]);
    let t = text(&o);
    assert!(
        t.contains("and 1 request log") && !other.exists() && kept.exists(),
        "{t}"
    );
}
