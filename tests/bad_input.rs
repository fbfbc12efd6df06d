//! Bad specs and arguments: exit code 2 and a message naming the file and key.

mod common;
use common::*;

fn fails_with(spec: &str, args: &[&str], needles: &[&str]) {
    let p = Project::new(spec);
    let s = p.spec();
    let mut all = vec!["run", s.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = p.morsd(&all);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    for n in needles {
        assert!(t.contains(n), "expected `{n}` in: {t}");
    }
    assert!(!t.contains("panicked"), "{t}");
    assert!(
        !p.path().join("cache/entries/generate").exists()
            || std::fs::read_dir(p.path().join("cache/entries/generate"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn unknown_key() {
    fails_with(
        "[select]\nper_question = 2\nper_questoin = 3\n",
        &[],
        &["tiny.toml", "line 3", "per_questoin"],
    );
}

#[test]
fn wrong_type() {
    fails_with(
        "[train]\nsteps = \"many\"\n",
        &[],
        &["tiny.toml", "line 2", "steps"],
    );
}

#[test]
fn wrong_type_from_set() {
    fails_with("", &["--set", "train.steps=many"], &["train.steps"]);
}

#[test]
fn unknown_strategy_names_key_and_line() {
    fails_with(
        "[select]\nstrategy = \"best\"\n",
        &[],
        &["select.strategy", "line 2", "best"],
    );
}

#[test]
fn empty_sweep_list() {
    fails_with(
        "[sweep]\n\"select.per_question\" = []\n",
        &[],
        &["select.per_question", "empty"],
    );
}

#[test]
fn sweep_of_unknown_key() {
    fails_with(
        "[sweep]\n\"select.per_qestion\" = [1]\n",
        &[],
        &["select.per_qestion", "not a spec key"],
    );
}

#[test]
fn missing_spec_file() {
    let p = Project::new("");
    let o = p.morsd(&["run", "experiments/nope.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope.toml"), "{}", text(&o));
}

#[test]
fn malformed_set_and_force() {
    fails_with("", &["--set", "select.per_question"], &["KEY=VALUE"]);
    fails_with("", &["--force", "bake"], &["bake", "unknown stage"]);
}

#[test]
fn report_of_missing_folder() {
    let p = Project::new("");
    let o = p.morsd(&["report", "results/none"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("runs.json"), "{}", text(&o));
}

#[test]
fn an_unknown_or_absent_device_is_refused_before_any_stage_runs() {
    // A name nobody knows, and one this build lacks (the default build has flex only).
    for (device, needles) in [
        (
            "cuda",
            &["MORSD_DEVICE=cuda", "no such device", "tch-cuda[:N]"][..],
        ),
        (
            "tch-cuda:1",
            &["MORSD_DEVICE=tch-cuda:1", "this binary has: flex"][..],
        ),
    ] {
        if device == "tch-cuda:1" && cfg!(feature = "tch") {
            continue;
        }
        let p = Project::new("");
        let s = p.spec();
        let o = p
            .cmd()
            .env("MORSD_DEVICE", device)
            .args(["run", s.to_str().unwrap()])
            .output()
            .unwrap();
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        for n in needles {
            assert!(t.contains(n), "expected `{n}` in: {t}");
        }
        let generated = p.path().join("cache/entries/generate");
        assert!(
            !generated.exists() || std::fs::read_dir(&generated).unwrap().count() == 0,
            "{t}"
        );
    }
}
