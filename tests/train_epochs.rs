//! `train.epochs` through the binary: the train stage runs ceil(epochs × sequences / batch)
//! optimiser steps over the selected rationales and reports them, a new epoch count re-runs
//! only train and eval, and a spec with both budgets is refused.

mod common;
use common::*;

/// The metrics of every train entry in the project's cache.
fn train_metrics(p: &Project) -> Vec<serde_json::Value> {
    std::fs::read_dir(p.path().join("cache/entries/train"))
        .unwrap()
        .map(|e| {
            let m: serde_json::Value = serde_json::from_slice(
                &std::fs::read(e.unwrap().path().join("manifest.json")).unwrap(),
            )
            .unwrap();
            m["metrics"].clone()
        })
        .collect()
}

#[test]
fn an_epoch_budget_trains_for_its_passes_over_the_selected_rationales() {
    let spec = TINY.replace("[train]\nsteps = 8\n", "[train]\nepochs = 1\n");
    assert_ne!(spec, TINY, "TINY's [train] section changed");
    let p = Project::new(&spec);
    let s = p.spec();
    let s = s.to_str().unwrap();
    // TINY's train.batch_size; grad_accum unset (1).
    let batch = 8u64;

    // 1. One epoch: one step per (possibly short) batch of the selected rationales.
    let o = p.morsd(&["run", s]);
    assert!(o.status.success(), "{}", text(&o));
    let m = &train_metrics(&p)[0];
    let rationales = m["rationales"].as_u64().unwrap();
    assert!(rationales > batch, "too few rationales to tell: {m}");
    let steps = m["steps"].as_u64().unwrap();
    assert_eq!(steps, rationales.div_ceil(batch), "{m}");
    assert_eq!(m["epochs"], 1, "{m}");
    assert!(
        (1..=steps).contains(&m["best_step"].as_u64().unwrap()),
        "{m}"
    );

    // 2. Two epochs: twice the sequences; only train and eval run again.
    let o = p.morsd(&["run", s, "--set", "train.epochs=2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(executed(&p.runs_json("tiny")), vec![vec!["train", "eval"]]);
    let all = train_metrics(&p);
    let m2 = all
        .iter()
        .find(|m| m["epochs"] == 2)
        .expect("an epochs = 2 entry");
    assert_eq!(m2["rationales"], rationales);
    assert_eq!(
        m2["steps"].as_u64().unwrap(),
        (2 * rationales).div_ceil(batch),
        "{m2}"
    );

    // 3. Both budgets: a spec error naming both fields and the file.
    let o = p.morsd(&["run", s, "--set", "train.steps=3"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("tiny.toml") && t.contains("train.steps") && t.contains("train.epochs"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");
}
