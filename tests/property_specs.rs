//! A property test over small random specs: sizes 0–3, rates 0 and 1, every strategy, both
//! students (scratch, and a tiny random Llama checkpoint), synthetic and real tasks. Whatever
//! the spec, `morsd run` ends with exit 0 (and a results folder), or with a clear `error:`
//! line and exit 1 or 2 — never a signal, never a panic. Bounded in cases so CI can run it.

mod common;
#[path = "common/tiny_llama.rs"]
mod tiny_llama;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Cases per run of the suite (each one a `morsd run` of a second or so).
const CASES: u32 = 96;

/// 0 now and then (one time in eleven), else 1–3: with eight such sizes, about half the
/// cases get past validation and run the pipeline.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 10 => 1usize..=3]
}

/// A rate of 1 a third of the time, else 0.
fn rate_one() -> impl Strategy<Value = bool> {
    prop::bool::weighted(1.0 / 3.0)
}

/// The tiny Llama checkpoint (a Hugging Face folder), written once per test process.
fn tiny_llama() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let t = tiny_llama::write(dir.path(), 7, candle_core::quantized::GgmlDType::F32);
        (dir, t.hf)
    })
    .1
}

const STRATEGIES: [&str; 7] = [
    "all", "random", "correct", "dedup", "rd-min", "rd-max", "morsd",
];
const TASKS: [&str; 4] = ["arithmetic", "last-letter", "coin-flip", "svamp"];

#[derive(Debug, Clone)]
struct Case {
    task: &'static str,
    llama: bool,
    sizes: [usize; 3],
    samples: usize,
    rates: [bool; 3],
    strategy: &'static str,
    k: usize,
    max_total: Option<usize>,
    rd_untrained: bool,
    warmup_steps: usize,
    warmup_full: bool,
    steps: usize,
    batch: usize,
    max_new: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            prop::sample::select(&TASKS[..]),
            any::<bool>(),
            [size(), size(), size()],
            size(),
            [rate_one(), rate_one(), rate_one()],
            prop::sample::select(&STRATEGIES[..]),
            size(),
        ),
        (
            prop::option::of(size()),
            any::<bool>(),
            0usize..=2,
            any::<bool>(),
            1usize..=2,
            1usize..=3,
            size(),
        ),
    )
        .prop_map(
            |(
                (task, llama, sizes, samples, rates, strategy, k),
                (max_total, rd_untrained, warmup_steps, warmup_full, steps, batch, max_new),
            )| Case {
                task,
                llama,
                sizes,
                samples,
                rates,
                strategy,
                k,
                max_total,
                rd_untrained,
                warmup_steps,
                warmup_full,
                steps,
                batch,
                max_new,
            },
        )
}

fn rate(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn spec(c: &Case) -> String {
    let [n_train, n_val, n_test] = c.sizes;
    let data = if c.task == "svamp" {
        format!(
            "task = \"svamp\"\nmax_train = {n_train}\nmax_validation = {n_val}\nmax_test = {n_test}\n"
        )
    } else {
        format!(
            "task = \"{}\"\ntrain = {n_train}\nvalidation = {n_val}\ntest = {n_test}\nsteps = [1, 1]\n",
            c.task
        )
    };
    let teacher = if c.task == "svamp" {
        "kind = \"file\"\nsources = [\"gpt35-mcc-kd\"]\n".to_string()
    } else {
        format!(
            "samples = {}\nwrong_rate = {}\nflawed_rate = {}\nduplicate_rate = {}\n",
            c.samples,
            rate(c.rates[0]),
            rate(c.rates[1]),
            rate(c.rates[2])
        )
    };
    let student = if c.llama {
        format!(
            "kind = \"llama\"\nweights = {:?}\nmax_seq_len = 96\n",
            tiny_llama().display().to_string()
        )
    } else {
        "d_model = 16\nlayers = 1\nheads = 2\nmax_seq_len = 96\nvocab_size = 300\n".into()
    };
    let score = if c.llama {
        "batch_size = 4\n".to_string()
    } else {
        format!(
            "rd_model = \"{}\"\nwarmup_steps = {}\nwarmup_share = {}\nbatch_size = 4\n",
            if c.rd_untrained {
                "untrained"
            } else {
                "warmup"
            },
            c.warmup_steps,
            if c.warmup_full { 1.0 } else { 0.0 }
        )
    };
    let max_total = c
        .max_total
        .map(|m| format!("max_total = {m}\n"))
        .unwrap_or_default();
    format!(
        "[experiment]\nname = \"prop\"\n[data]\n{data}[teacher]\n{teacher}[student]\n{student}[score]\n{score}\
         [select]\nstrategy = \"{}\"\nper_question = {}\n{max_total}\
         [train]\nsteps = {}\nbatch_size = {}\nwarmup_steps = 1\neval_every = 1\n\
         [eval]\nmax_new_tokens = {}\nbatch_size = 2\n",
        c.strategy, c.k, c.steps, c.batch, c.max_new
    )
}

/// Exit codes seen, to show (and check) that the cases really run the pipeline.
static CODES: std::sync::Mutex<[usize; 3]> = std::sync::Mutex::new([0; 3]);

fn check(c: &Case) -> Result<(), TestCaseError> {
    let text_spec = spec(c);
    let p = Project::new(&text_spec);
    let o = p
        .cmd()
        .env("MORSD_DATA", data_root())
        .args(["run", p.spec().to_str().unwrap()])
        .output()
        .unwrap();
    let t = text(&o);
    let ctx = || format!("spec:\n{text_spec}\noutput:\n{t}");
    prop_assert_eq!(o.status.signal(), None, "killed by a signal; {}", ctx());
    prop_assert!(!t.contains("panicked"), "a panic; {}", ctx());
    match o.status.code() {
        Some(0) => prop_assert!(
            p.path().join("results/prop/runs.json").exists(),
            "exit 0 without results; {}",
            ctx()
        ),
        Some(1 | 2) => prop_assert!(
            t.lines().any(|l| l.starts_with("error: ") && l.len() > 12),
            "a failure without a clear error line; {}",
            ctx()
        ),
        other => prop_assert!(false, "exit {:?}; {}", other, ctx()),
    }
    if std::env::var_os("PROP_VERBOSE").is_some() && o.status.code() != Some(0) {
        eprintln!(
            "{}",
            t.lines()
                .filter(|l| l.starts_with("error") || l.starts_with("  "))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    if let Some(code @ 0..=2) = o.status.code() {
        CODES.lock().unwrap()[code as usize] += 1;
    }
    Ok(())
}

#[test]
fn small_random_specs_never_crash() {
    let mut runner = proptest::test_runner::TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 16,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| check(&c));
    if let Err(e) = result {
        panic!("{e}");
    }
    let codes = *CODES.lock().unwrap();
    eprintln!(
        "exit 0: {}, exit 1: {}, exit 2: {} (of {CASES} cases)",
        codes[0], codes[1], codes[2]
    );
    // A generator that only ever produced invalid specs would prove nothing.
    assert!(
        codes[0] >= CASES as usize / 4,
        "too few cases ran whole: {codes:?}"
    );
}

/// The edges the random cases may miss, each run once.
#[test]
fn the_smallest_edges() {
    let base = Case {
        task: "arithmetic",
        llama: false,
        sizes: [1, 1, 1],
        samples: 1,
        rates: [false, false, false],
        strategy: "morsd",
        k: 1,
        max_total: None,
        rd_untrained: false,
        warmup_steps: 1,
        warmup_full: true,
        steps: 1,
        batch: 1,
        max_new: 1,
    };
    let edges = [
        // Every rationale wrong: accuracy-filtering strategies keep none.
        Case {
            rates: [true, false, false],
            strategy: "correct",
            ..base.clone()
        },
        // k far above what is left.
        Case {
            k: 3,
            samples: 1,
            strategy: "dedup",
            ..base.clone()
        },
        // No validation question at all, on a real task, with both students.
        Case {
            task: "svamp",
            sizes: [2, 0, 1],
            ..base.clone()
        },
        Case {
            task: "svamp",
            llama: true,
            sizes: [2, 0, 1],
            ..base.clone()
        },
        // Warm-up on no question's rationales.
        Case {
            warmup_full: false,
            sizes: [2, 1, 1],
            ..base.clone()
        },
        Case {
            max_new: 0,
            ..base.clone()
        },
    ];
    for c in &edges {
        check(c).unwrap_or_else(|e| panic!("{e}"));
    }
}
