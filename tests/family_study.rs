//! A short study through the whole pipeline (generate → score → select → train → eval) with
//! two of the new families: the tiny random Qwen2 and Flan-T5 checkpoints of
//! `tests/fixtures/families/`, run from their example specs (`experiments/families/`) with the
//! weights pointed at the fixture. Fully fine-tuned on one-step synthetic arithmetic, each must
//! answer far more test questions than the same checkpoint untrained (which answers none: it has
//! never seen the format). A LoRA run of each then shows the adapters-only entry trains, is
//! stored in PEFT's layout with the family's module names, and is evaluated from it.

mod common;

use common::{Project, text};
use morsd::answer::{extract, matches};
use morsd::spec::TaskKind;
use morsd::spec::raw::{DataSpec, StudentSpec};
use morsd::student::decode::greedy;
use morsd::student::{format, load_checkpoint};
use morsd::task::synthetic;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families")
        .join(name)
}

const TRAIN: usize = 600;
const TEST: usize = 100;

/// The settings both runs share: the fixture as the student, a one-step task it can learn at
/// its size (2 layers, width 32), full fine-tuning.
fn overrides(weights: &str, fmt: &str) -> Vec<String> {
    [
        format!("student.weights={weights}"),
        format!("student.format={fmt}"),
        "student.lora_rank=0".into(),
        "student.max_seq_len=160".into(),
        "eval.max_new_tokens=64".into(),
        "train.steps=1500".into(),
        "train.lr=0.01".into(),
        "train.eval_every=500".into(),
        "data.steps=[1, 1]".into(),
        format!("data.train={TRAIN}"),
        format!("data.test={TEST}"),
        "sweep.\"select.strategy\"=[\"morsd\"]".into(),
    ]
    .into()
}

/// Accuracy of the checkpoint as loaded on the same task's test questions.
fn untrained_accuracy(weights: &std::path::Path, fmt: &str) -> f64 {
    let device = morsd::device_from_env().unwrap();
    let data = synthetic::generate(
        TaskKind::Arithmetic,
        &DataSpec {
            train: TRAIN,
            validation: 24,
            test: TEST,
            steps: [1, 1],
            ..Default::default()
        },
    );
    let p = load_checkpoint(weights, 160, &device).unwrap();
    let spec = StudentSpec {
        format: fmt.into(),
        ..Default::default()
    };
    let f = format::load(&spec).unwrap();
    let prompts: Vec<String> = data.test.iter().map(|e| f.prompt(&e.question)).collect();
    let outs = greedy(&p.model, &p.tok, &prompts, 64, 16, &device);
    let ok = outs
        .iter()
        .zip(&data.test)
        .filter(|(o, e)| matches(data.answer, extract(data.answer, o).as_deref(), &e.answer))
        .count();
    ok as f64 / data.test.len() as f64
}

fn study(example: &str, fixture_name: &str, fmt: &str, family_kind: &str, adapter_key: &str) {
    let spec = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("experiments/families")
            .join(example),
    )
    .unwrap();
    let p = Project::new(&spec);
    let weights = fixture(fixture_name);
    let sets = overrides(weights.to_str().unwrap(), fmt);
    let spec_path = p.spec();
    let mut args: Vec<&str> = vec!["run", spec_path.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    // 1. The full fine-tune through the whole pipeline.
    let out = p.morsd(&args);
    assert!(out.status.success(), "{}", text(&out));
    let name = spec
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let runs = p.runs_json(&name);
    let trained = runs["runs"][0]["accuracy"].as_f64().unwrap();
    let before = untrained_accuracy(&weights, fmt);
    eprintln!("{fixture_name}: untrained {before:.2}, trained {trained:.2}");
    assert!(
        trained >= before + 0.2,
        "{fixture_name}: trained {trained} vs untrained {before}"
    );
    let entry = p.entry("train");
    let student: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entry.join("student.json")).unwrap()).unwrap();
    assert_eq!(student["kind"], family_kind);
    // 2. LoRA on PEFT's default modules for the family: a short run, stored as adapters.
    let mut lora = args.clone();
    lora.extend(["--set", "student.lora_rank=8", "--set", "train.steps=20"]);
    let out = p.morsd(&lora);
    assert!(out.status.success(), "{}", text(&out));
    let adapters = std::fs::read_dir(p.path().join("cache/entries/train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("adapter_model.safetensors").exists())
        .expect("a LoRA entry with adapters");
    let bytes = std::fs::read(adapters.join("adapter_model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(
        st.names().iter().any(|n| n.contains(adapter_key)),
        "{fixture_name}: adapters {:?}",
        st.names()
    );
    let runs = p.runs_json(&name);
    assert!(runs["runs"][0]["accuracy"].as_f64().is_some());
}

#[test]
fn a_tiny_qwen2_learns_through_the_pipeline() {
    study(
        "qwen2.5.toml",
        "qwen2",
        "qa",
        "llama",
        "self_attn.v_proj.lora_A",
    );
}

#[test]
fn a_tiny_flan_t5_learns_through_the_pipeline() {
    study(
        "flan-t5.toml",
        "flan-t5",
        "seq2seq",
        "t5",
        "SelfAttention.v.lora_A",
    );
}
