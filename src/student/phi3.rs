//! Phi-3 and Phi-4-mini (`Phi3ForCausalLM`, `model_type` `phi3`) in one file.
//!
//! token embedding → `layers` × [RMSNorm → attention from one fused `qkv_proj` (queries, keys,
//! values side by side), rotary embeddings over the first `partial_rotary_factor · head_dim`
//! dimensions of each head (Phi-4-mini: 0.75), grouped-query, through a sliding window where
//! the config sets one (Phi-3-mini: 2047) → residual → RMSNorm → SwiGLU from one fused
//! `gate_up_proj` (gate first, then up) → residual] → RMSNorm → head (tied in Phi-4-mini).
//!
//! The fused projections are kept as they are, not split, so LoRA adapts them under PEFT's own
//! names (`qkv_proj`, `o_proj`, `gate_up_proj`, `down_proj`): a PEFT adapter on `qkv_proj`
//! shares one `A` across queries, keys and values, which three separate adapters could not
//! represent. The rotations (`longrope` in Phi-3-128k, Phi-3.5 and Phi-4-mini) are
//! [`super::rope`]'s, the window [`super::batch::window_bias`].

use super::batch::{Batch, KvCache, extend_cache, window_bias};
use super::readers::{
    bad, hf_f64, hf_num, hf_tokenizer, read_hf_config, read_safetensors, take_hf, transpose,
};
use super::rope::{self, Rope, RopeScaling};
use super::tokenizer::Tok;
use crate::error::Result;
use crate::kernels::{attention, linear, rms_norm, swiglu, tied_head};
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use std::path::Path;

/// Architecture of a Phi-3 model (read from its `config.json`).
#[derive(Config, Debug)]
pub struct Phi3Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width (`hidden_size`).
    pub d_model: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// SwiGLU hidden width (`intermediate_size`; `gate_up_proj` is twice it).
    pub d_ff: usize,
    /// Longest sequence this student is run at.
    pub max_seq_len: usize,
    /// RoPE base frequency.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Frequency scaling (`longrope` in the long-context models).
    #[config(default = "RopeScaling::Default")]
    pub rope_scaling: RopeScaling,
    /// Rotated dimensions of each head; all if unset.
    #[config(default = "None")]
    pub rotary_dims: Option<usize>,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Whether the head reuses the token embedding.
    #[config(default = false)]
    pub tie_embeddings: bool,
    /// Attention window of every layer, if any.
    #[config(default = "None")]
    pub sliding_window: Option<usize>,
}

impl Phi3Config {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.heads.max(1)
    }

    /// Builds the model with fresh weights on `device` (a real one is loaded by [`load_hf`]).
    pub fn init(&self, device: &Device) -> Phi3 {
        let hd = self.head_dim();
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        let norm = || {
            RmsNormConfig::new(self.d_model)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let blocks = (0..self.layers)
            .map(|_| Phi3Block {
                attn_norm: norm(),
                qkv_proj: lin(self.d_model, (self.heads + 2 * self.kv_heads) * hd),
                o_proj: lin(self.heads * hd, self.d_model),
                mlp_norm: norm(),
                gate_up_proj: lin(self.d_model, 2 * self.d_ff),
                down_proj: lin(self.d_ff, self.d_model),
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: hd,
                window: self.sliding_window,
            })
            .collect();
        Phi3 {
            embed: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            blocks,
            norm: norm(),
            lm_head: (!self.tie_embeddings).then(|| lin(self.d_model, self.vocab_size)),
            rope: Rope {
                theta: self.rope_theta,
                scaling: self.rope_scaling.clone(),
            },
            rotary_dims: self.rotary_dims.unwrap_or(hd),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// One decoder block; fields named as PEFT names the modules.
#[derive(Module, Debug)]
pub struct Phi3Block {
    /// RMSNorm before attention (`input_layernorm`).
    pub attn_norm: RmsNorm,
    /// Fused query, key and value projection `[d, (heads + 2·kv_heads)·hd]`.
    pub qkv_proj: Linear,
    /// Output projection.
    pub o_proj: Linear,
    /// RMSNorm before the MLP (`post_attention_layernorm`).
    pub mlp_norm: RmsNorm,
    /// Fused gate and up projection `[d, 2·d_ff]`.
    pub gate_up_proj: Linear,
    /// Down projection.
    pub down_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    window: Option<usize>,
}

impl Phi3Block {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        bias: Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (hd, nq, nkv) = (self.head_dim, self.heads, self.kv_heads);
        // 1. Queries, keys and values from the fused projection, per head; queries and keys
        //    rotated (partially, where the config says so).
        let h = rms_norm(&self.attn_norm, x.clone());
        let qkv = linear(&self.qkv_proj, h);
        let part = |from: usize, n: usize| {
            qkv.clone()
                .narrow(2, from * hd, n * hd)
                .reshape([b, t, n, hd])
                .swap_dims(1, 2)
        };
        let q = rope::apply(part(0, nq), &rope.0, &rope.1);
        let mut k = rope::apply(part(nq, nkv), &rope.0, &rope.1);
        let mut v = part(nq + nkv, nkv);
        // 2. Decoding: the cached keys and values first.
        if let Some(slot) = cache {
            (k, v) = extend_cache(slot, k, v);
        }
        // 3. Grouped-query attention (query groups stacked as in the Llama decoder), through
        //    the window where there is one.
        let bias = match self.window {
            Some(w) => bias + window_bias(t, k.dims()[2], w, &x.device()),
            None => bias,
        };
        let rep = nq / nkv;
        let q = q.reshape([b, nkv, rep * t, hd]);
        let att = attention(q, k, v, bias, 1.0 / (hd as f32).sqrt(), rep);
        let x = x + linear(&self.o_proj, att);
        // 4. SwiGLU from the fused projection: down(silu(gate) ⊙ up).
        let h = rms_norm(&self.mlp_norm, x.clone());
        let gu = linear(&self.gate_up_proj, h);
        let f = gu.dims()[2] / 2;
        let m = swiglu(gu.clone().narrow(2, 0, f), gu.narrow(2, f, f));
        x + linear(&self.down_proj, m)
    }
}

/// A Phi-3 causal language model.
#[derive(Module, Debug)]
pub struct Phi3 {
    /// Token embedding.
    pub embed: Embedding,
    /// Decoder blocks.
    pub blocks: Vec<Phi3Block>,
    /// Final RMSNorm.
    pub norm: RmsNorm,
    /// Untied head, if the checkpoint has one.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    rope: Rope,
    rotary_dims: usize,
    max_seq_len: usize,
}

impl Phi3 {
    /// Final hidden states `[b, t, d]`.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        self.run(batch.ids.clone(), &batch.pos, batch.bias.clone(), None)
    }

    /// As [`Phi3::hidden`], attending also to (and extending) `cache`.
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
        let rope = self.rope.tables(pos, self.rotary_dims);
        let mut x = self.embed.forward(ids);
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(x, &rope, bias.clone(), slot);
        }
        rms_norm(&self.norm, x)
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => linear(head, h),
            None => tied_head(h, self.embed.weight.val()),
        }
    }

    /// Longest sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// With `longrope`, the original context: a cached decoding that grows past it computes
    /// the whole sequence again at the long factors, once, as transformers' Phi-3 does
    /// (`prepare_inputs_for_generation` drops its cache when the input first reaches
    /// `original_max_position_embeddings + 1` tokens).
    pub fn long_context_switch(&self) -> Option<usize> {
        self.rope.scaling.original_context()
    }
}

/// Loads a Phi-3 Hugging Face folder, run at `max_seq_len` tokens.
pub fn load_hf(
    dir: &Path,
    max_seq_len: usize,
    device: &Device,
) -> Result<(Phi3, Phi3Config, Tok, Option<String>)> {
    // 1. The architecture; what this file does not build is refused by name.
    let (cfg_path, cfg) = read_hf_config(dir)?;
    let num = |k: &str| hf_num(&cfg_path, &cfg, k);
    let heads = num("num_attention_heads")?;
    let d = num("hidden_size")?;
    let kv_heads = num("num_key_value_heads").unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || !d.is_multiple_of(heads) || !heads.is_multiple_of(kv_heads) {
        return Err(bad(
            &cfg_path,
            format!("inconsistent heads: {heads} query / {kv_heads} key-value heads for width {d}"),
        ));
    }
    if let Some(hd) = cfg.get("head_dim").and_then(|v| v.as_u64())
        && hd as usize != d / heads
    {
        return Err(bad(
            &cfg_path,
            format!(
                "`head_dim = {hd}` is not supported for `phi3` (only hidden_size / num_attention_heads = {})",
                d / heads
            ),
        ));
    }
    if let Some(act) = cfg.get("hidden_act").and_then(|v| v.as_str())
        && act != "silu"
    {
        return Err(bad(
            &cfg_path,
            format!("`hidden_act = \"{act}\"` is not supported for `phi3` (only `silu`)"),
        ));
    }
    let hd = d / heads;
    let rotary = hf_f64(&cfg, "partial_rotary_factor")
        .filter(|f| *f != 1.0)
        .map(|f| (hd as f64 * f) as usize);
    let scaling = RopeScaling::from_hf(&cfg).map_err(|e| bad(&cfg_path, e))?;
    scaling
        .check(rotary.unwrap_or(hd))
        .map_err(|e| bad(&cfg_path, e))?;
    let config = Phi3Config::new(
        num("vocab_size")?,
        d,
        num("num_hidden_layers")?,
        heads,
        kv_heads,
        num("intermediate_size")?,
        max_seq_len,
    )
    .with_rope_theta(hf_f64(&cfg, "rope_theta").unwrap_or(10000.0))
    .with_rope_scaling(scaling)
    .with_rotary_dims(rotary)
    .with_norm_eps(hf_f64(&cfg, "rms_norm_eps").unwrap_or(1e-5))
    .with_tie_embeddings(
        cfg.get("tie_word_embeddings")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    )
    .with_sliding_window(
        cfg.get("sliding_window")
            .and_then(|v| v.as_u64())
            .map(|w| w as usize),
    );
    // 2. The weights, HF `[out, in]` → burn `[in, out]`.
    let mut by_name = read_safetensors(dir)?;
    let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let (w, _) = take_hf(dir, &mut by_name, name)?;
        if w.shape != shape {
            return Err(bad(
                dir,
                format!(
                    "weight `{name}` has shape {:?}, expected {shape:?}",
                    w.shape
                ),
            ));
        }
        Ok(w.data)
    };
    let c = &config;
    let lin = |w: Vec<f32>, o: usize, i: usize| Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(transpose(&w, o, i), [i, o]),
            device,
        )),
        bias: None,
    };
    let norm = |w: Vec<f32>| RmsNorm {
        gamma: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d]), device)),
        epsilon: c.norm_eps,
    };
    let mut model = config.init(device);
    let embed = take("model.embed_tokens.weight", &[c.vocab_size, d])?;
    model.embed = Embedding {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(embed, [c.vocab_size, d]),
            device,
        )),
    };
    model.norm = norm(take("model.norm.weight", &[d])?);
    if !c.tie_embeddings {
        model.lm_head = Some(lin(
            take("lm_head.weight", &[c.vocab_size, d])?,
            c.vocab_size,
            d,
        ));
    }
    let qkv = (heads + 2 * kv_heads) * hd;
    for (l, b) in model.blocks.iter_mut().enumerate() {
        let n = |s: &str| format!("model.layers.{l}.{s}.weight");
        b.attn_norm = norm(take(&n("input_layernorm"), &[d])?);
        b.qkv_proj = lin(take(&n("self_attn.qkv_proj"), &[qkv, d])?, qkv, d);
        b.o_proj = lin(
            take(&n("self_attn.o_proj"), &[d, heads * hd])?,
            d,
            heads * hd,
        );
        b.mlp_norm = norm(take(&n("post_attention_layernorm"), &[d])?);
        b.gate_up_proj = lin(
            take(&n("mlp.gate_up_proj"), &[2 * c.d_ff, d])?,
            2 * c.d_ff,
            d,
        );
        b.down_proj = lin(take(&n("mlp.down_proj"), &[d, c.d_ff])?, d, c.d_ff);
    }
    // 3. The tokenizer.
    let (tok, chat_template) = hf_tokenizer(dir, &cfg_path, &cfg)?;
    Ok((model, config, tok, chat_template))
}
