//! The reproduction study: every spec under experiments/paper/ and experiments/paper-tiny/
//! parses and plans, and the tiny study runs end to end into the paper report (main table,
//! ablation, min- vs max-RD, CLAIMS.md with a verdict per claim).

mod common;

use common::data_root;
use common::llama::llama_paths;
use std::path::{Path, PathBuf};

fn specs(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn paper_specs_parse_and_plan() {
    let (_, gguf) = llama_paths();
    let p = common::Project::new(common::TINY);
    let models = p.path().join("models");
    let out = p
        .cmd()
        .env("MORSD_MODELS", &models)
        .args(["models", "fetch", "smollm2-135m", "--from"])
        .arg(&gguf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let all: Vec<PathBuf> = specs("experiments/paper")
        .into_iter()
        .chain(specs("experiments/paper-tiny"))
        .collect();
    assert!(all.len() >= 7, "{all:?}");
    for spec in all {
        let out = p
            .cmd()
            .env("MORSD_MODELS", &models)
            .env("MORSD_DATA", data_root())
            .arg("plan")
            .arg(&spec)
            .output()
            .unwrap();
        let text = common::text(&out);
        assert!(out.status.success(), "{}: {text}", spec.display());
        assert!(text.contains("eval"), "{}: {text}", spec.display());
    }
}

#[test]
fn the_tiny_study_runs_into_the_paper_report() {
    let p = common::Project::new(common::TINY);
    let exp = p.path().join("experiments/paper-tiny");
    std::fs::create_dir_all(&exp).unwrap();
    for spec in specs("experiments/paper-tiny") {
        std::fs::copy(&spec, exp.join(spec.file_name().unwrap())).unwrap();
        let out = p
            .cmd()
            .args(["run", "--jobs", "2"])
            .arg(exp.join(spec.file_name().unwrap()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            spec.display(),
            common::text(&out)
        );
    }
    let setting = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/paper/SETTING.md");
    let out = p
        .cmd()
        .args(["paper", "results/paper-tiny", "--k", "2", "--setting"])
        .arg(&setting)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let dir = p.path().join("results/paper-tiny");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    // Main table: both tasks, every strategy measured (mean ± CI over the 2 seeds).
    let main = read("main.md");
    for task in ["arithmetic", "coin-flip"] {
        let row = main
            .lines()
            .find(|l| l.starts_with(&format!("| {task} ")))
            .unwrap();
        assert_eq!(row.matches(" ± ").count(), 6, "{row}");
    }
    let csv = read("main.csv");
    assert_eq!(csv.lines().count(), 1 + 2 * 6, "{csv}");
    // Ablation over k and min- vs max-RD at equal k.
    let abl = read("ablation.md");
    assert!(abl.contains("k = 1") && abl.contains("k = 6"), "{abl}");
    assert_eq!(
        read("rd-minmax.md")
            .lines()
            .filter(|l| l.starts_with("| arithmetic |"))
            .count(),
        2
    );
    // CLAIMS.md: three claims, each with a verdict from the paired rules; the setting
    // appended; stage savings; every experiment folder has its per-question outcomes.
    let claims = read("CLAIMS.md");
    assert_eq!(claims.matches("Verdict:").count(), 3, "{claims}");
    let verdicts = [
        "Verdict: **reproduced**",
        "Verdict: **contradicted**",
        "Verdict: **no effect at the paper's size**",
        "Verdict: **inconclusive (MDE ",
        "Verdict: **inconclusive (not converged: ",
    ];
    assert_eq!(
        claims
            .lines()
            .filter(|l| verdicts.iter().any(|v| l.starts_with(v)))
            .count(),
        3,
        "{claims}"
    );
    assert!(claims.contains("## Method"), "{claims}");
    // Every comparison says whether its runs had finished learning, beside each arm's tokens.
    assert!(claims.contains("| learned? |"), "{claims}");
    assert!(claims.contains("training tokens"), "{claims}");
    for e in ["main-synthetic", "ablation-k", "rd-minmax"] {
        assert!(dir.join(e).join("predictions.parquet").exists(), "{e}");
        assert!(dir.join(e).join("tokens.svg").exists(), "{e}");
    }
    assert!(
        claims.contains("What differs from the paper's setting"),
        "{claims}"
    );
    assert!(claims.contains("distinct cache entries"), "{claims}");
    // morsd against the other baselines: per task, the differences of the main table's means.
    let mean = |task: &str, s: &str| -> f64 {
        let l = csv
            .lines()
            .find(|l| l.starts_with(&format!("{task},{s},")))
            .unwrap();
        l.split(',').nth(3).unwrap().parse().unwrap()
    };
    let header = claims
        .lines()
        .position(|l| l.starts_with("| task | random | correct | dedup | rd-max |"))
        .expect(&claims);
    for task in ["arithmetic", "coin-flip"] {
        let row = claims
            .lines()
            .skip(header)
            .find(|l| l.starts_with(&format!("| {task} |")))
            .unwrap();
        let cols: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, s) in ["random", "correct", "dedup", "rd-max"].iter().enumerate() {
            // main.csv keeps 4 decimals of each mean, the table one decimal of the paired
            // difference (same seeds, same test questions: the difference of the means), then
            // its CI.
            let want = 100.0 * (mean(task, "morsd") - mean(task, s));
            let cell = cols[2 + i];
            let got: f64 = cell.split(" [").next().unwrap().parse().unwrap();
            assert!(cell.contains(" [") && cell.ends_with(']'), "{cell}");
            assert!(
                (got - want).abs() <= 0.06,
                "{task} vs {s}: {row} (want {want:+.2})"
            );
        }
    }
    // An empty folder is a clear user error.
    let empty = p.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = p.morsd(&["paper", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
}
