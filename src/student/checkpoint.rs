//! Pretrained Llama-family checkpoints: a GGUF file (llama.cpp) or a Hugging Face folder
//! (`config.json`, `*.safetensors`, `tokenizer.json`) → architecture, f32 weights in Hugging
//! Face layout, and the tokenizer. The Hugging Face files are read by [`super::readers`].
//!
//! The containers and the dequantisation (Q4_1, Q8_0, F16, F32 and every other ggml type) are
//! candle's (`candle_core::quantized::gguf_file`, `candle_core::safetensors`). What is ours:
//! 1. the name map (GGUF `blk.N.attn_q.weight` ↔ HF `model.layers.N.self_attn.q_proj.weight`);
//! 2. undoing llama.cpp's q/k row permutation: `convert_hf_to_gguf.py` reorders each head's
//!    rows from "rotate half" (HF) to interleaved pairs; [`unpermute`] puts them back (and
//!    [`permute`], for the GGUF writer `export::gguf`, applies it);
//! 3. the byte-level BPE tokenizer rebuilt from the GGUF vocabulary with the `tokenizers` crate
//!    (pre-tokenizer per `tokenizer.ggml.pre`; special tokens are the control tokens).

use super::family::Family;
use super::llama::{Llama, LlamaConfig};
use super::readers::{
    bad, hf_f64, hf_family, hf_num, hf_tokenizer, read_hf_config, read_safetensors, take_hf,
};
use super::rope::RopeScaling;
// The readers' weight type and transpose, kept at their old paths here.
pub use super::readers::{Weight, transpose};
use super::tokenizer::Tok;
use crate::error::Result;
use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::*;
use candle_core::quantized::gguf_file;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A loaded checkpoint: architecture, weights under canonical names, tokenizer.
pub struct Checkpoint {
    /// Where it came from.
    pub path: PathBuf,
    /// Architecture (`max_seq_len` is the checkpoint's context length until the caller sets it).
    pub config: LlamaConfig,
    /// Weights by canonical name: `embed`, `norm`, `lm_head`, `L{i}.{attn_norm, q_proj, k_proj,
    /// v_proj, o_proj, mlp_norm, gate_proj, up_proj, down_proj}`.
    pub weights: HashMap<String, Weight>,
    /// The tokenizer, with its padding and end-of-sequence ids.
    pub tok: Tok,
    /// The chat template the checkpoint ships, if any.
    pub chat_template: Option<String>,
    /// Storage type per canonical name (`Q4_1`, `F32`, `BF16` …), for reports.
    pub dtypes: HashMap<String, String>,
}

/// The canonical name of a layer tensor for its GGUF and HF suffixes.
pub(crate) const LAYER_NAMES: [(&str, &str, &str); 9] = [
    ("attn_norm", "attn_norm", "input_layernorm"),
    ("q_proj", "attn_q", "self_attn.q_proj"),
    ("k_proj", "attn_k", "self_attn.k_proj"),
    ("v_proj", "attn_v", "self_attn.v_proj"),
    ("o_proj", "attn_output", "self_attn.o_proj"),
    ("mlp_norm", "ffn_norm", "post_attention_layernorm"),
    ("gate_proj", "ffn_gate", "mlp.gate_proj"),
    ("up_proj", "ffn_up", "mlp.up_proj"),
    ("down_proj", "ffn_down", "mlp.down_proj"),
];

/// The canonical, GGUF and HF names of every tensor of a layer of this architecture:
/// [`LAYER_NAMES`], where Gemma's sandwich norms rename the MLP's norm
/// (`pre_feedforward_layernorm`) and add the two after attention and MLP, then the tensors a
/// family adds ([`extra_names`]).
pub(crate) fn layer_names(c: &LlamaConfig) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v: Vec<_> = LAYER_NAMES
        .iter()
        .map(|&(canon, g, h)| match canon {
            "mlp_norm" if c.sandwich_norms => (canon, g, "pre_feedforward_layernorm"),
            _ => (canon, g, h),
        })
        .collect();
    if c.sandwich_norms {
        v.extend([
            (
                "post_attn_norm",
                "post_attention_norm",
                "post_attention_layernorm",
            ),
            (
                "post_mlp_norm",
                "post_ffw_norm",
                "post_feedforward_layernorm",
            ),
        ]);
    }
    v.extend(extra_names(c));
    v
}

/// The canonical, GGUF and HF names of the tensors a family adds to Llama's layer: Qwen2's
/// q/k/v biases (`L{i}.q_bias` ↔ `self_attn.q_proj.bias`), Qwen3's and Gemma 3's per-head
/// norms.
pub(crate) fn extra_names(c: &LlamaConfig) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = Vec::new();
    if c.qkv_bias {
        v.extend([
            ("q_bias", "attn_q.bias", "self_attn.q_proj.bias"),
            ("k_bias", "attn_k.bias", "self_attn.k_proj.bias"),
            ("v_bias", "attn_v.bias", "self_attn.v_proj.bias"),
        ]);
    }
    if c.qk_norm {
        v.extend([
            ("q_norm", "attn_q_norm", "self_attn.q_norm"),
            ("k_norm", "attn_k_norm", "self_attn.k_norm"),
        ]);
    }
    v
}

/// Inverse of llama.cpp's `permute(w, n_head)`: within each head, row `2i + j` of the GGUF
/// tensor is row `j·hd/2 + i` of the Hugging Face one (`j ∈ {0, 1}`, `i < hd/2`).
pub fn unpermute(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let hd = rows / n_head;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let src = (h * hd + 2 * i + j) * cols;
                let dst = (h * hd + j * (hd / 2) + i) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    out
}

/// llama.cpp's `permute(w, n_head)` (`convert_hf_to_gguf.py`), the inverse of [`unpermute`]:
/// within each head, row `j·hd/2 + i` of the Hugging Face tensor becomes row `2i + j` of the
/// GGUF one (`j ∈ {0, 1}`, `i < hd/2`).
pub fn permute(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let hd = rows / n_head;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let src = (h * hd + j * (hd / 2) + i) * cols;
                let dst = (h * hd + 2 * i + j) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    out
}

impl Checkpoint {
    /// Loads a `.gguf` file or a Hugging Face folder.
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            Self::load_hf(path)
        } else if path.exists() {
            Self::load_gguf(path)
        } else {
            Err(bad(
                path,
                "no such file or folder (a .gguf file or a Hugging Face folder with config.json, *.safetensors, tokenizer.json)",
            ))
        }
    }

    /// The context length a GGUF file's metadata gives (`<arch>.context_length`, else 2048),
    /// read without its tensors.
    pub fn gguf_context(path: &Path) -> Result<usize> {
        let mut file = std::fs::File::open(path).map_err(|e| bad(path, e))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| bad(path, format!("not a GGUF file: {e}")))?;
        let md = &content.metadata;
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".into());
        Ok(md
            .get(&format!("{arch}.context_length"))
            .and_then(|v| {
                v.to_u32()
                    .ok()
                    .map(|x| x as usize)
                    .or(v.to_u64().ok().map(|x| x as usize))
            })
            .unwrap_or(2048))
    }

    /// Reads a GGUF file (v2/v3) with architecture `llama`.
    pub fn load_gguf(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| bad(path, e))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| bad(path, format!("not a GGUF file: {e}")))?;
        let md = &content.metadata;
        let get = |k: &str| {
            md.get(k)
                .ok_or_else(|| bad(path, format!("GGUF metadata has no `{k}`")))
        };
        let num = |k: &str| -> Result<usize> {
            let v = get(k)?;
            v.to_u32()
                .map(|x| x as usize)
                .or_else(|_| v.to_u64().map(|x| x as usize))
                .map_err(|e| bad(path, format!("GGUF `{k}`: {e}")))
        };
        let float = |k: &str, default: f64| -> Result<f64> {
            match md.get(k) {
                None => Ok(default),
                Some(v) => v
                    .to_f32()
                    .map(f64::from)
                    .or_else(|_| v.to_f64())
                    .map_err(|e| bad(path, format!("GGUF `{k}`: {e}"))),
            }
        };
        let arch = get("general.architecture")?
            .to_string()
            .map_err(|e| bad(path, e))?
            .clone();
        match Family::from_model_type(&arch) {
            Some(Family::Llama) => {}
            Some(f) => {
                return Err(bad(
                    path,
                    format!(
                        "a `{f}` GGUF file is not supported (GGUF students are Llama only); use its Hugging Face folder"
                    ),
                ));
            }
            None => {
                return Err(bad(
                    path,
                    format!(
                        "model family `{arch}` (`general.architecture`) is not supported; morsd loads: {}",
                        Family::supported()
                    ),
                ));
            }
        }
        // 1. Tokenizer first: the vocabulary gives the vocab size when the metadata has none.
        let (tok, chat_template) = gguf_tokenizer(path, md)?;
        let heads = num("llama.attention.head_count")?;
        let kv_heads = num("llama.attention.head_count_kv").unwrap_or(heads);
        let vocab_size = num("llama.vocab_size").unwrap_or(tok.vocab_size());
        let config = LlamaConfig::new(
            vocab_size,
            num("llama.embedding_length")?,
            num("llama.block_count")?,
            heads,
            kv_heads,
            num("llama.feed_forward_length")?,
            num("llama.context_length").unwrap_or(2048),
        )
        .with_rope_theta(float("llama.rope.freq_base", 10000.0)?)
        .with_norm_eps(float("llama.attention.layer_norm_rms_epsilon", 1e-5)?)
        .with_tie_embeddings(!content.tensor_infos.contains_key("output.weight"));
        // 2. Tensors, dequantised to f32, q/k rows back in HF order.
        let mut names: Vec<(String, String)> = vec![
            ("embed".into(), "token_embd.weight".into()),
            ("norm".into(), "output_norm.weight".into()),
        ];
        if !config.tie_embeddings {
            names.push(("lm_head".into(), "output.weight".into()));
        }
        for l in 0..config.layers {
            for (canon, g, _) in LAYER_NAMES {
                names.push((format!("L{l}.{canon}"), format!("blk.{l}.{g}.weight")));
            }
        }
        let mut weights = HashMap::new();
        let mut dtypes = HashMap::new();
        for (canon, name) in names {
            let q = content
                .tensor(&mut file, &name, &candle_core::Device::Cpu)
                .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
            dtypes.insert(canon.clone(), format!("{:?}", q.dtype()));
            let t = q
                .dequantize(&candle_core::Device::Cpu)
                .and_then(|t| t.to_dtype(candle_core::DType::F32))
                .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
            let shape = t.dims().to_vec();
            let mut data = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| bad(path, format!("tensor `{name}`: {e}")))?;
            if canon.ends_with(".q_proj") || canon.ends_with(".k_proj") {
                let n = if canon.ends_with(".q_proj") {
                    heads
                } else {
                    kv_heads
                };
                data = unpermute(&data, shape[0], shape[1], n);
            }
            weights.insert(canon, Weight { shape, data });
        }
        Ok(Checkpoint {
            path: path.to_path_buf(),
            config,
            weights,
            tok,
            chat_template,
            dtypes,
        })
    }

    /// Reads a Hugging Face folder of a Llama-decoder family (Llama, Qwen2, Qwen3, Mistral,
    /// Gemma 2, Gemma 3): `config.json`, every `*.safetensors`, `tokenizer.json`.
    pub fn load_hf(dir: &Path) -> Result<Self> {
        let (cfg_path, cfg) = read_hf_config(dir)?;
        let num = |k: &str| hf_num(&cfg_path, &cfg, k);
        let family = hf_family(&cfg_path, &cfg)?;
        if !family.is_llama_style() {
            return Err(bad(
                &cfg_path,
                format!("model family `{family}` is not a Llama-style decoder"),
            ));
        }
        // Gemma's MLP is GeGLU (its family file checks the activation); the others' SwiGLU.
        if !matches!(family, Family::Gemma2 | Family::Gemma3)
            && let Some(act) = cfg.get("hidden_act").and_then(|v| v.as_str())
            && act != "silu"
        {
            return Err(bad(
                &cfg_path,
                format!("`hidden_act = \"{act}\"` is not supported for `{family}` (only `silu`)"),
            ));
        }
        // Biases the Llama decoder does not build are an error, not silently dropped.
        for flag in ["attention_bias", "mlp_bias"] {
            if cfg.get(flag).and_then(|v| v.as_bool()) == Some(true) {
                return Err(bad(
                    &cfg_path,
                    format!("`{flag} = true` is not supported for `{family}`"),
                ));
            }
        }
        let heads = num("num_attention_heads")?;
        let tie = cfg
            .get("tie_word_embeddings")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let base = LlamaConfig::new(
            num("vocab_size")?,
            num("hidden_size")?,
            num("num_hidden_layers")?,
            heads,
            num("num_key_value_heads").unwrap_or(heads),
            num("intermediate_size")?,
            num("max_position_embeddings").unwrap_or(2048),
        )
        .with_rope_theta(
            cfg.get("rope_theta")
                .and_then(|v| v.as_f64())
                .unwrap_or(10000.0),
        )
        .with_norm_eps(
            cfg.get("rms_norm_eps")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-5),
        )
        .with_tie_embeddings(tie);
        // Every Llama-style family takes `head_dim`, `rope_scaling` and
        // `partial_rotary_factor` when the config sets them.
        let base = base
            .with_head_dim_override(
                cfg.get("head_dim")
                    .and_then(|v| v.as_u64())
                    .map(|x| x as usize),
            )
            .with_rope_scaling(RopeScaling::from_hf(&cfg).map_err(|e| bad(&cfg_path, e))?);
        let rotary = hf_f64(&cfg, "partial_rotary_factor")
            .filter(|f| *f != 1.0)
            .map(|f| (base.head_dim() as f64 * f) as usize);
        let base = base.with_rotary_dims(rotary);
        base.rope_scaling
            .check(rotary.unwrap_or(base.head_dim()))
            .map_err(|e| bad(&cfg_path, e))?;
        let config = match family {
            Family::Qwen2 => super::qwen2::config(base, &cfg_path, &cfg)?,
            Family::Qwen3 => super::qwen3::config(base, &cfg_path, &cfg)?,
            Family::Mistral => super::mistral::config(base, &cfg_path, &cfg)?,
            Family::Gemma2 => super::gemma2::config(base, &cfg_path, &cfg)?,
            Family::Gemma3 => super::gemma3::config(base, &cfg_path, &cfg)?,
            _ => base,
        };
        if config.sliding_layers.iter().any(|&s| s) && config.sliding_window.is_none() {
            return Err(bad(
                &cfg_path,
                "`layer_types` names sliding layers but `sliding_window` is not set",
            ));
        }
        // 1. Every safetensors shard, by HF name.
        let mut by_name = read_safetensors(dir)?;
        // 2. Canonical names, f32.
        let mut names: Vec<(String, String)> = vec![
            ("embed".into(), "model.embed_tokens.weight".into()),
            ("norm".into(), "model.norm.weight".into()),
        ];
        if !config.tie_embeddings {
            names.push(("lm_head".into(), "lm_head.weight".into()));
        }
        for l in 0..config.layers {
            for (canon, _, h) in layer_names(&config) {
                let suffix = if canon.ends_with("_bias") {
                    "bias"
                } else {
                    "weight"
                };
                let h = h.trim_end_matches(".bias");
                names.push((
                    format!("L{l}.{canon}"),
                    format!("model.layers.{l}.{h}.{suffix}"),
                ));
            }
        }
        let mut weights = HashMap::new();
        let mut dtypes = HashMap::new();
        for (canon, name) in names {
            let (mut w, dtype) = take_hf(dir, &mut by_name, &name)?;
            // Gemma's norms scale by `1 + w`: the model holds the scale itself.
            if config.norm_plus_one && is_norm(&canon) {
                w.data.iter_mut().for_each(|x| *x += 1.0);
            }
            dtypes.insert(canon.clone(), dtype);
            weights.insert(canon, w);
        }
        // 3. Tokenizer and its special ids.
        let (tok, chat_template) = hf_tokenizer(dir, &cfg_path, &cfg)?;
        Ok(Checkpoint {
            path: dir.to_path_buf(),
            config,
            weights,
            tok,
            chat_template,
            dtypes,
        })
    }

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Weight> {
        let w = self
            .weights
            .remove(name)
            .ok_or_else(|| bad(&self.path, format!("missing weight `{name}`")))?;
        if w.shape != shape {
            return Err(bad(
                &self.path,
                format!(
                    "weight `{name}` has shape {:?}, expected {shape:?}",
                    w.shape
                ),
            ));
        }
        Ok(w)
    }

    /// Builds the burn model (run at `max_seq_len` tokens) with these weights on `device`.
    pub fn into_llama(
        mut self,
        max_seq_len: usize,
        device: &Device,
    ) -> Result<(Llama, LlamaConfig, Tok)> {
        self.config.max_seq_len = max_seq_len;
        let c = self.config.clone();
        let hd = c.head_dim();
        if c.heads == 0
            || (c.head_dim_override.is_none() && !c.d_model.is_multiple_of(c.heads))
            || c.kv_heads == 0
            || !c.heads.is_multiple_of(c.kv_heads)
        {
            return Err(bad(
                &self.path,
                format!(
                    "inconsistent heads: {} query / {} key-value heads for width {}",
                    c.heads, c.kv_heads, c.d_model
                ),
            ));
        }
        let mut model = c.init(device);
        // HF [out, in] → burn Linear [in, out].
        let linear = |w: Weight| -> Linear {
            let (o, i) = (w.shape[0], w.shape[1]);
            let t = transpose(&w.data, o, i);
            Linear {
                weight: Param::from_tensor(Tensor::from_data(TensorData::new(t, [i, o]), device)),
                bias: None,
            }
        };
        let norm = |w: Weight, eps: f64| RmsNorm {
            gamma: Param::from_tensor(Tensor::from_data(
                TensorData::new(w.data, [c.d_model]),
                device,
            )),
            epsilon: eps,
        };
        let embed = self.take("embed", &[c.vocab_size, c.d_model])?;
        model.embed = Embedding {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(embed.data, [c.vocab_size, c.d_model]),
                device,
            )),
        };
        model.norm = norm(self.take("norm", &[c.d_model])?, c.norm_eps);
        if !c.tie_embeddings {
            model.lm_head = Some(linear(self.take("lm_head", &[c.vocab_size, c.d_model])?));
        }
        let vector = |w: Weight| -> Param<Tensor<1>> {
            let n = w.data.len();
            Param::from_tensor(Tensor::from_data(TensorData::new(w.data, [n]), device))
        };
        for (l, b) in model.blocks.iter_mut().enumerate() {
            let n = |s: &str| format!("L{l}.{s}");
            b.attn_norm = norm(self.take(&n("attn_norm"), &[c.d_model])?, c.norm_eps);
            if c.sandwich_norms {
                b.post_attn_norm = Some(norm(
                    self.take(&n("post_attn_norm"), &[c.d_model])?,
                    c.norm_eps,
                ));
                b.post_mlp_norm = Some(norm(
                    self.take(&n("post_mlp_norm"), &[c.d_model])?,
                    c.norm_eps,
                ));
            }
            b.q_proj = linear(self.take(&n("q_proj"), &[c.heads * hd, c.d_model])?);
            b.k_proj = linear(self.take(&n("k_proj"), &[c.kv_heads * hd, c.d_model])?);
            b.v_proj = linear(self.take(&n("v_proj"), &[c.kv_heads * hd, c.d_model])?);
            b.o_proj = linear(self.take(&n("o_proj"), &[c.d_model, c.heads * hd])?);
            b.mlp_norm = norm(self.take(&n("mlp_norm"), &[c.d_model])?, c.norm_eps);
            b.gate_proj = linear(self.take(&n("gate_proj"), &[c.d_ff, c.d_model])?);
            b.up_proj = linear(self.take(&n("up_proj"), &[c.d_ff, c.d_model])?);
            b.down_proj = linear(self.take(&n("down_proj"), &[c.d_model, c.d_ff])?);
            if c.qkv_bias {
                b.q_proj.bias = Some(vector(self.take(&n("q_bias"), &[c.heads * hd])?));
                b.k_proj.bias = Some(vector(self.take(&n("k_bias"), &[c.kv_heads * hd])?));
                b.v_proj.bias = Some(vector(self.take(&n("v_bias"), &[c.kv_heads * hd])?));
            }
            if c.qk_norm {
                let head_norm = |w: Weight| RmsNorm {
                    gamma: vector(w),
                    epsilon: c.norm_eps,
                };
                b.q_norm = Some(head_norm(self.take(&n("q_norm"), &[hd])?));
                b.k_norm = Some(head_norm(self.take(&n("k_norm"), &[hd])?));
            }
        }
        Ok((model, c, self.tok))
    }
}

/// Whether a canonical weight name is an RMSNorm's scale (`norm`, `L3.attn_norm`, `L0.q_norm` …).
pub(crate) fn is_norm(canon: &str) -> bool {
    canon
        .rsplit('.')
        .next()
        .is_some_and(|n| n.ends_with("norm"))
}

/// The tokenizer of a GGUF file, as llama.cpp reads it: byte-level BPE from
/// `tokenizer.ggml.{tokens, merges}` (`gpt2`), or SentencePiece's BPE with byte fallback from
/// `tokenizer.ggml.{tokens, scores}` (`llama`: Llama 2, Mistral, Gemma, Phi-3-mini).
fn gguf_tokenizer(
    path: &Path,
    md: &HashMap<String, gguf_file::Value>,
) -> Result<(Tok, Option<String>)> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, Tokenizer};
    let strings = |k: &str| -> Result<Vec<String>> {
        let v = md
            .get(k)
            .ok_or_else(|| bad(path, format!("GGUF metadata has no `{k}`")))?;
        v.to_vec()
            .map_err(|e| bad(path, format!("`{k}`: {e}")))?
            .iter()
            .map(|x| {
                x.to_string()
                    .cloned()
                    .map_err(|e| bad(path, format!("`{k}`: {e}")))
            })
            .collect()
    };
    let model = md
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    let tokens = strings("tokenizer.ggml.tokens")?;
    let types: Vec<i32> = md
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|x| x.to_i32().unwrap_or(1)).collect())
        .unwrap_or_default();
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let mut tk = match model.as_str() {
        "gpt2" => {
            let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
                .into_iter()
                .map(|m| match m.split_once(' ') {
                    Some((a, b)) => Ok((a.to_string(), b.to_string())),
                    None => Err(bad(path, format!("malformed merge `{m}`"))),
                })
                .collect::<Result<_>>()?;
            let bpe = BPE::builder()
                .vocab_and_merges(vocab, merges)
                .build()
                .map_err(|e| bad(path, format!("tokenizer: {e}")))?;
            let mut tk = Tokenizer::new(bpe);
            // llama.cpp's `smollm` pre-tokenizer splits digits one by one before the GPT-2
            // regex.
            let pre = md
                .get("tokenizer.ggml.pre")
                .and_then(|v| v.to_string().ok())
                .cloned()
                .unwrap_or_default();
            let byte_level = ByteLevel::new(false, true, true);
            if pre == "smollm" {
                tk.with_pre_tokenizer(Some(Sequence::new(vec![
                    Digits::new(true).into(),
                    byte_level.into(),
                ])));
            } else {
                tk.with_pre_tokenizer(Some(byte_level));
            }
            tk.with_decoder(Some(ByteLevel::default()));
            tk
        }
        "llama" => spm_tokenizer(path, md, &tokens, vocab)?,
        _ => {
            return Err(bad(
                path,
                format!(
                    "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`, and SentencePiece's BPE, `llama`); use a Hugging Face folder with tokenizer.json instead"
                ),
            ));
        }
    };
    // llama.cpp's token types: control (3) and user-defined (4) tokens are both matched whole,
    // never split by the BPE. Control tokens are skipped when decoding; user-defined ones are
    // text the model writes (llama.cpp's `token_to_piece` prints them), so they stay.
    let of_type = |want: i32, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == want)
            .map(|(s, _)| AddedToken::from(s.clone(), special))
            .collect()
    };
    tk.add_special_tokens(of_type(3, true))
        .map_err(|e| bad(path, format!("tokenizer special tokens: {e}")))?;
    tk.add_tokens(of_type(4, false))
        .map_err(|e| bad(path, format!("tokenizer user-defined tokens: {e}")))?;
    let id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
    let eos = id("tokenizer.ggml.eos_token_id")
        .ok_or_else(|| bad(path, "GGUF metadata has no `tokenizer.ggml.eos_token_id`"))?;
    let pad = id("tokenizer.ggml.padding_token_id").unwrap_or(eos);
    let chat = md
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    Ok((Tok::new(tk, pad, eos), chat))
}

/// SentencePiece's BPE with byte fallback from a `llama` GGUF tokenizer (`tokens` by id, as
/// `vocab`). llama.cpp merges, among adjacent pieces, the pair whose concatenation is the piece
/// of highest score, falling back to the `<0xNN>` pieces for characters without one. As BPE
/// merges that is:
/// 1. every split of every piece into two pieces, ranked by the piece's score (highest first;
///    ties by id), as transformers builds merges from a SentencePiece model;
/// 2. spaces written as `▁`, one before the text when `tokenizer.ggml.add_space_prefix` says
///    so (llama.cpp's default for `llama`: yes); decoding undoes both.
fn spm_tokenizer(
    path: &Path,
    md: &HashMap<String, gguf_file::Value>,
    tokens: &[String],
    vocab: tokenizers::models::bpe::Vocab,
) -> Result<tokenizers::Tokenizer> {
    use crate::student::tokenizer::two_piece_splits;
    use tokenizers::decoders::byte_fallback::ByteFallback;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::decoders::sequence::Sequence as Decoders;
    use tokenizers::decoders::strip::Strip;
    use tokenizers::models::bpe::BPE;
    use tokenizers::normalizers::{Prepend, Replace, Sequence as Normalizers};
    use tokenizers::{DecoderWrapper, NormalizerWrapper, Tokenizer};
    // 1. The merges the scores imply.
    let scores: Vec<f32> = md
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.to_vec().ok())
        .map(|v| v.iter().map(|x| x.to_f32().unwrap_or(0.0)).collect())
        .ok_or_else(|| bad(path, "GGUF metadata has no `tokenizer.ggml.scores` array"))?;
    if scores.len() != tokens.len() {
        return Err(bad(
            path,
            format!(
                "`tokenizer.ggml.scores` has {} values for {} tokens",
                scores.len(),
                tokens.len()
            ),
        ));
    }
    let mut splits: Vec<(usize, u32, u32)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        for (l, r) in two_piece_splits(piece, |t| vocab.contains_key(t)) {
            splits.push((id, vocab[l], vocab[r]));
        }
    }
    splits.sort_by(|x, y| scores[y.0].total_cmp(&scores[x.0]).then(x.cmp(y)));
    let merges = splits
        .iter()
        .map(|&(_, a, b)| (tokens[a as usize].clone(), tokens[b as usize].clone()))
        .collect();
    let mut bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = md
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(|v| v.to_u32().ok())
        .and_then(|u| tokens.get(u as usize))
    {
        bpe = bpe.unk_token(unk.clone());
    }
    let mut tk = Tokenizer::new(
        bpe.build()
            .map_err(|e| bad(path, format!("tokenizer: {e}")))?,
    );
    // 2. Spaces.
    let prefix = md
        .get("tokenizer.ggml.add_space_prefix")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(true);
    let space = |from: &str, to: &str| {
        Replace::new(from, to).map_err(|e| bad(path, format!("tokenizer: {e}")))
    };
    let mut normalizers: Vec<NormalizerWrapper> = vec![space(" ", "▁")?.into()];
    let mut decoders: Vec<DecoderWrapper> = vec![
        space("▁", " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if prefix {
        normalizers.insert(0, Prepend::new("▁".into()).into());
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tk.with_normalizer(Some(Normalizers::new(normalizers)))
        .map_err(|e| bad(path, format!("tokenizer: {e}")))?;
    tk.with_decoder(Some(Decoders::new(decoders)));
    Ok(tk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_user_defined_tokens_are_matched_whole_like_control_tokens() {
        // Bytes as GPT-2's byte-level alphabet writes them ("Ġ" is a space); no merges, so any
        // text not matched whole falls apart into single characters.
        use gguf_file::Value;
        let s = |x: &str| Value::String(x.into());
        let mut tokens: Vec<String> = "abcdefghijklmnopqrstuvwxyz<>|_Ġ"
            .chars()
            .map(String::from)
            .collect();
        let plain = tokens.len();
        tokens.extend(["<|eot|>".into(), "<tool_call>".into()]);
        let (eot, tool) = (plain as u32, plain as u32 + 1);
        let mut types = vec![Value::I32(1); plain];
        types.extend([Value::I32(3), Value::I32(4)]);
        let md: HashMap<String, Value> = [
            ("tokenizer.ggml.model", s("gpt2")),
            (
                "tokenizer.ggml.tokens",
                Value::Array(tokens.iter().map(|t| s(t)).collect()),
            ),
            ("tokenizer.ggml.merges", Value::Array(vec![])),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.eos_token_id", Value::U32(eot)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let (tok, _) = gguf_tokenizer(Path::new("t.gguf"), &md).unwrap();
        let ids = tok.encode("ab<tool_call>c<|eot|>");
        assert!(ids.contains(&tool), "user-defined token split: {ids:?}");
        assert!(ids.contains(&eot), "control token split: {ids:?}");
        // Decoding keeps the user-defined token as text and drops the control token.
        let text = tok.decode(&ids);
        assert!(
            text.contains("<tool_call>") && !text.contains("<|eot|>"),
            "{text}"
        );
    }

    #[test]
    fn permute_inverts_unpermute() {
        // 3 heads of width 8, 5 columns: every value distinct, so a misplaced row shows.
        let (n_head, hd, cols) = (3, 8, 5);
        let rows = n_head * hd;
        let data: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let p = permute(&data, rows, cols, n_head);
        assert_ne!(p, data);
        assert_eq!(unpermute(&p, rows, cols, n_head), data);
        assert_eq!(
            permute(&unpermute(&data, rows, cols, n_head), rows, cols, n_head),
            data
        );
        // llama.cpp's layout: GGUF row 2i + j of a head is HF row j·hd/2 + i.
        let row = |v: &[f32], r: usize| v[r * cols..(r + 1) * cols].to_vec();
        for h in 0..n_head {
            for i in 0..hd / 2 {
                for j in 0..2 {
                    assert_eq!(
                        row(&p, h * hd + 2 * i + j),
                        row(&data, h * hd + j * (hd / 2) + i)
                    );
                }
            }
        }
    }
}
