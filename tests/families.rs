//! Every pretrained family against Hugging Face transformers and PEFT, without Python: the
//! fixtures in `tests/fixtures/families/` (tiny random checkpoints and their reference outputs,
//! made by `scripts/make_family_fixtures.py`; `just check-families` regenerates them into a
//! temporary folder named by `MORSD_FAMILY_FIXTURES` and runs this file against them).
//!
//! Per family (T5 and Flan-T5 as encoder–decoders): the tokenizer's ids, the logits of each prompt alone and in a left-padded
//! batch, the greedy continuation (KV-cached decoding), the RD of (q, r, a) triples, and one
//! LoRA step from PEFT's saved adapters on PEFT's default target modules (loss and every
//! adapter gradient), all within 1e-4.

mod common;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use morsd::student::decode::{DecodeOptions, greedy_encoded, with_eos};
use morsd::student::model::{Batch, EncoderInput};
use morsd::student::train::{TrainExample, batch_for, masked_nll};
use morsd::student::{Family, Lm, load_checkpoint, lora};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const TOL: f32 = 1e-4;
/// The length the students are run at: GPT-2's fixture has 64 positions; T5's prompts reach 73
/// tokens, which its encoder reads whole.
fn len_of(family: Family) -> usize {
    if family == Family::Gpt2 { 64 } else { 128 }
}

fn fixtures() -> PathBuf {
    std::env::var_os("MORSD_FAMILY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families")
        })
}

fn reference(family: &str) -> (PathBuf, Value) {
    let dir = fixtures().join(family);
    let text = std::fs::read_to_string(dir.join("reference.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    (dir, serde_json::from_str(&text).unwrap())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_f64().unwrap() as f32),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The largest |a − b|, asserted within [`TOL`].
fn assert_close(what: &str, got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= TOL, "{what}: max |Δ| = {worst:e} > {TOL:e}");
    worst
}

/// Logits `[t, vocab]` of every position of each row of a batch, row-major.
fn batch_logits(model: &Lm, batch: &Batch) -> Vec<Vec<f32>> {
    let h = model.hidden(batch);
    let [b, t, d] = h.dims();
    let logits = model.logits(h.reshape([b * t, d]));
    let v = logits.dims()[1];
    let all: Vec<f32> = logits.into_data().iter::<f32>().collect();
    all.chunks(t * v).map(<[f32]>::to_vec).collect()
}

fn rows_of(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(ids).collect()
}

/// A family's whole check; `seq2seq` for T5 (prompts go to the encoder).
fn check(name: &str, family: Family, seq2seq: bool) {
    let _limit = common::watchdog(name);
    let (dir, r) = reference(name);
    assert_eq!(r["family"], name);
    assert_eq!(r["kind"], if seq2seq { "seq2seq" } else { "decoder" });
    let device = morsd::device_from_env().unwrap();
    // 1. The checkpoint loads as its own family, with the reference's tokenizer (T5's closes
    //    its text with `</s>`, which morsd adds where the encoder reads it).
    let p = load_checkpoint(&dir, len_of(family), &device).unwrap();
    assert_eq!(p.family, family);
    let (model, tok) = (p.model, p.tok);
    for (text, want) in r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(rows_of(&r["tokenizer_ids"]))
    {
        let got = tok.encode(text.as_str().unwrap());
        let got = if seq2seq {
            with_eos(&got, tok.eos)
        } else {
            got
        };
        assert_eq!(got, want, "{name}: ids of {text}");
    }
    let prompts = rows_of(&r["prompts"]);
    let pad = tok.pad;
    // A batch of (encoder input, decoder input) rows, or of decoder inputs.
    let batch = |rows: &[Vec<u32>], dec: Option<&[Vec<u32>]>, left: bool| match dec {
        Some(dec) => {
            let mut b = Batch::new(dec, pad, false, &device);
            b.encoder = Some(EncoderInput::new(rows, pad, &device));
            b
        }
        None => Batch::new(rows, pad, left, &device),
    };
    let dec_inputs = seq2seq.then(|| rows_of(&r["decoder_inputs"]));
    // 2. Logits of each prompt alone.
    let mut worst = 0f32;
    for (i, prompt) in prompts.iter().enumerate() {
        let dec = dec_inputs.as_ref().map(|d| vec![d[i].clone()]);
        let got = batch_logits(
            &model,
            &batch(std::slice::from_ref(prompt), dec.as_deref(), false),
        );
        worst = worst.max(assert_close(
            &format!("{name}: logits of prompt {i}"),
            &got[0],
            &floats(&r["logits"][i]),
        ));
    }
    // 3. The padded batch: a decoder's is left-padded (positions restart at each row's first
    //    token; the real positions compared), an encoder's right-padded (every decoder position
    //    compared).
    let mask = rows_of(&r["batch"]["mask"]);
    let rows: Vec<Vec<u32>> = rows_of(&r["batch"]["ids"])
        .into_iter()
        .zip(&mask)
        .map(|(row, m)| {
            row.into_iter()
                .zip(m)
                .filter(|(_, m)| **m == 1)
                .map(|(x, _)| x)
                .collect()
        })
        .collect();
    let dec_batch = seq2seq.then(|| rows_of(&r["batch"]["decoder_ids"]));
    let got = batch_logits(&model, &batch(&rows, dec_batch.as_deref(), true));
    let want = floats(&r["batch"]["logits"]);
    let t = match &dec_batch {
        Some(d) => d[0].len(),
        None => mask[0].len(),
    };
    let v = want.len() / (rows.len() * t);
    for row in 0..rows.len() {
        for j in 0..t {
            if seq2seq || mask[row][j] == 1 {
                let at = |x: &[f32]| x[j * v..(j + 1) * v].to_vec();
                worst = worst.max(assert_close(
                    &format!("{name}: padded batch row {row} position {j}"),
                    &at(&got[row]),
                    &at(&want[row * t * v..(row + 1) * t * v]),
                ));
            }
        }
    }
    // 4. Greedy continuations with the KV cache (T5: cross-attention keys and values computed
    //    once), all prompts in one batch; morsd stops at end of sequence, the reference does not.
    let opts = DecodeOptions {
        max_new: 8,
        batch_size: 8,
        stop: None,
    };
    let got = greedy_encoded(&model, &tok, &prompts, &opts, &device);
    for (g, want) in got.iter().zip(r["greedy"].as_array().unwrap()) {
        let want = ids(&want["ids"]);
        let until_eos: Vec<u32> = want.iter().copied().take_while(|&x| x != tok.eos).collect();
        assert_eq!(g, &until_eos, "{name}: greedy");
    }
    // 5. RD = exp(NLL(a | q, r) − NLL(a | q)); an encoder–decoder reads q with its encoder
    //    and r before a with its decoder.
    for (i, tr) in r["rd"].as_array().unwrap().iter().enumerate() {
        let (q, rr, a) = (ids(&tr["q"]), ids(&tr["r"]), ids(&tr["a"]));
        let nll = |prompt: Vec<u32>, context: Vec<u32>| {
            let ex = TrainExample {
                prompt,
                context,
                target: a.clone(),
            };
            let lb = batch_for(&model, &[&ex], pad, len_of(family), &device).unwrap();
            masked_nll(&model, &lb).into_scalar::<f32>() as f64
        };
        let (with, without) = if seq2seq {
            (nll(q.clone(), rr), nll(q, vec![]))
        } else {
            (nll([q.clone(), rr].concat(), vec![]), nll(q, vec![]))
        };
        let rd = (with - without).exp();
        for (what, got, key) in [
            ("NLL(a|q,r)", with, "nll_qr"),
            ("NLL(a|q)", without, "nll_q"),
            ("RD", rd, "rd"),
        ] {
            let want = tr[key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= TOL as f64,
                "{name}: triple {i} {what} {got} vs {want}"
            );
        }
    }
    eprintln!("{name}: worst |Δlogit| {worst:e}");
    lora_step(name, family, &dir, &r);
}

/// PEFT's default targets, its saved adapters, one loss and backward: loss and gradients.
fn lora_step(name: &str, family: Family, dir: &std::path::Path, r: &Value) {
    let l = &r["lora"];
    let device = morsd::device_from_env().unwrap().autodiff();
    let p = load_checkpoint(dir, len_of(family), &device).unwrap();
    let want_targets: Vec<String> = l["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    let mut defaults: Vec<String> = p
        .family
        .default_lora_targets()
        .iter()
        .map(|t| t.to_string())
        .collect();
    defaults.sort();
    assert_eq!(
        defaults, want_targets,
        "{name}: PEFT's default target modules"
    );
    let rank = l["r"].as_u64().unwrap() as usize;
    let alpha = l["alpha"].as_f64().unwrap();
    let model = lora::attach(p.model, rank, alpha, &want_targets, 0, &device).unwrap();
    let adapters = lora::read_adapters(&dir.join("lora")).unwrap();
    assert!((adapters.scale - alpha / rank as f64).abs() < 1e-12);
    let model = lora::set_factors(model, &adapters, &dir.join("lora")).unwrap();
    let examples: Vec<TrainExample> = l["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| TrainExample {
            prompt: ids(&e["prompt"]),
            target: ids(&e["target"]),
            ..Default::default()
        })
        .collect();
    let refs: Vec<&TrainExample> = examples.iter().collect();
    let lb = batch_for(&model, &refs, p.tok.pad, len_of(family), &device).unwrap();
    let loss = masked_nll(&model, &lb);
    let got_loss = loss.clone().into_scalar::<f32>();
    let want_loss = l["loss"].as_f64().unwrap() as f32;
    assert!(
        (got_loss - want_loss).abs() <= TOL,
        "{name}: LoRA loss {got_loss} vs {want_loss}"
    );
    let grads = loss.backward();
    // Every adapter factor's gradient, in PEFT's layout (lora_A = aᵀ, lora_B = bᵀ).
    struct Collect<'a> {
        family: Family,
        path: Vec<String>,
        grads: &'a burn::tensor::Gradients,
        found: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some((prefix, part)) = lora::factor_of(self.family, &self.path) else {
                return;
            };
            let part = ["lora_A", "lora_B"][part];
            let g = param
                .val()
                .grad(self.grads)
                .expect("a factor without a gradient");
            let [rows, cols] = g.dims()[..] else {
                unreachable!()
            };
            let v: Vec<f32> = g.into_data().iter::<f32>().collect();
            let t = morsd::student::checkpoint::transpose(&v, rows, cols);
            self.found
                .insert(format!("{prefix}.{part}.weight"), (vec![cols, rows], t));
        }
    }
    let mut c = Collect {
        family,
        path: Vec::new(),
        grads: &grads,
        found: BTreeMap::new(),
    };
    model.visit(&mut c);
    let want = l["grads"].as_object().unwrap();
    assert_eq!(
        c.found.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{name}: the adapted modules"
    );
    for (k, (shape, g)) in &c.found {
        assert_eq!(
            shape,
            &ids(&l["shapes"][k])
                .iter()
                .map(|&x| x as usize)
                .collect::<Vec<_>>(),
            "{k}: shape"
        );
        assert_close(&format!("{name}: grad {k}"), g, &floats(&want[k]));
    }
}

#[test]
fn llama_matches_transformers() {
    check("llama", Family::Llama, false);
}

#[test]
fn qwen2_matches_transformers() {
    check("qwen2", Family::Qwen2, false);
}

#[test]
fn qwen3_matches_transformers() {
    check("qwen3", Family::Qwen3, false);
}

#[test]
fn llama3_rope_scaling_matches_transformers() {
    check("llama3", Family::Llama, false);
}

#[test]
fn mistral_sliding_window_matches_transformers() {
    check("mistral", Family::Mistral, false);
}

#[test]
fn gemma2_matches_transformers() {
    check("gemma2", Family::Gemma2, false);
}

#[test]
fn gemma3_matches_transformers() {
    check("gemma3", Family::Gemma3, false);
}

#[test]
fn phi3_longrope_partial_rotary_matches_transformers() {
    check("phi3", Family::Phi3, false);
}

#[test]
fn gpt2_matches_transformers() {
    check("gpt2", Family::Gpt2, false);
}

#[test]
fn gpt2_decoding_stops_each_row_at_its_position_table() {
    // GPT-2 run at its whole table (64 positions): in one batch, a prompt of 60 tokens fills the
    // table after 4 new tokens while a short one goes on. The finished row must not be run past
    // position 63 (the cached step used to embed position 64 and panic), and each row decodes
    // as it does alone.
    let device = morsd::device_from_env().unwrap();
    let p = load_checkpoint(&fixtures().join("gpt2"), 64, &device).unwrap();
    let (model, tok) = (p.model, p.tok);
    let long: Vec<u32> = (0..60).map(|i| 3 + (i * 7) % 250).collect();
    let prompts = vec![long, vec![5, 9, 11, 4, 7]];
    let opts = |batch_size| DecodeOptions {
        max_new: 20,
        batch_size,
        stop: None,
    };
    let together = greedy_encoded(&model, &tok, &prompts, &opts(8), &device);
    for (i, (t, p)) in together.iter().zip(&prompts).enumerate() {
        assert!(
            p.len() + t.len() <= 64,
            "row {i}: {} + {}",
            p.len(),
            t.len()
        );
        let alone = greedy_encoded(&model, &tok, std::slice::from_ref(p), &opts(1), &device);
        assert_eq!(t, &alone[0], "row {i}: batched vs alone");
    }
}

#[test]
fn flan_t5_matches_transformers() {
    check("flan-t5", Family::T5, true);
}

#[test]
fn t5_matches_transformers() {
    check("t5", Family::T5, true);
}

#[test]
fn a_spec_kind_naming_another_family_is_an_error_naming_both() {
    let (dir, _) = reference("qwen2");
    let spec: morsd::spec::raw::StudentSpec = toml::from_str(&format!(
        "kind = \"llama\"\nweights = {:?}\nmax_seq_len = 32",
        dir.to_str().unwrap()
    ))
    .unwrap();
    let e = morsd::student::load_pretrained(&spec, &morsd::device_from_env().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("\"llama\"") && e.contains("`qwen2`"), "{e}");
}

#[test]
fn a_spec_with_weights_needs_no_kind_and_an_unknown_family_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    let (qwen2, _) = reference("qwen2");
    std::fs::write(
        &spec,
        format!(
            "[student]\nweights = {:?}\nmax_seq_len = 32\n",
            qwen2.to_str().unwrap()
        ),
    )
    .unwrap();
    let s = morsd::resolve::load(&spec, &[]).unwrap();
    let student = &s.runs[0].spec.student;
    assert_eq!(student.kind, "pretrained");
    let p = morsd::student::load_pretrained(student, &morsd::device_from_env().unwrap()).unwrap();
    assert_eq!(p.family, Family::Qwen2);
    // A folder of a family morsd does not build.
    let other = dir.path().join("gemma");
    std::fs::create_dir(&other).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(qwen2.join(f), other.join(f)).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    cfg["model_type"] = "gemma3".into();
    std::fs::write(other.join("config.json"), cfg.to_string()).unwrap();
    let e = load_checkpoint(&other, 32, &morsd::device_from_env().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`gemma3`") && e.contains("qwen3 (Qwen3ForCausalLM)"),
        "{e}"
    );
}
