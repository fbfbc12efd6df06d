//! Empty and smallest inputs through the binary: a real-task spec whose only rationale file has
//! no usable line (once a segmentation fault in the score stage), what generate reports about
//! each file (printed and in `summary.md`), and `data.strict`.

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;

/// The first `n` SVAMP training questions of the MCC-KD split, with their gold answers.
fn svamp_questions(n: usize) -> Vec<(String, String)> {
    let p = data_root().join("svamp-gpt35-multi/train.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v.as_array().unwrap()[..n]
        .iter()
        .map(|x| {
            (
                x["instruction"].as_str().unwrap().to_string(),
                x["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn spec(extra_data: &str) -> String {
    format!(
        r#"
[experiment]
name = "tiny"
[data]
task = "svamp"
max_train = 5
max_test = 3
max_validation = 2
{extra_data}
[teacher]
kind = "file"
sources = []
jsonl = ["data/mine.jsonl"]
[student]
d_model = 32
layers = 1
heads = 2
max_seq_len = 128
vocab_size = 320
[score]
warmup_steps = 2
batch_size = 8
[select]
strategy = "random"
per_question = 2
[train]
steps = 2
batch_size = 4
warmup_steps = 1
eval_every = 2
[eval]
max_new_tokens = 4
batch_size = 8
"#
    )
}

fn project(extra_data: &str, lines: &[String]) -> Project {
    let p = Project::new(&spec(extra_data));
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::write(p.path().join("data/mine.jsonl"), lines.join("\n") + "\n").unwrap();
    p
}

fn run(p: &Project) -> (std::process::Output, String) {
    let o = p
        .cmd()
        .env("MORSD_DATA", data_root())
        .args(["run", p.spec().to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.signal(), None, "killed by a signal: {t}");
    assert!(!t.contains("panicked"), "{t}");
    (o, t)
}

/// The issue's case: one line with an unknown question, one that is not JSON, one whose
/// rationale is a number. It used to die with SIGSEGV (a zero-size matrix in gemm) in score.
#[test]
fn no_usable_rationale_is_a_clear_error_not_a_crash() {
    let p = project(
        "",
        &[
            r#"{"question": "What is the airspeed of an unladen swallow?", "rationale": "It is 11 m/s. The answer is 11."}"#.into(),
            "not json at all".into(),
            r#"{"rationale": 5}"#.into(),
        ],
    );
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for needle in [
        "no usable training rationale",
        "data/mine.jsonl: rows 1, joined to training 0, held out (validation/test) 0, unmatched 1, unparsed 2",
        "line 1: question not in the task",
        "line 2:",
    ] {
        assert!(t.contains(needle), "expected `{needle}` in: {t}");
    }
    // Nothing was published for the failed stage.
    let gen_entries = p.path().join("cache/entries/generate");
    assert!(
        !gen_entries.exists() || std::fs::read_dir(&gen_entries).unwrap().count() == 0,
        "{t}"
    );
}

/// Two good lines and one bad: the run finishes, and the counts and the bad line's reason
/// are printed after generate and written into summary.md.
#[test]
fn generate_reports_each_file_and_summary_keeps_it() {
    let qs = svamp_questions(5);
    let good = |i: usize| {
        serde_json::json!({"question": qs[i].0, "rationale": format!("We work it out. The answer is {}.", qs[i].1)})
            .to_string()
    };
    let lines = vec![good(0), "{broken".into(), good(1)];
    let p = project("", &lines);
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let line = "data/mine.jsonl: rows 2, joined to training 2, held out (validation/test) 0, unmatched 0, unparsed 1; line 2:";
    assert!(t.contains(line), "expected `{line}` in: {t}");
    let summary = std::fs::read_to_string(p.path().join("results/tiny/summary.md")).unwrap();
    assert!(summary.contains(line), "{summary}");
}

/// Rows joined to questions that `data.max_train` cut away are not faults of the file.
#[test]
fn rows_of_cut_questions_are_explained_and_strict_accepts_them() {
    let qs = svamp_questions(8);
    let row = |i: usize| {
        serde_json::json!({"question": qs[i].0, "rationale": format!("So it is {}. The answer is {}.", qs[i].1, qs[i].1)})
            .to_string()
    };
    // Question 7 is beyond max_train = 5 (and not in dev/test: it is a training question).
    let p = project("strict = true", &[row(0), row(1), row(7)]);
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("unmatched 1 (1 of them questions cut by data.max_*)"),
        "{t}"
    );
}

/// With `data.strict = true`, an unparsed or an unmatched row stops the run naming the
/// file and the line.
#[test]
fn strict_makes_bad_rows_errors() {
    let qs = svamp_questions(5);
    let good =
        serde_json::json!({"question": qs[0].0, "rationale": "The answer is 1."}).to_string();
    let p = project("strict = true", &[good.clone(), "{broken".into()]);
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("data/mine.jsonl: line 2:") && t.contains("data.strict"),
        "{t}"
    );
    let unknown =
        serde_json::json!({"question": "Nothing like any SVAMP question.", "rationale": "The answer is 1."})
            .to_string();
    let p = project("strict = true", &[good, unknown]);
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("data/mine.jsonl: line 2: its question is not one of task svamp's questions"),
        "{t}"
    );
}

/// `data.max_train = 0` and `data.max_test = 0` leave a split empty: a clear error.
#[test]
fn empty_splits_are_clear_errors() {
    let qs = svamp_questions(1);
    let good =
        serde_json::json!({"question": qs[0].0, "rationale": "The answer is 1."}).to_string();
    for (set, needle) in [
        (
            "data.max_train=0",
            "has no training question (data.max_train = 0)",
        ),
        (
            "data.max_test=0",
            "has no test question (data.max_test = 0)",
        ),
    ] {
        let p = project("", std::slice::from_ref(&good));
        let o = p
            .cmd()
            .env("MORSD_DATA", data_root())
            .args(["run", p.spec().to_str().unwrap(), "--set", set])
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.signal(), None, "{t}");
        assert!(matches!(o.status.code(), Some(1 | 2)), "{t}");
        assert!(t.contains(needle), "expected `{needle}` in: {t}");
    }
}

/// Two rationale files of one name in different folders are two inputs: a change to either
/// makes generate stale (their keys once collided, and the first file's hash was lost).
#[test]
fn same_named_jsonl_files_are_separate_inputs() {
    let qs = svamp_questions(2);
    let row = |i: usize| {
        serde_json::json!({"question": qs[i].0, "rationale": format!("The answer is {}.", qs[i].1)})
            .to_string()
    };
    let p = Project::new(&spec("").replace(
        "jsonl = [\"data/mine.jsonl\"]",
        "jsonl = [\"a/mine.jsonl\", \"b/mine.jsonl\"]",
    ));
    for d in ["a", "b"] {
        std::fs::create_dir_all(p.path().join(d)).unwrap();
        std::fs::write(p.path().join(d).join("mine.jsonl"), row(0) + "\n").unwrap();
    }
    let plan = |p: &Project| {
        let o = p
            .cmd()
            .env("MORSD_DATA", data_root())
            .args(["plan", p.spec().to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        text(&o)
            .lines()
            .find(|l| l.starts_with("generate"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let before = plan(&p);
    std::fs::write(p.path().join("a/mine.jsonl"), row(1) + "\n").unwrap();
    assert_ne!(
        plan(&p),
        before,
        "a change to the first file must change the key"
    );
}

/// A lenient entry never answers a strict run: `data.strict = true` is in the generate key.
#[test]
fn strict_after_a_lenient_run_still_checks() {
    let qs = svamp_questions(2);
    let good =
        serde_json::json!({"question": qs[0].0, "rationale": "The answer is 1."}).to_string();
    let p = project("", &[good, "{broken".into()]);
    let (o, t) = run(&p);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let o = p
        .cmd()
        .env("MORSD_DATA", data_root())
        .args([
            "run",
            p.spec().to_str().unwrap(),
            "--set",
            "data.strict=true",
        ])
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("data/mine.jsonl: line 2:"), "{t}");
}
