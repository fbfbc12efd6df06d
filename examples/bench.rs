//! `just bench`: throughput of the scratch student on the default CPU backend (burn flex):
//! tokens/s of a training step, of batched RD scoring (forward only) and of greedy decoding.
//! Writes a markdown table to the path given as the first argument.

use burn::prelude::*;
use morsd::student::decode::greedy;
use morsd::student::score::answer_nll;
use morsd::student::tokenizer::Tok;
use morsd::student::train::{TrainExample, TrainOptions, train};
use morsd::student::{init_student, model_config};
use std::time::Instant;

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "results/bench/bench.md".into());
    let device = Device::flex();
    let text = "Ann has 12 apples. Then Ann gets 7 more apples. How many apples does Ann have now? 12 + 7 = 19. The answer is 19.";
    let tok = Tok::train(std::iter::repeat_n(text, 50), 512).expect("tokenizer");
    let mut rows = vec![
        "| model | operation | batch × seq | tokens/s | ms/call |".to_string(),
        "|---|---|---|---|---|".into(),
    ];
    for (name, d, layers, heads) in [
        ("scratch d96 L2 (quickstart)", 96, 2, 4),
        ("scratch d256 L4", 256, 4, 8),
    ] {
        let spec = morsd::spec::raw::StudentSpec {
            d_model: d,
            layers,
            heads,
            max_seq_len: 128,
            ..Default::default()
        };
        let config = model_config(&spec, tok.vocab_size());
        let (batch, seq) = (16usize, 96usize);
        let ids: Vec<u32> = (0..seq as u32).map(|i| 2 + i % 300).collect();
        let data: Vec<TrainExample> = (0..batch)
            .map(|_| TrainExample {
                prompt: ids[..32].to_vec(),
                target: ids[32..].to_vec(),
            })
            .collect();
        // 1. Training steps (forward + backward + AdamW).
        let ad = device.clone().autodiff();
        let model = init_student(&config, 0, &ad);
        let steps = 10;
        let opts = TrainOptions {
            steps,
            batch_size: batch,
            lr: 1e-3,
            warmup_steps: 1,
            weight_decay: 0.0,
            eval_every: steps,
            seed: 0,
        };
        let t = Instant::now();
        let trained = train(
            model,
            &data,
            tok.pad,
            &opts,
            &ad,
            None,
            &indicatif::ProgressBar::hidden(),
        );
        let s = t.elapsed().as_secs_f64();
        rows.push(format!(
            "| {name} | train step | {batch} × {seq} | {:.0} | {:.1} |",
            (steps * batch * seq) as f64 / s,
            1e3 * s / steps as f64
        ));
        // 2. Batched scoring (forward only).
        let pairs: Vec<(String, String)> = (0..64)
            .map(|_| (text[..80].to_string(), " The answer is 19.".to_string()))
            .collect();
        let n_tok: usize = pairs
            .iter()
            .map(|(a, b)| tok.encode(a).len() + tok.encode(b).len())
            .sum();
        let t = Instant::now();
        let reps = 5;
        for _ in 0..reps {
            answer_nll(&trained.model, &tok, &pairs, 32, &device);
        }
        let s = t.elapsed().as_secs_f64();
        rows.push(format!(
            "| {name} | RD scoring | 32 × {} | {:.0} | {:.1} |",
            n_tok / 64,
            (reps * n_tok) as f64 / s,
            1e3 * s / (reps * 2) as f64
        ));
        // 3. Greedy decoding (new tokens/s, no KV cache in the scratch student).
        let prompts: Vec<String> = (0..32)
            .map(|i| format!("Q: Bob has {i} coins. How many?\nA:"))
            .collect();
        let t = Instant::now();
        let outs = greedy(&trained.model, &tok, &prompts, 32, 32, &device);
        let s = t.elapsed().as_secs_f64();
        let generated: usize = outs.iter().map(|o| tok.encode(o).len().max(1)).sum();
        rows.push(format!(
            "| {name} | greedy decode | 32 prompts | {:.0} | {:.1} |",
            generated as f64 / s,
            1e3 * s
        ));
    }
    let table = format!(
        "# morsd bench\n\nBackend: burn {} flex (pure-Rust CPU, gemm matmul, rayon), {} threads available.\n\n{}\n",
        "0.22.1",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        rows.join("\n")
    );
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).expect("bench output folder");
    }
    std::fs::write(&out, &table).expect("write bench table");
    print!("{table}");
}
