//! The whole pipeline on burn's wgpu backend (Mesa's lavapipe in CI: `just test-wgpu`): a tiny
//! spec, generate → score → select → train → eval, run once on flex and once with
//! `MORSD_DEVICE=wgpu`, in two fresh projects. The two backends sum in other orders, so their
//! floats differ in the last bits and a trained student drifts apart a little; what must agree:
//! 1. RD of every rationale within 1e-3 relative (the scorer is trained for a few warm-up steps
//!    on each backend, and f32 differences of ~1e-6 per step grow through them), and the RD
//!    order alike (Spearman ≥ 0.99);
//! 2. the training loss curve within 1e-2 relative at every step;
//! 3. test accuracy within one test question.
//!
//! Compiled with the `wgpu` feature only. Without a Vulkan adapter the test fails, naming what
//! the machine offers: never a silent skip.
#![cfg(feature = "wgpu")]

mod common;

use common::{Project, TINY, text};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// `morsd run` of the project's spec on `device`, killed after 10 minutes (a hung shader).
fn run_on(p: &Project, device: &str) {
    let mut child = p
        .cmd()
        .env("MORSD_DEVICE", device)
        .args(["run", p.spec().to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            panic!("morsd run on {device}: still running after 600 s (a hung kernel?)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "morsd run on {device}: {}",
        text(&out)
    );
}

/// RD by rationale id, from the run's selection.parquet.
fn rd_of(path: &Path) -> BTreeMap<String, f64> {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap();
    let ids = df.column("rationale_id").unwrap().str().unwrap().clone();
    let rd = df.column("rd").unwrap().f64().unwrap().clone();
    (0..df.height())
        .map(|i| (ids.get(i).unwrap().to_string(), rd.get(i).unwrap()))
        .collect()
}

#[test]
fn a_tiny_spec_runs_on_wgpu_as_on_flex() {
    let flex = Project::new(TINY);
    run_on(&flex, "flex");
    let wgpu = Project::new(TINY);
    run_on(&wgpu, "wgpu");
    let sel = |p: &Project| p.path().join("results/tiny/selection.parquet");
    // 1. RD per rationale, and its order.
    let (a, b) = (rd_of(&sel(&flex)), rd_of(&sel(&wgpu)));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same rationales"
    );
    let (x, y): (Vec<f64>, Vec<f64>) = a.values().zip(b.values()).map(|(x, y)| (*x, *y)).unzip();
    let worst = x
        .iter()
        .zip(&y)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-9))
        .fold(0.0, f64::max);
    let rho = morsd::select::scores::spearman(&x, &y).unwrap();
    eprintln!(
        "{} rationales: RD max relative |Δ| {worst:.2e}, Spearman {rho:.5}",
        x.len()
    );
    assert!(worst <= 1e-3, "RD differs by {worst:e} (relative)");
    assert!(rho >= 0.99, "RD order: Spearman {rho}");
    // 2. and 3. The training loss curve and the test accuracy.
    let (ra, rb) = (flex.runs_json("tiny"), wgpu.runs_json("tiny"));
    for (fa, fb) in ra["runs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(rb["runs"].as_array().unwrap())
    {
        let curve = |r: &serde_json::Value| -> Vec<(u64, f64)> {
            serde_json::from_value(r["loss_curve"].clone()).unwrap()
        };
        let (ca, cb) = (curve(fa), curve(fb));
        assert_eq!(ca.len(), cb.len());
        for ((sa, la), (sb, lb)) in ca.iter().zip(&cb) {
            assert_eq!(sa, sb);
            assert!(
                (la - lb).abs() <= 1e-2 * la.abs(),
                "loss at step {sa}: flex {la}, wgpu {lb}"
            );
        }
        let (acc_a, acc_b) = (
            fa["accuracy"].as_f64().unwrap(),
            fb["accuracy"].as_f64().unwrap(),
        );
        let one = 1.0 / fa["test_questions"].as_f64().unwrap();
        eprintln!("accuracy: flex {acc_a}, wgpu {acc_b}");
        assert!(
            (acc_a - acc_b).abs() <= one + 1e-9,
            "accuracy: flex {acc_a}, wgpu {acc_b}"
        );
    }
}
