//! The Llama-family student on tiny random weights the test writes itself (GGUF and Hugging
//! Face safetensors): names and shapes, the GGUF q/k permutation and dequantisation, a
//! known-answer forward against an independent f64 implementation, the KV cache, padding,
//! LoRA, gradient accumulation, and a whole `morsd run` with `student.kind = "llama"`.

mod common;
#[path = "common/tiny_llama.rs"]
mod tiny;

use burn::prelude::*;
use candle_core::quantized::GgmlDType;
use morsd::student::checkpoint::Checkpoint;
use morsd::student::decode::{DecodeOptions, greedy_ids};
use morsd::student::score::answer_nll;
use morsd::student::train::{Budget, TrainExample, TrainOptions, lm_batch, masked_nll, train};
use morsd::student::{Batch, Lm, lora};

fn load(path: &std::path::Path, device: &Device) -> (Lm, morsd::student::tokenizer::Tok) {
    let (m, _, tok) = Checkpoint::load(path)
        .unwrap()
        .into_llama(128, device)
        .unwrap();
    (Lm::Llama(m), tok)
}

fn logits(model: &Lm, ids: &[u32], device: &Device) -> Vec<f32> {
    let batch = Batch::new(&[ids.to_vec()], 0, false, device);
    let h = model.hidden(&batch);
    let [_, t, d] = h.dims();
    model
        .logits(h.reshape([t, d]))
        .into_data()
        .iter::<f32>()
        .collect()
}

const TEXT: &str = "Q: Ann has 3 apples and buys 4 more. How many?\nA: 3 + 4 = 7.";

#[test]
fn checkpoint_names_shapes_and_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 1, GgmlDType::F32);
    for path in [&t.gguf, &t.hf] {
        let ck = Checkpoint::load(path).unwrap();
        let c = &ck.config;
        assert_eq!(
            (
                c.vocab_size,
                c.d_model,
                c.layers,
                c.heads,
                c.kv_heads,
                c.d_ff
            ),
            (
                t.vocab,
                tiny::D,
                tiny::LAYERS,
                tiny::HEADS,
                tiny::KV,
                tiny::FF
            )
        );
        assert!(c.tie_embeddings);
        assert_eq!(ck.weights.len(), 2 + 9 * tiny::LAYERS);
        assert_eq!(ck.weights["L1.k_proj"].shape, vec![tiny::KV * 16, tiny::D]);
        // The tokenizer rebuilt from the GGUF vocabulary encodes like the original and
        // round-trips the text exactly.
        assert_eq!(
            ck.tok.encode(TEXT),
            t.tok.encode(TEXT),
            "{}",
            path.display()
        );
        assert_eq!(ck.tok.decode(&ck.tok.encode(TEXT)), TEXT);
        assert_eq!((ck.tok.pad, ck.tok.eos), (0, 1));
    }
    // A truncated file and a missing tensor are errors naming the file, not panics.
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, &std::fs::read(&t.gguf).unwrap()[..200]).unwrap();
    let e = Checkpoint::load(&bad).err().unwrap().to_string();
    assert!(e.contains("bad.gguf"), "{e}");
}

#[test]
fn forward_matches_an_independent_reference() {
    let device = morsd::device_from_env().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 2, GgmlDType::F32);
    let ids = t.tok.encode(TEXT);
    let want = tiny::reference_logits(&t.weights, &ids);
    let v = t.vocab;
    // Safetensors (HF layout) and GGUF (permuted q/k rows, undone by the loader) both agree
    // with the plain-loop f64 forward pass.
    for path in [&t.hf, &t.gguf] {
        let (model, _) = load(path, &device);
        let got = logits(&model, &ids, &device);
        let mut max = 0f64;
        for (p, row) in want.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                max = max.max((got[p * v + k] as f64 - w).abs());
            }
        }
        assert!(max < 1e-3, "{}: max |Δlogit| {max}", path.display());
    }
}

#[test]
fn quantized_gguf_dequantizes_within_the_format_bound() {
    let dir = tempfile::tempdir().unwrap();
    for (dtype, levels) in [
        (GgmlDType::Q8_0, 127.0),
        (GgmlDType::Q4_1, 15.0),
        (GgmlDType::F16, 0.0),
    ] {
        let sub = dir.path().join(format!("{dtype:?}"));
        std::fs::create_dir_all(&sub).unwrap();
        let t = tiny::write(&sub, 3, dtype);
        let ck = Checkpoint::load(&t.gguf).unwrap();
        assert_eq!(ck.dtypes["L0.q_proj"], format!("{dtype:?}"));
        // Every 32-value block of q (permutation undone) is within half a quantisation step.
        let (shape, orig) = &t.weights["model.layers.0.self_attn.q_proj.weight"];
        let got = &ck.weights["L0.q_proj"].data;
        assert_eq!(&ck.weights["L0.q_proj"].shape, shape);
        for (ob, gb) in orig.chunks(32).zip(got.chunks(32)) {
            let (lo, hi) = ob
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            let step = if levels == 127.0 {
                ob.iter().fold(0f32, |a, x| a.max(x.abs())) / 127.0
            } else {
                (hi - lo) / 15.0
            };
            for (o, g) in ob.iter().zip(gb) {
                assert!(
                    (o - g).abs() <= step * 0.51 + 1e-3,
                    "{dtype:?}: {o} vs {g} (step {step})"
                );
            }
        }
    }
}

#[test]
fn kv_cache_decoding_equals_full_recompute_and_padding_changes_nothing() {
    let device = morsd::device_from_env().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 4, GgmlDType::F32);
    let (model, tok) = load(&t.hf, &device);
    let prompts = vec!["Q: Ann has 3 apples".to_string(), "Q: A coin".to_string()];
    let opts = DecodeOptions {
        max_new: 12,
        batch_size: 2,
        stop: None,
    };
    let cached = greedy_ids(&model, &tok, &prompts, &opts, &device);
    // Full recompute, one prompt at a time, no cache, no padding.
    for (p, got) in prompts.iter().zip(&cached) {
        let mut ids = tok.encode(p);
        let mut want = Vec::new();
        for _ in 0..12 {
            let l = logits(&model, &ids, &device);
            let last = &l[(ids.len() - 1) * t.vocab..];
            let next = (0..t.vocab)
                .max_by(|&a, &b| last[a].total_cmp(&last[b]))
                .unwrap() as u32;
            if next == tok.eos {
                break;
            }
            want.push(next);
            ids.push(next);
        }
        assert_eq!(got, &want, "prompt {p:?}");
    }
    // RD scoring: a batch with padding gives each row what it gets alone.
    let pairs: Vec<(String, String)> = vec![
        (
            "Q: Ann has 3 apples and buys 4 more.\nA:".into(),
            " The answer is 7.".into(),
        ),
        ("Q: A coin?\nA:".into(), " The answer is no.".into()),
        ("Q: 1\nA: 1 + 1 = 2.".into(), " The answer is 2.".into()),
    ];
    let batched = answer_nll(&model, &tok, &pairs, 3, &device);
    for (i, p) in pairs.iter().enumerate() {
        let alone = answer_nll(&model, &tok, std::slice::from_ref(p), 1, &device)[0];
        assert!(
            (alone - batched[i]).abs() < 1e-4,
            "row {i}: {alone} vs {}",
            batched[i]
        );
    }
}

fn examples(tok: &morsd::student::tokenizer::Tok) -> Vec<TrainExample> {
    // Equal lengths, so the mean over micro-batches is the mean over all positions.
    [
        "Q: 3 + 4?\nA:",
        "Q: 5 + 2?\nA:",
        "Q: 6 + 1?\nA:",
        "Q: 2 + 5?\nA:",
    ]
    .iter()
    .map(|q| {
        let mut target = tok.encode(" The answer is 7.");
        target.push(tok.eos);
        TrainExample {
            prompt: tok.encode(q),
            target,
            ..Default::default()
        }
    })
    .collect()
}

fn opts(batch: usize, accum: usize) -> TrainOptions {
    TrainOptions {
        budget: Budget::Steps(1),
        batch_size: batch,
        grad_accum: accum,
        lr: 1e-3,
        warmup_steps: 1,
        weight_decay: 0.0,
        eval_every: 1,
        seed: 0,
        group_by_length: false,
        patience: None,
    }
}

#[test]
fn gradient_accumulation_matches_one_large_batch() {
    let device = morsd::device_from_env().unwrap();
    let ad = device.clone().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 5, GgmlDType::F32);
    let (model, tok) = load(&t.hf, &ad);
    let data = examples(&tok);
    let assert_same = |a: &Lm, b: &Lm, what: &str| {
        let (la, lb) = (
            logits(a, &data[0].prompt, &device),
            logits(b, &data[0].prompt, &device),
        );
        let max = la
            .iter()
            .zip(&lb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "{what}: max |Δlogit| {max}");
    };
    let bar = indicatif::ProgressBar::hidden();
    let one = train(model.clone(), &data, tok.pad, &opts(4, 1), &ad, None, &bar)
        .unwrap()
        .model;
    let two = train(model.clone(), &data, tok.pad, &opts(2, 2), &ad, None, &bar)
        .unwrap()
        .model;
    let (before, _) = load(&t.hf, &device);
    assert_same(&one, &two, "4×1 vs 2×2");
    // …and the step did change the model.
    let moved = logits(&one, &data[0].prompt, &device)
        .iter()
        .zip(logits(&before, &data[0].prompt, &device))
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(moved > 1e-3, "one AdamW step moved logits by only {moved}");
}

#[test]
fn lora_trains_only_adapters_and_merges_to_the_same_model() {
    let device = morsd::device_from_env().unwrap();
    let ad = device.clone().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 6, GgmlDType::F32);
    let (model, tok) = load(&t.hf, &ad);
    let full = lora::trainable_params(&model);
    let targets = vec!["q_proj".to_string(), "v_proj".to_string()];
    let adapted = lora::attach(model.clone(), 4, 8.0, &targets, 3, &ad).unwrap();
    // The adapters are drawn from the seed: the same seed, the same factors.
    let again = lora::attach(model, 4, 8.0, &targets, 3, &ad).unwrap();
    let factors = |m: &Lm| {
        let d = tempfile::tempdir().unwrap();
        lora::save_adapters(m, 4, 8.0, &targets, "tiny", d.path()).unwrap();
        std::fs::read(d.path().join("adapter_model.safetensors")).unwrap()
    };
    assert_eq!(
        factors(&adapted),
        factors(&again),
        "same seed, different adapters"
    );
    // rank × (d_in + d_out) per adapted matrix: q is 64→64, v is 64→32.
    let want = tiny::LAYERS * 4 * ((64 + 64) + (64 + 32));
    assert_eq!(
        lora::trainable_params(&adapted),
        want,
        "full model has {full}"
    );
    let data = examples(&tok);
    let mut o = opts(4, 1);
    o.budget = Budget::Steps(5);
    o.lr = 1e-2;
    let bar = indicatif::ProgressBar::hidden();
    let trained = train(adapted, &data, tok.pad, &o, &ad, None, &bar)
        .unwrap()
        .model;
    // What a LoRA train entry stores: the adapters alone (PEFT layout), folded into the base
    // again on loading. They give the weights of burn's own merge, bit for bit.
    let burn_merged = trained.clone().materialize();
    let store = tempfile::tempdir().unwrap();
    let n = lora::save_adapters(&trained, 4, 8.0, &targets, "tiny", store.path()).unwrap();
    assert_eq!(n, tiny::LAYERS * 2);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.path().join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(
        (cfg["r"].as_u64(), cfg["lora_alpha"].as_f64()),
        (Some(4), Some(8.0))
    );
    let adapters = lora::read_adapters(store.path()).unwrap();
    assert!(
        adapters
            .factors
            .contains_key("base_model.model.model.layers.1.self_attn.v_proj"),
        "PEFT key names"
    );
    let (base, _) = load(&t.hf, &device);
    let merged = lora::apply_adapters(base, &adapters, store.path()).unwrap();
    let weights = |m: &Lm| -> Vec<f32> {
        let mut all = Vec::new();
        struct V<'a>(&'a mut Vec<f32>);
        impl burn::module::ModuleVisitor for V<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::Tensor<D>>) {
                self.0.extend(p.val().into_data().iter::<f32>());
            }
        }
        m.visit(&mut V(&mut all));
        all
    };
    assert!(
        weights(&merged) == weights(&burn_merged),
        "adapters folded into the base differ from burn's merge"
    );
    let (before, _) = load(&t.hf, &device);
    let (a, b, c) = (
        logits(&trained, &data[0].prompt, &device),
        logits(&merged, &data[0].prompt, &device),
        logits(&before, &data[0].prompt, &device),
    );
    let diff = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max)
    };
    assert!(
        diff(&a, &b) < 1e-4,
        "merged differs from adapted by {}",
        diff(&a, &b)
    );
    assert!(
        diff(&a, &c) > 1e-3,
        "LoRA training did not change the model"
    );
    // Only q/v changed; the embedding is frozen.
    let emb = |m: &Lm| match m {
        Lm::Llama(l) => l
            .embed
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .take(64)
            .collect::<Vec<_>>(),
        _ => unreachable!(),
    };
    assert_eq!(emb(&merged), emb(&before));
    // The loss on the training data went down.
    let lb = lm_batch(&data.iter().collect::<Vec<_>>(), tok.pad, 128, &device).unwrap();
    let l0: f32 = masked_nll(&before, &lb).into_scalar();
    let l1: f32 = masked_nll(&merged, &lb).into_scalar();
    assert!(l1 < l0, "loss {l0} → {l1}");
}

#[test]
fn a_whole_run_with_a_llama_student_and_lora() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 7, GgmlDType::Q8_0);
    let spec = common::TINY
        .replace(
            "[student]\nd_model = 32\nlayers = 1\nheads = 2\nmax_seq_len = 96\nvocab_size = 320",
            &format!(
                "[student]\nkind = \"llama\"\nweights = {:?}\nmax_seq_len = 96\nlora_rank = 4\nlora_targets = [\"q_proj\", \"v_proj\", \"down_proj\"]",
                t.gguf.display().to_string()
            ),
        )
        .replace("[train]\n", "[train]\ngrad_accum = 2\nlr = 0.001\n");
    assert!(spec.contains("kind = \"llama\""));
    let p = common::Project::new(&spec);
    let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    let runs = p.runs_json("tiny");
    let run = &runs["runs"][0];
    assert!(run["accuracy"].is_number(), "{run}");
    // The stages' own metrics, from their cache manifests.
    let metrics = |stage: &str| -> serde_json::Value {
        let short = run["keys"][stage].as_str().unwrap();
        let dir = std::fs::read_dir(p.path().join("cache/entries").join(stage))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|d| d.file_name().unwrap().to_str().unwrap().starts_with(short))
            .unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        m["metrics"].clone()
    };
    assert_eq!(metrics("score")["rd_model"], "pretrained");
    assert!(metrics("score")["mean_rd_correct"].is_number());
    // The LoRA entry holds the adapters, not the model.
    let train_dir = std::fs::read_dir(p.path().join("cache/entries/train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| {
            d.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(run["keys"]["train"].as_str().unwrap())
        })
        .unwrap();
    assert!(train_dir.join("adapter_model.safetensors").exists());
    assert!(!train_dir.join("model.bpk").exists());
    let student: serde_json::Value =
        serde_json::from_slice(&std::fs::read(train_dir.join("student.json")).unwrap()).unwrap();
    assert_eq!(student["lora"]["rank"], 4, "{student}");
    assert!(student["base"]["files"]["weights"].is_string(), "{student}");
    assert_eq!(
        metrics("train")["trainable_params"],
        serde_json::json!(tiny::LAYERS * 4 * ((64 + 64) + (64 + 32) + (96 + 64)))
    );
    // The checkpoint's content is in the keys: another file with the same path re-runs score.
    let t2 = tiny::write(dir.path(), 8, GgmlDType::Q8_0);
    assert_eq!(t.gguf, t2.gguf);
    let plan = p.morsd(&["plan", p.spec().to_str().unwrap()]);
    let text = common::text(&plan);
    assert!(text.contains("input weights changed"), "{text}");
}

#[test]
fn a_folder_of_another_family_is_an_error_naming_it_not_a_silent_llama() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny::write(dir.path(), 9, GgmlDType::F32);
    let cfg_path = t.hf.join("config.json");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = cfg.clone();
        edit(&mut c);
        std::fs::write(&cfg_path, c.to_string()).unwrap();
        match Checkpoint::load(&t.hf) {
            Ok(_) => String::from("loaded"),
            Err(e) => e.to_string(),
        }
    };
    // A Qwen2 folder has Llama's tensor names plus q/k/v biases: it loads as Qwen2, so Llama
    // weights labelled Qwen2 miss the biases (never a silent Llama).
    let e = with(&|c| {
        c["model_type"] = "qwen2".into();
        c["architectures"] = serde_json::json!(["Qwen2ForCausalLM"]);
    });
    assert!(e.contains("self_attn.q_proj.bias"), "{e}");
    // A family morsd does not build is named, with the supported ones.
    let e = with(&|c| {
        c["model_type"] = "gemma3".into();
    });
    assert!(
        e.contains("`gemma3`")
            && e.contains("llama (LlamaForCausalLM)")
            && e.contains("t5 (T5ForConditionalGeneration)"),
        "{e}"
    );
    assert!(e.contains("config.json"), "{e}");
    let e = with(&|c| {
        c.as_object_mut().unwrap().remove("model_type");
        c["architectures"] = serde_json::json!(["PhimoeForCausalLM"]);
    });
    assert!(e.contains("PhimoeForCausalLM"), "{e}");
    let e = with(&|c| {
        c.as_object_mut().unwrap().remove("model_type");
        c.as_object_mut().unwrap().remove("architectures");
    });
    assert!(e.contains("names no model family"), "{e}");
    // The Llama folder itself, by either field.
    assert_eq!(
        with(&|c| {
            c.as_object_mut().unwrap().remove("model_type");
        }),
        "loaded"
    );
    assert_eq!(with(&|_| {}), "loaded");
}
