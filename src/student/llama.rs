//! The pretrained student: the Llama architecture (SmolLM2, TinyLlama, Llama-2 …) in one file.
//!
//! token embedding → `layers` × [RMSNorm → grouped-query attention with rotary position
//! embeddings → residual → RMSNorm → SwiGLU MLP → residual] → RMSNorm → head (tied to the
//! embedding unless the checkpoint has its own `lm_head`).
//!
//! Qwen2/Qwen2.5 and Qwen3 are this decoder with one change each, switched by the config:
//! biases on the q/k/v projections ([`super::qwen2`]), or an RMSNorm over each query and key
//! head before the rotation and a head width of its own ([`super::qwen3`]).
//!
//! Conventions: weights are in Hugging Face layout (q/k rows in "rotate half" order; the GGUF
//! loader undoes llama.cpp's permutation, see [`super::checkpoint`]); burn's `Linear` stores
//! `[d_in, d_out]`. Position ids come with the batch, so left-padded decoding batches and
//! right-padded training batches share this code; an additive bias carries the causal and
//! key-padding masks. [`Llama::forward_cached`] appends to a [`KvCache`] for decoding.

use super::batch::{Batch, KvCache};
use super::family::Family;
use crate::kernels::{attention, rms_norm, swiglu};
use crate::kernels::{linear, tied_head};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;

/// Architecture of a Llama-family model (read from a GGUF's metadata or a `config.json`).
#[derive(Config, Debug)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width (`hidden_size`).
    pub d_model: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention; equal to `heads` for plain multi-head).
    pub kv_heads: usize,
    /// SwiGLU hidden width (`intermediate_size`).
    pub d_ff: usize,
    /// RoPE base frequency.
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Longest sequence this student is run at (the spec's `student.max_seq_len`).
    pub max_seq_len: usize,
    /// Whether the output head reuses the token embedding.
    #[config(default = true)]
    pub tie_embeddings: bool,
    /// The checkpoint's family (what an export names it).
    #[config(default = "Family::Llama")]
    pub family: Family,
    /// Biases on the q/k/v projections (Qwen2).
    #[config(default = false)]
    pub qkv_bias: bool,
    /// RMSNorm over each query and key head before the rotation (Qwen3).
    #[config(default = false)]
    pub qk_norm: bool,
    /// Width of one attention head, where the checkpoint sets it (Qwen3); else
    /// `d_model / heads`.
    #[config(default = "None")]
    pub head_dim_override: Option<usize>,
}

impl LlamaConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim_override
            .unwrap_or(self.d_model / self.heads.max(1))
    }

    /// Builds the model with freshly initialised weights on `device` (tests and shape checks;
    /// a real student is loaded with [`super::checkpoint::Checkpoint::into_llama`]).
    pub fn init(&self, device: &Device) -> Llama {
        let hd = self.head_dim();
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        let qkv = |i, o| {
            LinearConfig::new(i, o)
                .with_bias(self.qkv_bias)
                .init(device)
        };
        let norm_of = |n| {
            RmsNormConfig::new(n)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let norm = || norm_of(self.d_model);
        let blocks = (0..self.layers)
            .map(|_| LlamaBlock {
                attn_norm: norm(),
                q_proj: qkv(self.d_model, self.heads * hd),
                k_proj: qkv(self.d_model, self.kv_heads * hd),
                v_proj: qkv(self.d_model, self.kv_heads * hd),
                q_norm: self.qk_norm.then(|| norm_of(hd)),
                k_norm: self.qk_norm.then(|| norm_of(hd)),
                o_proj: lin(self.heads * hd, self.d_model),
                mlp_norm: norm(),
                gate_proj: lin(self.d_model, self.d_ff),
                up_proj: lin(self.d_model, self.d_ff),
                down_proj: lin(self.d_ff, self.d_model),
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: hd,
            })
            .collect();
        Llama {
            embed: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            blocks,
            norm: norm(),
            lm_head: (!self.tie_embeddings).then(|| lin(self.d_model, self.vocab_size)),
            rope_theta: self.rope_theta,
            max_seq_len: self.max_seq_len,
            head_dim: hd,
            family: self.family,
        }
    }
}

/// One decoder block. Field names follow Hugging Face's, so LoRA target modules are named as
/// users know them (`q_proj`, `v_proj`, …).
#[derive(Module, Debug)]
pub struct LlamaBlock {
    /// RMSNorm before attention.
    pub attn_norm: RmsNorm,
    /// Query projection `[d, heads·hd]`.
    pub q_proj: Linear,
    /// Key projection `[d, kv_heads·hd]`.
    pub k_proj: Linear,
    /// Value projection `[d, kv_heads·hd]`.
    pub v_proj: Linear,
    /// Qwen3: RMSNorm over each query head (`[hd]`).
    pub q_norm: Option<RmsNorm>,
    /// Qwen3: RMSNorm over each key head (`[hd]`).
    pub k_norm: Option<RmsNorm>,
    /// Output projection `[heads·hd, d]`.
    pub o_proj: Linear,
    /// RMSNorm before the MLP.
    pub mlp_norm: RmsNorm,
    /// SwiGLU gate `[d, d_ff]`.
    pub gate_proj: Linear,
    /// SwiGLU up `[d, d_ff]`.
    pub up_proj: Linear,
    /// SwiGLU down `[d_ff, d]`.
    pub down_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

/// Rotary embedding tables for the positions of a batch: `cos`, `sin` of `[b, 1, t, hd]`.
fn rope_tables(pos: &Tensor<2, Int>, hd: usize, theta: f64) -> (Tensor<4>, Tensor<4>) {
    let [b, t] = pos.dims();
    let device = pos.device();
    // 1. inv_freq[i] = theta^(-2i/hd), i < hd/2 (computed in f64, as the reference does in f32).
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| theta.powf(-((2 * i) as f64) / hd as f64) as f32)
        .collect();
    let inv =
        Tensor::<1>::from_data(TensorData::new(inv, [hd / 2]), &device).reshape([1, 1, hd / 2]);
    // 2. angles[p, i] = pos · inv_freq[i], repeated for both halves ("rotate half" layout).
    let angles = pos.clone().float().reshape([b, t, 1]) * inv;
    let freqs = Tensor::cat(vec![angles.clone(), angles], 2).reshape([b, 1, t, hd]);
    (freqs.clone().cos(), freqs.sin())
}

/// x·cos + rotate_half(x)·sin, with rotate_half([x1, x2]) = [−x2, x1] over the head dim.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let hd = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, hd / 2);
    let x2 = x.clone().narrow(3, hd / 2, hd / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// RMSNorm over the last axis of per-head queries or keys `[b, t, heads, hd]` (Qwen3's
/// per-head q/k norm, [`super::qwen3`]).
pub fn head_norm(norm: &RmsNorm, x: Tensor<4>) -> Tensor<4> {
    let [b, t, n, hd] = x.dims();
    rms_norm(norm, x.reshape([b, t * n, hd])).reshape([b, t, n, hd])
}

impl LlamaBlock {
    fn forward(
        &self,
        x: Tensor<3>,
        rope: &(Tensor<4>, Tensor<4>),
        bias: Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let hd = self.head_dim;
        // 1. Queries, keys, values per head (Qwen3: each query and key head RMS-normalised),
        //    queries and keys rotated by position.
        let h = rms_norm(&self.attn_norm, x.clone());
        let split = |y: Tensor<3>, n: usize, norm: &Option<RmsNorm>| {
            let y = y.reshape([b, t, n, hd]);
            let y = match norm {
                Some(norm) => head_norm(norm, y),
                None => y,
            };
            y.swap_dims(1, 2)
        };
        let q = apply_rope(
            split(linear(&self.q_proj, h.clone()), self.heads, &self.q_norm),
            &rope.0,
            &rope.1,
        );
        let mut k = apply_rope(
            split(linear(&self.k_proj, h.clone()), self.kv_heads, &self.k_norm),
            &rope.0,
            &rope.1,
        );
        let mut v = split(linear(&self.v_proj, h), self.kv_heads, &None);
        // 2. Decoding: prepend the cached keys/values and remember the extended ones.
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        // 3. Grouped-query attention with the additive mask. Query head `h` reads key/value
        //    head `h / rep`: the `rep` query heads of a group are stacked along the query axis,
        //    `[b, kv, rep·t, hd]`, so each group is one matmul against its keys and values and
        //    these are never copied `rep` times.
        let rep = self.heads / self.kv_heads;
        let q = q.reshape([b, self.kv_heads, rep * t, hd]);
        let att = attention(q, k, v, bias, 1.0 / (hd as f32).sqrt(), rep);
        let x = x + linear(&self.o_proj, att);
        // 4. SwiGLU MLP: down(silu(gate(h)) ⊙ up(h)).
        let h = rms_norm(&self.mlp_norm, x.clone());
        let m = swiglu(linear(&self.gate_proj, h.clone()), linear(&self.up_proj, h));
        x + linear(&self.down_proj, m)
    }
}

/// A Llama-family causal language model.
#[derive(Module, Debug)]
pub struct Llama {
    /// Token embedding `[vocab, d]` (also the output head when tied).
    pub embed: Embedding,
    /// Decoder blocks.
    pub blocks: Vec<LlamaBlock>,
    /// Final RMSNorm.
    pub norm: RmsNorm,
    /// Untied output head `[d, vocab]`, if the checkpoint has one.
    pub lm_head: Option<Linear>,
    rope_theta: f64,
    max_seq_len: usize,
    head_dim: usize,
    #[module(skip)]
    family: Family,
}

impl Llama {
    /// Final hidden states `[b, t, d]` of a (padded) batch.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        self.run(batch.ids.clone(), &batch.pos, batch.bias.clone(), None)
    }

    /// Like [`Llama::hidden`], but attending also to (and extending) `cache`; `bias` covers
    /// the cached positions followed by the new ones: `[b, 1, t, cached + t]`.
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
        let rope = rope_tables(pos, self.head_dim, self.rope_theta);
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

    /// The checkpoint's family (Llama, Qwen2 or Qwen3).
    pub fn family(&self) -> Family {
        self.family
    }
}
