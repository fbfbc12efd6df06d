//! `just bench`: throughput of the students on the default CPU backend (burn `flex`) beside
//! PyTorch eager on the same architecture, sizes, batch and sequence length, in the same run:
//! tokens/s of (a) a training step (forward, backward, AdamW), (b) batched RD scoring
//! (forward only) and (c) greedy decoding; plus the peak memory of one SmolLM2 fine-tuning
//! step at batch 8 × 256 (full and LoRA), each in a child process of its own.
//!
//! Built with `--features tch` and run with `MORSD_BENCH_TCH=1` (`just bench-tch`), every row is
//! also measured on burn's `tch` backend (libtorch from PyPI's torch 2.9.0, on the CPU) in the
//! same rounds, as a third column: PyTorch's own kernels with burn's overhead on top.
//!
//! usage: bench OUT.md [TORCH_PYTHON]     (internal: bench --peak full|lora)

use burn::prelude::*;
use morsd::student::decode::{DecodeOptions, greedy_ids};
use morsd::student::tokenizer::Tok;
use morsd::student::train::{Budget, TrainExample, TrainOptions, batch_for, position_nll, train};
use morsd::student::{Lm, init_student, lora, model_config};
use serde_json::json;
use std::time::Instant;

const TEXT: &str = "Ann has 12 apples. Then Ann gets 7 more apples. How many apples does Ann have now? 12 + 7 = 19. The answer is 19. ";

/// One model and its workload.
struct Work {
    name: &'static str,
    batch: usize,
    seq: usize,
    train_steps: usize,
    score_reps: usize,
    prompt: usize,
    new_tokens: usize,
    /// Encoder tokens per training/scoring row (an encoder–decoder; 0 for a decoder).
    encoder: usize,
}

/// SmolLM2 as `student.weights` would name it: the GGUF setup-llama.sh fetched, else the
/// model fetched by `just models`.
fn smollm2(max_seq: usize, device: &Device) -> (Lm, Tok, serde_json::Value) {
    let weights = std::env::var("MORSD_SMOLLM2_GGUF").unwrap_or_else(|_| "smollm2-135m".into());
    let p =
        morsd::student::load_named(&weights, max_seq, device).expect("SmolLM2 (run `just models`)");
    let morsd::student::LmConfig::Llama(c) = p.config else {
        panic!("SmolLM2 is a Llama model")
    };
    let (m, tok) = (p.model, p.tok);
    let cfg = json!({"vocab_size": c.vocab_size, "d_model": c.d_model, "layers": c.layers,
        "heads": c.heads, "kv_heads": c.kv_heads, "d_ff": c.d_ff, "rope_theta": c.rope_theta,
        "norm_eps": c.norm_eps});
    (m, tok, cfg)
}

fn scratch(max_seq: usize, device: &Device) -> (Lm, Tok, serde_json::Value) {
    let tok = Tok::train(std::iter::repeat_n(TEXT, 50), 768).expect("tokenizer");
    let spec = morsd::spec::raw::StudentSpec {
        max_seq_len: max_seq,
        ..Default::default()
    };
    let config = model_config(&spec, tok.vocab_size());
    let cfg = json!({"vocab_size": config.vocab_size, "d_model": config.d_model,
        "layers": config.layers, "heads": config.heads, "d_ff": config.d_ff,
        "max_seq_len": config.max_seq_len});
    (init_student(&config, 0, device), tok, cfg)
}

/// A T5 v1.1-small-shaped encoder–decoder (`google/t5-v1_1-small`: width 512, 8 + 8 layers,
/// 6 heads of 64, gated-GELU 1024, vocabulary 32128) with random weights, and a T5 tokenizer
/// (the Flan-T5 fixture's; only its ids matter here).
fn t5(max_seq: usize, device: &Device) -> (Lm, Tok, serde_json::Value) {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families/flan-t5");
    let tok = morsd::student::load_checkpoint(&dir, 8, device)
        .expect("the Flan-T5 fixture")
        .tok;
    let config =
        morsd::student::T5Config::new(32128, 512, 64, 1024, 8, 8, 6, 32, 128, true, false, max_seq);
    let cfg = json!({"vocab_size": 32128, "d_model": 512, "d_kv": 64, "d_ff": 1024, "layers": 8,
        "heads": 6, "buckets": 32, "max_distance": 128});
    let _guard = morsd::student::INIT_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    device.seed(0);
    let model = Lm::T5(config.init(device));
    morsd::student::materialise(&model);
    (model, tok, cfg)
}

fn examples(tok: &Tok, w: &Work) -> Vec<TrainExample> {
    // A one-token prompt, so every one of the `seq` positions carries loss (as in PyTorch); an
    // encoder–decoder reads `encoder` tokens and predicts the next `seq`.
    let ids = tok.encode(&TEXT.repeat(1 + 4 * (w.seq + w.encoder) / TEXT.len().max(1)));
    let head = w.encoder.max(1);
    (0..w.batch)
        .map(|r| {
            let s: Vec<u32> = ids
                .iter()
                .cycle()
                .skip(r)
                .take(head + w.seq)
                .copied()
                .collect();
            TrainExample {
                prompt: s[..head].to_vec(),
                target: s[head..].to_vec(),
                ..Default::default()
            }
        })
        .collect()
}

fn opts(w: &Work, steps: usize) -> TrainOptions {
    TrainOptions {
        budget: Budget::Steps(steps),
        batch_size: w.batch,
        grad_accum: 1,
        lr: 1e-5,
        warmup_steps: 1,
        weight_decay: 0.0,
        eval_every: steps,
        seed: 0,
        group_by_length: false,
        patience: None,
    }
}

/// (a), (b), (c) for one model (built on the autodiff device `ad`): tokens/s each.
fn measure(model: Lm, tok: &Tok, w: &Work, ad: &Device, device: &Device) -> [f64; 3] {
    let data = examples(tok, w);
    let bar = indicatif::ProgressBar::hidden();
    // MORSD_BENCH_PHASE=train|score|decode runs that phase alone (the others report 0), to
    // profile one of them.
    let phase = std::env::var("MORSD_BENCH_PHASE").ok();
    let run = |p: &str| phase.as_deref().is_none_or(|x| x == p);
    let mut tps = [0.0; 3];
    // (a) one untimed step (allocations, kernel set-up), then timed steps from the same start.
    let model = if run("train") {
        let _ = train(model.clone(), &data, tok.pad, &opts(w, 1), ad, None, &bar);
        let t0 = Instant::now();
        let trained = train(
            model,
            &data,
            tok.pad,
            &opts(w, w.train_steps),
            ad,
            None,
            &bar,
        )
        .expect("bench rows have targets");
        tps[0] = (w.batch * w.seq * w.train_steps) as f64 / t0.elapsed().as_secs_f64();
        trained.model
    } else {
        model.valid()
    };
    // (b) forward-only scoring of every position.
    if run("score") {
        let refs: Vec<&TrainExample> = data.iter().collect();
        let lb = batch_for(&model, &refs, tok.pad, w.seq, device).expect("bench rows have targets");
        let _ = position_nll(&model, &lb).sum().into_scalar::<f32>();
        let t0 = Instant::now();
        for _ in 0..w.score_reps {
            let _ = position_nll(&model, &lb).sum().into_scalar::<f32>();
        }
        tps[1] = (w.batch * w.seq * w.score_reps) as f64 / t0.elapsed().as_secs_f64();
    }
    // (c) greedy decoding (KV cache for Llama), prompts of about `prompt` tokens.
    if run("decode") {
        let ids = tok.encode(&TEXT.repeat(1 + 8 * w.prompt / TEXT.len()));
        let prompts: Vec<String> = (0..w.batch)
            .map(|r| tok.decode(&ids[r..r + w.prompt]))
            .collect();
        let o = DecodeOptions {
            max_new: w.new_tokens,
            batch_size: w.batch,
            stop: None,
        };
        let t0 = Instant::now();
        let outs = greedy_ids(&model, tok, &prompts, &o, device);
        let made: usize = outs.iter().map(Vec::len).sum::<usize>().max(1);
        tps[2] = made as f64 / t0.elapsed().as_secs_f64();
    }
    tps
}

/// f32 matmul `[n, n] × [n, n]` through morsd's matmul (`kernels::matmul`, the one its models
/// use: on flex the `gemm` crate called directly; on tch burn's matmul, i.e. libtorch's), GFLOP/s.
fn gemm_gflops(n: usize, device: &Device) -> f64 {
    use burn::tensor::Distribution;
    let a = Tensor::<2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], Distribution::Default, device);
    let reps = (4e11 / (2.0 * (n as f64).powi(3))).clamp(10.0, 2000.0) as usize;
    // On rayon's pool, as the student's steps call it (`kernels::on_pool`).
    morsd::kernels::on_pool(|| {
        let _ = morsd::kernels::matmul(a.clone(), b.clone());
        let t0 = Instant::now();
        for _ in 0..reps {
            let _ = morsd::kernels::matmul(a.clone(), b.clone());
        }
        2.0 * (n as f64).powi(3) * reps as f64 / t0.elapsed().as_secs_f64() / 1e9
    })
}

/// The CPU: model name, cores, AVX-512, and its nominal f32 peak in GFLOP/s (cores × clock ×
/// 2 FMA units × lanes × 2 flops; the clock is /proc/cpuinfo's).
fn machine() -> (String, Option<f64>) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |k: &str| {
        info.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flags = field("flags").unwrap_or_default();
    let avx512 = flags.split(' ').any(|f| f == "avx512f");
    let lanes = if avx512 { 16.0 } else { 8.0 };
    let mhz: Option<f64> = field("cpu MHz").and_then(|v| v.parse().ok());
    let peak = mhz.map(|m| cores as f64 * m / 1000.0 * 2.0 * lanes * 2.0);
    let name = format!(
        "{} ({cores} cores{}, {}, {})",
        field("model name").unwrap_or_else(|| "unknown CPU".into()),
        mhz.map_or(String::new(), |m| format!(" at {m:.0} MHz")),
        if avx512 { "AVX-512" } else { "no AVX-512" },
        if cfg!(target_arch = "x86_64") {
            "x86-64"
        } else {
            std::env::consts::ARCH
        },
    );
    (name, peak)
}

/// The commit this bench was built from (`-dirty` with uncommitted changes).
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    format!("{head}{}", if dirty { "-dirty" } else { "" })
}

/// The peak (GiB) a `--peak` child process prints, if it ran.
fn peak_of(cmd: &mut std::process::Command) -> Option<f64> {
    let o = cmd.output().ok()?;
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}

/// Peak resident memory of this process (kB → GiB).
fn peak_gib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / (1024.0 * 1024.0)
}

/// Child process: one SmolLM2 fine-tuning step at batch 8 × 256 (full or LoRA); prints peak GiB.
fn peak(mode: &str) {
    let device = morsd::device_from_env().expect("MORSD_DEVICE");
    let ad = device.clone().autodiff();
    let ad = if mode.contains("ckpt") {
        ad.gradient_checkpointing()
    } else {
        ad
    };
    // `accumN`: the 8 sequences as N micro-batches of 8/N (gradient accumulation).
    let accum: usize = mode
        .split("accum")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let (model, tok, _) = smollm2(256, &ad);
    let model = if mode.starts_with("lora") {
        let t: Vec<String> = ["q_proj", "v_proj"].iter().map(|s| s.to_string()).collect();
        lora::attach(model, 8, 16.0, &t, 0, &ad).expect("lora")
    } else {
        model
    };
    let w = Work {
        name: "",
        batch: 8,
        seq: 256,
        train_steps: 1,
        score_reps: 0,
        prompt: 0,
        new_tokens: 0,
        encoder: 0,
    };
    let data = examples(&tok, &w);
    let bar = indicatif::ProgressBar::hidden();
    let mut o = opts(&w, 1);
    o.batch_size = 8 / accum;
    o.grad_accum = accum;
    let _ = train(model, &data, tok.pad, &o, &ad, None, &bar);
    println!("{:.3}", peak_gib());
}

/// burn's libtorch CPU device, when this build has the `tch` feature and `MORSD_BENCH_TCH=1`
/// asks for its column.
fn tch_device() -> Option<Device> {
    if !std::env::var("MORSD_BENCH_TCH").is_ok_and(|v| v == "1") {
        return None;
    }
    Some(
        morsd::device::device("tch")
            .unwrap_or_else(|e| panic!("MORSD_BENCH_TCH=1: {e} (`just bench-tch`)")),
    )
}

fn main() {
    morsd::malloc::tune();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--peak") {
        return peak(&args[2]);
    }
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "results/bench/bench.md".into());
    let torch_py = args.get(2).cloned();
    let device = morsd::device_from_env().expect("MORSD_DEVICE");
    let backend = std::env::var("MORSD_DEVICE").unwrap_or_else(|_| "flex".into());
    // The commit as the run starts (what was built), not as it ends.
    let commit = commit();
    let works = [
        Work {
            name: "scratch (quickstart: d128 L2, vocab 768)",
            batch: 16,
            seq: 96,
            train_steps: 30,
            score_reps: 30,
            prompt: 32,
            new_tokens: 32,
            encoder: 0,
        },
        Work {
            name: "SmolLM2-135M (Q4_1 GGUF → f32)",
            batch: 8,
            seq: 256,
            train_steps: 2,
            score_reps: 2,
            prompt: 64,
            new_tokens: 32,
            encoder: 0,
        },
        Work {
            name: "T5 v1.1-small shape (encoder–decoder, 77M, random)",
            batch: 8,
            seq: 128,
            train_steps: 3,
            score_reps: 3,
            prompt: 128,
            new_tokens: 32,
            encoder: 128,
        },
    ];
    // 1. morsd and PyTorch eager (same shapes, workload and matmuls), model by model, in
    //    MORSD_BENCH_ROUNDS rounds (default 2) that alternate the two; each figure is the best
    //    of its rounds. This machine is shared: interference only ever slows a run down, and
    //    alternating keeps a slow spell from landing on one side only.
    // MORSD_BENCH_ONLY=scratch|smollm2|gemm measures that alone and skips PyTorch and the peaks
    // (for A/B runs and for profiling one workload under `perf`).
    let only = std::env::var("MORSD_BENCH_ONLY").ok();
    let wanted = |what: &str| only.as_deref().is_none_or(|o| o == what);
    let rounds: usize = std::env::var("MORSD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
        .max(1);
    let torch_device = if backend == "flex" || backend == "cpu" {
        "cpu"
    } else {
        "cuda"
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // (MORSD_BENCH_TORCH=1 keeps PyTorch beside a MORSD_BENCH_ONLY workload.)
    let py = torch_py
        .as_ref()
        .filter(|_| only.is_none() || std::env::var("MORSD_BENCH_TORCH").is_ok_and(|v| v == "1"));
    let mut torch_failed: Option<String> = None;
    // One run of scripts/bench_torch.py: its JSON lines.
    let mut torch_run = |cfg: serde_json::Value| -> Vec<serde_json::Value> {
        let Some(py) = py else { return vec![] };
        let o = std::process::Command::new(py)
            .args(["scripts/bench_torch.py", "--config", &cfg.to_string()])
            .output()
            .expect("running scripts/bench_torch.py");
        if !o.status.success() {
            torch_failed = Some(
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let best = |a: &mut f64, b: f64| *a = a.max(b);
    let best_opt = |a: &mut Option<f64>, b: Option<f64>| {
        if let Some(b) = b {
            *a = Some(a.map_or(b, |a| a.max(b)));
        }
    };
    let tch = tch_device();
    let mut ours = vec![[0.0f64; 3]; works.len()];
    let mut on_tch = vec![[0.0f64; 3]; works.len()];
    let mut theirs: Vec<[Option<f64>; 3]> = vec![[None; 3]; works.len()];
    let mut cfgs: Vec<serde_json::Value> = Vec::new();
    const GEMM_SIZES: [usize; 2] = [512, 2048];
    let mut our_gemm = vec![0.0f64; GEMM_SIZES.len()];
    let mut tch_gemm = vec![0.0f64; GEMM_SIZES.len()];
    let mut their_gemm: Vec<Option<f64>> = vec![None; GEMM_SIZES.len()];
    for round in 0..rounds {
        for (i, w) in works.iter().enumerate() {
            if !wanted(["scratch", "smollm2", "t5"][i]) {
                if round == 0 {
                    cfgs.push(json!({"name": w.name, "skip": true}));
                }
                continue;
            }
            let max_seq = w.seq.max(w.prompt + w.new_tokens);
            let build = |ad: &Device| match i {
                0 => scratch(max_seq, ad),
                1 => smollm2(max_seq, ad),
                _ => t5(max_seq, ad),
            };
            // morsd on the chosen device, then (with the tch column) the same on tch.
            let mut cfg = serde_json::Value::Null;
            let runs = std::iter::once((&device, "morsd", &mut ours[i]))
                .chain(tch.as_ref().map(|t| (t, "morsd on tch", &mut on_tch[i])));
            for (dev, label, into) in runs {
                let ad = dev.clone().autodiff();
                let (model, tok, c) = build(&ad);
                if cfg.is_null() {
                    cfg = c;
                }
                eprintln!("round {}/{rounds}, {label}: {}", round + 1, w.name);
                let m = measure(model, &tok, w, &ad, dev);
                for k in 0..3 {
                    best(&mut into[k], m[k]);
                }
            }
            let mut m = json!({"name": w.name, "config": cfg, "batch": w.batch, "seq": w.seq,
                "train_steps": w.train_steps, "score_reps": w.score_reps, "prompt": w.prompt,
                "new_tokens": w.new_tokens});
            if i == 0 {
                m["arch"] = json!("gpt");
            }
            if i == 2 {
                m["arch"] = json!("t5");
                m["encoder"] = json!(w.encoder);
            }
            if round == 0 {
                cfgs.push(m.clone());
            }
            eprintln!("round {}/{rounds}, pytorch: {}", round + 1, w.name);
            let lines = torch_run(
                json!({"threads": threads, "device": torch_device, "models": [m], "gemm": []}),
            );
            for v in lines {
                let k = ["train step", "RD scoring", "greedy decoding"]
                    .iter()
                    .position(|x| v["what"] == *x);
                if let Some(k) = k {
                    best_opt(&mut theirs[i][k], v["tokens_per_s"].as_f64());
                }
            }
        }
        if wanted("gemm") {
            eprintln!("round {}/{rounds}, GEMM", round + 1);
            for (k, &n) in GEMM_SIZES.iter().enumerate() {
                best(&mut our_gemm[k], gemm_gflops(n, &device));
                if let Some(t) = &tch {
                    best(&mut tch_gemm[k], gemm_gflops(n, t));
                }
            }
            let lines = torch_run(json!({"threads": threads, "device": torch_device,
                "models": [], "gemm": GEMM_SIZES}));
            for v in lines {
                if let Some(k) = GEMM_SIZES.iter().position(|&n| v["n"] == n) {
                    best_opt(&mut their_gemm[k], v["gflops"].as_f64());
                }
            }
        }
    }
    // 2. PyTorch's version, and its peak for the same SmolLM2 step (own process each).
    let mut their_peak: std::collections::HashMap<String, f64> = Default::default();
    let mut torch_note = "PyTorch not run (no python given)".to_string();
    let smol_cfg = cfgs.get(1).and_then(|m| m.get("config")).cloned();
    if let Some(py) = py {
        let ver = std::process::Command::new(py)
            .args([
                "-c",
                "import torch; print(torch.__version__, torch.get_num_threads())",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        torch_note = format!("PyTorch {ver} (version, threads), eager, CPU, float32");
        if let Some(e) = &torch_failed {
            torch_note += &format!(" — FAILED: {e}");
        }
        for mode in ["full", "lora"] {
            let Some(c) = &smol_cfg else { break };
            eprintln!("pytorch peak memory: {mode}");
            let cfg = json!({"threads": threads, "device": torch_device, "config": c,
                "batch": 8, "seq": 256, "mode": mode})
            .to_string();
            let gib = peak_of(std::process::Command::new(py).args([
                "scripts/bench_torch.py",
                "--peak",
                &cfg,
            ]));
            if let Some(g) = gib {
                their_peak.insert(mode.to_string(), g);
            }
        }
    }
    // 3. Peak memory of one SmolLM2 step at 8 × 256, each mode in its own process.
    let me = std::env::current_exe().expect("exe");
    let peaks: Vec<(&str, &str, Option<f64>)> = [
        ("full", "full fine-tuning, 8 × 256 in one batch"),
        (
            "full-ckpt",
            "full, burn's gradient checkpointing (`train.gradient_checkpointing`)",
        ),
        (
            "full-accum4",
            "full, 4 micro-batches of 2 × 256 (`train.grad_accum = 4`)",
        ),
        ("full-accum8", "full, 8 micro-batches of 1 × 256"),
        ("lora", "LoRA rank 8 on q_proj + v_proj, one batch"),
        ("lora-accum8", "LoRA rank 8, 8 micro-batches of 1 × 256"),
    ]
    .into_iter()
    .filter(|_| only.is_none())
    .map(|(mode, what)| {
        eprintln!("peak memory: {mode}");
        let gib = peak_of(std::process::Command::new(&me).args(["--peak", mode]));
        (mode, what, gib)
    })
    .collect();
    // 4. The table.
    let (cpu, peak) = machine();
    let kernels = if std::env::var("MORSD_KERNELS").is_ok_and(|v| v == "burn") {
        "burn's decomposed ops (`MORSD_KERNELS=burn`)"
    } else {
        "morsd's fused kernels (src/kernels)"
    };
    let recipe = if tch.is_some() {
        "just bench-tch"
    } else {
        "just bench"
    };
    let mut s =
        format!("# Student throughput: morsd (burn `{backend}`) vs PyTorch eager (CPU)\n\n");
    s += &format!(
        "Produced by `{recipe}` (`MORSD_DEVICE={backend}`) at commit `{}` on {cpu}; nominal f32 peak {} \
(cores × clock × 2 FMA units × lanes × 2). morsd: burn 0.22.1; on the default `flex` backend the matmuls are \
morsd's own (`src/kernels/matmul.rs`: the `gemm` crate's f32 kernels, AVX-512 with `x86-v4`, called directly, \
rayon over the machine's cores); softmax, norms and \
cross-entropy are {kernels}. Same architecture, shapes, batch, sequence length and workload on both sides; \
PyTorch uses random weights of the checkpoint's shapes. Each figure is the best of {rounds} rounds that \
alternate morsd and PyTorch (`MORSD_BENCH_ROUNDS`).\n\n",
        commit,
        peak.map_or("unknown".into(), |p| format!("{p:.0} GFLOP/s")),
    );
    s += &format!("{torch_note}.\n\n");
    if tch.is_some() {
        s += "The `morsd on tch` column is the same morsd code on burn's `tch` backend (burn-tch 0.22.1 over \
libtorch from PyPI's torch 2.9.0, CPU, built by `just bench-tch`): PyTorch's own kernels with burn's \
overhead on top. morsd's fused kernels run on `flex` only; on tch the same ops are burn's decomposed ones.\n\n";
        s += "| model | operation | batch × seq | morsd | PyTorch | morsd ÷ PyTorch | morsd on tch | tch ÷ PyTorch |\n|---|---|---|---|---|---|---|---|\n";
    } else {
        s += "| model | operation | batch × seq | morsd | PyTorch | morsd ÷ PyTorch |\n|---|---|---|---|---|---|\n";
    }
    let ratio = |a: f64, t: Option<f64>| t.map_or("–".into(), |t| format!("{:.2}", a / t));
    let num = |t: Option<f64>| t.map_or("–".into(), |t| format!("{t:.0}"));
    // The tch cells of a row (none without the tch column), and the row's end.
    let tch_cells = |ours: f64, t: Option<f64>| match &tch {
        Some(_) => format!(" {ours:.0} | {} |\n", ratio(ours, t)),
        None => "\n".to_string(),
    };
    for (i, w) in works.iter().enumerate() {
        for (k, what) in [
            "train step (tok/s)",
            "RD scoring, forward (tok/s)",
            "greedy decoding (new tok/s)",
        ]
        .iter()
        .enumerate()
        {
            let shape = match (k, w.encoder) {
                (2, _) => format!("{} × {}+{}", w.batch, w.prompt, w.new_tokens),
                (_, 0) => format!("{} × {}", w.batch, w.seq),
                (_, e) => format!("{} × ({e} → {})", w.batch, w.seq),
            };
            let t = theirs[i][k];
            s += &format!(
                "| {} | {what} | {shape} | {:.0} | {} | {} |",
                w.name,
                ours[i][k],
                num(t),
                ratio(ours[i][k], t)
            );
            s += &tch_cells(on_tch[i][k], t);
        }
    }
    for (k, n) in GEMM_SIZES.iter().enumerate() {
        s += &format!(
            "| f32 matmul (`torch.mm`) | GEMM (GFLOP/s) | {n}² | {:.0} | {} | {} |",
            our_gemm[k],
            num(their_gemm[k]),
            ratio(our_gemm[k], their_gemm[k])
        );
        s += &tch_cells(tch_gemm[k], their_gemm[k]);
    }
    s += "\nPeak resident memory (VmHWM of a process that loads SmolLM2 and runs one optimiser step \
of AdamW over 8 sequences × 256 tokens; weights, gradients, optimiser state and activations, all f32). \
PyTorch's is the same step in its own process, read the same way (VmHWM, which includes the torch library itself); \
its LoRA is rank 8 on q and v, made by hand (no PEFT).\n\n\
| configuration | morsd | PyTorch | morsd ÷ PyTorch |\n|---|---|---|---|\n";
    for (mode, what, gib) in &peaks {
        let t = their_peak.get(*mode).copied();
        s += &format!(
            "| {what} | {} | {} | {} |\n",
            gib.map_or("failed".into(), |g| format!("{g:.2} GiB")),
            t.map_or("–".into(), |t| format!("{t:.2} GiB")),
            gib.map_or("–".into(), |g| ratio(g, t)),
        );
    }
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).expect("results folder");
    }
    std::fs::write(&out, &s).expect("writing the table");
    print!("{s}");
}
