//! The pretrained student: the Llama architecture (SmolLM2, TinyLlama, Llama-2 …) in one file.
//!
//! token embedding → `layers` × [RMSNorm → grouped-query attention with rotary position
//! embeddings → residual → RMSNorm → SwiGLU MLP → residual] → RMSNorm → head (tied to the
//! embedding unless the checkpoint has its own `lm_head`).
//!
//! Qwen2/Qwen2.5 and Qwen3 are this decoder with one change each, switched by the config:
//! biases on the q/k/v projections ([`super::qwen2`]), or an RMSNorm over each query and key
//! head before the rotation and a head width of its own ([`super::qwen3`]). Mistral is it with
//! a sliding attention window ([`super::mistral`]). Gemma 2 and Gemma 3 ([`super::gemma2`],
//! [`super::gemma3`]) switch on more: the embedding scaled by √d, a norm after attention and
//! after the MLP as well as before, GeGLU instead of SwiGLU, attention scaled by
//! `query_pre_attn_scalar`, soft-capped attention scores and logits (Gemma 2), per-head q/k
//! norms (Gemma 3), and local (sliding-window) layers interleaved with global ones, with a
//! rotation base of their own (Gemma 3). The rotations themselves are [`super::rope`]'s.
//!
//! Conventions: weights are in Hugging Face layout (q/k rows in "rotate half" order; the GGUF
//! loader undoes llama.cpp's permutation, see [`super::checkpoint`]); burn's `Linear` stores
//! `[d_in, d_out]`. Position ids come with the batch, so left-padded decoding batches and
//! right-padded training batches share this code; an additive bias carries the causal and
//! key-padding masks. [`Llama::forward_cached`] appends to a [`KvCache`] for decoding.

use super::batch::{Batch, KvCache, extend_cache, window_bias};
use super::family::Family;
use super::rope::{self, Rope, RopeScaling};
use crate::kernels::{Gate, attention, attention_softcapped, gated, rms_norm, softcap};
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
    /// Scaling of the rotation's frequencies (`rope_scaling`; Llama 3.x: `llama3`).
    #[config(default = "RopeScaling::Default")]
    pub rope_scaling: RopeScaling,
    /// Dimensions of each head that rotate (`partial_rotary_factor · head_dim`); all if unset.
    #[config(default = "None")]
    pub rotary_dims: Option<usize>,
    /// Window of the local (sliding-window) layers: a query sees itself and the
    /// `sliding_window − 1` tokens before it (Mistral, Gemma 2/3).
    #[config(default = "None")]
    pub sliding_window: Option<usize>,
    /// Which layers are local (`layer_types`' `sliding_attention`); empty: none.
    #[config(default = "Vec::new()")]
    pub sliding_layers: Vec<bool>,
    /// Rotation base of the local layers, unscaled (Gemma 3's `rope_local_base_freq`); unset:
    /// the global rotation.
    #[config(default = "None")]
    pub rope_local_theta: Option<f64>,
    /// Embeddings multiplied by √`d_model` before the first block (Gemma).
    #[config(default = false)]
    pub embed_scale: bool,
    /// An RMSNorm after attention and after the MLP too, before each residual add (Gemma 2/3).
    #[config(default = false)]
    pub sandwich_norms: bool,
    /// GeGLU (tanh GELU of the gate) instead of SwiGLU (Gemma).
    #[config(default = false)]
    pub gelu_mlp: bool,
    /// Attention scores scaled by `query_pre_attn_scalar^(−1/2)` instead of `head_dim^(−1/2)`
    /// (Gemma).
    #[config(default = "None")]
    pub query_pre_attn_scalar: Option<f64>,
    /// Attention scores soft-capped: `cap · tanh(s / cap)` before the mask (Gemma 2).
    #[config(default = "None")]
    pub attn_softcap: Option<f64>,
    /// Logits soft-capped the same way (Gemma 2).
    #[config(default = "None")]
    pub final_softcap: Option<f64>,
    /// The checkpoint stores each RMSNorm weight as `w` with the scale `1 + w` (Gemma): the
    /// loader adds 1 and the exports take it off again; the model itself holds `1 + w`.
    #[config(default = false)]
    pub norm_plus_one: bool,
}

impl LlamaConfig {
    /// Reads a train entry's `config.json`, where a field that morsd added after the entry was
    /// written takes its default (burn's `Config::load` wants every field present).
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        Self::from_json(&text)
    }

    /// As [`LlamaConfig::read`], from the JSON text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let defaults = serde_json::to_value(LlamaConfig::new(0, 0, 0, 0, 0, 0, 0))
            .map_err(|e| e.to_string())?;
        if let (Some(obj), Some(d)) = (v.as_object_mut(), defaults.as_object()) {
            for (k, x) in d {
                obj.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

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
        let sandwich = || self.sandwich_norms.then(norm);
        let blocks = (0..self.layers)
            .map(|l| LlamaBlock {
                attn_norm: norm(),
                post_attn_norm: sandwich(),
                post_mlp_norm: sandwich(),
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
                window: self.window_of(l),
                attn: AttnOptions {
                    scale: 1.0 / self.query_pre_attn_scalar.unwrap_or(hd as f64).sqrt() as f32,
                    softcap: self.attn_softcap.map(|c| c as f32),
                    gate: if self.gelu_mlp {
                        Gate::GeluTanh
                    } else {
                        Gate::Silu
                    },
                },
            })
            .collect();
        Llama {
            embed: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            blocks,
            norm: norm(),
            lm_head: (!self.tie_embeddings).then(|| lin(self.d_model, self.vocab_size)),
            rope: Rope {
                theta: self.rope_theta,
                scaling: self.rope_scaling.clone(),
            },
            rope_local: self.rope_local_theta.map(Rope::plain),
            rotary_dims: self.rotary_dims.unwrap_or(hd),
            embed_scale: self.embed_scale.then(|| (self.d_model as f32).sqrt()),
            final_softcap: self.final_softcap.map(|c| c as f32),
            max_seq_len: self.max_seq_len,
            family: self.family,
        }
    }

    /// The attention window of layer `l`: `Some(w)` for a local layer.
    pub fn window_of(&self, l: usize) -> Option<usize> {
        self.sliding_window
            .filter(|_| self.sliding_layers.get(l).copied().unwrap_or(false))
    }
}

/// What a block's attention and MLP do beyond Llama's (Gemma's scale, soft cap and GeGLU).
#[derive(Clone, Copy, Debug)]
pub struct AttnOptions {
    /// Score scale (`head_dim^(−1/2)`, or `query_pre_attn_scalar^(−1/2)`).
    pub scale: f32,
    /// Score soft cap.
    pub softcap: Option<f32>,
    /// The MLP's gate activation.
    pub gate: Gate,
}

/// One decoder block. Field names follow Hugging Face's, so LoRA target modules are named as
/// users know them (`q_proj`, `v_proj`, …).
#[derive(Module, Debug)]
pub struct LlamaBlock {
    /// RMSNorm before attention.
    pub attn_norm: RmsNorm,
    /// Gemma: RMSNorm of the attention output, before the residual add.
    pub post_attn_norm: Option<RmsNorm>,
    /// Gemma: RMSNorm of the MLP output, before the residual add.
    pub post_mlp_norm: Option<RmsNorm>,
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
    /// A local layer's window.
    window: Option<usize>,
    #[module(skip)]
    attn: AttnOptions,
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
        let q = rope::apply(
            split(linear(&self.q_proj, h.clone()), self.heads, &self.q_norm),
            &rope.0,
            &rope.1,
        );
        let mut k = rope::apply(
            split(linear(&self.k_proj, h.clone()), self.kv_heads, &self.k_norm),
            &rope.0,
            &rope.1,
        );
        let mut v = split(linear(&self.v_proj, h), self.kv_heads, &None);
        // 2. Decoding: prepend the cached keys/values and remember the extended ones.
        if let Some(slot) = cache {
            (k, v) = extend_cache(slot, k, v);
        }
        // 3. Grouped-query attention with the additive mask (a local layer's also hides keys
        //    `window` or more tokens back). Query head `h` reads key/value head `h / rep`: the
        //    `rep` query heads of a group are stacked along the query axis, `[b, kv, rep·t,
        //    hd]`, so each group is one matmul against its keys and values and these are never
        //    copied `rep` times.
        let bias = match self.window {
            Some(w) => bias + window_bias(t, k.dims()[2], w, &x.device()),
            None => bias,
        };
        let rep = self.heads / self.kv_heads;
        let q = q.reshape([b, self.kv_heads, rep * t, hd]);
        let o = self.attn;
        let att = match o.softcap {
            Some(cap) => attention_softcapped(q, k, v, bias, o.scale, cap, rep),
            None => attention(q, k, v, bias, o.scale, rep),
        };
        let x = x + post_norm(&self.post_attn_norm, linear(&self.o_proj, att));
        // 4. Gated MLP: down(act(gate(h)) ⊙ up(h)), SiLU (SwiGLU) or tanh GELU (GeGLU).
        let h = rms_norm(&self.mlp_norm, x.clone());
        let m = gated(
            linear(&self.gate_proj, h.clone()),
            linear(&self.up_proj, h),
            o.gate,
        );
        x + post_norm(&self.post_mlp_norm, linear(&self.down_proj, m))
    }
}

/// Gemma's norm of a sublayer's output (identity where the family has none).
fn post_norm(norm: &Option<RmsNorm>, y: Tensor<3>) -> Tensor<3> {
    match norm {
        Some(n) => rms_norm(n, y),
        None => y,
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
    #[module(skip)]
    rope: Rope,
    /// Gemma 3's local layers' rotation.
    #[module(skip)]
    rope_local: Option<Rope>,
    rotary_dims: usize,
    /// Gemma's √d embedding scale.
    #[module(skip)]
    embed_scale: Option<f32>,
    /// Gemma 2's logit soft cap.
    #[module(skip)]
    final_softcap: Option<f32>,
    max_seq_len: usize,
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
        // 1. The rotation tables: one for the global layers, one for Gemma 3's local ones.
        let rope = self.rope.tables(pos, self.rotary_dims);
        let local = self
            .rope_local
            .as_ref()
            .map(|r| r.tables(pos, self.rotary_dims));
        // 2. Embeddings (Gemma: × √d), the blocks, the final norm.
        let mut x = self.embed.forward(ids);
        if let Some(s) = self.embed_scale {
            x = x * s;
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let r = match (&local, block.window) {
                (Some(l), Some(_)) => l,
                _ => &rope,
            };
            x = block.forward(x, r, bias.clone(), slot);
        }
        rms_norm(&self.norm, x)
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        let logits = match &self.lm_head {
            Some(head) => linear(head, h),
            None => tied_head(h, self.embed.weight.val()),
        };
        match self.final_softcap {
            Some(cap) => softcap(logits, cap),
            None => logits,
        }
    }

    /// Longest sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// The global layers' rotation.
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Whether each head rotates only part of its dimensions.
    pub fn partial_rotary(&self) -> bool {
        self.rotary_dims < self.blocks.first().map_or(self.rotary_dims, |b| b.head_dim)
    }

    /// The checkpoint's family (Llama, Qwen2, Qwen3, Mistral, Gemma 2 or Gemma 3).
    pub fn family(&self) -> Family {
        self.family
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_saved_before_the_gemma_switches_loads_with_them_off() {
        // A train entry's config.json as morsd wrote it before rope scaling, windows and
        // Gemma's switches existed.
        let old = r#"{"vocab_size":300,"d_model":32,"layers":2,"heads":4,"kv_heads":2,
            "d_ff":64,"rope_theta":10000.0,"norm_eps":1e-5,"max_seq_len":128,
            "tie_embeddings":true,"family":"llama","qkv_bias":false,"qk_norm":false,
            "head_dim_override":null}"#;
        let c = LlamaConfig::from_json(old).unwrap();
        assert_eq!(c.rope_scaling, RopeScaling::Default);
        assert!(c.sliding_window.is_none() && c.sliding_layers.is_empty());
        assert!(!c.embed_scale && !c.sandwich_norms && !c.gelu_mlp && !c.norm_plus_one);
        assert!(c.query_pre_attn_scalar.is_none() && c.final_softcap.is_none());
        // And what is saved now reads back the same.
        let c = c
            .with_sliding_window(Some(4))
            .with_sliding_layers(vec![true, false])
            .with_rope_scaling(RopeScaling::Linear { factor: 2.0 });
        let back = LlamaConfig::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.window_of(0), Some(4));
        assert_eq!(back.window_of(1), None);
        assert_eq!(back.rope_scaling, RopeScaling::Linear { factor: 2.0 });
    }

    #[test]
    fn the_window_hides_keys_window_or_more_tokens_back() {
        // 2 new queries at positions 3, 4 of 5; window 2: query 3 sees 2, 3; query 4 sees 3, 4.
        let m: Vec<f32> = window_bias(2, 5, 2, &Device::flex())
            .into_data()
            .iter::<f32>()
            .collect();
        let open: Vec<Vec<usize>> = m
            .chunks(5)
            .map(|row| (0..5).filter(|&j| row[j] == 0.0).collect())
            .collect();
        // (Causality is the batch bias's; the window hides only what lies too far back.)
        assert_eq!(open, vec![vec![2, 3, 4], vec![3, 4]]);
    }
}
