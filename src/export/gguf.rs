//! GGUF export of a Llama-family student: a file llama.cpp loads, laid out the way llama.cpp's
//! `convert_hf_to_gguf.py` writes one.
//!
//! The container and the quantisation are candle's (`gguf_file::write`, `QTensor::quantize`;
//! candle writes GGUF v2 with 32-byte alignment and reverses the dimensions into GGUF's
//! innermost-first order). What is ours:
//! 1. the architecture metadata (`llama.*`, `general.file_type` as llama.cpp's `LLAMA_FTYPE`);
//! 2. the tensors: canonical names → GGUF names ([`LAYER_NAMES`]), q/k rows permuted into
//!    llama.cpp's interleaved order ([`permute`]), 1-D norms kept F32 whatever the file type
//!    (the converter's convention), and Q8_0 falling back to F16 for a tensor whose rows are
//!    not whole 32-value blocks (as the converter does);
//! 3. the tokenizer metadata: copied verbatim from the base GGUF when there is one, else
//!    derived from the `tokenizers` tokenizer (byte-level BPE only: `tokenizer.ggml.model` =
//!    `gpt2`). A derived tokenizer says `add_bos_token = false`: morsd never prepends one.

use crate::error::{Error, Result};
use crate::student::LlamaConfig;
use crate::student::checkpoint::{LAYER_NAMES, Weight, permute};
use crate::student::tokenizer::Tok;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Tensor storage type of an exported GGUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufType {
    /// 32-bit floats (lossless).
    F32,
    /// 16-bit floats.
    F16,
    /// 8-bit blocks of 32 values with an f16 scale.
    Q8_0,
}

impl GgufType {
    /// The ggml type of the 2-D tensors.
    fn ggml(self) -> GgmlDType {
        match self {
            GgufType::F32 => GgmlDType::F32,
            GgufType::F16 => GgmlDType::F16,
            GgufType::Q8_0 => GgmlDType::Q8_0,
        }
    }

    /// llama.cpp's `LLAMA_FTYPE` number (`general.file_type`).
    pub fn file_type(self) -> u32 {
        match self {
            GgufType::F32 => 0,
            GgufType::F16 => 1,
            GgufType::Q8_0 => 7,
        }
    }
}

/// The alignment candle's writer pads tensor data to (written as `general.alignment`).
const ALIGNMENT: u32 = gguf_file::DEFAULT_ALIGNMENT as u32;

/// llama.cpp's token types (`llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

fn fail(message: impl std::fmt::Display) -> Error {
    Error::run(format!("GGUF export: {message}"))
}

fn u32_value(key: &str, x: usize) -> Result<Value> {
    u32::try_from(x)
        .map(Value::U32)
        .map_err(|_| fail(format!("`{key}` = {x} does not fit in 32 bits")))
}

/// Writes a Llama-architecture GGUF file that llama.cpp loads.
///
/// `weights` are under the canonical names and in the Hugging Face layout of
/// [`crate::student::checkpoint::Checkpoint::weights`]. `llama.context_length` is
/// `config.max_seq_len`. With `base_gguf` (the student's base checkpoint was a GGUF) every
/// `tokenizer.*` key is copied from it; otherwise they are derived from `tok`. `chat_template`,
/// when given, is written as `tokenizer.chat_template` (replacing the base's).
pub fn write_llama(
    config: &LlamaConfig,
    weights: &HashMap<String, Weight>,
    tok: &Tok,
    chat_template: Option<&str>,
    base_gguf: Option<&Path>,
    ty: GgufType,
    out: &Path,
) -> Result<()> {
    // 1. The architecture must be one llama.cpp can run.
    let c = config;
    if c.heads == 0
        || c.kv_heads == 0
        || c.vocab_size == 0
        || !c.d_model.is_multiple_of(c.heads)
        || !c.heads.is_multiple_of(c.kv_heads)
        || !c.head_dim().is_multiple_of(2)
    {
        return Err(fail(format!(
            "inconsistent architecture: width {}, {} query / {} key-value heads (the head width must be even), vocabulary {}",
            c.d_model, c.heads, c.kv_heads, c.vocab_size
        )));
    }
    let hd = c.head_dim();
    // 2. General and architecture metadata.
    let name = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "morsd student".into());
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.name".into(), Value::String(name)),
        ("general.file_type".into(), Value::U32(ty.file_type())),
        ("general.quantization_version".into(), Value::U32(2)),
        ("general.alignment".into(), Value::U32(ALIGNMENT)),
    ];
    for (key, x) in [
        ("llama.context_length", c.max_seq_len),
        ("llama.embedding_length", c.d_model),
        ("llama.block_count", c.layers),
        ("llama.feed_forward_length", c.d_ff),
        ("llama.attention.head_count", c.heads),
        ("llama.attention.head_count_kv", c.kv_heads),
        ("llama.rope.dimension_count", hd),
        ("llama.vocab_size", c.vocab_size),
    ] {
        md.push((key.into(), u32_value(key, x)?));
    }
    md.push((
        "llama.rope.freq_base".into(),
        Value::F32(c.rope_theta as f32),
    ));
    md.push((
        "llama.attention.layer_norm_rms_epsilon".into(),
        Value::F32(c.norm_eps as f32),
    ));
    // 3. Tokenizer metadata, then the chat template.
    let mut tk = match base_gguf {
        Some(base) => base_tokenizer(base, c.vocab_size)?,
        None => derived_tokenizer(tok, c.vocab_size)?,
    };
    if let Some(t) = chat_template {
        tk.retain(|(k, _)| k != "tokenizer.chat_template");
        tk.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }
    md.extend(tk);
    // 4. Tensors: (GGUF name, canonical name, HF shape, heads to permute by).
    let mut specs: Vec<(String, String, Vec<usize>, Option<usize>)> = vec![(
        "token_embd.weight".into(),
        "embed".into(),
        vec![c.vocab_size, c.d_model],
        None,
    )];
    for l in 0..c.layers {
        for (canon, g, _) in LAYER_NAMES {
            let (shape, heads) = match canon {
                "attn_norm" | "mlp_norm" => (vec![c.d_model], None),
                "q_proj" => (vec![c.heads * hd, c.d_model], Some(c.heads)),
                "k_proj" => (vec![c.kv_heads * hd, c.d_model], Some(c.kv_heads)),
                "v_proj" => (vec![c.kv_heads * hd, c.d_model], None),
                "o_proj" => (vec![c.d_model, c.heads * hd], None),
                "down_proj" => (vec![c.d_model, c.d_ff], None),
                _ => (vec![c.d_ff, c.d_model], None),
            };
            specs.push((
                format!("blk.{l}.{g}.weight"),
                format!("L{l}.{canon}"),
                shape,
                heads,
            ));
        }
    }
    specs.push((
        "output_norm.weight".into(),
        "norm".into(),
        vec![c.d_model],
        None,
    ));
    if !c.tie_embeddings {
        specs.push((
            "output.weight".into(),
            "lm_head".into(),
            vec![c.vocab_size, c.d_model],
            None,
        ));
    }
    let cpu = candle_core::Device::Cpu;
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(specs.len());
    for (gname, canon, shape, heads) in specs {
        let w = weights
            .get(&canon)
            .ok_or_else(|| fail(format!("missing weight `{canon}`")))?;
        if w.shape != shape || w.data.len() != shape.iter().product::<usize>() {
            return Err(fail(format!(
                "weight `{canon}` has shape {:?} ({} values), expected {shape:?}",
                w.shape,
                w.data.len()
            )));
        }
        let permuted;
        let data = match heads {
            Some(n) => {
                permuted = permute(&w.data, shape[0], shape[1], n);
                &permuted
            }
            None => &w.data,
        };
        // Norms stay F32; Q8_0 needs whole 32-value blocks per row, else F16 (the converter's
        // fallback).
        let dtype = match (shape.len(), ty) {
            (1, _) => GgmlDType::F32,
            (_, GgufType::Q8_0) if !shape[1].is_multiple_of(GgmlDType::Q8_0.block_size()) => {
                GgmlDType::F16
            }
            _ => ty.ggml(),
        };
        let q = candle_core::Tensor::from_slice(data, shape.as_slice(), &cpu)
            .and_then(|t| QTensor::quantize(&t, dtype))
            .map_err(|e| fail(format!("tensor `{gname}` as {dtype:?}: {e}")))?;
        tensors.push((gname, q));
    }
    // 5. The file.
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut w, &md_refs, &t_refs)
        .map_err(|e| Error::run(format!("{}: writing GGUF: {e}", out.display())))?;
    w.flush().map_err(|e| Error::io(out, e))
}

/// Every `tokenizer.*` key of the GGUF file `path`, sorted by key; its vocabulary must be
/// `vocab_size` tokens.
fn base_tokenizer(path: &Path, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    let bad = |message: String| Error::Input {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let content =
        gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {e}")))?;
    let mut keys: Vec<(String, Value)> = content
        .metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let n = keys
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.to_vec().ok())
        .map(Vec::len)
        .ok_or_else(|| bad("GGUF metadata has no `tokenizer.ggml.tokens` array".into()))?;
    if n != vocab_size {
        return Err(bad(format!(
            "its vocabulary has {n} tokens, the student's {vocab_size}"
        )));
    }
    Ok(keys)
}

/// llama.cpp's pre-tokenizer name for a `tokenizers` pre-tokenizer (JSON): `smollm` for
/// Digits(individual) then ByteLevel (what [`crate::student::checkpoint`] reads `smollm` as),
/// `gpt-2` (llama.cpp's name for the GPT-2 regex) for any other one with a ByteLevel step;
/// none without a ByteLevel step.
fn pre_name(pre: &serde_json::Value) -> Option<&'static str> {
    let kind = |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()).map(String::from);
    match kind(pre).as_deref() {
        Some("ByteLevel") => Some("gpt-2"),
        Some("Sequence") => {
            let steps = pre.get("pretokenizers")?.as_array()?;
            let digits = |v: &serde_json::Value| {
                kind(v).as_deref() == Some("Digits")
                    && v.get("individual_digits").and_then(|x| x.as_bool()) == Some(true)
            };
            let byte_level = |v: &serde_json::Value| kind(v).as_deref() == Some("ByteLevel");
            match steps.as_slice() {
                [a, b] if digits(a) && byte_level(b) => Some("smollm"),
                _ if steps.iter().any(byte_level) => Some("gpt-2"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `tokenizer.*` metadata of a byte-level BPE tokenizer, padded to `vocab_size` tokens with
/// unused `[PAD{id}]` tokens (the converter's convention for ids the tokenizer lacks).
fn derived_tokenizer(tok: &Tok, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    // 1. The tokenizer as JSON: model, vocabulary, merges, added tokens, pre-tokenizer.
    let text = tok
        .inner
        .to_string(false)
        .map_err(|e| fail(format!("tokenizer: {e}")))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| fail(format!("tokenizer JSON: {e}")))?;
    let model = &json["model"];
    let kind = model["type"].as_str().unwrap_or("unknown");
    if kind != "BPE" {
        return Err(fail(format!(
            "the tokenizer is `{kind}`, not byte-level BPE: only byte-level BPE (tokenizer.ggml.model = gpt2) can be exported"
        )));
    }
    let pre = pre_name(&json["pre_tokenizer"]).ok_or_else(|| {
        fail(format!(
            "the tokenizer's pre-tokenizer ({}) has no ByteLevel step: only byte-level BPE (tokenizer.ggml.model = gpt2) can be exported",
            json["pre_tokenizer"]
        ))
    })?;
    // 2. Tokens by id: the BPE vocabulary, then the added tokens (control when special).
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![NORMAL; vocab_size];
    let mut place = |id: Option<u64>, t: &str, ty: i32| -> Result<()> {
        let id = id
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| fail(format!("token `{t}` has no id")))?;
        if id >= vocab_size {
            return Err(fail(format!(
                "token `{t}` has id {id}, beyond the student's vocabulary of {vocab_size}"
            )));
        }
        tokens[id] = Some(t.to_string());
        types[id] = ty;
        Ok(())
    };
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| fail("the BPE tokenizer has no vocabulary"))?;
    for (t, id) in vocab {
        place(id.as_u64(), t, NORMAL)?;
    }
    for a in json["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let t = a["content"]
            .as_str()
            .ok_or_else(|| fail("an added token has no content"))?;
        let special = a["special"].as_bool().unwrap_or(false);
        place(
            a["id"].as_u64(),
            t,
            if special { CONTROL } else { USER_DEFINED },
        )?;
    }
    let tokens: Vec<Value> = tokens
        .into_iter()
        .enumerate()
        .map(|(id, t)| {
            Value::String(t.unwrap_or_else(|| {
                types[id] = UNUSED;
                format!("[PAD{id}]")
            }))
        })
        .collect();
    // 3. Merges as "a b" (the tokenizers crate writes pairs or such strings).
    let merges: Vec<Value> = model["merges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|m| {
            let pair = match m {
                serde_json::Value::String(s) => s.split_once(' '),
                serde_json::Value::Array(p) => match p.as_slice() {
                    [a, b] => a.as_str().zip(b.as_str()),
                    _ => None,
                },
                _ => None,
            };
            match pair {
                Some((a, b)) if !a.contains(' ') && !b.contains(' ') => {
                    Ok(Value::String(format!("{a} {b}")))
                }
                _ => Err(fail(format!(
                    "merge {m} cannot be written as `a b` (GGUF's merge format)"
                ))),
            }
        })
        .collect::<Result<_>>()?;
    // 4. Special ids: end of sequence and padding are the student's; beginning of sequence is a
    //    special token by a known name, else end of sequence (GPT-2's convention), never added.
    for (what, id) in [("end-of-sequence", tok.eos), ("padding", tok.pad)] {
        if id as usize >= vocab_size {
            return Err(fail(format!(
                "{what} id {id} is beyond the vocabulary of {vocab_size}"
            )));
        }
    }
    let bos = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"]
        .iter()
        .find_map(|t| tok.inner.token_to_id(t))
        .filter(|&id| (id as usize) < vocab_size && types[id as usize] == CONTROL)
        .unwrap_or(tok.eos);
    Ok(vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(bos)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(tok.eos)),
        (
            "tokenizer.ggml.padding_token_id".into(),
            Value::U32(tok.pad),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::student::checkpoint::Checkpoint;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const SAMPLES: [&str; 3] = [
        "Q: Ann has 3 apples and buys 4 more. How many?\nA: 3 + 4 = 7. The answer is 7.",
        "Q: A coin is heads up. Bob flips it. Is it still heads up?\nA: no.<eos>",
        "Zed's 19 marbles, café ∑ 🙂",
    ];

    fn tiny_tok() -> Tok {
        let texts = SAMPLES[..2].repeat(10);
        Tok::train(texts.iter().copied(), 320).unwrap()
    }

    /// A tiny random Llama (width 64, 2 layers, 4 query / 2 key-value heads) in canonical names
    /// and HF layout; norms near 1, other weights in ±0.25.
    fn tiny(
        vocab: usize,
        d_ff: usize,
        tie: bool,
        seed: u64,
    ) -> (LlamaConfig, HashMap<String, Weight>) {
        let c = LlamaConfig::new(vocab, 64, 2, 4, 2, d_ff, 256)
            .with_rope_theta(50000.0)
            .with_norm_eps(1e-6)
            .with_tie_embeddings(tie);
        let hd = c.head_dim();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = HashMap::new();
        let mut add = |name: String, shape: Vec<usize>| {
            let norm = shape.len() == 1;
            let data = (0..shape.iter().product())
                .map(|_| {
                    let x: f32 = rng.random_range(-1.0..1.0);
                    if norm { 1.0 + 0.2 * x } else { 0.25 * x }
                })
                .collect();
            w.insert(name, Weight { shape, data });
        };
        add("embed".into(), vec![vocab, 64]);
        add("norm".into(), vec![64]);
        if !tie {
            add("lm_head".into(), vec![vocab, 64]);
        }
        for l in 0..c.layers {
            for (s, shape) in [
                ("attn_norm", vec![64]),
                ("q_proj", vec![4 * hd, 64]),
                ("k_proj", vec![2 * hd, 64]),
                ("v_proj", vec![2 * hd, 64]),
                ("o_proj", vec![64, 4 * hd]),
                ("mlp_norm", vec![64]),
                ("gate_proj", vec![d_ff, 64]),
                ("up_proj", vec![d_ff, 64]),
                ("down_proj", vec![64, d_ff]),
            ] {
                add(format!("L{l}.{s}"), shape);
            }
        }
        (c, w)
    }

    fn content(path: &Path) -> gguf_file::Content {
        gguf_file::Content::read(&mut std::fs::File::open(path).unwrap()).unwrap()
    }

    /// The dimensions of tensor `name` exactly as stored in the file's header (GGUF order,
    /// innermost first), read from the bytes without candle.
    fn raw_dims(path: &Path, name: &str) -> Vec<u64> {
        let bytes = std::fs::read(path).unwrap();
        let mut key = (name.len() as u64).to_le_bytes().to_vec();
        key.extend_from_slice(name.as_bytes());
        let at = bytes
            .windows(key.len())
            .rposition(|w| w == key.as_slice())
            .unwrap()
            + key.len();
        let n = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        (0..n)
            .map(|i| {
                let p = at + 4 + 8 * i;
                u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap())
            })
            .collect()
    }

    fn u32_of(c: &gguf_file::Content, key: &str) -> u32 {
        c.metadata[key].to_u32().unwrap()
    }

    /// Writes, reads back with the GGUF loader, checks the architecture and tokenizer.
    fn round_trip(
        vocab_pad: usize,
        d_ff: usize,
        tie: bool,
        ty: GgufType,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        HashMap<String, Weight>,
        Checkpoint,
    ) {
        let tok = tiny_tok();
        let (c, w) = tiny(tok.vocab_size() + vocab_pad, d_ff, tie, 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("student.gguf");
        write_llama(&c, &w, &tok, Some("{{ messages }}"), None, ty, &path).unwrap();
        let back = Checkpoint::load_gguf(&path).unwrap();
        let b = &back.config;
        assert_eq!(
            (
                b.vocab_size,
                b.d_model,
                b.layers,
                b.heads,
                b.kv_heads,
                b.d_ff
            ),
            (
                c.vocab_size,
                c.d_model,
                c.layers,
                c.heads,
                c.kv_heads,
                c.d_ff
            )
        );
        assert_eq!(b.max_seq_len, c.max_seq_len);
        assert_eq!(b.tie_embeddings, c.tie_embeddings);
        assert_eq!(b.rope_theta, c.rope_theta);
        assert_eq!(b.norm_eps as f32, c.norm_eps as f32);
        assert_eq!((back.tok.pad, back.tok.eos), (tok.pad, tok.eos));
        for s in SAMPLES {
            assert_eq!(back.tok.encode(s), tok.encode(s), "{s}");
        }
        assert_eq!(back.chat_template.as_deref(), Some("{{ messages }}"));
        assert_eq!(back.weights.len(), w.len());
        // Header: alignment, file type, tensor offsets aligned, dims innermost first.
        let ct = content(&path);
        assert_eq!(u32_of(&ct, "general.alignment"), 32);
        assert_eq!(u32_of(&ct, "general.file_type"), ty.file_type());
        assert_eq!(u32_of(&ct, "llama.rope.dimension_count"), 16);
        assert_eq!(ct.tensor_data_offset % 32, 0);
        assert!(ct.tensor_infos.values().all(|t| t.offset % 32 == 0));
        assert_eq!(
            raw_dims(&path, "token_embd.weight"),
            [64, c.vocab_size as u64]
        );
        assert_eq!(raw_dims(&path, "blk.1.ffn_down.weight"), [d_ff as u64, 64]);
        assert_eq!(raw_dims(&path, "blk.0.attn_k.weight"), [64, 32]);
        assert_eq!(raw_dims(&path, "output_norm.weight"), [64]);
        (dir, path, w, back)
    }

    #[test]
    fn f32_round_trips_bit_exact() {
        let (_dir, path, w, back) = round_trip(0, 96, false, GgufType::F32);
        for (k, x) in &w {
            let y = &back.weights[k];
            assert_eq!(x.shape, y.shape, "{k}");
            assert!(
                x.data
                    .iter()
                    .zip(&y.data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{k}"
            );
            assert_eq!(back.dtypes[k], "F32", "{k}");
        }
        // The q/k rows are stored permuted: the GGUF's row 1 of head 0 is the HF row hd/2.
        let ct = content(&path);
        let mut f = std::fs::File::open(&path).unwrap();
        let q = ct
            .tensor(&mut f, "blk.0.attn_q.weight", &candle_core::Device::Cpu)
            .unwrap()
            .dequantize(&candle_core::Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(q[1], w["L0.q_proj"].data[8 * 64..9 * 64]);
        assert!(ct.tensor_infos.contains_key("output.weight"));
    }

    #[test]
    fn f16_keeps_norms_f32_and_rounds_the_rest() {
        let (_dir, path, w, back) = round_trip(0, 96, true, GgufType::F16);
        for (k, x) in &w {
            let y = &back.weights[k];
            let norm = x.shape.len() == 1;
            assert_eq!(back.dtypes[k], if norm { "F32" } else { "F16" }, "{k}");
            let want: Vec<f32> = if norm {
                x.data.clone()
            } else {
                candle_core::Tensor::new(x.data.as_slice(), &candle_core::Device::Cpu)
                    .and_then(|t| t.to_dtype(candle_core::DType::F16))
                    .and_then(|t| t.to_dtype(candle_core::DType::F32))
                    .and_then(|t| t.to_vec1())
                    .unwrap()
            };
            assert_eq!(y.data, want, "{k}");
            assert!(x.data.iter().zip(&y.data).any(|(a, b)| a != b) || norm);
        }
        assert!(!content(&path).tensor_infos.contains_key("output.weight"));
    }

    #[test]
    fn q8_0_within_its_error_and_f16_where_rows_are_not_whole_blocks() {
        // d_ff = 48: ffn_down's rows (48 values) are not whole 32-value blocks → F16.
        let (_dir, _path, w, back) = round_trip(3, 48, false, GgufType::Q8_0);
        for (k, x) in &w {
            let y = &back.weights[k];
            let want = match x.shape.len() {
                1 => "F32",
                _ if k.ends_with("down_proj") => "F16",
                _ => "Q8_0",
            };
            assert_eq!(back.dtypes[k], want, "{k}");
            if want == "Q8_0" {
                // Per block: |error| ≤ half a step (amax/127) plus the f16 scale's rounding.
                for (bx, by) in x.data.chunks(32).zip(y.data.chunks(32)) {
                    let amax = bx.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let err = bx
                        .iter()
                        .zip(by)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        err <= amax / 127.0 * 0.51 + amax * 1e-3,
                        "{k}: {err} vs {amax}"
                    );
                }
            } else {
                let err = x
                    .data
                    .iter()
                    .zip(&y.data)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs() / a.abs().max(1e-4)));
                assert!(err <= 1.0 / 2048.0, "{k}: {err}");
            }
        }
    }

    #[test]
    fn derived_tokenizer_metadata() {
        // 3 ids beyond the tokenizer's: unused [PAD] tokens, as llama.cpp's converter pads.
        let (_dir, path, _, back) = round_trip(3, 96, true, GgufType::F32);
        let ct = content(&path);
        let md = &ct.metadata;
        let s = |k: &str| md[k].to_string().unwrap().clone();
        assert_eq!(s("tokenizer.ggml.model"), "gpt2");
        assert_eq!(s("tokenizer.ggml.pre"), "gpt-2");
        assert!(!md["tokenizer.ggml.add_bos_token"].to_bool().unwrap());
        let n = back.config.vocab_size;
        let tokens = md["tokenizer.ggml.tokens"].to_vec().unwrap();
        let types: Vec<i32> = md["tokenizer.ggml.token_type"]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_i32().unwrap())
            .collect();
        assert_eq!((tokens.len(), types.len()), (n, n));
        assert_eq!(&types[..3], [CONTROL, CONTROL, NORMAL]);
        assert_eq!(&types[n - 3..], [UNUSED; 3]);
        assert_eq!(
            tokens[n - 1].to_string().unwrap(),
            &format!("[PAD{}]", n - 1)
        );
        assert_eq!(u32_of(&ct, "tokenizer.ggml.eos_token_id"), 1);
        assert_eq!(u32_of(&ct, "tokenizer.ggml.padding_token_id"), 0);
        // SmolLM2's pre-tokenizer (digits one by one, then byte level) is `smollm`.
        use tokenizers::pre_tokenizers::{
            byte_level::ByteLevel, digits::Digits, sequence::Sequence,
        };
        let mut tok = tiny_tok();
        tok.inner.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        let (c, w) = tiny(tok.vocab_size(), 96, true, 1);
        write_llama(&c, &w, &tok, None, None, GgufType::F32, &path).unwrap();
        assert_eq!(
            content(&path).metadata["tokenizer.ggml.pre"]
                .to_string()
                .unwrap(),
            "smollm"
        );
        let back = Checkpoint::load_gguf(&path).unwrap();
        assert_eq!(back.tok.encode("12345 apples"), tok.encode("12345 apples"));
        assert_eq!(back.tok.encode("12345").len(), 5);
    }

    #[test]
    fn base_gguf_tokenizer_is_copied_verbatim() {
        let (dir, base, _, _) = round_trip(0, 96, true, GgufType::F32);
        let tok = tiny_tok();
        let (c, w) = tiny(tok.vocab_size(), 96, true, 2);
        let tk = |p: &Path| -> Vec<String> {
            let mut v: Vec<String> = content(p)
                .metadata
                .iter()
                .filter(|(k, _)| k.starts_with("tokenizer."))
                .map(|(k, v)| format!("{k} = {v:?}"))
                .collect();
            v.sort();
            v
        };
        // A different tokenizer object: ignored when there is a base file.
        let other = Tok::new(tok.inner.clone(), 5, 6);
        let out = dir.path().join("copy.gguf");
        write_llama(&c, &w, &other, None, Some(&base), GgufType::F16, &out).unwrap();
        assert_eq!(tk(&out), tk(&base));
        // An explicit chat template replaces the base's; nothing else changes.
        write_llama(
            &c,
            &w,
            &other,
            Some("new"),
            Some(&base),
            GgufType::F16,
            &out,
        )
        .unwrap();
        let (a, b) = (tk(&base), tk(&out));
        assert_eq!(a.len(), b.len());
        assert!(b.contains(&"tokenizer.chat_template = String(\"new\")".to_string()));
        assert_eq!(
            a.iter()
                .filter(|k| !k.starts_with("tokenizer.chat_template"))
                .collect::<Vec<_>>(),
            b.iter()
                .filter(|k| !k.starts_with("tokenizer.chat_template"))
                .collect::<Vec<_>>()
        );
        // A base whose vocabulary is not the student's is refused.
        let (c2, w2) = tiny(tok.vocab_size() + 1, 96, true, 2);
        let e = write_llama(&c2, &w2, &tok, None, Some(&base), GgufType::F32, &out).unwrap_err();
        assert!(e.to_string().contains("tokens"), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let tok = tiny_tok();
        let (c, w) = tiny(tok.vocab_size(), 96, false, 3);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.gguf");
        let write =
            |c: &LlamaConfig, w: &HashMap<String, Weight>, tok: &Tok, base: Option<&Path>| {
                write_llama(c, w, tok, None, base, GgufType::Q8_0, &out)
                    .unwrap_err()
                    .to_string()
            };
        // 1. Weights: missing, wrong shape, too few values.
        let mut missing = tiny(tok.vocab_size(), 96, false, 3).1;
        missing.remove("lm_head");
        assert!(write(&c, &missing, &tok, None).contains("lm_head"));
        let mut shape = tiny(tok.vocab_size(), 96, false, 3).1;
        shape.get_mut("L1.k_proj").unwrap().shape = vec![64, 32];
        assert!(write(&c, &shape, &tok, None).contains("L1.k_proj"));
        let mut short = tiny(tok.vocab_size(), 96, false, 3).1;
        short.get_mut("L0.mlp_norm").unwrap().data.pop();
        assert!(write(&c, &short, &tok, None).contains("L0.mlp_norm"));
        // 2. Architecture: heads that do not divide, no heads.
        for (heads, kv) in [(5, 5), (4, 3), (0, 0), (64, 64)] {
            let mut bad = c.clone();
            (bad.heads, bad.kv_heads) = (heads, kv);
            assert!(
                write(&bad, &w, &tok, None).contains("architecture"),
                "{heads}/{kv}"
            );
        }
        // 3. Tokenizer: smaller vocabulary than its ids, not BPE, no byte level.
        let (small, ws) = tiny(10, 96, false, 3);
        assert!(write(&small, &ws, &tok, None).contains("beyond"));
        let wl = tokenizers::models::wordlevel::WordLevel::builder()
            .vocab(
                [("a".to_string(), 0u32), ("[UNK]".into(), 1)]
                    .into_iter()
                    .collect(),
            )
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        let word = Tok::new(tokenizers::Tokenizer::new(wl), 0, 1);
        assert!(write(&c, &w, &word, None).contains("WordLevel"));
        let mut plain = tok.clone();
        plain
            .inner
            .with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
        assert!(write(&c, &w, &plain, None).contains("ByteLevel"));
        // 4. Base file: missing, not a GGUF.
        assert!(write(&c, &w, &tok, Some(&dir.path().join("none.gguf"))).contains("none.gguf"));
        let junk = dir.path().join("junk.gguf");
        std::fs::write(&junk, b"GGUF\x03\0\0\0 not really").unwrap();
        assert!(write(&c, &w, &tok, Some(&junk)).contains("not a GGUF"));
        // 5. An output path that cannot be created.
        let e = write_llama(
            &c,
            &w,
            &tok,
            None,
            None,
            GgufType::F32,
            &dir.path().join("no/x.gguf"),
        );
        assert!(e.unwrap_err().to_string().contains("no/x.gguf"));
    }
}
