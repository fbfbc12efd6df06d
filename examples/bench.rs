//! `just bench`: throughput of the students on the default CPU backend (burn `flex`) beside
//! PyTorch eager on the same architecture, sizes, batch and sequence length, in the same run:
//! tokens/s of (a) a training step (forward, backward, AdamW), (b) batched RD scoring
//! (forward only) and (c) greedy decoding; plus the peak memory of one SmolLM2 fine-tuning
//! step at batch 8 × 256 (full and LoRA), each in a child process of its own.
//!
//! usage: bench OUT.md [TORCH_PYTHON]     (internal: bench --peak full|lora)

use burn::prelude::*;
use morsd::student::decode::{DecodeOptions, greedy_ids};
use morsd::student::tokenizer::Tok;
use morsd::student::train::{TrainExample, TrainOptions, lm_batch, position_nll, train};
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
}

/// SmolLM2 as `student.weights` would name it: the GGUF setup-llama.sh fetched, else the
/// model fetched by `just models`.
fn smollm2(max_seq: usize, device: &Device) -> (Lm, Tok, serde_json::Value) {
    let weights = std::env::var("MORSD_SMOLLM2_GGUF").unwrap_or_else(|_| "smollm2-135m".into());
    let (m, c, tok) =
        morsd::student::load_llama(&weights, max_seq, device).expect("SmolLM2 (run `just models`)");
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

fn examples(tok: &Tok, w: &Work) -> Vec<TrainExample> {
    // A one-token prompt, so every one of the `seq` positions carries loss (as in PyTorch).
    let ids = tok.encode(&TEXT.repeat(1 + 4 * w.seq / TEXT.len().max(1)));
    (0..w.batch)
        .map(|r| {
            let s: Vec<u32> = ids
                .iter()
                .cycle()
                .skip(r)
                .take(w.seq + 1)
                .copied()
                .collect();
            TrainExample {
                prompt: s[..1].to_vec(),
                target: s[1..].to_vec(),
            }
        })
        .collect()
}

fn opts(w: &Work, steps: usize) -> TrainOptions {
    TrainOptions {
        steps,
        batch_size: w.batch,
        grad_accum: 1,
        lr: 1e-5,
        warmup_steps: 1,
        weight_decay: 0.0,
        eval_every: steps,
        seed: 0,
    }
}

/// (a), (b), (c) for one model (built on the autodiff device `ad`): tokens/s each.
fn measure(model: Lm, tok: &Tok, w: &Work, ad: &Device, device: &Device) -> [f64; 3] {
    let data = examples(tok, w);
    let bar = indicatif::ProgressBar::hidden();
    // (a) one untimed step (allocations, kernel set-up), then timed steps from the same start.
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
    let train_tps = (w.batch * w.seq * w.train_steps) as f64 / t0.elapsed().as_secs_f64();
    let model = trained.model;
    // (b) forward-only scoring of every position.
    let refs: Vec<&TrainExample> = data.iter().collect();
    let lb = lm_batch(&refs, tok.pad, w.seq, device).expect("bench rows have targets");
    let _ = position_nll(&model, &lb).sum().into_scalar::<f32>();
    let t0 = Instant::now();
    for _ in 0..w.score_reps {
        let _ = position_nll(&model, &lb).sum().into_scalar::<f32>();
    }
    let score_tps = (w.batch * w.seq * w.score_reps) as f64 / t0.elapsed().as_secs_f64();
    // (c) greedy decoding (KV cache for Llama), prompts of about `prompt` tokens.
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
    let decode_tps = made as f64 / t0.elapsed().as_secs_f64();
    [train_tps, score_tps, decode_tps]
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
        lora::attach(model, 8, 16.0, &t).expect("lora")
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
    };
    let data = examples(&tok, &w);
    let bar = indicatif::ProgressBar::hidden();
    let mut o = opts(&w, 1);
    o.batch_size = 8 / accum;
    o.grad_accum = accum;
    let _ = train(model, &data, tok.pad, &o, &ad, None, &bar);
    println!("{:.3}", peak_gib());
}

fn main() {
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
    let works = [
        Work {
            name: "scratch (quickstart: d128 L2, vocab 768)",
            batch: 16,
            seq: 96,
            train_steps: 10,
            score_reps: 10,
            prompt: 32,
            new_tokens: 32,
        },
        Work {
            name: "SmolLM2-135M (Q4_1 GGUF → f32)",
            batch: 8,
            seq: 256,
            train_steps: 2,
            score_reps: 2,
            prompt: 64,
            new_tokens: 32,
        },
    ];
    // 1. morsd.
    let mut ours = Vec::new();
    let mut cfgs = Vec::new();
    for (i, w) in works.iter().enumerate() {
        let max_seq = w.seq.max(w.prompt + w.new_tokens);
        let ad = device.clone().autodiff();
        let (model, tok, cfg) = if i == 0 {
            scratch(max_seq, &ad)
        } else {
            smollm2(max_seq, &ad)
        };
        eprintln!("morsd: {}", w.name);
        ours.push(measure(model, &tok, w, &ad, &device));
        let mut m = json!({"name": w.name, "config": cfg, "batch": w.batch, "seq": w.seq,
            "train_steps": w.train_steps, "score_reps": w.score_reps, "prompt": w.prompt,
            "new_tokens": w.new_tokens});
        if i == 0 {
            m["arch"] = json!("gpt");
        }
        cfgs.push(m);
    }
    // 2. PyTorch eager, same shapes and workload.
    let mut theirs: Vec<[Option<f64>; 3]> = vec![[None; 3]; works.len()];
    let mut torch_note = "PyTorch not run (no python given)".to_string();
    if let Some(py) = &torch_py {
        let torch_device = if backend == "flex" || backend == "cpu" {
            "cpu"
        } else {
            "cuda"
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cfg = json!({"threads": threads, "device": torch_device, "models": cfgs}).to_string();
        eprintln!("pytorch");
        let o = std::process::Command::new(py)
            .args(["scripts/bench_torch.py", "--config", &cfg])
            .output()
            .expect("running scripts/bench_torch.py");
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let i = works.iter().position(|w| v["model"] == w.name).unwrap_or(0);
            let k = ["train step", "RD scoring", "greedy decoding"]
                .iter()
                .position(|x| v["what"] == *x)
                .unwrap_or(0);
            theirs[i][k] = v["tokens_per_s"].as_f64();
        }
        let ver = std::process::Command::new(py)
            .args([
                "-c",
                "import torch; print(torch.__version__, torch.get_num_threads())",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        torch_note = format!("PyTorch {ver} (version, threads), eager, CPU, float32");
        if !o.status.success() {
            torch_note += &format!(
                " — FAILED: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
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
    .map(|(mode, what)| {
        eprintln!("peak memory: {mode}");
        let gib = std::process::Command::new(&me)
            .args(["--peak", mode])
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            });
        (mode, what, gib)
    })
    .collect();
    // 4. The table.
    let mut s =
        format!("# Student throughput: morsd (burn `{backend}`) vs PyTorch eager (CPU)\n\n");
    s += &format!(
        "Produced by `just bench` (`MORSD_DEVICE={backend}`). morsd: burn 0.22.1; on the default `flex` \
backend the matmuls are the `gemm` crate's f32 kernels, rayon over the machine's cores. Same architecture, shapes, \
batch, sequence length and workload on both sides; PyTorch uses random weights of the checkpoint's shapes.\n\n"
    );
    s += &format!("{torch_note}.\n\n");
    s += "| model | operation | batch × seq | morsd tok/s | PyTorch tok/s | morsd ÷ PyTorch |\n|---|---|---|---|---|---|\n";
    for (i, w) in works.iter().enumerate() {
        for (k, what) in [
            "train step",
            "RD scoring (forward)",
            "greedy decoding (new tokens)",
        ]
        .iter()
        .enumerate()
        {
            let shape = if k == 2 {
                format!("{} × {}+{}", w.batch, w.prompt, w.new_tokens)
            } else {
                format!("{} × {}", w.batch, w.seq)
            };
            let t = theirs[i][k];
            s += &format!(
                "| {} | {what} | {shape} | {:.0} | {} | {} |\n",
                w.name,
                ours[i][k],
                t.map_or("–".into(), |t| format!("{t:.0}")),
                t.map_or("–".into(), |t| format!("{:.2}", ours[i][k] / t)),
            );
        }
    }
    s += "\nPeak resident memory (VmHWM of a process that loads SmolLM2 and runs one optimiser step \
of AdamW over 8 sequences × 256 tokens; weights, gradients, optimiser state and activations, all f32). \
Target: a full fine-tuning step ≤ 3 GiB.\n\n| configuration | peak |\n|---|---|\n";
    for (_, what, gib) in &peaks {
        s += &format!(
            "| {what} | {} |\n",
            gib.map_or("failed".into(), |g| format!("{g:.2} GiB"))
        );
    }
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).expect("results folder");
    }
    std::fs::write(&out, &s).expect("writing the table");
    print!("{s}");
}
