//! `morsd report --check DIR SPEC`: whether a results folder is what a spec computes today —
//! `current` (exit 0), or which stage's key moved and why, and which runs are missing or extra
//! (exit 3) — without running anything or touching the cache.

mod common;
use common::*;

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    text(o)
}

#[test]
fn report_check_says_whether_a_folder_is_current() {
    let p = Project::new(TINY);
    let spec = p.spec();
    let spec = spec.to_str().unwrap();
    ok(&p.morsd(&["run", spec]));
    assert!(p.path().join("results/tiny/stages.json").exists());
    let listing = |sub: &str| {
        let mut v: Vec<String> = walkdir::WalkDir::new(p.path().join("cache").join(sub))
            .into_iter()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        v.sort();
        v
    };
    let before = (listing("entries"), listing("slots"));

    // 1. Current.
    let out = ok(&p.morsd(&["report", "--check", "results/tiny", spec]));
    assert!(out.contains("results/tiny is current"), "{out}");
    assert!(out.contains("  seed=0: current"), "{out}");

    // 2. Another train.steps: the train stage and the field are named; generate is not.
    let steps4 = || {
        p.morsd(&[
            "report",
            "--check",
            "results/tiny",
            spec,
            "--set",
            "train.steps=4",
        ])
    };
    let o = steps4();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("is not what"), "{out}");
    assert!(out.contains("  seed=0: differs"), "{out}");
    assert!(out.contains("    train: train.steps changed"), "{out}");
    assert!(out.contains("    eval: upstream train changed"), "{out}");
    assert!(
        !out.contains("generate:") && !out.contains("select:"),
        "{out}"
    );

    // 3. A changed spec file: the select stage moves.
    let other = p.path().join("experiments/changed.toml");
    std::fs::write(&other, TINY.replace("per_question = 2", "per_question = 3")).unwrap();
    let o = p.morsd(&["report", "--check", "results/tiny", other.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("    select: select.per_question changed"),
        "{out}"
    );

    // 4. A folder against another spec: its runs are missing or extra.
    let seeds = p.path().join("experiments/seeds.toml");
    std::fs::write(&seeds, TINY.replace("seeds = [0]\n", "seeds = [1, 2]\n")).unwrap();
    let o = p.morsd(&["report", "--check", "results/tiny", seeds.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("  seed=1: in the spec, not in the folder"),
        "{out}"
    );
    assert!(
        out.contains("  seed=2: in the spec, not in the folder"),
        "{out}"
    );
    assert!(
        out.contains("  seed=0: in the folder, not in the spec"),
        "{out}"
    );

    // 5. A folder written before stages.json: compared on runs.json's short keys.
    std::fs::remove_file(p.path().join("results/tiny/stages.json")).unwrap();
    let out = ok(&p.morsd(&["report", "--check", "results/tiny", spec]));
    assert!(out.contains("no stages.json"), "{out}");
    let o = steps4();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("    train: key "), "{out}");

    // 6. Bad input names the file: no folder, no spec, a bad stages.json.
    let o = p.morsd(&["report", "--check", "nowhere", spec]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nowhere/runs.json"), "{}", text(&o));
    let o = p.morsd(&["report", "--check", "results/tiny", "experiments/nope.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope.toml"), "{}", text(&o));
    std::fs::write(p.path().join("results/tiny/stages.json"), "{").unwrap();
    let o = p.morsd(&["report", "--check", "results/tiny", spec]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("stages.json"), "{}", text(&o));
    // --check needs a spec; a spec needs --check.
    assert_eq!(
        p.morsd(&["report", "--check", "results/tiny"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        p.morsd(&["report", "results/tiny", spec]).status.code(),
        Some(2)
    );

    // Checking ran nothing and wrote nothing to the cache; plain `report` works as before.
    assert_eq!((listing("entries"), listing("slots")), before);
    ok(&p.morsd(&["report", "results/tiny"]));
}
