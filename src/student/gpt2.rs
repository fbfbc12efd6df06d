//! GPT-2 (`GPT2LMHeadModel`, Fine-tune-CoT's student), in one file.
//!
//! token + learned position embeddings → `layers` × [LayerNorm → causal multi-head attention →
//! residual → LayerNorm → tanh-GELU MLP (`gelu_new`) → residual] → LayerNorm → head tied to the
//! token embedding. The blocks are the scratch student's ([`super::model::Block`]) with GPT-2's
//! GELU: GPT-2 stores its projections as `Conv1D`, `[in, out]`, which is burn's `Linear`
//! layout, so its weights load untransposed; the fused `c_attn` `[d, 3d]` is the block's `qkv`.
//! [`Gpt2::forward_cached`] appends to a [`KvCache`] for decoding.

use super::batch::{Batch, KvCache};
use super::model::Block;
use super::readers::bad;
use super::tokenizer::Tok;
use crate::error::Result;
use crate::kernels::layer_norm;
use crate::kernels::tied_head;
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;
use std::path::Path;

/// Architecture of a GPT-2 model (from its `config.json`).
#[derive(Config, Debug)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width (`n_embd`).
    pub d_model: usize,
    /// Transformer blocks (`n_layer`).
    pub layers: usize,
    /// Attention heads (`n_head`).
    pub heads: usize,
    /// MLP hidden width (`n_inner`, default 4 × `n_embd`).
    pub d_ff: usize,
    /// Size of the position table (`n_positions`).
    pub positions: usize,
    /// Longest sequence this student is run at (the spec's `student.max_seq_len`).
    pub max_seq_len: usize,
}

impl Gpt2Config {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Gpt2 {
        let blocks = (0..self.layers)
            .map(|_| Block::new(self.d_model, self.heads, self.d_ff, true, device))
            .collect();
        Gpt2 {
            wte: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            wpe: EmbeddingConfig::new(self.positions, self.d_model).init(device),
            blocks,
            ln_f: LayerNormConfig::new(self.d_model).init(device),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// A GPT-2 causal language model.
#[derive(Module, Debug)]
pub struct Gpt2 {
    /// Token embedding `[vocab, d]`, also the output head.
    pub wte: Embedding,
    /// Position embedding `[positions, d]`.
    pub wpe: Embedding,
    /// Blocks (`transformer.h`).
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm,
    max_seq_len: usize,
}

impl Gpt2 {
    /// Final hidden states `[b, t, d]` of a (padded) batch.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        self.run(batch.ids.clone(), &batch.pos, batch.bias.clone(), None)
    }

    /// Like [`Gpt2::hidden`], but attending also to (and extending) `cache`.
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        pos: &Tensor<2, Int>,
        bias: Tensor<4>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        cache.fit(self.blocks.len());
        self.run(ids, pos, bias, Some(cache))
    }

    fn run(
        &self,
        ids: Tensor<2, Int>,
        pos: &Tensor<2, Int>,
        bias: Tensor<4>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let mut x = self.wte.forward(ids) + self.wpe.forward(pos.clone());
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(x, bias.clone(), slot);
        }
        layer_norm(&self.ln_f, x)
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]` (the tied head).
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        tied_head(h, self.wte.weight.val())
    }

    /// Longest sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
}

/// Loads a GPT-2 Hugging Face folder (`config.json`, `*.safetensors`, `tokenizer.json`), run at
/// `max_seq_len` tokens (at most its `n_positions`).
pub fn load_hf(
    dir: &Path,
    max_seq_len: usize,
    device: &Device,
) -> Result<(Gpt2, Gpt2Config, Tok, Option<String>)> {
    use super::readers::{hf_num, hf_tokenizer, read_hf_config, read_safetensors, take_hf};
    // 1. The architecture, and the options this file does not build, refused by name.
    let (cfg_path, cfg) = read_hf_config(dir)?;
    let num = |k: &str| hf_num(&cfg_path, &cfg, k);
    let d = num("n_embd")?;
    let heads = num("n_head")?;
    let positions = num("n_positions")?;
    let act = cfg
        .get("activation_function")
        .and_then(|v| v.as_str())
        .unwrap_or("gelu_new");
    if act != "gelu_new" {
        return Err(bad(
            &cfg_path,
            format!("`activation_function = \"{act}\"` is not supported (only `gelu_new`)"),
        ));
    }
    for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] {
        if cfg.get(flag).and_then(|v| v.as_bool()) == Some(true) {
            return Err(bad(&cfg_path, format!("`{flag} = true` is not supported")));
        }
    }
    if cfg.get("scale_attn_weights").and_then(|v| v.as_bool()) == Some(false) {
        return Err(bad(
            &cfg_path,
            "`scale_attn_weights = false` is not supported",
        ));
    }
    let eps = cfg
        .get("layer_norm_epsilon")
        .and_then(|v| v.as_f64())
        .unwrap_or(1e-5);
    if (eps - 1e-5).abs() > 1e-12 {
        return Err(bad(
            &cfg_path,
            format!("`layer_norm_epsilon = {eps}` is not supported (only 1e-5)"),
        ));
    }
    if cfg.get("tie_word_embeddings").and_then(|v| v.as_bool()) == Some(false) {
        return Err(bad(
            &cfg_path,
            "`tie_word_embeddings = false` is not supported (GPT-2's head is its token embedding)",
        ));
    }
    if heads == 0 || !d.is_multiple_of(heads) {
        return Err(bad(
            &cfg_path,
            format!("{heads} heads do not divide width {d}"),
        ));
    }
    if max_seq_len > positions {
        return Err(bad(
            &cfg_path,
            format!(
                "student.max_seq_len = {max_seq_len} is longer than GPT-2's position table (`n_positions` = {positions})"
            ),
        ));
    }
    let d_ff = cfg
        .get("n_inner")
        .and_then(|v| v.as_u64())
        .map_or(4 * d, |x| x as usize);
    let config = Gpt2Config::new(
        num("vocab_size")?,
        d,
        num("n_layer")?,
        heads,
        d_ff,
        positions,
        max_seq_len,
    );
    // 2. The weights: `transformer.`-prefixed (GPT2LMHeadModel) or bare (GPT2Model).
    let mut by_name = read_safetensors(dir)?;
    let prefix = if by_name.contains_key("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let full = format!("{prefix}{name}");
        let (w, _) = take_hf(dir, &mut by_name, &full)?;
        if w.shape != shape {
            return Err(bad(
                dir,
                format!(
                    "weight `{full}` has shape {:?}, expected {shape:?}",
                    w.shape
                ),
            ));
        }
        Ok(w.data)
    };
    let t1 = |v: Vec<f32>| {
        let n = v.len();
        Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), device))
    };
    let t2 = |v: Vec<f32>, s: [usize; 2]| {
        Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, s), device))
    };
    let mut model = config.init(device);
    let c = &config;
    model.wte.weight = t2(take("wte.weight", &[c.vocab_size, d])?, [c.vocab_size, d]);
    model.wpe.weight = t2(take("wpe.weight", &[positions, d])?, [positions, d]);
    let mut norm = |n: &mut LayerNorm, name: &str| -> Result<()> {
        n.gamma = t1(take(&format!("{name}.weight"), &[d])?);
        n.beta = Some(t1(take(&format!("{name}.bias"), &[d])?));
        Ok(())
    };
    norm(&mut model.ln_f, "ln_f")?;
    for (l, b) in model.blocks.iter_mut().enumerate() {
        norm(&mut b.ln1, &format!("h.{l}.ln_1"))?;
        norm(&mut b.ln2, &format!("h.{l}.ln_2"))?;
    }
    // Conv1D `[in, out]` = burn's Linear layout.
    for (l, b) in model.blocks.iter_mut().enumerate() {
        for (lin, name, i, o) in [
            (&mut b.qkv, "attn.c_attn", d, 3 * d),
            (&mut b.proj, "attn.c_proj", d, d),
            (&mut b.up, "mlp.c_fc", d, d_ff),
            (&mut b.down, "mlp.c_proj", d_ff, d),
        ] {
            lin.weight = t2(take(&format!("h.{l}.{name}.weight"), &[i, o])?, [i, o]);
            lin.bias = Some(t1(take(&format!("h.{l}.{name}.bias"), &[o])?));
        }
    }
    // 3. The tokenizer.
    let (tok, chat_template) = hf_tokenizer(dir, &cfg_path, &cfg)?;
    Ok((model, config, tok, chat_template))
}
