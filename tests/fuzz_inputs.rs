//! The fuzz targets of `morsd::fuzz` in the normal test suite: bounded proptest runs on
//! arbitrary and mutated inputs, every seed of `fuzz/corpus/*/` (so the fuzzers' inputs run in
//! CI), truncated and non-UTF-8 files, one 100 MB line, and the promise of every parser's
//! error: it names the file, and the line where there is one.

use morsd::fuzz;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

/// Every fuzz target by its name (= its folder under `fuzz/corpus/`).
const TARGETS: &[(&str, Target)] = &[
    ("spec_toml", fuzz::spec_toml),
    ("mcc_kd", fuzz::mcc_kd),
    ("fine_tune_cot", fuzz::fine_tune_cot),
    ("dsbs", fuzz::dsbs),
    ("zscot_log", fuzz::zscot_log),
    ("jsonl", fuzz::jsonl),
    ("benchmark", fuzz::benchmark),
    ("answer", fuzz::answer),
    ("custom", fuzz::custom),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// The seed files of one target, sorted.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir().join(target);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// `cases` per property (`PROPTEST_CASES` raises it for a longer local run).
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.

#[test]
fn every_corpus_file_replays_through_its_target() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(dirs, names, "fuzz/corpus/ folders vs fuzz targets");
    for (name, run) in TARGETS {
        let s = seeds(name);
        assert!(!s.is_empty(), "no seed for {name}");
        for (path, bytes) in s {
            assert!(bytes.len() <= 4096, "{}: keep seeds small", path.display());
            run(&bytes);
        }
    }
}

#[test]
fn fuzz_targets_are_registered_in_the_fuzz_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{name}.rs"))).unwrap();
        assert!(
            src.contains(&format!("morsd::fuzz::{name}(data)")),
            "{name}.rs"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} in fuzz/Cargo.toml"
        );
    }
}

/// Every prefix of every seed at a stride of a few bytes (and the last few bytes one by one).
#[test]
fn truncated_corpus_files() {
    for (name, run) in TARGETS {
        for (_, bytes) in seeds(name) {
            let n = bytes.len();
            let stride = (n / 48).max(3);
            let mut cuts: Vec<usize> = (0..n).step_by(stride).collect();
            cuts.extend(n.saturating_sub(4)..n);
            for cut in cuts {
                run(&bytes[..cut]);
            }
        }
    }
}

/// A byte that is not UTF-8 at the start, middle and end of every seed, and a UTF-8
/// sequence cut in half.
#[test]
fn invalid_utf8_in_corpus_files() {
    for (name, run) in TARGETS {
        for (_, bytes) in seeds(name) {
            for at in [0, bytes.len() / 2, bytes.len()] {
                for bad in [
                    &[0xff][..],
                    &[0xc3][..],
                    &[0xe2, 0x82][..],
                    &[0xed, 0xa0, 0x80][..],
                ] {
                    let mut b = bytes.clone();
                    b.splice(at..at, bad.iter().copied());
                    run(&b);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Proptest: arbitrary bytes, mutated seeds, and structured text per target.

/// A seed of `name` with a few bytes replaced, inserted or removed.
fn mutated(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let s: Vec<Vec<u8>> = seeds(name).into_iter().map(|(_, b)| b).collect();
    (
        prop::sample::select(s),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(|(mut b, edits)| {
            for (i, byte, op) in edits {
                let at = if b.is_empty() { 0 } else { i.index(b.len()) };
                match op {
                    0 if !b.is_empty() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if !b.is_empty() => {
                        b.remove(at);
                    }
                    _ => b.push(byte),
                }
            }
            b
        })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

/// Lines of a spec built from real keys, values and syntax fragments (arbitrary bytes almost
/// never get past the TOML parser).
fn spec_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        prop::sample::select(vec![
            "[experiment]",
            "[data]",
            "[teacher]",
            "[student]",
            "[score]",
            "[select]",
            "[train]",
            "[eval]",
            "[sweep]",
            "[executor]",
            "[[data]]",
            "[select",
        ])
        .prop_map(String::from),
        (
            prop::sample::select(vec![
                "name",
                "seeds",
                "output",
                "task",
                "split",
                "root",
                "train",
                "steps",
                "epochs",
                "kind",
                "sources",
                "jsonl",
                "samples",
                "wrong_rate",
                "format",
                "weights",
                "d_model",
                "heads",
                "layers",
                "vocab_size",
                "max_seq_len",
                "lora_rank",
                "rd_model",
                "per_question",
                "strategy",
                "max_total",
                "dedup_threshold",
                "lr",
                "grad_accum",
                "batch_size",
                "\"select.per_question\"",
                "\"select.strategy\"",
                "\"experiment.seeds\"",
                "\"train.lr\"",
                "\"train.epochs\"",
                "bogus",
            ]),
            prop::sample::select(vec![
                "0",
                "1",
                "-1",
                "3",
                "1e400",
                "nan",
                "inf",
                "0.5",
                "18446744073709551616",
                "\"morsd\"",
                "\"svamp\"",
                "\"arithmetic\"",
                "\"llama\"",
                "\"openai\"",
                "\"file\"",
                "\"x.jinja\"",
                "\"a/b\"",
                "\"\"",
                "[]",
                "[0, 1]",
                "[1, 2, 3, 4]",
                "[\"random\", \"morsd\", \"rd-min\"]",
                "{ a = 1 }",
                "true",
                "1979-05-27T07:32:00Z",
                "[[[[1]]]]",
                "\"unterminated",
            ]),
        )
            .prop_map(|(k, v)| format!("{k} = {v}")),
        "[ -~]{0,24}",
    ];
    let extra = prop::sample::select(vec![
        "\0select.per_question=2",
        "\0select.strategy=\"rd-max\"",
        "\0train.steps=[1",
        "\0train.epochs=2",
        "\0$MORSD_TRAIN__EPOCHS=0",
        "\0=3",
        "\0a..b=1",
        "\0$MORSD_SELECT__PER_QUESTION=4",
        "\0$MORSD_SWEEP__X=[1,2]",
        "\0$morsd_experiment__seeds=[1,2]",
        "\0$MORSD_TRAIN__LR=abc",
        "\0$MORSD___=1",
        "\0$MORSD_DATA=/nowhere",
        "",
    ]);
    (
        prop::collection::vec(line, 0..16),
        prop::collection::vec(extra, 0..4),
    )
        .prop_map(|(lines, extras)| {
            let mut s = lines.join("\n");
            s.push('\n');
            s.extend(extras);
            s.into_bytes()
        })
}

/// Text for answer extraction: triggers, numbers, letters, dates and noise.
fn answer_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "The answer is ",
            "Therefore, the answer (arabic numerals) is ",
            "Therefore, among A through E, the answer is ",
            "####",
            "-->",
            "Answer:",
            "answers are",
            "(",
            ")",
            "(b)",
            "E.",
            "yes",
            "No",
            ",",
            ".",
            "/",
            "$",
            "-",
            "\n",
            " ",
            "12/31/2018",
            "13/45/0000",
            "(84 / 2)",
            "(1 / 0)",
            "(9999999999 * 9999999999 * 9999999999 * 9999999999)",
            "1,000,000",
            "0.5",
            "3/4",
            "“q”",
        ])
        .prop_map(String::from),
        "[0-9]{1,30}",
        "[ -~]{0,8}",
        "\\PC{0,4}",
    ];
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(piece, 0..24),
        prop::collection::vec("[a-z ]{0,12}", 0..8),
    )
        .prop_map(|(kind, n, pieces, options)| {
            let mut b = vec![kind, n];
            b.extend(pieces.concat().into_bytes());
            for o in options {
                b.push(0);
                b.extend(o.into_bytes());
            }
            b
        })
}

/// Every file-format target (all but `spec_toml` and `answer`, which have generators of their
/// own below) on arbitrary bytes and on mutations of its seeds: a target added to [`TARGETS`]
/// is covered here too.
#[test]
fn file_targets_on_arbitrary_and_mutated_bytes() {
    for &(name, target) in TARGETS {
        if matches!(name, "spec_toml" | "answer") {
            continue;
        }
        let mut runner = proptest::test_runner::TestRunner::new(config(256));
        runner
            .run(&prop_oneof![bytes(), mutated(name)], |b| {
                target(&b);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn spec_toml_arbitrary(b in prop_oneof![bytes(), mutated("spec_toml"), spec_text()]) {
        fuzz::spec_toml(&b);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn answer_arbitrary(b in prop_oneof![bytes(), mutated("answer"), answer_text()]) {
        fuzz::answer(&b);
    }

    #[test]
    fn answer_on_arbitrary_strings(kind in any::<u8>(), n in any::<u8>(), text in "\\PC{0,200}",
                                   options in prop::collection::vec("\\PC{0,20}", 0..40)) {
        fuzz::check_answer(fuzz::answer_type(kind, n), &text, &options);
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted cases.

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

fn has_all(msg: &str, parts: &[&str]) -> bool {
    parts.iter().all(|p| msg.contains(p))
}

#[test]
fn benchmark_jsonl_bad_line_3_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"question": "Q?", "answer": "so #### 4"}"#;
    let text = format!("{good}\n{good}\n{{\"question\": oops\n{good}\n");
    let train = write(dir.path(), "gsm8k/train.jsonl", text.as_bytes());
    write(dir.path(), "gsm8k/test.jsonl", good.as_bytes());
    let task = morsd::data::registry::task("gsm8k").unwrap();
    let e = morsd::data::tasks::load_items(task, dir.path()).unwrap_err();
    let msg = e.to_string();
    assert!(e.is_user_error());
    assert!(
        has_all(&msg, &[&train.display().to_string(), "line 3"]),
        "{msg}"
    );
}

#[test]
fn rationale_jsonl_bad_line_3_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "mine.jsonl", b"\n\n{oops\n[1]\n");
    let (rows, bad) = morsd::data::formats::jsonl::read(&p).unwrap();
    assert!(rows.is_empty());
    assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 4]);
    // Joined as a `teacher.jsonl` source: no readable line is an error naming file and line.
    let task = morsd::data::registry::task("svamp").unwrap();
    let example = |i: usize| morsd::task::Example {
        id: format!("train-{i}"),
        question: format!("Question {i}?"),
        answer: "1".into(),
        options: vec![],
        problem: None,
    };
    let data = morsd::task::TaskData {
        task: "svamp".into(),
        answer: task.answer,
        train: vec![example(0), example(1)],
        validation: vec![],
        test: vec![],
    };
    let wanted = [morsd::data::sources::Wanted::Jsonl(p.clone())];
    let msg = morsd::data::sources::load(task, &data, dir.path(), &wanted, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3"]),
        "{msg}"
    );
    // With `data.strict`, one bad line 3 among good ones is an error naming file and line.
    write(
        dir.path(),
        "mine.jsonl",
        b"{\"id\": \"train-0\", \"rationale\": \"r\"}\n{\"id\": \"train-1\", \"rationale\": \"s\"}\n{oops\n",
    );
    let strict = morsd::data::sources::LoadOptions {
        strict: true,
        ..Default::default()
    };
    let msg = morsd::data::sources::load(task, &data, dir.path(), &wanted, strict)
        .unwrap_err()
        .to_string();
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3"]),
        "{msg}"
    );
}

#[test]
fn json_formats_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = b"[\n  {\"instruction\": \"q\",\n   \"output\": [\"r\"] oops\n";
    type Reader = fn(&Path) -> morsd::Result<()>;
    let cases: [(&str, Reader); 2] = [
        ("train.json", |p| {
            morsd::data::formats::mcc_kd::read(p).map(drop)
        }),
        ("D_svamp.json", |p| {
            morsd::data::formats::fine_tune_cot::read(p).map(drop)
        }),
    ];
    for (name, read) in cases {
        let p = write(dir.path(), name, broken);
        let msg = read(&p).unwrap_err().to_string();
        assert!(
            has_all(&msg, &[&p.display().to_string(), "line 3"]),
            "{msg}"
        );
    }
    let llm = dir.path().join("llm");
    let p = write(&llm, "train_CoT_0.json", broken);
    let msg = morsd::data::formats::dsbs::read(&llm)
        .unwrap_err()
        .to_string();
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3"]),
        "{msg}"
    );
}

#[test]
fn invalid_utf8_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"{\"a\": 1}\n{\"b\": 2}\n{\"c\": \"\xff\"}\n";
    let p = write(dir.path(), "x.jsonl", text);
    let msg = morsd::data::formats::jsonl::read(&p)
        .unwrap_err()
        .to_string();
    assert!(
        has_all(
            &msg,
            &[
                &p.display().to_string(),
                "line 3, column 8",
                "not valid UTF-8"
            ]
        ),
        "{msg}"
    );
    let p = write(dir.path(), "log.log", b"Q: a\n\nQ: \xc3\x28\n");
    let msg = morsd::data::formats::zscot_log::parse_file(&p)
        .unwrap_err()
        .to_string();
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3, column 4"]),
        "{msg}"
    );
    let p = write(dir.path(), "benchmarks/SVAMP/SVAMP.json", b"[\n\n\xff]");
    let task = morsd::data::registry::task("svamp").unwrap();
    let msg = morsd::data::tasks::load_items(task, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3"]),
        "{msg}"
    );
}

#[test]
fn spec_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // TOML syntax error on line 3.
    let p = write(
        dir.path(),
        "a.toml",
        b"[select]\nper_question = 3\nstrategy = = 1\n",
    );
    let e = morsd::resolve::load(&p, &[]).unwrap_err();
    let msg = e.to_string();
    assert!(e.is_user_error());
    assert!(
        has_all(&msg, &[&p.display().to_string(), "line 3"]),
        "{msg}"
    );
    // A byte that is not UTF-8 on line 3: a syntax error (exit 2), not a read failure.
    let p = write(
        dir.path(),
        "b.toml",
        b"[select]\nper_question = 3\nstrategy = \"\xfe\"\n",
    );
    let e = morsd::resolve::load(&p, &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, morsd::Error::SpecSyntax { .. }) && e.is_user_error(),
        "{e:?}"
    );
    assert!(
        has_all(
            &msg,
            &[
                &p.display().to_string(),
                "line 3, column 13",
                "not valid UTF-8"
            ]
        ),
        "{msg}"
    );
    // A bad value on line 3 (after the merge).
    let p = write(dir.path(), "c.toml", b"[select]\n\nper_question = 0\n");
    let msg = morsd::resolve::load(&p, &[]).unwrap_err().to_string();
    assert!(
        has_all(
            &msg,
            &[&p.display().to_string(), "line 3", "select.per_question"]
        ),
        "{msg}"
    );
}

#[test]
fn a_sweep_too_large_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // 2^40 points: without a bound this would never finish.
    let keys = [
        "select.per_question",
        "select.dedup_ngram",
        "select.dedup_threshold",
        "train.steps",
        "train.batch_size",
        "train.eval_every",
        "train.lr",
        "eval.max_new_tokens",
        "eval.batch_size",
        "score.ngram",
    ];
    let mut text = String::from("[sweep]\n");
    for k in keys {
        let v = if k.ends_with("lr") || k.ends_with("threshold") {
            "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65]"
        } else {
            "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]"
        };
        text.push_str(&format!("\"{k}\" = {v}\n"));
    }
    let p = write(dir.path(), "big.toml", text.as_bytes());
    let t = std::time::Instant::now();
    let e = morsd::resolve::load(&p, &[]).unwrap_err();
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    let msg = e.to_string();
    assert!(
        e.is_user_error() && has_all(&msg, &[&p.display().to_string(), "runs"]),
        "{msg}"
    );
    // So is a seed list of more than the bound.
    let seeds: Vec<String> = (0..=morsd::run::MAX_RUNS).map(|i| i.to_string()).collect();
    let p = write(
        dir.path(),
        "seeds.toml",
        format!("[experiment]\nseeds = [{}]\n", seeds.join(",")).as_bytes(),
    );
    let msg = morsd::resolve::load(&p, &[]).unwrap_err().to_string();
    assert!(msg.contains("experiment.seeds"), "{msg}");
}

/// One 100 MB line through every file parser and answer extraction: no panic, no hang.
#[test]
fn one_100mb_line() {
    const LEN: usize = 100 * 1024 * 1024;
    let t0 = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // A JSON object whose rationale is 100 MB of "1,2 " (numbers and thousands separators
    // for answer extraction), on one line.
    let mut line = Vec::with_capacity(LEN + 64);
    line.extend_from_slice(br#"{"question": "How many apples?", "rationale": ""#);
    while line.len() < LEN {
        line.extend_from_slice(b"1,2 ");
    }
    line.extend_from_slice(b"The answer is 3.\"}");
    let p = write(dir.path(), "big.jsonl", &line);
    let mut times = vec![("write", t0.elapsed())];
    let mut step = |what: &'static str, f: &dyn Fn()| {
        let t = std::time::Instant::now();
        f();
        times.push((what, t.elapsed()));
    };
    step("jsonl", &|| fuzz::check_jsonl(&p, 1));
    step("mcc_kd", &|| fuzz::check_mcc_kd(&p));
    step("fine_tune_cot", &|| fuzz::check_fine_tune_cot(&p));
    step("zscot_log", &|| fuzz::check_zscot_log(&p, 1));
    step("spec", &|| {
        fuzz::check_spec(&p, &[], &[]);
    });
    let llm = dir.path().join("llm");
    std::fs::create_dir_all(&llm).unwrap();
    std::fs::rename(&p, llm.join("train_CoT_0.json")).unwrap();
    step("dsbs", &|| fuzz::check_dsbs(&llm));
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("gsm8k")).unwrap();
    std::fs::rename(llm.join("train_CoT_0.json"), root.join("gsm8k/train.jsonl")).unwrap();
    std::fs::write(root.join("gsm8k/test.jsonl"), b"").unwrap();
    let gsm8k = morsd::data::registry::task("gsm8k").unwrap();
    step("benchmark", &|| {
        fuzz::check_benchmark(gsm8k, None, &root, 0)
    });
    let text = String::from_utf8(std::fs::read(root.join("gsm8k/train.jsonl")).unwrap()).unwrap();
    step("answer", &|| {
        fuzz::check_answer(morsd::answer::AnswerType::Number, &text, &[]);
        fuzz::check_answer(morsd::answer::AnswerType::Choice(5), &text, &[]);
    });
    let total = t0.elapsed();
    eprintln!("one 100 MB line: {times:?}, total {total:?}");
    assert!(total.as_secs() < 120, "{times:?}");
}
