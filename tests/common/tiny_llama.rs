//! A tiny random Llama (2 layers, grouped-query attention) written by the test itself: as a
//! GGUF file (q/k rows permuted the way llama.cpp's converter does, tensors in a chosen ggml
//! type) and as a Hugging Face folder (config.json, model.safetensors, tokenizer.json), plus
//! an independent f64 reference forward pass written with plain loops.

#![allow(dead_code)]

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use morsd::student::tokenizer::Tok;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const D: usize = 64;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV: usize = 2;
pub const FF: usize = 96;
pub const THETA: f64 = 10000.0;
pub const EPS: f64 = 1e-5;

/// HF-layout weights by HF name: (shape, values).
pub type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

pub struct Tiny {
    pub gguf: PathBuf,
    pub hf: PathBuf,
    pub weights: Weights,
    pub vocab: usize,
    pub tok: Tok,
}

fn layer_names(l: usize) -> Vec<(String, String, Vec<usize>)> {
    let hd = D / HEADS;
    [
        ("attn_norm", "input_layernorm", vec![D]),
        ("attn_q", "self_attn.q_proj", vec![HEADS * hd, D]),
        ("attn_k", "self_attn.k_proj", vec![KV * hd, D]),
        ("attn_v", "self_attn.v_proj", vec![KV * hd, D]),
        ("attn_output", "self_attn.o_proj", vec![D, HEADS * hd]),
        ("ffn_norm", "post_attention_layernorm", vec![D]),
        ("ffn_gate", "mlp.gate_proj", vec![FF, D]),
        ("ffn_up", "mlp.up_proj", vec![FF, D]),
        ("ffn_down", "mlp.down_proj", vec![D, FF]),
    ]
    .into_iter()
    .map(|(g, h, s)| {
        (
            format!("blk.{l}.{g}.weight"),
            format!("model.layers.{l}.{h}.weight"),
            s,
        )
    })
    .collect()
}

/// llama.cpp's `permute`: HF "rotate half" row order → interleaved pairs.
fn permute(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let hd = rows / n_head;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let dst = (h * hd + 2 * i + j) * cols;
                let src = (h * hd + j * (hd / 2) + i) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    out
}

/// Writes the tiny model into `dir` with GGUF tensors of `dtype` (norms stay F32).
pub fn write(dir: &Path, seed: u64, dtype: GgmlDType) -> Tiny {
    // 1. A small byte-level BPE vocabulary (ids 0/1 are <pad>/<eos>).
    let texts = [
        "Q: Ann has 3 apples and buys 4 more. How many?\nA: 3 + 4 = 7. The answer is 7.",
        "Q: A coin is heads up. Bob flips it. Is it still heads up?\nA: no. The answer is no.",
    ]
    .repeat(10);
    let tok = Tok::train(texts.iter().copied(), 320).unwrap();
    let vocab = tok.vocab_size();
    let json: serde_json::Value =
        serde_json::from_str(&tok.inner.to_string(false).unwrap()).unwrap();
    let mut tokens = vec![String::new(); vocab];
    for (t, id) in json["model"]["vocab"].as_object().unwrap() {
        tokens[id.as_u64().unwrap() as usize] = t.clone();
    }
    for a in json["added_tokens"].as_array().unwrap() {
        tokens[a["id"].as_u64().unwrap() as usize] = a["content"].as_str().unwrap().into();
    }
    let merges: Vec<String> = json["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(p) => {
                format!("{} {}", p[0].as_str().unwrap(), p[1].as_str().unwrap())
            }
            _ => panic!("merge"),
        })
        .collect();
    // 2. Random weights in HF layout.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rand = |shape: &[usize], norm: bool| -> Vec<f32> {
        let n: usize = shape.iter().product();
        (0..n)
            .map(|_| {
                let x: f32 = rng.random_range(-1.0..1.0);
                if norm { 1.0 + 0.2 * x } else { 0.25 * x }
            })
            .collect()
    };
    let mut weights: Weights = HashMap::new();
    let mut gguf_names: Vec<(String, String)> = vec![
        (
            "token_embd.weight".into(),
            "model.embed_tokens.weight".into(),
        ),
        ("output_norm.weight".into(), "model.norm.weight".into()),
    ];
    weights.insert(
        "model.embed_tokens.weight".into(),
        (vec![vocab, D], rand(&[vocab, D], false)),
    );
    weights.insert("model.norm.weight".into(), (vec![D], rand(&[D], true)));
    for l in 0..LAYERS {
        for (g, h, shape) in layer_names(l) {
            let v = rand(&shape, shape.len() == 1);
            weights.insert(h.clone(), (shape, v));
            gguf_names.push((g, h));
        }
    }
    // 3. GGUF: metadata, tokenizer, tensors (q/k permuted as llama.cpp stores them).
    let gguf = dir.join("tiny.gguf");
    let u = |x: usize| gguf_file::Value::U32(x as u32);
    let s = |x: &str| gguf_file::Value::String(x.into());
    let arr = |v: Vec<gguf_file::Value>| gguf_file::Value::Array(v);
    let md: Vec<(&str, gguf_file::Value)> = vec![
        ("general.architecture", s("llama")),
        ("llama.block_count", u(LAYERS)),
        ("llama.context_length", u(256)),
        ("llama.embedding_length", u(D)),
        ("llama.feed_forward_length", u(FF)),
        ("llama.attention.head_count", u(HEADS)),
        ("llama.attention.head_count_kv", u(KV)),
        ("llama.rope.freq_base", gguf_file::Value::F32(THETA as f32)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            gguf_file::Value::F32(EPS as f32),
        ),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("default")),
        (
            "tokenizer.ggml.tokens",
            arr(tokens.iter().map(|t| s(t)).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            arr((0..vocab)
                .map(|i| gguf_file::Value::I32(if i < 2 { 3 } else { 1 }))
                .collect()),
        ),
        (
            "tokenizer.ggml.merges",
            arr(merges.iter().map(|m| s(m)).collect()),
        ),
        ("tokenizer.ggml.eos_token_id", u(1)),
        ("tokenizer.ggml.padding_token_id", u(0)),
    ];
    let cpu = candle_core::Device::Cpu;
    let mut qts: Vec<(String, QTensor)> = Vec::new();
    for (g, h) in &gguf_names {
        let (shape, v) = &weights[h];
        let data = if g.contains("attn_q") {
            permute(v, shape[0], shape[1], HEADS)
        } else if g.contains("attn_k") {
            permute(v, shape[0], shape[1], KV)
        } else {
            v.clone()
        };
        let t = candle_core::Tensor::from_vec(data, shape.as_slice(), &cpu).unwrap();
        let dt = if shape.len() == 1 {
            GgmlDType::F32
        } else {
            dtype
        };
        qts.push((g.clone(), QTensor::quantize(&t, dt).unwrap()));
    }
    let md_refs: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(&gguf).unwrap();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    // 4. The Hugging Face folder.
    let hf = dir.join("hf");
    std::fs::create_dir_all(&hf).unwrap();
    std::fs::write(
        hf.join("config.json"),
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": D, "intermediate_size": FF,
            "num_attention_heads": HEADS, "num_key_value_heads": KV, "num_hidden_layers": LAYERS,
            "rms_norm_eps": EPS, "rope_theta": THETA, "vocab_size": vocab,
            "tie_word_embeddings": true, "eos_token_id": 1, "pad_token_id": 0,
            "max_position_embeddings": 256
        })
        .to_string(),
    )
    .unwrap();
    let tensors: HashMap<String, candle_core::Tensor> = weights
        .iter()
        .map(|(k, (shape, v))| {
            (
                k.clone(),
                candle_core::Tensor::from_vec(v.clone(), shape.as_slice(), &cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&tensors, hf.join("model.safetensors")).unwrap();
    tok.inner.save(hf.join("tokenizer.json"), false).unwrap();
    Tiny {
        gguf,
        hf,
        weights,
        vocab,
        tok,
    }
}

fn rmsnorm(x: &[f64], g: &[f32]) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let r = 1.0 / (ms + EPS).sqrt();
    x.iter().zip(g).map(|(v, g)| v * r * *g as f64).collect()
}

/// y = W·x for W `[out, in]` row-major.
fn matvec(w: &(Vec<usize>, Vec<f32>), x: &[f64]) -> Vec<f64> {
    let (o, i) = (w.0[0], w.0[1]);
    (0..o)
        .map(|r| (0..i).map(|k| w.1[r * i + k] as f64 * x[k]).sum())
        .collect()
}

fn rope(v: &mut [f64], pos: usize) {
    let hd = v.len();
    let orig = v.to_vec();
    for i in 0..hd {
        let k = i % (hd / 2);
        let f = pos as f64 * THETA.powf(-((2 * k) as f64) / hd as f64);
        let rot = if i < hd / 2 {
            -orig[i + hd / 2]
        } else {
            orig[i - hd / 2]
        };
        v[i] = orig[i] * f.cos() + rot * f.sin();
    }
}

/// Next-token logits at every position of `ids`, computed naively in f64 (tied head).
pub fn reference_logits(w: &Weights, ids: &[u32]) -> Vec<Vec<f64>> {
    let hd = D / HEADS;
    let emb = &w["model.embed_tokens.weight"];
    let vocab = emb.0[0];
    let mut xs: Vec<Vec<f64>> = ids
        .iter()
        .map(|&id| {
            emb.1[id as usize * D..(id as usize + 1) * D]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    for l in 0..LAYERS {
        let p = |s: &str| &w[&format!("model.layers.{l}.{s}.weight")];
        let mut qs = Vec::new();
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        for (t, x) in xs.iter().enumerate() {
            let h = rmsnorm(x, &p("input_layernorm").1);
            let mut q = matvec(p("self_attn.q_proj"), &h);
            let mut k = matvec(p("self_attn.k_proj"), &h);
            for c in q.chunks_mut(hd) {
                rope(c, t);
            }
            for c in k.chunks_mut(hd) {
                rope(c, t);
            }
            qs.push(q);
            ks.push(k);
            vs.push(matvec(p("self_attn.v_proj"), &h));
        }
        let mut next = Vec::new();
        for (t, x) in xs.iter().enumerate() {
            let mut att = vec![0f64; HEADS * hd];
            for h in 0..HEADS {
                let kv = h / (HEADS / KV);
                let q = &qs[t][h * hd..(h + 1) * hd];
                let scores: Vec<f64> = (0..=t)
                    .map(|s| {
                        let k = &ks[s][kv * hd..(kv + 1) * hd];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (s, es) in e.iter().enumerate() {
                    for j in 0..hd {
                        att[h * hd + j] += es / z * vs[s][kv * hd + j];
                    }
                }
            }
            let o = matvec(p("self_attn.o_proj"), &att);
            let x1: Vec<f64> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
            let h2 = rmsnorm(&x1, &p("post_attention_layernorm").1);
            let g = matvec(p("mlp.gate_proj"), &h2);
            let u = matvec(p("mlp.up_proj"), &h2);
            let m: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let dn = matvec(p("mlp.down_proj"), &m);
            next.push(x1.iter().zip(&dn).map(|(a, b)| a + b).collect());
        }
        xs = next;
    }
    xs.iter()
        .map(|x| {
            let h = rmsnorm(x, &w["model.norm.weight"].1);
            (0..vocab)
                .map(|v| (0..D).map(|k| emb.1[v * D + k] as f64 * h[k]).sum())
                .collect()
        })
        .collect()
}
