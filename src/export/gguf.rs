//! GGUF export: a file llama.cpp loads, laid out the way llama.cpp's `convert_hf_to_gguf.py`
//! writes one, for the architectures llama.cpp has: `llama` (Llama, Mistral), `qwen2`,
//! `qwen3`, `gemma2`, `gemma3`, `phi3` and `gpt2`.
//!
//! The container and the quantisation are candle's (`gguf_file::write`, `QTensor::quantize`;
//! candle writes GGUF v2 with 32-byte alignment and reverses the dimensions into GGUF's
//! innermost-first order). What is ours:
//! 1. per architecture ([`Arch`]): the metadata (`{arch}.*`, `general.file_type` as
//!    llama.cpp's `LLAMA_FTYPE`) and the tensors under llama.cpp's names, q/k rows permuted
//!    into the interleaved order for `llama` only ([`permute`]; the others rotate halves, as
//!    Hugging Face stores them), and what llama.cpp's graph fixes checked against the student
//!    ([`llama_unsupported`], [`phi3_unsupported`]): a file that would run differently is
//!    refused with the reason, never written;
//! 2. the tensors' storage: 1-D tensors kept F32 whatever the file type (the converter's
//!    convention), and Q8_0 falling back to F16 for a tensor whose rows are not whole 32-value
//!    blocks (as the converter does);
//! 3. the tokenizer metadata ([`super::gguf_vocab`]): copied verbatim from the base GGUF when
//!    there is one, else derived from the `tokenizers` tokenizer (byte-level BPE as `gpt2`,
//!    SentencePiece-style BPE with byte fallback as `llama`).

use super::gguf_vocab::{base_tokenizer, derived_tokenizer};
use crate::error::{Error, Result};
use crate::student::checkpoint::{Weight, layer_names, permute};
use crate::student::gpt2::Gpt2Config;
use crate::student::phi3::Phi3Config;
use crate::student::rope::{Rope, RopeScaling};
use crate::student::tokenizer::Tok;
use crate::student::{Family, LlamaConfig};
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

pub(super) fn fail(message: impl std::fmt::Display) -> Error {
    Error::run(format!("GGUF export: {message}"))
}

fn u32_value(key: &str, x: usize) -> Result<Value> {
    u32::try_from(x)
        .map(Value::U32)
        .map_err(|_| fail(format!("`{key}` = {x} does not fit in 32 bits")))
}

/// `{arch}.{key}` = `x` (u32, as llama.cpp reads counts) for each pair.
fn counts(arch: &str, pairs: &[(&str, usize)]) -> Result<Vec<(String, Value)>> {
    pairs
        .iter()
        .map(|&(key, x)| {
            let key = format!("{arch}.{key}");
            let v = u32_value(&key, x)?;
            Ok((key, v))
        })
        .collect()
}

/// One tensor of the file: its GGUF name, its shape in Hugging Face order (outermost first,
/// reversed into GGUF's order by the writer) and its values, already in llama.cpp's layout.
pub struct Entry {
    /// GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Entry {
    fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Entry {
            name: name.into(),
            shape,
            data,
        }
    }
}

/// What an architecture contributes to a file: `general.architecture`, its own metadata
/// (`{arch}.*`), its tensors and the vocabulary size the tokenizer must cover.
pub struct Arch {
    /// llama.cpp's architecture name (`llama`, `qwen2`, `gemma3`, `phi3`, `gpt2` …).
    pub name: &'static str,
    /// `{arch}.*` keys.
    pub metadata: Vec<(String, Value)>,
    /// The tensors, in file order.
    pub tensors: Vec<Entry>,
    /// Vocabulary size.
    pub vocab_size: usize,
}

/// llama.cpp's architecture name for a Llama-style family: Mistral is `llama` (the converter
/// writes it so), the others their own.
fn llama_arch(f: Family) -> &'static str {
    match f {
        Family::Qwen2 => "qwen2",
        Family::Qwen3 => "qwen3",
        Family::Gemma2 => "gemma2",
        Family::Gemma3 => "gemma3",
        _ => "llama",
    }
}

/// Why llama.cpp would not run this Llama-style student as morsd does, if it would not: each
/// architecture's graph fixes some of what transformers' config sets (Gemma's query scale,
/// its window pattern and local RoPE base, Gemma 2's soft caps), and some options it lacks
/// (windows on `llama` and `qwen2`, per-head norms outside Qwen3 and Gemma 3, partial
/// rotation). `None`: the file reproduces the student.
pub fn llama_unsupported(c: &LlamaConfig) -> Option<String> {
    let f = c.family;
    let arch = llama_arch(f);
    let hd = c.head_dim();
    // 1. Options no architecture of llama.cpp takes from a file.
    if c.rotary_dims.is_some_and(|r| r != hd) {
        return Some("its rotation is partial (`partial_rotary_factor`), which llama.cpp's Llama-style architectures do not take".into());
    }
    match &c.rope_scaling {
        RopeScaling::Default | RopeScaling::Linear { .. } | RopeScaling::Llama3 { .. } => {}
        other => {
            return Some(format!(
                "its rotation is scaled as `{}`, which llama.cpp's `{arch}` does not take",
                other.to_hf()
            ));
        }
    }
    if matches!(c.rope_scaling, RopeScaling::Llama3 { .. }) && arch != "llama" {
        return Some(format!(
            "llama.cpp's `{arch}` takes no `llama3` rope scaling (its `rope_freqs` factors are read by `llama` only)"
        ));
    }
    // 2. What each architecture's graph has.
    let gemma = matches!(f, Family::Gemma2 | Family::Gemma3);
    if let Some(w) = windowed(c).filter(|_| !gemma) {
        return Some(format!(
            "it attends through a sliding window of {w} tokens (`sliding_window`), shorter than its context of {}, which llama.cpp's `{arch}` does not apply: its logits would differ past the window",
            c.max_seq_len
        ));
    }
    if c.qkv_bias && f != Family::Qwen2 {
        return Some(format!(
            "its q/k/v projections have biases, which morsd writes into a Qwen2 (`qwen2`) file only, not into llama.cpp's `{arch}`"
        ));
    }
    if f == Family::Qwen2 && c.heads * hd != c.d_model {
        return Some(format!(
            "its heads are {hd} wide, so {} heads are not its width {}, which llama.cpp's `qwen2` assumes",
            c.heads, c.d_model
        ));
    }
    if c.qk_norm && !matches!(f, Family::Qwen3 | Family::Gemma3) {
        return Some(format!(
            "it normalises queries and keys per head, which llama.cpp's `{arch}` does not"
        ));
    }
    if gemma {
        // llama.cpp scales queries by 1/√head_dim, or 1/√(d/heads) in the 27B models (46 layers
        // in Gemma 2, 62 in Gemma 3), whatever `query_pre_attn_scalar` says.
        let big =
            (f == Family::Gemma2 && c.layers == 46) || (f == Family::Gemma3 && c.layers == 62);
        let cpp = if big {
            (c.d_model / c.heads) as f64
        } else {
            hd as f64
        };
        let ours = c.query_pre_attn_scalar.unwrap_or(hd as f64);
        if (ours - cpp).abs() > 1e-9 {
            return Some(format!(
                "its `query_pre_attn_scalar` is {ours}, but llama.cpp's `{arch}` scales queries by 1/√{cpp} for a model of {} layers",
                c.layers
            ));
        }
        if f == Family::Gemma2 && !c.tie_embeddings {
            return Some("its head is not its token embedding, but llama.cpp's `gemma2` reads no `output` tensor".into());
        }
        if f == Family::Gemma2 && (c.attn_softcap.is_none() || c.final_softcap.is_none()) {
            return Some("it soft-caps no attention or final logits, but llama.cpp's `gemma2` always does (50 and 30 when the file says nothing)".into());
        }
        if f == Family::Gemma3 && c.attn_softcap.is_some() {
            return Some(
                "it soft-caps attention scores, which llama.cpp's `gemma3` does not".into(),
            );
        }
    }
    None
}

/// The window of a student some of whose layers attend through one shorter than its context
/// (a window as long as the context changes nothing).
fn windowed(c: &LlamaConfig) -> Option<usize> {
    c.sliding_window
        .filter(|&w| w < c.max_seq_len && (0..c.layers).any(|l| c.window_of(l).is_some()))
}

/// The file of a Llama-style student (`llama`, `qwen2`, `qwen3`, `gemma2`, `gemma3`; Mistral as
/// `llama`), as llama.cpp's converter writes one.
///
/// `weights` are under the canonical names and in the Hugging Face layout of
/// [`crate::student::checkpoint::Checkpoint::weights`] (Gemma's norms as `1 + w`, which is what
/// llama.cpp multiplies by). Only `llama` permutes q/k rows ([`permute`]): llama.cpp rotates
/// the others in the "neox" (rotate-half) layout of the Hugging Face weights.
pub fn llama_arch_of(c: &LlamaConfig, weights: &HashMap<String, Weight>) -> Result<Arch> {
    // 1. The architecture must be one llama.cpp can run.
    if c.heads == 0
        || c.kv_heads == 0
        || c.vocab_size == 0
        || !c.heads.is_multiple_of(c.kv_heads)
        || !c.head_dim().is_multiple_of(2)
        || (c.head_dim_override.is_none() && !c.d_model.is_multiple_of(c.heads))
    {
        return Err(fail(format!(
            "inconsistent architecture: width {}, {} query / {} key-value heads (the head width must be even), vocabulary {}",
            c.d_model, c.heads, c.kv_heads, c.vocab_size
        )));
    }
    if let Some(why) = llama_unsupported(c) {
        return Err(fail(why));
    }
    let arch = llama_arch(c.family);
    let hd = c.head_dim();
    // 2. `{arch}.*` metadata.
    let mut md = counts(
        arch,
        &[
            ("context_length", c.max_seq_len),
            ("embedding_length", c.d_model),
            ("block_count", c.layers),
            ("feed_forward_length", c.d_ff),
            ("attention.head_count", c.heads),
            ("attention.head_count_kv", c.kv_heads),
            ("attention.key_length", hd),
            ("attention.value_length", hd),
            ("rope.dimension_count", hd),
            ("vocab_size", c.vocab_size),
        ],
    )?;
    let f32_key = |k: &str, x: f64| (format!("{arch}.{k}"), Value::F32(x as f32));
    md.push(f32_key("rope.freq_base", c.rope_theta));
    md.push(f32_key("attention.layer_norm_rms_epsilon", c.norm_eps));
    if let RopeScaling::Linear { factor } = c.rope_scaling {
        md.push((
            format!("{arch}.rope.scaling.type"),
            Value::String("linear".into()),
        ));
        md.push(f32_key("rope.scaling.factor", factor));
    }
    if matches!(c.family, Family::Gemma2 | Family::Gemma3) {
        // The window, and which layers slide: one flag per layer (llama.cpp reads the array;
        // without it, its own pattern: every 2nd layer global in Gemma 2, every 6th in Gemma 3,
        // and Gemma 2 a window of 4096 when the file names none). All flags off: no window.
        if let Some(w) = c.sliding_window {
            let key = format!("{arch}.attention.sliding_window");
            md.push((key.clone(), u32_value(&key, w)?));
        }
        md.push((
            format!("{arch}.attention.sliding_window_pattern"),
            Value::Array(
                (0..c.layers)
                    .map(|l| Value::Bool(c.window_of(l).is_some()))
                    .collect(),
            ),
        ));
        if let Some(local) = c.rope_local_theta {
            md.push(f32_key("rope.freq_base_swa", local));
        }
    }
    if let Some(a) = c.attn_softcap {
        md.push(f32_key("attn_logit_softcapping", a));
    }
    if let Some(f) = c.final_softcap {
        md.push(f32_key("final_logit_softcapping", f));
    }
    // 3. Tensors: (GGUF name, canonical name, HF shape, heads to permute by).
    let permute_qk = arch == "llama";
    let mut specs: Vec<(String, String, Vec<usize>, Option<usize>)> = vec![(
        "token_embd.weight".into(),
        "embed".into(),
        vec![c.vocab_size, c.d_model],
        None,
    )];
    for l in 0..c.layers {
        for (canon, g, _) in layer_names(c) {
            let (shape, heads) = match canon {
                "q_proj" => (vec![c.heads * hd, c.d_model], Some(c.heads)),
                "k_proj" => (vec![c.kv_heads * hd, c.d_model], Some(c.kv_heads)),
                "v_proj" => (vec![c.kv_heads * hd, c.d_model], None),
                "o_proj" => (vec![c.d_model, c.heads * hd], None),
                "down_proj" => (vec![c.d_model, c.d_ff], None),
                "gate_proj" | "up_proj" => (vec![c.d_ff, c.d_model], None),
                "q_bias" => (vec![c.heads * hd], None),
                "k_bias" | "v_bias" => (vec![c.kv_heads * hd], None),
                "q_norm" | "k_norm" => (vec![hd], None),
                _ => (vec![c.d_model], None),
            };
            let gname = if g.ends_with(".bias") {
                format!("blk.{l}.{g}")
            } else {
                format!("blk.{l}.{g}.weight")
            };
            specs.push((
                gname,
                format!("L{l}.{canon}"),
                shape,
                heads.filter(|_| permute_qk),
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
    let mut tensors = Vec::with_capacity(specs.len() + 1);
    // Llama 3's frequency scaling: llama.cpp divides frequency i by `rope_freqs[i]`.
    if matches!(c.rope_scaling, RopeScaling::Llama3 { .. }) {
        let rope = Rope {
            theta: c.rope_theta,
            scaling: c.rope_scaling.clone(),
        };
        let plain = Rope::plain(c.rope_theta).inv_freq(hd, false);
        let scaled = rope.inv_freq(hd, false);
        let factors: Vec<f32> = plain.iter().zip(&scaled).map(|(p, s)| p / s).collect();
        tensors.push(Entry::new("rope_freqs.weight", vec![hd / 2], factors));
    }
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
        let data = match heads {
            Some(n) => permute(&w.data, shape[0], shape[1], n),
            None => w.data.clone(),
        };
        tensors.push(Entry::new(gname, shape, data));
    }
    Ok(Arch {
        name: arch,
        metadata: md,
        tensors,
        vocab_size: c.vocab_size,
    })
}

/// A tensor under transformers' name: (name, shape, row-major values).
pub type HfTensor = (String, Vec<usize>, Vec<f32>);

/// Renames transformers' tensors to GGUF's with `rename` (`None`: a tensor the file leaves
/// out), transposing those it marks (GPT-2's `Conv1D` weights are `[in, out]`, llama.cpp's
/// `[out, in]` as the converter writes them). `Err` names a tensor `rename` does not know.
fn renamed(
    tensors: Vec<HfTensor>,
    rename: impl Fn(&str) -> Option<(String, bool)>,
) -> Result<Vec<Entry>> {
    tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let (g, transpose) =
                rename(&name).ok_or_else(|| fail(format!("no GGUF name for tensor `{name}`")))?;
            Ok(match (transpose, shape.as_slice()) {
                (true, &[r, c]) => {
                    let mut t = vec![0f32; data.len()];
                    for i in 0..r {
                        for j in 0..c {
                            t[j * r + i] = data[i * c + j];
                        }
                    }
                    Entry::new(g, vec![c, r], t)
                }
                _ => Entry::new(g, shape, data),
            })
        })
        .collect()
}

/// `blk.{l}.{rest}` of a `{prefix}{l}.{rest}` name.
fn layer_of<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (l, rest) = rest.split_once('.')?;
    Some((l.parse().ok()?, rest))
}

/// A GPT-2 student's file (`gpt2`), from its tensors under transformers' names
/// (`transformer.*`, `Conv1D` weights `[in, out]`). The head is the token embedding: llama.cpp
/// uses `token_embd` when the file has no `output`.
pub fn gpt2_arch_of(d: &Gpt2Config, tensors: Vec<HfTensor>) -> Result<Arch> {
    let mut md = counts(
        "gpt2",
        &[
            ("context_length", d.positions),
            ("embedding_length", d.d_model),
            ("feed_forward_length", d.d_ff),
            ("block_count", d.layers),
            ("attention.head_count", d.heads),
        ],
    )?;
    // The only epsilon morsd's GPT-2 loader accepts.
    md.push((
        "gpt2.attention.layer_norm_epsilon".into(),
        Value::F32(crate::kernels::layer_norm::EPS),
    ));
    let tensors = renamed(tensors, |n| {
        let n = n.strip_prefix("transformer.").unwrap_or(n);
        let plain = |g: &str| Some((g.to_string(), false));
        match n {
            "wte.weight" => return plain("token_embd.weight"),
            "wpe.weight" => return plain("position_embd.weight"),
            "ln_f.weight" => return plain("output_norm.weight"),
            "ln_f.bias" => return plain("output_norm.bias"),
            _ => {}
        }
        let (l, rest) = layer_of(n, "h.")?;
        let (module, kind) = rest.rsplit_once('.')?;
        let g = match module {
            "ln_1" => "attn_norm",
            "attn.c_attn" => "attn_qkv",
            "attn.c_proj" => "attn_output",
            "ln_2" => "ffn_norm",
            "mlp.c_fc" => "ffn_up",
            "mlp.c_proj" => "ffn_down",
            _ => return None,
        };
        let conv1d = kind == "weight" && !module.starts_with("ln_");
        Some((format!("blk.{l}.{g}.{kind}"), conv1d))
    })?;
    Ok(Arch {
        name: "gpt2",
        metadata: md,
        tensors,
        vocab_size: d.vocab_size,
    })
}

/// Why llama.cpp would not run this Phi-3 student as morsd does, if it would not.
pub fn phi3_unsupported(c: &Phi3Config) -> Option<String> {
    match &c.rope_scaling {
        RopeScaling::Default | RopeScaling::LongRope { .. } => {}
        other => {
            return Some(format!(
                "its rotation is scaled as `{}`, which llama.cpp's `phi3` does not take",
                other.to_hf()
            ));
        }
    }
    if let Some(w) = c.sliding_window.filter(|&w| w < c.max_seq_len) {
        return Some(format!(
            "it attends through a sliding window of {w} tokens (`sliding_window`), shorter than its context of {}, but llama.cpp's `phi3` has its sliding windows switched off",
            c.max_seq_len
        ));
    }
    None
}

/// What a user of this Phi-3 student's file must know: with `longrope`, llama.cpp uses the long
/// factors for every token once its context exceeds the original one.
pub fn phi3_note(c: &Phi3Config) -> Option<String> {
    match &c.rope_scaling {
        RopeScaling::LongRope {
            original_max_position_embeddings: o,
            ..
        } => Some(format!(
            "llama.cpp rotates every token by the long RoPE factors once its context (-c, rounded up to a multiple of 256) exceeds {o} tokens (the original context); within it, by the short ones, as this student does up to that length"
        )),
        _ => None,
    }
}

/// A Phi-3 student's file (`phi3`), from its tensors under transformers' names: the fused
/// `qkv_proj` and `gate_up_proj` as llama.cpp's `attn_qkv` and `ffn_up` (gate half first, as
/// both split it), and for `longrope` the factor tensors `rope_factors_short`/`_long` with
/// the original context and the attention factor. llama.cpp picks the long factors when its
/// context (`n_ctx`) exceeds the original one, transformers when the sequence does: the two
/// agree on sequences within the original context, or when llama.cpp's context is as long as
/// the sequence's.
pub fn phi3_arch_of(c: &Phi3Config, tensors: Vec<HfTensor>) -> Result<Arch> {
    if let Some(why) = phi3_unsupported(c) {
        return Err(fail(why));
    }
    let hd = c.head_dim();
    let rot = c.rotary_dims.unwrap_or(hd);
    let mut md = counts(
        "phi3",
        &[
            ("context_length", c.max_seq_len),
            ("embedding_length", c.d_model),
            ("feed_forward_length", c.d_ff),
            ("block_count", c.layers),
            ("attention.head_count", c.heads),
            ("attention.head_count_kv", c.kv_heads),
            ("rope.dimension_count", rot),
        ],
    )?;
    md.push((
        "phi3.attention.layer_norm_rms_epsilon".into(),
        Value::F32(c.norm_eps as f32),
    ));
    md.push((
        "phi3.rope.freq_base".into(),
        Value::F32(c.rope_theta as f32),
    ));
    let mut entries = Vec::new();
    if let RopeScaling::LongRope {
        short_factor,
        long_factor,
        original_max_position_embeddings,
        attention_factor,
    } = &c.rope_scaling
    {
        let key = "phi3.rope.scaling.original_context_length";
        md.push((
            key.into(),
            u32_value(key, *original_max_position_embeddings as usize)?,
        ));
        md.push((
            "phi3.rope.scaling.attn_factor".into(),
            Value::F32(*attention_factor as f32),
        ));
        for (g, f) in [
            ("rope_factors_long.weight", long_factor),
            ("rope_factors_short.weight", short_factor),
        ] {
            let f: Vec<f32> = f.iter().map(|&x| x as f32).collect();
            if f.len() != rot / 2 {
                return Err(fail(format!(
                    "`{g}` has {} factors, the rotation {} frequencies",
                    f.len(),
                    rot / 2
                )));
            }
            entries.push(Entry::new(g, vec![rot / 2], f));
        }
    }
    entries.extend(renamed(tensors, |n| {
        let plain = |g: &str| Some((g.to_string(), false));
        match n {
            "model.embed_tokens.weight" => return plain("token_embd.weight"),
            "model.norm.weight" => return plain("output_norm.weight"),
            "lm_head.weight" => return plain("output.weight"),
            _ => {}
        }
        let (l, rest) = layer_of(n, "model.layers.")?;
        let g = match rest {
            "input_layernorm.weight" => "attn_norm",
            "post_attention_layernorm.weight" => "ffn_norm",
            "self_attn.qkv_proj.weight" => "attn_qkv",
            "self_attn.o_proj.weight" => "attn_output",
            "mlp.gate_up_proj.weight" => "ffn_up",
            "mlp.down_proj.weight" => "ffn_down",
            _ => return None,
        };
        Some((format!("blk.{l}.{g}.weight"), false))
    })?);
    Ok(Arch {
        name: "phi3",
        metadata: md,
        tensors: entries,
        vocab_size: c.vocab_size,
    })
}

/// Writes a Llama-style student's GGUF file that llama.cpp loads (see [`llama_arch_of`] and
/// [`write`]). `{arch}.context_length` is `config.max_seq_len`.
pub fn write_llama(
    config: &LlamaConfig,
    weights: &HashMap<String, Weight>,
    tok: &Tok,
    chat_template: Option<&str>,
    base_gguf: Option<&Path>,
    ty: GgufType,
    out: &Path,
) -> Result<()> {
    let arch = llama_arch_of(config, weights)?;
    write(arch, tok, chat_template, base_gguf, ty, out)
}

/// Writes `arch` as a GGUF file.
///
/// With `base_gguf` (the student's base checkpoint was a GGUF) every `tokenizer.*` key is
/// copied from it; otherwise they are derived from `tok`. `chat_template`, when given, is
/// written as `tokenizer.chat_template` (replacing the base's).
pub fn write(
    arch: Arch,
    tok: &Tok,
    chat_template: Option<&str>,
    base_gguf: Option<&Path>,
    ty: GgufType,
    out: &Path,
) -> Result<()> {
    // 1. General metadata, then the architecture's.
    let name = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "morsd student".into());
    let mut md: Vec<(String, Value)> = vec![
        (
            "general.architecture".into(),
            Value::String(arch.name.into()),
        ),
        ("general.name".into(), Value::String(name)),
        ("general.file_type".into(), Value::U32(ty.file_type())),
        ("general.quantization_version".into(), Value::U32(2)),
        ("general.alignment".into(), Value::U32(ALIGNMENT)),
    ];
    md.extend(arch.metadata);
    // 2. Tokenizer metadata, then the chat template.
    let mut tk = match base_gguf {
        Some(base) => base_tokenizer(base, arch.vocab_size)?,
        None => derived_tokenizer(tok, arch.vocab_size)?,
    };
    if let Some(t) = chat_template {
        tk.retain(|(k, _)| k != "tokenizer.chat_template");
        tk.push(("tokenizer.chat_template".into(), Value::String(t.into())));
    }
    md.extend(tk);
    // 3. Tensors: 1-D ones (norms, biases, RoPE factors) stay F32 whatever the file type (the
    //    converter's convention); Q8_0 needs whole 32-value blocks per row, else F16 (the
    //    converter's fallback).
    let cpu = candle_core::Device::Cpu;
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(arch.tensors.len());
    for e in arch.tensors {
        if e.data.len() != e.shape.iter().product::<usize>() {
            return Err(fail(format!(
                "tensor `{}` has {} values for shape {:?}",
                e.name,
                e.data.len(),
                e.shape
            )));
        }
        let dtype = match (e.shape.len(), ty) {
            (1, _) => GgmlDType::F32,
            (_, GgufType::Q8_0)
                if !e.shape[e.shape.len() - 1].is_multiple_of(GgmlDType::Q8_0.block_size()) =>
            {
                GgmlDType::F16
            }
            _ => ty.ggml(),
        };
        let q = candle_core::Tensor::from_slice(&e.data, e.shape.as_slice(), &cpu)
            .and_then(|t| QTensor::quantize(&t, dtype))
            .map_err(|err| fail(format!("tensor `{}` as {dtype:?}: {err}", e.name)))?;
        tensors.push((e.name, q));
    }
    // 4. The file.
    let file = std::fs::File::create(out).map_err(|e| Error::io(out, e))?;
    let mut w = std::io::BufWriter::new(file);
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut w, &md_refs, &t_refs)
        .map_err(|e| Error::run(format!("{}: writing GGUF: {e}", out.display())))?;
    w.flush().map_err(|e| Error::io(out, e))
}

#[cfg(test)]
mod tests {
    use super::super::gguf_vocab::{CONTROL, NORMAL, UNUSED, token_types};
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
        let types = token_types(md);
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
    fn a_sentencepiece_style_gguf_loads_back_as_the_same_tokenizer() {
        // The tokenizer fixtures (Llama 2's layout with a space before the text, Gemma's
        // without), written into a GGUF and read back by morsd's loader, whose merges come
        // from the scores alone: the same ids and the same text on prompts with spaces, "\n"
        // and characters without a piece (byte fallback), and on one whose pieces come out
        // otherwise in another merge order.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spm.gguf");
        for (style, eos) in [("llama-spm", 2), ("gemma-spm", 1)] {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/tokenizers")
                .join(style)
                .join("tokenizer.json");
            let tok = Tok::new(tokenizers::Tokenizer::from_file(file).unwrap(), 0, eos);
            let (c, w) = tiny(tok.vocab_size(), 96, true, 1);
            write_llama(&c, &w, &tok, None, None, GgufType::F32, &path).unwrap();
            let back = Checkpoint::load_gguf(&path).unwrap().tok;
            for text in SAMPLES.iter().copied().chain([
                "Q: Ann hands her answer to the man there.\nA:",
                "Zoë's  café: 12 €",
            ]) {
                let ids = tok.encode(text);
                assert_eq!(back.encode(text), ids, "{style}: {text:?}");
                assert_eq!(back.decode(&ids), tok.decode(&ids), "{style}: {text:?}");
            }
            assert_eq!(back.eos, eos);
        }
    }

    #[test]
    fn tokenizers_llama_cpp_would_split_otherwise_are_refused() {
        let (c, w) = tiny(tiny_tok().vocab_size(), 96, true, 4);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.gguf");
        let err = |tok: &Tok| {
            write_llama(&c, &w, tok, None, None, GgufType::F32, &out)
                .unwrap_err()
                .to_string()
        };
        let mut prefix = tiny_tok();
        prefix.inner.with_pre_tokenizer(Some(
            tokenizers::pre_tokenizers::byte_level::ByteLevel::new(true, true, true),
        ));
        assert!(err(&prefix).contains("add_prefix_space"));
        let mut lower = tiny_tok();
        lower
            .inner
            .with_normalizer(Some(tokenizers::normalizers::utils::Lowercase))
            .unwrap();
        assert!(err(&lower).contains("Lowercase"));
        let mut nfc = tiny_tok();
        nfc.inner
            .with_normalizer(Some(tokenizers::normalizers::unicode::NFC))
            .unwrap();
        write_llama(&c, &w, &nfc, None, None, GgufType::F32, &out).unwrap();
    }

    #[test]
    fn phi3_longrope_is_written_as_llama_cpps_factor_tensors() {
        // Width 32, 4 heads of 8, three quarters rotated: 6 dims, 3 frequencies.
        let c = Phi3Config::new(50, 32, 1, 4, 4, 16, 128)
            .with_rotary_dims(Some(6))
            .with_rope_scaling(RopeScaling::LongRope {
                short_factor: vec![1.0, 1.5, 3.0],
                long_factor: vec![2.0, 4.0, 8.0],
                original_max_position_embeddings: 32.0,
                attention_factor: 1.2,
            });
        let t = |n: &str, shape: Vec<usize>| {
            (
                n.to_string(),
                shape.clone(),
                vec![0.5; shape.iter().product()],
            )
        };
        let tensors = vec![
            t("model.embed_tokens.weight", vec![50, 32]),
            t("model.norm.weight", vec![32]),
            t("lm_head.weight", vec![50, 32]),
            t("model.layers.0.input_layernorm.weight", vec![32]),
            t("model.layers.0.self_attn.qkv_proj.weight", vec![96, 32]),
            t("model.layers.0.mlp.gate_up_proj.weight", vec![32, 32]),
        ];
        let a = phi3_arch_of(&c, tensors.clone()).unwrap();
        let names: Vec<&str> = a.tensors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rope_factors_long.weight",
                "rope_factors_short.weight",
                "token_embd.weight",
                "output_norm.weight",
                "output.weight",
                "blk.0.attn_norm.weight",
                "blk.0.attn_qkv.weight",
                "blk.0.ffn_up.weight"
            ]
        );
        assert_eq!(a.tensors[0].data, [2.0, 4.0, 8.0]);
        assert_eq!(a.tensors[1].data, [1.0, 1.5, 3.0]);
        let md: HashMap<_, _> = a.metadata.into_iter().collect();
        assert_eq!(md["phi3.rope.dimension_count"].to_u32().unwrap(), 6);
        assert_eq!(
            md["phi3.rope.scaling.original_context_length"]
                .to_u32()
                .unwrap(),
            32
        );
        assert_eq!(md["phi3.rope.scaling.attn_factor"].to_f32().unwrap(), 1.2);
        // A window shorter than the context is refused (llama.cpp's phi3 applies none), as is a
        // tensor the file has no name for.
        let windowed = c.clone().with_sliding_window(Some(16));
        let e = phi3_arch_of(&windowed, tensors.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sliding window"), "{e}");
        let mut odd = tensors;
        odd.push(t("model.layers.0.self_attn.rotary_emb.inv_freq", vec![3]));
        let e = phi3_arch_of(&c, odd).err().unwrap().to_string();
        assert!(e.contains("rotary_emb"), "{e}");
    }

    #[test]
    fn gpt2_conv1d_weights_are_transposed_and_named_as_llama_cpps() {
        let d = Gpt2Config::new(10, 4, 1, 2, 8, 16, 16);
        // c_attn [in 4, out 12]: value = row * 100 + column.
        let conv: Vec<f32> = (0..4)
            .flat_map(|i| (0..12).map(move |j| (i * 100 + j) as f32))
            .collect();
        let a = gpt2_arch_of(
            &d,
            vec![
                ("transformer.wpe.weight".into(), vec![16, 4], vec![0.0; 64]),
                (
                    "transformer.h.0.attn.c_attn.weight".into(),
                    vec![4, 12],
                    conv,
                ),
                (
                    "transformer.h.0.attn.c_attn.bias".into(),
                    vec![12],
                    vec![0.0; 12],
                ),
                ("transformer.h.0.ln_1.weight".into(), vec![4], vec![1.0; 4]),
            ],
        )
        .unwrap();
        let names: Vec<&str> = a.tensors.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "position_embd.weight",
                "blk.0.attn_qkv.weight",
                "blk.0.attn_qkv.bias",
                "blk.0.attn_norm.weight"
            ]
        );
        // [out 12, in 4]: row j holds column j of the Conv1D weight.
        assert_eq!(a.tensors[1].shape, [12, 4]);
        assert_eq!(&a.tensors[1].data[4..8], [1.0, 101.0, 201.0, 301.0]);
        assert_eq!(a.tensors[2].shape, [12]);
    }

    #[test]
    fn what_llama_cpps_graph_fixes_is_checked_before_writing() {
        let base = LlamaConfig::new(300, 32, 2, 4, 2, 64, 128);
        assert_eq!(llama_unsupported(&base), None);
        // Mistral's window: refused when shorter than the context, since `llama` applies none.
        let mut m = base.clone();
        (m.family, m.sliding_window, m.sliding_layers) = (Family::Mistral, Some(4), vec![true; 2]);
        assert!(llama_unsupported(&m).unwrap().contains("sliding window"));
        m.sliding_window = Some(128);
        assert_eq!(llama_unsupported(&m), None);
        // Gemma: the query scale is llama.cpp's 1/√head_dim or nothing.
        let mut g = base.clone();
        (g.family, g.query_pre_attn_scalar) = (Family::Gemma3, Some(16.0));
        assert!(
            llama_unsupported(&g)
                .unwrap()
                .contains("query_pre_attn_scalar")
        );
        g.query_pre_attn_scalar = Some(8.0);
        assert_eq!(llama_unsupported(&g), None);
        g.attn_softcap = Some(50.0);
        assert!(llama_unsupported(&g).unwrap().contains("soft-caps"));
        // Gemma 2 without its soft caps; biases outside Qwen2; a partial rotation.
        let mut g2 = base.clone();
        (g2.family, g2.sliding_window, g2.sliding_layers) =
            (Family::Gemma2, Some(4), vec![true, false]);
        assert!(llama_unsupported(&g2).unwrap().contains("soft-caps"));
        (g2.attn_softcap, g2.final_softcap) = (Some(50.0), Some(30.0));
        assert_eq!(llama_unsupported(&g2), None);
        // Gemma 2 states its window and which layers slide; without a window, none does (else
        // llama.cpp would slide every other layer by 4096).
        let md = |c: &LlamaConfig| -> HashMap<String, Value> {
            let hd = c.head_dim();
            let mut w = HashMap::new();
            let mut add = |n: String, shape: Vec<usize>| {
                let len = shape.iter().product();
                w.insert(
                    n,
                    Weight {
                        shape,
                        data: vec![0.1; len],
                    },
                );
            };
            add("embed".into(), vec![c.vocab_size, c.d_model]);
            add("norm".into(), vec![c.d_model]);
            for l in 0..c.layers {
                for (canon, _, _) in layer_names(c) {
                    let shape = match canon {
                        "q_proj" => vec![c.heads * hd, c.d_model],
                        "k_proj" | "v_proj" => vec![c.kv_heads * hd, c.d_model],
                        "o_proj" => vec![c.d_model, c.heads * hd],
                        "down_proj" => vec![c.d_model, c.d_ff],
                        "gate_proj" | "up_proj" => vec![c.d_ff, c.d_model],
                        _ => vec![c.d_model],
                    };
                    add(format!("L{l}.{canon}"), shape);
                }
            }
            llama_arch_of(c, &w).unwrap().metadata.into_iter().collect()
        };
        let flags = |m: &HashMap<String, Value>| -> Vec<bool> {
            m["gemma2.attention.sliding_window_pattern"]
                .to_vec()
                .unwrap()
                .iter()
                .map(|v| v.to_bool().unwrap())
                .collect()
        };
        g2.tie_embeddings = true;
        let m = md(&g2);
        assert_eq!(m["gemma2.attention.sliding_window"].to_u32().unwrap(), 4);
        assert_eq!(flags(&m), [true, false]);
        g2.sliding_window = None;
        let m = md(&g2);
        assert!(!m.contains_key("gemma2.attention.sliding_window"));
        assert_eq!(flags(&m), [false, false]);
        // Qwen2 with heads narrower than width / heads.
        let mut q2 = base.clone();
        (q2.family, q2.qkv_bias, q2.head_dim_override) = (Family::Qwen2, true, Some(4));
        assert!(llama_unsupported(&q2).unwrap().contains("qwen2"));
        let mut b = base.clone();
        b.qkv_bias = true;
        assert!(llama_unsupported(&b).unwrap().contains("biases"));
        b.family = Family::Qwen2;
        assert_eq!(llama_unsupported(&b), None);
        let mut r = base;
        r.rotary_dims = Some(4);
        assert!(llama_unsupported(&r).unwrap().contains("partial"));
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
