//! The GGUF export against its real consumer, llama.cpp: SmolLM2-135M-Instruct loaded by morsd,
//! written back with `export::gguf::write_llama` and run by llama.cpp (scripts/gguf_greedy.py).
//! F16 with the original's tokenizer: the tensor table the `gguf` package reads is the
//! original's (names, GGUF-order shapes, data within f16 rounding, so q/k rows permuted as the
//! converter permutes them) with llama.cpp's F16 convention for types, llama.cpp
//! tokenises as morsd does, and its greedy continuations equal morsd's own on the same exported
//! file. Q8_0 with a tokenizer derived from morsd's: the same vocabulary, merges and token
//! types as the original, and llama.cpp loads and tokenises it as morsd does.
//! Needs `scripts/setup-llama.sh` (`just test` runs it).

mod common;

use common::llama::llama_paths;
use morsd::export::gguf::{GgufType, write_llama};
use morsd::student::Lm;
use morsd::student::checkpoint::Checkpoint;
use morsd::student::decode::{DecodeOptions, greedy_ids};
use std::path::Path;

const PROMPTS: [&str; 4] = [
    "<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nAnn has 12 apples and buys 35 more. How many apples does she have?<|im_end|>\n<|im_start|>assistant\n",
    "Q: A coin is heads up. Bob flips it. Is it still heads up?\nA: Let's think step by step.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
];
const NEW_TOKENS: usize = 24;

/// morsd on `path`: each prompt's token ids and greedy continuation.
fn morsd_greedy(path: &Path) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let device = morsd::device_from_env().unwrap();
    let (model, _, tok) = Checkpoint::load(path)
        .unwrap()
        .into_llama(512, &device)
        .unwrap();
    let prompts: Vec<String> = PROMPTS.iter().map(|p| p.to_string()).collect();
    let ids = prompts.iter().map(|p| tok.encode(p)).collect();
    let opts = DecodeOptions {
        max_new: NEW_TOKENS,
        batch_size: 1,
        stop: None,
    };
    let conts = greedy_ids(&Lm::Llama(model), &tok, &prompts, &opts, &device);
    (ids, conts)
}

/// llama.cpp on `path` (scripts/gguf_greedy.py): its tokenisation of each prompt, its greedy
/// continuation of morsd's ids, the tensor table and scalar metadata, and with `base` each
/// tensor's relative distance to the base's, both dequantised by the `gguf` package.
fn llama_cpp(py: &Path, path: &Path, ids: &[Vec<u32>], base: Option<&Path>) -> serde_json::Value {
    let request: Vec<serde_json::Value> = PROMPTS
        .iter()
        .zip(ids)
        .map(|(p, ids)| serde_json::json!({"text": p, "ids": ids}))
        .collect();
    let req = path.with_extension("request.json");
    std::fs::write(&req, serde_json::to_string(&request).unwrap()).unwrap();
    let mut cmd = std::process::Command::new(py);
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/gguf_greedy.py"
    ));
    if let Some(b) = base {
        cmd.arg("--base").arg(b);
    }
    let out = cmd
        .arg("--gguf")
        .arg(path)
        .arg("--request")
        .arg(&req)
        .args(["--new-tokens", &NEW_TOKENS.to_string()])
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// llama.cpp's tokenisation without the BOS it prepends when the file says add_bos_token.
fn without_bos(got: &serde_json::Value) -> Vec<Vec<u32>> {
    let md = &got["metadata"];
    let add_bos = md["tokenizer.ggml.add_bos_token"]
        .as_bool()
        .unwrap_or(false);
    let bos = md["tokenizer.ggml.bos_token_id"].as_u64();
    got["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ids: Vec<u32> = serde_json::from_value(p["ids"].clone()).unwrap();
            match ids.split_first() {
                Some((&first, rest)) if add_bos && Some(first as u64) == bos => rest.to_vec(),
                _ => ids,
            }
        })
        .collect()
}

/// Every tensor's data is the original's within `tol` (relative to the tensor's largest value):
/// the rows are where llama.cpp's converter put them (a q/k permutation missing or applied
/// twice is off by O(1)). morsd's own reader cannot see that: it would undo its own mistake.
fn assert_close(got: &serde_json::Value, tol: f64) {
    let diff = got["base_diff"].as_object().unwrap();
    assert_eq!(diff.len(), 2 + 30 * 9);
    for (name, d) in diff {
        let d = d.as_f64().unwrap_or(f64::INFINITY);
        assert!(d <= tol, "{name}: {d} from the original");
    }
    println!(
        "largest relative distance to the original: {:.2e}",
        diff.values().filter_map(|d| d.as_f64()).fold(0.0, f64::max)
    );
}

/// `[name, type, dims]` per tensor, sorted by name.
fn table(got: &serde_json::Value) -> Vec<(String, String, Vec<u64>)> {
    let mut t: Vec<(String, String, Vec<u64>)> =
        serde_json::from_value(got["tensors"].clone()).unwrap();
    t.sort();
    t
}

#[test]
fn smollm2_f16_export_runs_in_llama_cpp_with_morsd_s_greedy_continuations() {
    let (py, gguf) = llama_paths();
    let dir = tempfile::tempdir().unwrap();
    // 1. Export: morsd's SmolLM2 as F16, tokenizer copied from the original GGUF.
    let ck = Checkpoint::load(&gguf).unwrap();
    let out = dir.path().join("smollm2-f16.gguf");
    write_llama(
        &ck.config,
        &ck.weights,
        &ck.tok,
        ck.chat_template.as_deref(),
        Some(&gguf),
        GgufType::F16,
        &out,
    )
    .unwrap();
    let size = std::fs::metadata(&out).unwrap().len();
    println!("F16 export: {size} bytes");
    // 2. The tensor table as the `gguf` package reads it: the original's names and GGUF-order
    //    shapes; norms F32, every other tensor F16.
    let (ids, conts) = morsd_greedy(&out);
    let orig_ids: Vec<Vec<u32>> = PROMPTS.iter().map(|p| ck.tok.encode(p)).collect();
    assert_eq!(ids, orig_ids);
    let got = llama_cpp(&py, &out, &ids, Some(&gguf));
    let orig = llama_cpp(&py, &gguf, &ids, None);
    let (t, o) = (table(&got), table(&orig));
    assert_eq!(t.len(), 2 + 30 * 9);
    for ((n, ty, dims), (on, _, odims)) in t.iter().zip(&o) {
        assert_eq!((n, dims), (on, odims));
        let want = if dims.len() == 1 { "F32" } else { "F16" };
        assert_eq!(ty, want, "{n}");
    }
    assert!(t.contains(&("token_embd.weight".into(), "F16".into(), vec![576, 49152])));
    // f16 rounding: at most 2^-11 of a value.
    assert_close(&got, 1.0 / 2048.0);
    let md = &got["metadata"];
    assert_eq!(md["general.file_type"], 1);
    assert_eq!(md["general.alignment"], 32);
    for k in [
        "llama.context_length",
        "llama.embedding_length",
        "llama.block_count",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.rope.freq_base",
        "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.dimension_count",
        "llama.vocab_size",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
    ] {
        assert_eq!(md[k], orig["metadata"][k], "{k}");
    }
    // 3. Same prompt ids on both sides; llama.cpp's greedy continuation of them is morsd's.
    assert_eq!(without_bos(&got), ids);
    let theirs: Vec<Vec<u32>> = got["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| serde_json::from_value(p["continuation_ids"].clone()).unwrap())
        .collect();
    for (i, (a, b)) in theirs.iter().zip(&conts).enumerate() {
        println!("prompt {i}: llama.cpp {a:?}\n          morsd     {b:?}");
    }
    // Non-trivial continuations (the first prompt's answer ends at <|im_end|>, as in llama.cpp).
    assert!(
        conts.iter().all(|c| !c.is_empty())
            && conts.iter().map(Vec::len).sum::<usize>() >= 3 * NEW_TOKENS,
        "{conts:?}"
    );
    assert_eq!(theirs, conts);
}

#[test]
fn smollm2_q8_0_export_with_a_derived_tokenizer_loads_in_llama_cpp() {
    let (py, gguf) = llama_paths();
    let dir = tempfile::tempdir().unwrap();
    let ck = Checkpoint::load(&gguf).unwrap();
    let out = dir.path().join("smollm2-q8_0.gguf");
    write_llama(
        &ck.config,
        &ck.weights,
        &ck.tok,
        ck.chat_template.as_deref(),
        None,
        GgufType::Q8_0,
        &out,
    )
    .unwrap();
    println!(
        "Q8_0 export: {} bytes",
        std::fs::metadata(&out).unwrap().len()
    );
    // 1. The derived vocabulary, merges and token types are the original's.
    let read = |p: &Path| {
        candle_core::quantized::gguf_file::Content::read(&mut std::fs::File::open(p).unwrap())
            .unwrap()
            .metadata
    };
    let (a, b) = (read(&out), read(&gguf));
    for k in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.pre",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
    ] {
        assert_eq!(format!("{:?}", a[k]), format!("{:?}", b[k]), "{k}");
    }
    // 2. llama.cpp loads it and tokenises as morsd does; Q8_0 tensors, norms F32.
    let (ids, conts) = morsd_greedy(&out);
    let got = llama_cpp(&py, &out, &ids, Some(&gguf));
    assert_eq!(without_bos(&got), ids);
    // Q8_0: half a step of a 32-value block's scale (amax / 254), plus the f16 scale's rounding.
    assert_close(&got, 0.005);
    assert_eq!(got["metadata"]["general.file_type"], 7);
    for (n, ty, dims) in table(&got) {
        let want = if dims.len() == 1 { "F32" } else { "Q8_0" };
        assert_eq!(ty, want, "{n}");
    }
    // 3. Greedy agreement is reported, not required: llama.cpp quantises the activations to
    //    8 bits against Q8_0 weights, morsd computes in f32.
    for (i, (p, mine)) in got["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&conts)
        .enumerate()
    {
        let theirs: Vec<u32> = serde_json::from_value(p["continuation_ids"].clone()).unwrap();
        let k = theirs.iter().zip(mine).take_while(|(a, b)| a == b).count();
        println!(
            "prompt {i}: {k}/{} leading tokens equal",
            mine.len().max(theirs.len())
        );
    }
}
