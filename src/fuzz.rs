//! Fuzz targets: one function per parser of user-supplied input, each taking arbitrary bytes.
//!
//! The cargo-fuzz crate in `fuzz/` calls these from `fuzz_targets/<name>.rs`, and
//! `tests/fuzz_inputs.rs` runs them on proptest inputs and on every file of `fuzz/corpus/`.
//! Parsers that read files get the bytes written to a file in a fresh temporary folder.
//!
//! A target never panics on its own account: a panic is a bug found. Besides "no panic, no
//! hang", each target asserts what the error paths promise:
//! - every error about a file is a user error (exit 2) whose message names the file's path;
//! - a JSON, TOML or UTF-8 error also says the line;
//! - line numbers a parser reports lie within the file.
//!
//! Byte layouts (so that seed corpora can be written by hand):
//! - [`spec_toml`]: the spec file, then NUL-separated extra parts: `$NAME=VALUE` is an
//!   environment variable (see [`crate::spec::resolve::load_with_env`]), anything else a
//!   `--set` argument.
//! - [`mcc_kd`], [`fine_tune_cot`], [`zscot_log`], [`jsonl`]: the whole input is the file.
//! - [`dsbs`]: NUL-separated parts, one `llm/train_CoT_<i>.json` chunk file each.
//! - [`benchmark`]: byte 0 picks the loader (a task's benchmark files, or a task × split
//!   scheme), byte 1 the validation size, the rest NUL-separated parts, one per file read.
//! - [`answer`]: byte 0 picks the answer type, byte 1 the number of choices, the rest is
//!   NUL-separated: the text, then multiple-choice options.

use crate::answer::{self, AnswerType};
use crate::data::formats::{self, Row};
use crate::data::registry::{self, SplitScheme, TaskDef};
use crate::data::{sources, tasks};
use crate::error::{Error, Result};
use crate::resolve;
use crate::run::LoadedSpec;
use std::path::{Path, PathBuf};

/// At most this many NUL-separated parts are used (bounded work per input).
const MAX_PARTS: usize = 16;

fn parts(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0).take(MAX_PARTS)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh temporary folder (removed when dropped); `None` if the system has none to give,
/// which is not the parser's fault.
fn scratch() -> Option<tempfile::TempDir> {
    tempfile::Builder::new().prefix("morsd-fuzz").tempdir().ok()
}

fn write(path: &Path, data: &[u8]) -> bool {
    path.parent()
        .is_none_or(|p| std::fs::create_dir_all(p).is_ok())
        && std::fs::write(path, data).is_ok()
}

/// The checks every error about the file (or folder) `path` must pass.
pub fn check_error(e: &Error, path: &Path) {
    check_error_any(e, std::slice::from_ref(&path.to_path_buf()));
}

/// [`check_error`] for an error about one of several files: it must name one of them.
pub fn check_error_any(e: &Error, paths: &[PathBuf]) {
    let msg = e.to_string();
    assert!(
        e.is_user_error(),
        "an error about input is not a user error (exit 2): {msg}"
    );
    assert!(
        paths.iter().any(|p| msg.contains(&p.display().to_string())),
        "the error names none of {paths:?}: {msg}"
    );
    for what in ["not JSON", "TOML parse error", "not valid UTF-8"] {
        if msg.contains(what) {
            assert!(
                msg.contains("line "),
                "a {what} error without its line: {msg}"
            );
        }
    }
}

fn checked_any<T>(paths: &[PathBuf], r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error_any(&e, paths);
            None
        }
    }
}

fn checked<T>(path: &Path, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(&e, path);
            None
        }
    }
}

/// How many lines `data` has as text (what a 1-based line number may be at most).
fn line_count(data: &[u8]) -> usize {
    String::from_utf8_lossy(data).lines().count().max(1)
}

/// What the pipeline does with parsed rows: normalise each rationale and its answer, make the
/// join key of its question.
fn use_rows(rows: &[Row], kind: AnswerType) {
    for r in rows {
        let _ = crate::teacher::normalise(&r.rationale, r.answer.as_deref(), kind, &[]);
        if let Some(q) = &r.question {
            let _ = tasks::join_key(q);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The spec loader.

/// Whether input could make the spec loader read a device or an endless file (`/dev/zero`
/// as `student.format`, `/proc/…`): template and weight paths are opened as given, which is
/// right for users and wrong for a fuzzer. TOML escapes that could spell such a path (`\u`,
/// `\U`, `\x`, line continuations) count too.
fn may_name_a_device(data: &[u8]) -> bool {
    let has = |n: &[u8]| data.windows(n.len()).any(|w| w == n);
    has(b"/dev") || has(b"/proc") || has(b"/sys") || {
        data.windows(2).any(|w| {
            w[0] == b'\\' && matches!(w[1], b'u' | b'U' | b'x' | b' ' | b'\t' | b'\r' | b'\n')
        })
    }
}

/// Loads `path` with `--set` arguments and `MORSD_*` pairs and checks the outcome: at least
/// one and at most [`crate::run::MAX_RUNS`] runs, or a user error naming the spec file (or, for a
/// malformed `--set`, the argument).
pub fn check_spec(path: &Path, sets: &[String], env: &[(String, String)]) -> Option<LoadedSpec> {
    match resolve::load_with_env(path, sets, env) {
        Ok(s) => {
            assert!(
                !s.runs.is_empty() && s.runs.len() <= crate::run::MAX_RUNS,
                "{} runs",
                s.runs.len()
            );
            for r in &s.runs {
                assert!(
                    r.spec.train.steps.is_some() != r.spec.train.epochs.is_some(),
                    "{}: the training budget is not exactly one of train.steps and train.epochs",
                    r.label
                );
            }
            Some(s)
        }
        Err(Error::BadOverride { arg, message }) => {
            assert!(
                sets.contains(&arg),
                "--set error for an argument not given: {arg}: {message}"
            );
            None
        }
        Err(e) => {
            check_error(&e, path);
            None
        }
    }
}

/// Fuzz target `spec_toml`: the spec loader on a file, `--set` arguments and `MORSD_*`
/// variables (layout in the module docs).
pub fn spec_toml(data: &[u8]) {
    if may_name_a_device(data) {
        return;
    }
    let mut it = parts(data);
    let file = it.next().unwrap_or_default();
    let (mut sets, mut env) = (Vec::new(), Vec::new());
    for p in it {
        let s = lossy(p);
        match s.strip_prefix('$') {
            Some(kv) => {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                env.push((k.to_string(), v.to_string()));
            }
            None => sets.push(s),
        }
    }
    let Some(dir) = scratch() else { return };
    let path = dir.path().join("spec.toml");
    if write(&path, file) {
        check_spec(&path, &sets, &env);
    }
}

// ---------------------------------------------------------------------------------------------
// Rationale formats.

/// MCC-KD JSON at `path`.
pub fn check_mcc_kd(path: &Path) {
    if let Some(rows) = checked(path, formats::mcc_kd::read(path)) {
        use_rows(&rows, AnswerType::Number);
    }
}

/// Fine-tune-CoT completion JSON at `path`.
pub fn check_fine_tune_cot(path: &Path) {
    if let Some(rows) = checked(path, formats::fine_tune_cot::read(path)) {
        use_rows(&rows, AnswerType::Number);
    }
}

/// A distilling-step-by-step `llm/` folder at `dir`.
pub fn check_dsbs(dir: &Path) {
    if let Some(rows) = checked(dir, formats::dsbs::read(dir)) {
        use_rows(&rows, AnswerType::Number);
    }
}

/// A zero-shot-CoT log at `path` of `lines` lines.
pub fn check_zscot_log(path: &Path, lines: usize) {
    if let Some(p) = checked(path, formats::zscot_log::parse_file(path)) {
        for it in &p.items {
            assert!((1..=lines).contains(&it.line), "item at line {}", it.line);
            let _ = answer::extract_tail(AnswerType::Number, &it.answer_text, &[]);
            let _ = tasks::join_key(&it.question);
        }
        for (l, _) in &p.skipped {
            assert!((1..=lines).contains(l), "skipped block at line {l}");
        }
    }
}

/// A generic JSONL file at `path` of `lines` lines: parsed, then joined to a two-question task
/// the way `teacher.jsonl` files are.
pub fn check_jsonl(path: &Path, lines: usize) {
    let Some((rows, bad)) = checked(path, formats::jsonl::read(path)) else {
        return;
    };
    for (l, why) in &bad {
        assert!((1..=lines).contains(l), "bad line {l} of {lines}: {why}");
    }
    for r in &rows {
        assert!((1..=lines).contains(&r.line), "row at line {}", r.line);
    }
    let task = registry::task("svamp").expect("svamp is a registry task");
    let example = |split: &str, i: usize, q: &str, a: &str| crate::task::Example {
        id: format!("{split}-{i}"),
        question: q.into(),
        answer: a.into(),
        options: vec![],
        problem: None,
    };
    let data = crate::task::TaskData {
        task: task.name.into(),
        answer: task.answer,
        train: vec![example("train", 0, "How many apples?", "3")],
        validation: vec![example("val", 0, "How many pears?", "4")],
        test: vec![example("test", 0, "How many plums?", "5")],
    };
    let wanted = [sources::Wanted::Jsonl(path.to_path_buf())];
    for strict in [false, true] {
        let opts = sources::LoadOptions {
            strict,
            ..Default::default()
        };
        match sources::load(task, &data, Path::new("."), &wanted, opts) {
            Ok(pool) => {
                for r in pool.train.iter().chain(&pool.held_out) {
                    assert!(!r.text.is_empty());
                }
            }
            Err(e) => {
                check_error(&e, path);
                if strict || rows.is_empty() {
                    assert!(e.to_string().contains("line "), "{e}");
                }
            }
        }
    }
}

fn one_file(name: &str, data: &[u8], check: impl FnOnce(&Path)) {
    let Some(dir) = scratch() else { return };
    let path = dir.path().join(name);
    if write(&path, data) {
        check(&path);
    }
}

/// Fuzz target `mcc_kd`: [`formats::mcc_kd`] on a file.
pub fn mcc_kd(data: &[u8]) {
    one_file("train.json", data, check_mcc_kd);
}

/// Fuzz target `fine_tune_cot`: [`formats::fine_tune_cot`] on a file.
pub fn fine_tune_cot(data: &[u8]) {
    one_file("D_svamp.json", data, check_fine_tune_cot);
}

/// Fuzz target `zscot_log`: [`formats::zscot_log`] on a file.
pub fn zscot_log(data: &[u8]) {
    one_file("svamp_zero_shot_cot.log", data, |p| {
        check_zscot_log(p, line_count(data))
    });
}

/// Fuzz target `jsonl`: [`formats::jsonl`] and the join of its rows on a file.
pub fn jsonl(data: &[u8]) {
    one_file("mine.jsonl", data, |p| check_jsonl(p, line_count(data)));
}

/// Fuzz target `dsbs`: [`formats::dsbs`] on a folder of chunk files, one per NUL-separated part.
pub fn dsbs(data: &[u8]) {
    let Some(dir) = scratch() else { return };
    let llm = dir.path().join("llm");
    for (i, p) in parts(data).enumerate() {
        if !write(&llm.join(format!("train_CoT_{i}.json")), p) {
            return;
        }
    }
    check_dsbs(&llm);
}

/// Fuzz target `custom`: a custom task's question files ([`crate::data::custom::load`]). Byte 0
/// picks the answer type, byte 1 whether there is a validation file; the rest is the training,
/// test and (optional) validation file, NUL-separated. An error must name one of the files.
pub fn custom(data: &[u8]) {
    use crate::data::custom::{ANSWERS, CustomTask, load};
    let (Some(&kind), Some(&with_val)) = (data.first(), data.get(1)) else {
        return;
    };
    let Some(dir) = scratch() else { return };
    let mut files = parts(&data[2..]);
    let names = ["train.jsonl", "test.jsonl", "val.jsonl"];
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.path().join(n)).collect();
    for p in &paths {
        if !write(p, files.next().unwrap_or_default()) {
            return;
        }
    }
    let task = CustomTask {
        answer: ANSWERS[usize::from(kind) % ANSWERS.len()].to_string(),
        train: paths[0].clone(),
        validation: (with_val % 2 == 1).then(|| paths[2].clone()),
        test: paths[1].clone(),
    };
    if let Some(d) = checked_any(&paths, load(&task, 2)) {
        for e in d.train.iter().chain(&d.validation).chain(&d.test) {
            let _ = crate::answer::extract_with_options(d.answer, &e.question, &e.options);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmark loaders.

/// What [`benchmark`]'s byte 0 can pick: each task's benchmark files alone, then every task ×
/// split scheme.
pub fn benchmark_loaders() -> Vec<(&'static TaskDef, Option<SplitScheme>)> {
    let mut v: Vec<(&'static TaskDef, Option<SplitScheme>)> =
        registry::TASKS.iter().map(|t| (t, None)).collect();
    for t in registry::TASKS {
        v.extend(t.splits.iter().map(|&s| (t, Some(s))));
    }
    v
}

/// The files a loader reads, in the order [`benchmark`] fills them.
pub fn benchmark_files(task: &TaskDef, scheme: Option<SplitScheme>, root: &Path) -> Vec<PathBuf> {
    match scheme {
        None => task.files.iter().map(|f| root.join(f)).collect(),
        Some(s) => tasks::split_files(task, s, root),
    }
}

/// Runs a loader on the files under `root` and checks the outcome: errors name one of the
/// files it reads; a multiple-choice answer is a letter.
pub fn check_benchmark(
    task: &TaskDef,
    scheme: Option<SplitScheme>,
    root: &Path,
    validation: usize,
) {
    let files = benchmark_files(task, scheme, root);
    let check = |answer: &str, options: &[String], question: &str| {
        if let AnswerType::Choice(_) = task.answer
            && !options.is_empty()
        {
            let c = answer.chars().next().unwrap_or(' ');
            assert!(
                answer.len() == 1 && c.is_ascii_uppercase(),
                "choice answer {answer:?}"
            );
        }
        let _ = tasks::join_key(question);
    };
    match scheme {
        None => {
            if let Some(items) = checked_any(&files, tasks::load_items(task, root)) {
                for it in &items {
                    check(&it.answer, &it.options, &it.question);
                }
            }
        }
        Some(s) => {
            if let Some(d) = checked_any(&files, tasks::load(task, s, root, validation)) {
                for e in d.train.iter().chain(&d.validation).chain(&d.test) {
                    check(&e.answer, &e.options, &e.question);
                }
            }
        }
    }
}

/// Fuzz target `benchmark`: the benchmark loaders of [`tasks`] (layout in the module docs).
pub fn benchmark(data: &[u8]) {
    let loaders = benchmark_loaders();
    let (task, scheme) = loaders[usize::from(data.first().copied().unwrap_or(0)) % loaders.len()];
    let validation = usize::from(data.get(1).copied().unwrap_or(0));
    let Some(dir) = scratch() else { return };
    let root = dir.path();
    let files = benchmark_files(task, scheme, root);
    let mut it = parts(data.get(2..).unwrap_or_default());
    for f in &files {
        if !write(f, it.next().unwrap_or_default()) {
            return;
        }
    }
    check_benchmark(task, scheme, root, validation);
}

// ---------------------------------------------------------------------------------------------
// Answer extraction.

/// The answer type byte 0 picks (`n` for multiple choice).
pub fn answer_type(b: u8, n: u8) -> AnswerType {
    match b % 5 {
        0 => AnswerType::Number,
        1 => AnswerType::YesNo,
        2 => AnswerType::Choice(n),
        3 => AnswerType::Text,
        _ => AnswerType::Date,
    }
}

/// Every answer function on `text` (with `options` for multiple choice), and what they promise:
/// a split's reasoning is a prefix of the text, a number answer is a normalised number equal to
/// itself, a choice answer is one capital letter.
pub fn check_answer(kind: AnswerType, text: &str, options: &[String]) {
    let _ = kind.name();
    let (body, tail) = answer::split_answer(text);
    assert!(text.starts_with(body));
    if let Some(t) = tail {
        assert!(text.ends_with(t));
    }
    assert_eq!(answer::after_trigger(text), tail);
    for got in [
        answer::extract(kind, text),
        answer::extract_with_options(kind, text, options),
        answer::extract_tail(kind, text, options),
    ] {
        let Some(a) = got else { continue };
        match kind {
            AnswerType::Number => {
                assert_eq!(answer::normalise_number(&a).as_deref(), Some(a.as_str()));
                assert!(answer::matches(kind, Some(&a), &a), "{a:?} != itself");
            }
            AnswerType::Choice(_) => {
                assert!(
                    a.len() == 1 && a.chars().all(|c| c.is_ascii_uppercase()),
                    "choice {a:?}"
                );
            }
            _ => assert!(answer::matches(kind, Some(&a), &a)),
        }
    }
    let _ = answer::normalise_number(text);
    let _ = answer::eval_expression(text);
    let _ = answer::matches(kind, Some(text), text);
    let _ = crate::teacher::normalise(text, None, kind, options);
    let _ = crate::teacher::normalise(text, options.first().map(String::as_str), kind, options);
}

/// Fuzz target `answer`: answer extraction (layout in the module docs).
pub fn answer(data: &[u8]) {
    let kind = answer_type(
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(5),
    );
    let mut it = data.get(2..).unwrap_or_default().split(|&b| b == 0);
    let text = lossy(it.next().unwrap_or_default());
    let options: Vec<String> = it.take(256).map(lossy).collect();
    check_answer(kind, &text, &options);
}
