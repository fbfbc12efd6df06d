//! Stage keys of resolved specs: what a spec's `[train]` and `[score]` sections put into the
//! train and score keys (resolution fills defaults, so these run the resolver, then the stage).

use morsd::run::RunSpec;
use morsd::spec::raw::TrainSpec;
use morsd::stages::score::Score;
use morsd::stages::train::Train;
use morsd::stages::{Stage, train_key};
use serde_json::{Value, json as j};

fn run_of(spec: &str) -> RunSpec {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("spec.toml");
    std::fs::write(&p, spec).unwrap();
    morsd::resolve::load(&p, &[]).unwrap().runs.remove(0)
}

fn train_section(spec: &str) -> Value {
    Train.config(&run_of(spec))["train"].clone()
}

fn key_of(spec: &str) -> Value {
    Score.config(&run_of(spec))
}

#[test]
fn a_steps_budget_keeps_its_key_and_epochs_change_it() {
    // The `[train]` section of the key as it was before `train.epochs` existed (the
    // serialized TrainSpec: `steps` a number, the optional fields skipped when unset).
    let before = j!({
        "steps": 300, "batch_size": 16, "lr": 0.003, "warmup_steps": 20,
        "weight_decay": 0.01, "eval_every": 100,
    });
    assert_eq!(train_section(""), before);
    // Byte for byte as the key hashes it (serde_json sorts object keys).
    assert_eq!(
        serde_json::to_string(&train_section("")).unwrap(),
        r#"{"batch_size":16,"eval_every":100,"lr":0.003,"steps":300,"warmup_steps":20,"weight_decay":0.01}"#
    );
    assert_eq!(train_section("[train]\nsteps = 300\n"), before);
    assert_eq!(
        train_key(&TrainSpec::default()),
        before,
        "unresolved default"
    );
    assert!(train_section("").get("epochs").is_none());
    let mut set = before.clone();
    set["steps"] = 40.into();
    set["grad_accum"] = 2.into();
    assert_eq!(train_section("[train]\nsteps = 40\ngrad_accum = 2\n"), set);
    // Epochs: in the key, and no steps value beside them.
    let e2 = train_section("[train]\nepochs = 2\n");
    let mut want = before.clone();
    want.as_object_mut().unwrap().remove("steps");
    want["epochs"] = 2.into();
    assert_eq!(e2, want);
    assert_ne!(e2, train_section("[train]\nepochs = 1\n"));
    // The whole config (hence the key) differs from the steps spec's.
    assert_ne!(
        Train.config(&run_of("[train]\nepochs = 2\n")),
        Train.config(&run_of(""))
    );
    assert_eq!(
        Train.config(&run_of("[train]\nsteps = 300\n")),
        Train.config(&run_of(""))
    );
}

#[test]
fn patience_enters_the_train_key_only_when_set() {
    // Without `train.patience` the section is the one above (no `patience: null`), so every
    // spec written before early stopping existed keeps its train and eval keys.
    assert!(train_section("").get("patience").is_none());
    assert!(
        !serde_json::to_string(&Train.config(&run_of("")))
            .unwrap()
            .contains("patience")
    );
    let p5 = train_section("[train]\npatience = 5\n");
    assert_eq!(p5["patience"], 5);
    assert_ne!(
        Train.config(&run_of("[train]\npatience = 5\n")),
        Train.config(&run_of(""))
    );
    assert_ne!(p5, train_section("[train]\npatience = 4\n"));
}

#[test]
fn the_warm_up_students_train_settings_are_in_the_key_only_when_it_warms_up() {
    // The default scratch student warms up: train.lr is read, so it keys the entry.
    let a = key_of("[train]\nlr = 0.003\n");
    let b = key_of("[train]\nlr = 0.001\n");
    assert_eq!(a["warmup_train"]["lr"], serde_json::json!(0.003));
    assert_ne!(a, b);
    // No warm-up: the train settings stay out, so changing them reuses the entry.
    let u = key_of("[score]\nrd_model = \"untrained\"\n[train]\nlr = 0.003\n");
    let v = key_of("[score]\nrd_model = \"untrained\"\n[train]\nlr = 0.001\n");
    assert!(u.get("warmup_train").is_none());
    assert_eq!(u, v);
}

#[test]
fn response_scores_get_a_score_entry_of_their_own_and_leave_other_keys_alone() {
    use morsd::stages::select::Select;
    // Every strategy that does not rank by the response scores keeps the score config `morsd`
    // has; those that do (IFD, Superfiltering, GRAPE, RSR) add `response_scores` and nothing else.
    let base = key_of("[select]\nstrategy = \"morsd\"\n");
    assert!(base.get("response_scores").is_none());
    for s in [
        "all",
        "random",
        "correct",
        "dedup",
        "rd-min",
        "rd-max",
        "shortest",
        "longest",
        "answer-only",
    ] {
        assert_eq!(
            key_of(&format!("[select]\nstrategy = \"{s}\"\n")),
            base,
            "{s}"
        );
    }
    for s in ["ifd", "superfilter", "grape", "rsr"] {
        let mut k = key_of(&format!("[select]\nstrategy = \"{s}\"\n"));
        assert_eq!(k["response_scores"], true, "{s}");
        k.as_object_mut().unwrap().remove("response_scores");
        assert_eq!(k, base, "{s}");
    }
    // `select.correct_only` enters the select key only when written.
    let sel = |spec: &str| Select.config(&run_of(spec))["select"].clone();
    assert!(sel("").get("correct_only").is_none());
    assert_eq!(
        sel("[select]\ncorrect_only = false\n")["correct_only"],
        false
    );
}
