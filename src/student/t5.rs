//! T5 v1.1 / Flan-T5 and original T5 (`T5ForConditionalGeneration`): the encoder–decoder
//! student, in one file.
//!
//! encoder: token embedding → `layers` × [T5 norm → self-attention + relative position bias
//! (bidirectional buckets) → residual → T5 norm → feed-forward → residual] → T5 norm.
//! decoder: the same embedding → `decoder_layers` × [T5 norm → causal self-attention + relative
//! position bias (causal buckets) → residual → T5 norm → cross-attention over the encoder's
//! output → residual → T5 norm → feed-forward → residual] → T5 norm → head.
//!
//! T5's particulars: the norm is RMS without mean or bias (burn's `RmsNorm`); attention is not
//! scaled by `1/√d_kv`; the position bias is a learned table per bucket and head, computed in
//! each stack's first layer and added in every layer; the feed-forward is gated GELU (tanh
//! form) in v1.1/Flan-T5 (`wo(gelu(wi_0 x) ⊙ wi_1 x)`) and ReLU in the original
//! (`wo(relu(wi x))`); v1.1's head is untied, the original's is the embedding, applied after a
//! `d_model^-0.5` rescale.
//!
//! As a student: the question goes to the encoder, the rationale and answer are the decoder's
//! target. A [`Batch`] carries the encoder's input in [`Batch::encoder`]; its own `ids` and
//! `bias` are the decoder's. Decoding runs the encoder once, computes each layer's
//! cross-attention keys and values once, and caches the decoder's self-attention
//! ([`T5::forward_cached`]).

use super::batch::{Batch, EncoderInput, KvCache};
use super::family::T5_MODULES;
use super::readers::bad;
use super::tokenizer::Tok;
use crate::error::Result;
use crate::kernels::{attention_values, batched_matmul, geglu, masked_softmax, rms_norm};
use crate::kernels::{linear, tied_head};
use burn::module::Param;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::prelude::*;
use std::path::Path;

/// Architecture of a T5 model (from its `config.json`).
#[derive(Config, Debug)]
pub struct T5Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width (`d_model`).
    pub d_model: usize,
    /// Width of one attention head (`d_kv`).
    pub d_kv: usize,
    /// Feed-forward width (`d_ff`).
    pub d_ff: usize,
    /// Encoder blocks (`num_layers`).
    pub layers: usize,
    /// Decoder blocks (`num_decoder_layers`).
    pub decoder_layers: usize,
    /// Attention heads (`num_heads`).
    pub heads: usize,
    /// Relative position buckets (`relative_attention_num_buckets`).
    pub buckets: usize,
    /// Longest distance with buckets of its own (`relative_attention_max_distance`).
    pub max_distance: usize,
    /// Gated-GELU feed-forward (v1.1, Flan-T5) rather than ReLU (original T5).
    pub gated: bool,
    /// Head tied to the embedding, with the `d_model^-0.5` rescale (original T5).
    pub tie_embeddings: bool,
    /// Norm epsilon (`layer_norm_epsilon`).
    #[config(default = 1e-6)]
    pub norm_eps: f64,
    /// The decoder's first input token (`decoder_start_token_id`).
    #[config(default = 0)]
    pub decoder_start: u32,
    /// The end-of-sequence token that closes an encoder input (`eos_token_id`).
    #[config(default = 1)]
    pub eos: u32,
    /// Longest encoder input and decoder sequence this student is run at.
    pub max_seq_len: usize,
}

/// One attention: q, k, v `[d, heads·d_kv]`, o `[heads·d_kv, d]`, no biases.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query.
    pub q: Linear,
    /// Key.
    pub k: Linear,
    /// Value.
    pub v: Linear,
    /// Output.
    pub o: Linear,
    heads: usize,
}

/// The feed-forward: `wo(gelu(wi_0 x) ⊙ wi_1 x)` (gated) or `wo(relu(wi x))`; the fields are
/// named as Hugging Face names the modules, so PEFT's target names find them.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// ReLU input projection (original T5).
    pub wi: Option<Linear>,
    /// Gated: the GELU half.
    pub wi_0: Option<Linear>,
    /// Gated: the linear half.
    pub wi_1: Option<Linear>,
    /// Output projection.
    pub wo: Linear,
}

/// An encoder block.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// Norm before self-attention.
    pub norm1: RmsNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Norm before the feed-forward.
    pub norm2: RmsNorm,
    /// Feed-forward.
    pub ff: FeedForward,
}

/// A decoder block.
#[derive(Module, Debug)]
pub struct DecoderBlock {
    /// Norm before self-attention.
    pub norm1: RmsNorm,
    /// Causal self-attention.
    pub attn: Attention,
    /// Norm before cross-attention.
    pub norm2: RmsNorm,
    /// Cross-attention over the encoder's output.
    pub cross: Attention,
    /// Norm before the feed-forward.
    pub norm3: RmsNorm,
    /// Feed-forward.
    pub ff: FeedForward,
}

impl T5Config {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> T5 {
        let inner = self.heads * self.d_kv;
        let lin = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        let norm = || {
            RmsNormConfig::new(self.d_model)
                .with_epsilon(self.norm_eps)
                .init(device)
        };
        let attn = || Attention {
            q: lin(self.d_model, inner),
            k: lin(self.d_model, inner),
            v: lin(self.d_model, inner),
            o: lin(inner, self.d_model),
            heads: self.heads,
        };
        let ff = || FeedForward {
            wi: (!self.gated).then(|| lin(self.d_model, self.d_ff)),
            wi_0: self.gated.then(|| lin(self.d_model, self.d_ff)),
            wi_1: self.gated.then(|| lin(self.d_model, self.d_ff)),
            wo: lin(self.d_ff, self.d_model),
        };
        T5 {
            shared: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            encoder: (0..self.layers)
                .map(|_| EncoderBlock {
                    norm1: norm(),
                    attn: attn(),
                    norm2: norm(),
                    ff: ff(),
                })
                .collect(),
            encoder_norm: norm(),
            encoder_bias: EmbeddingConfig::new(self.buckets, self.heads).init(device),
            decoder: (0..self.decoder_layers)
                .map(|_| DecoderBlock {
                    norm1: norm(),
                    attn: attn(),
                    norm2: norm(),
                    cross: attn(),
                    norm3: norm(),
                    ff: ff(),
                })
                .collect(),
            decoder_norm: norm(),
            decoder_bias: EmbeddingConfig::new(self.buckets, self.heads).init(device),
            lm_head: (!self.tie_embeddings).then(|| lin(self.d_model, self.vocab_size)),
            d_kv: self.d_kv,
            buckets: self.buckets,
            max_distance: self.max_distance,
            decoder_start: self.decoder_start,
            eos: self.eos,
            max_seq_len: self.max_seq_len,
        }
    }
}

/// A T5 encoder–decoder.
#[derive(Module, Debug)]
pub struct T5 {
    /// Token embedding `[vocab, d]` shared by encoder and decoder (and the tied head).
    pub shared: Embedding,
    /// Encoder blocks.
    pub encoder: Vec<EncoderBlock>,
    /// The encoder's final norm.
    pub encoder_norm: RmsNorm,
    /// The encoder's relative position bias `[buckets, heads]`.
    pub encoder_bias: Embedding,
    /// Decoder blocks.
    pub decoder: Vec<DecoderBlock>,
    /// The decoder's final norm.
    pub decoder_norm: RmsNorm,
    /// The decoder's relative position bias `[buckets, heads]`.
    pub decoder_bias: Embedding,
    /// Untied head `[d, vocab]` (v1.1); none when tied to `shared` (original T5).
    pub lm_head: Option<Linear>,
    d_kv: usize,
    buckets: usize,
    max_distance: usize,
    decoder_start: u32,
    eos: u32,
    max_seq_len: usize,
}

/// T5's bucket of a relative position `key − query` (transformers'
/// `_relative_position_bucket`, in f32 as it computes it): half the buckets exact, the rest
/// logarithmic up to `max_distance`; bidirectional in the encoder (the sign takes half the
/// buckets), causal in the decoder (future positions share bucket 0).
pub fn bucket(rel: i64, bidirectional: bool, buckets: usize, max_distance: usize) -> usize {
    let mut n = buckets as i64;
    let mut out = 0i64;
    let rel = if bidirectional {
        n /= 2;
        if rel > 0 {
            out += n;
        }
        rel.abs()
    } else {
        (-rel).max(0)
    };
    let exact = n / 2;
    if rel < exact {
        return (out + rel) as usize;
    }
    let large = exact
        + ((rel as f32 / exact as f32).ln() / (max_distance as f32 / exact as f32).ln()
            * (n - exact) as f32) as i64;
    (out + large.min(n - 1)) as usize
}

impl Attention {
    /// Attention of `x` `[b, t, d]` over `kv` (itself, or the encoder's output, or the cache):
    /// `keys_values` gives the keys and values `[b, heads, s, d_kv]` when they are already known.
    fn forward(
        &self,
        x: Tensor<3>,
        kv_source: Option<Tensor<3>>,
        known: Option<(Tensor<4>, Tensor<4>)>,
        position_bias: Option<&Tensor<4>>,
        mask: Tensor<4>,
        d_kv: usize,
    ) -> (Tensor<3>, (Tensor<4>, Tensor<4>)) {
        let b = x.dims()[0];
        let split = |y: Tensor<3>| {
            let s = y.dims()[1];
            y.reshape([b, s, self.heads, d_kv]).swap_dims(1, 2)
        };
        let q = split(linear(&self.q, x.clone()));
        let (k, v) = match known {
            Some(kv) => kv,
            None => {
                let src = kv_source.unwrap_or(x);
                (
                    split(linear(&self.k, src.clone())),
                    split(linear(&self.v, src)),
                )
            }
        };
        // No 1/√d_kv: T5 folds it into its initialisation.
        let mut scores = batched_matmul(q, k.clone().swap_dims(2, 3));
        if let Some(pb) = position_bias {
            scores = scores + pb.clone();
        }
        let att = attention_values(masked_softmax(scores, mask, 1.0), v.clone(), 1);
        (linear(&self.o, att), (k, v))
    }
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = match (&self.wi_0, &self.wi_1, &self.wi) {
            (Some(wi_0), Some(wi_1), _) => geglu(linear(wi_0, x.clone()), linear(wi_1, x)),
            (_, _, Some(wi)) => burn::tensor::activation::relu(linear(wi, x)),
            // Built by `T5Config::init` with one form or the other.
            _ => x.zeros_like(),
        };
        linear(&self.wo, h)
    }
}

impl T5 {
    /// The position bias `[1, heads, tq, tk]` of queries at `q0..q0+tq` and keys at `0..tk`.
    fn position_bias(
        &self,
        table: &Embedding,
        q0: usize,
        tq: usize,
        tk: usize,
        bidirectional: bool,
        device: &Device,
    ) -> Tensor<4> {
        let ids: Vec<i64> = (0..tq)
            .flat_map(|i| {
                (0..tk).map(move |j| {
                    bucket(
                        j as i64 - (q0 + i) as i64,
                        bidirectional,
                        self.buckets,
                        self.max_distance,
                    ) as i64
                })
            })
            .collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [tq * tk]), device);
        let heads = table.weight.dims()[1];
        table
            .weight
            .val()
            .select(0, ids)
            .reshape([tq, tk, heads])
            .permute([2, 0, 1])
            .unsqueeze::<4>()
    }

    /// The encoder's output `[b, s, d]` for its input.
    pub fn encode(&self, enc: &EncoderInput) -> Tensor<3> {
        let [_, s] = enc.ids.dims();
        let device = enc.ids.device();
        let pb = self.position_bias(&self.encoder_bias, 0, s, s, true, &device);
        let mut x = self.shared.forward(enc.ids.clone());
        for block in &self.encoder {
            let h = rms_norm(&block.norm1, x.clone());
            let (a, _) = block
                .attn
                .forward(h, None, None, Some(&pb), enc.bias.clone(), self.d_kv);
            x = x + a;
            x = x.clone() + block.ff.forward(rms_norm(&block.norm2, x));
        }
        rms_norm(&self.encoder_norm, x)
    }

    /// The decoder's hidden states `[b, t, d]` for decoder input `ids` (positions after
    /// `cache`'s, if any) with self-attention `bias` `[b, 1, t, cached + t]`, attending to the
    /// encoder output `memory` through `cross` `[b, 1, 1, s]`.
    fn decode(
        &self,
        ids: Tensor<2, Int>,
        bias: Tensor<4>,
        memory: &Tensor<3>,
        cross: &Tensor<4>,
        mut cache: Option<&mut KvCache>,
    ) -> Tensor<3> {
        let [_, t] = ids.dims();
        let device = ids.device();
        let n = self.decoder.len();
        if let Some(c) = cache.as_deref_mut() {
            c.fit(2 * n);
        }
        let past = cache
            .as_deref()
            .and_then(|c| c.layers.first()?.as_ref().map(|(k, _)| k.dims()[2]))
            .unwrap_or(0);
        let pb = self.position_bias(&self.decoder_bias, past, t, past + t, false, &device);
        let cross = cross.clone().repeat_dim(2, t);
        let mut x = self.shared.forward(ids);
        for (i, block) in self.decoder.iter().enumerate() {
            // 1. Causal self-attention, extending the cache.
            let h = rms_norm(&block.norm1, x.clone());
            let prev = cache.as_deref_mut().and_then(|c| c.layers[i].take());
            let (a, kv) = match prev {
                Some((pk, pv)) => {
                    let [b, _, _] = h.dims();
                    let split = |y: Tensor<3>| {
                        y.reshape([b, t, block.attn.heads, self.d_kv])
                            .swap_dims(1, 2)
                    };
                    let k = Tensor::cat(vec![pk, split(linear(&block.attn.k, h.clone()))], 2);
                    let v = Tensor::cat(vec![pv, split(linear(&block.attn.v, h.clone()))], 2);
                    block
                        .attn
                        .forward(h, None, Some((k, v)), Some(&pb), bias.clone(), self.d_kv)
                }
                None => block
                    .attn
                    .forward(h, None, None, Some(&pb), bias.clone(), self.d_kv),
            };
            if let Some(c) = cache.as_deref_mut() {
                c.layers[i] = Some(kv);
            }
            x = x + a;
            // 2. Cross-attention; its keys and values are computed once per decoding.
            let h = rms_norm(&block.norm2, x.clone());
            let known = cache.as_deref_mut().and_then(|c| c.layers[n + i].clone());
            let (a, kv) = block.cross.forward(
                h,
                Some(memory.clone()),
                known,
                None,
                cross.clone(),
                self.d_kv,
            );
            if let Some(c) = cache.as_deref_mut() {
                c.layers[n + i] = Some(kv);
            }
            x = x + a;
            // 3. Feed-forward.
            x = x.clone() + block.ff.forward(rms_norm(&block.norm3, x));
        }
        rms_norm(&self.decoder_norm, x)
    }

    /// The decoder's final hidden states `[b, t, d]` of a batch whose [`Batch::encoder`] holds
    /// the encoder input (a batch without one has nothing to attend to: its encoder input is
    /// taken as empty of content, one padding token).
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        let enc = match &batch.encoder {
            Some(e) => e.clone(),
            None => EncoderInput::new(&vec![vec![0]; batch.ids.dims()[0]], 0, &batch.ids.device()),
        };
        let memory = self.encode(&enc);
        self.decode(
            batch.ids.clone(),
            batch.bias.clone(),
            &memory,
            &enc.cross,
            None,
        )
    }

    /// Decoding: with `ids` the newest decoder tokens, attending to the cached ones. The first
    /// call (an empty cache) runs the encoder on `cache`'s encoder input.
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        bias: Tensor<4>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let (enc, memory) = match cache.encoder.take() {
            Some((enc, Some(memory))) => (enc, memory),
            Some((enc, None)) => {
                let memory = self.encode(&enc);
                (enc, memory)
            }
            // No encoder input was set (morsd's decoding always sets one): one padding token.
            None => {
                let enc = EncoderInput::new(&vec![vec![0]; ids.dims()[0]], 0, &ids.device());
                let memory = self.encode(&enc);
                (enc, memory)
            }
        };
        let out = self.decode(ids, bias, &memory, &enc.cross, Some(cache));
        cache.encoder = Some((enc, Some(memory)));
        out
    }

    /// Logits `[n, vocab]` of decoder hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => linear(head, h),
            None => {
                let d = h.dims()[1];
                tied_head(
                    h.mul_scalar((d as f64).powf(-0.5)),
                    self.shared.weight.val(),
                )
            }
        }
    }

    /// The decoder's first input token.
    pub fn decoder_start(&self) -> u32 {
        self.decoder_start
    }

    /// The end-of-sequence token that closes an encoder input.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Longest encoder input and decoder sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
}

/// PEFT's key prefix of the adapter a T5 module path names
/// (`T5.encoder.3.attn.q.weight` → `base_model.model.encoder.block.3.layer.0.SelfAttention.q`).
pub fn peft_prefix(path: &[String]) -> Option<String> {
    let n = path.len();
    if n < 5 || path[n - 1] != "weight" {
        return None;
    }
    let stack = path.iter().position(|p| p == "encoder" || p == "decoder")?;
    let layer: usize = path.get(stack + 1)?.parse().ok()?;
    let (sub, field) = (path.get(stack + 2)?.as_str(), path.get(stack + 3)?.as_str());
    if n != stack + 5 {
        return None;
    }
    let enc = path[stack] == "encoder";
    let (index, module) = match (enc, sub) {
        (_, "attn") => (0, "SelfAttention"),
        (false, "cross") => (1, "EncDecAttention"),
        (true, "ff") => (1, "DenseReluDense"),
        (false, "ff") => (2, "DenseReluDense"),
        _ => return None,
    };
    T5_MODULES.iter().find(|m| m.field == field)?;
    Some(format!(
        "base_model.model.{}.block.{layer}.layer.{index}.{module}.{field}",
        path[stack]
    ))
}

/// Loads a T5 Hugging Face folder (`config.json`, `*.safetensors`, `tokenizer.json`), run at
/// `max_seq_len` tokens.
pub fn load_hf(
    dir: &Path,
    max_seq_len: usize,
    device: &Device,
) -> Result<(T5, T5Config, Tok, Option<String>)> {
    use super::readers::{hf_num, hf_tokenizer, read_hf_config, read_safetensors, take_hf};
    // 1. The architecture; options this file does not build are refused by name.
    let (cfg_path, cfg) = read_hf_config(dir)?;
    let num = |k: &str| hf_num(&cfg_path, &cfg, k);
    let ff = cfg
        .get("feed_forward_proj")
        .and_then(|v| v.as_str())
        .unwrap_or("relu");
    let gated = match ff {
        "relu" => false,
        "gated-gelu" => true,
        other => {
            return Err(bad(
                &cfg_path,
                format!("`feed_forward_proj = \"{other}\"` is not supported (relu, gated-gelu)"),
            ));
        }
    };
    if cfg.get("is_encoder_decoder").and_then(|v| v.as_bool()) == Some(false) {
        return Err(bad(&cfg_path, "an encoder-only T5 is not a student"));
    }
    let tie = cfg
        .get("tie_word_embeddings")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let layers = num("num_layers")?;
    let config = T5Config::new(
        num("vocab_size")?,
        num("d_model")?,
        num("d_kv")?,
        num("d_ff")?,
        layers,
        num("num_decoder_layers").unwrap_or(layers),
        num("num_heads")?,
        num("relative_attention_num_buckets").unwrap_or(32),
        num("relative_attention_max_distance").unwrap_or(128),
        gated,
        tie,
        max_seq_len,
    )
    .with_norm_eps(
        cfg.get("layer_norm_epsilon")
            .and_then(|v| v.as_f64())
            .unwrap_or(1e-6),
    )
    .with_decoder_start(
        cfg.get("decoder_start_token_id")
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32,
    )
    .with_eos(
        cfg.get("eos_token_id")
            .and_then(|v| v.as_u64())
            .unwrap_or(1) as u32,
    );
    if config.heads == 0 || config.buckets < 4 {
        return Err(bad(&cfg_path, "needs heads > 0 and at least 4 buckets"));
    }
    // 2. The weights, HF `[out, in]` → burn `[in, out]`.
    let mut by_name = read_safetensors(dir)?;
    let c = config.clone();
    let inner = c.heads * c.d_kv;
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
    let vec1 = |v: Vec<f32>| {
        let n = v.len();
        Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), device))
    };
    let mat = |v: Vec<f32>, s: [usize; 2]| {
        Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, s), device))
    };
    let mut model = c.init(device);
    model.shared.weight = mat(
        take("shared.weight", &[c.vocab_size, c.d_model])?,
        [c.vocab_size, c.d_model],
    );
    let mut linear_in = |lin: &mut Linear, name: &str, i: usize, o: usize| -> Result<()> {
        let w = take(name, &[o, i])?;
        lin.weight = mat(super::readers::transpose(&w, o, i), [i, o]);
        Ok(())
    };
    let norm = |n: &mut RmsNorm, v: Vec<f32>| n.gamma = vec1(v);
    for (l, b) in model.encoder.iter_mut().enumerate() {
        let p = format!("encoder.block.{l}.layer");
        attention_in(
            &mut linear_in,
            &mut b.attn,
            &format!("{p}.0.SelfAttention"),
            c.d_model,
            inner,
        )?;
        ff_in(
            &mut linear_in,
            &mut b.ff,
            &format!("{p}.1.DenseReluDense"),
            c.d_model,
            c.d_ff,
        )?;
    }
    for (l, b) in model.decoder.iter_mut().enumerate() {
        let p = format!("decoder.block.{l}.layer");
        attention_in(
            &mut linear_in,
            &mut b.attn,
            &format!("{p}.0.SelfAttention"),
            c.d_model,
            inner,
        )?;
        attention_in(
            &mut linear_in,
            &mut b.cross,
            &format!("{p}.1.EncDecAttention"),
            c.d_model,
            inner,
        )?;
        ff_in(
            &mut linear_in,
            &mut b.ff,
            &format!("{p}.2.DenseReluDense"),
            c.d_model,
            c.d_ff,
        )?;
    }
    if !tie {
        let mut head = LinearConfig::new(c.d_model, c.vocab_size)
            .with_bias(false)
            .init(device);
        linear_in(&mut head, "lm_head.weight", c.d_model, c.vocab_size)?;
        model.lm_head = Some(head);
    }
    let d = c.d_model;
    for (l, b) in model.encoder.iter_mut().enumerate() {
        let p = format!("encoder.block.{l}.layer");
        norm(
            &mut b.norm1,
            take(&format!("{p}.0.layer_norm.weight"), &[d])?,
        );
        norm(
            &mut b.norm2,
            take(&format!("{p}.1.layer_norm.weight"), &[d])?,
        );
    }
    for (l, b) in model.decoder.iter_mut().enumerate() {
        let p = format!("decoder.block.{l}.layer");
        norm(
            &mut b.norm1,
            take(&format!("{p}.0.layer_norm.weight"), &[d])?,
        );
        norm(
            &mut b.norm2,
            take(&format!("{p}.1.layer_norm.weight"), &[d])?,
        );
        norm(
            &mut b.norm3,
            take(&format!("{p}.2.layer_norm.weight"), &[d])?,
        );
    }
    norm(
        &mut model.encoder_norm,
        take("encoder.final_layer_norm.weight", &[d])?,
    );
    norm(
        &mut model.decoder_norm,
        take("decoder.final_layer_norm.weight", &[d])?,
    );
    let rel = "layer.0.SelfAttention.relative_attention_bias.weight";
    model.encoder_bias.weight = mat(
        take(&format!("encoder.block.0.{rel}"), &[c.buckets, c.heads])?,
        [c.buckets, c.heads],
    );
    model.decoder_bias.weight = mat(
        take(&format!("decoder.block.0.{rel}"), &[c.buckets, c.heads])?,
        [c.buckets, c.heads],
    );
    // 3. The tokenizer.
    let (tok, chat_template) = hf_tokenizer(dir, &cfg_path, &cfg)?;
    Ok((model, config, tok, chat_template))
}

fn attention_in(
    linear_in: &mut impl FnMut(&mut Linear, &str, usize, usize) -> Result<()>,
    a: &mut Attention,
    prefix: &str,
    d: usize,
    inner: usize,
) -> Result<()> {
    linear_in(&mut a.q, &format!("{prefix}.q.weight"), d, inner)?;
    linear_in(&mut a.k, &format!("{prefix}.k.weight"), d, inner)?;
    linear_in(&mut a.v, &format!("{prefix}.v.weight"), d, inner)?;
    linear_in(&mut a.o, &format!("{prefix}.o.weight"), inner, d)
}

fn ff_in(
    linear_in: &mut impl FnMut(&mut Linear, &str, usize, usize) -> Result<()>,
    f: &mut FeedForward,
    prefix: &str,
    d: usize,
    d_ff: usize,
) -> Result<()> {
    for (name, lin) in [
        ("wi", &mut f.wi),
        ("wi_0", &mut f.wi_0),
        ("wi_1", &mut f.wi_1),
    ] {
        if let Some(lin) = lin {
            linear_in(lin, &format!("{prefix}.{name}.weight"), d, d_ff)?;
        }
    }
    linear_in(&mut f.wo, &format!("{prefix}.wo.weight"), d_ff, d)
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_follow_transformers() {
        // transformers' `_relative_position_bucket` with 32 buckets, max distance 128
        // bidirectional: 0 → 0, −1 → 1, +1 → 17, −8 → 8, −20 → 10, −200 → 15, +200 → 31;
        // causal: future → 0, −1 → 1, −20 → 17, −200 → 31 (values printed by transformers
        // 4.57.3's `T5Attention._relative_position_bucket`).
        let bi = |r| bucket(r, true, 32, 128);
        let causal = |r| bucket(r, false, 32, 128);
        assert_eq!(
            [bi(0), bi(-1), bi(1), bi(-8), bi(-20), bi(-200), bi(200)],
            [0, 1, 17, 8, 10, 15, 31]
        );
        assert_eq!(
            [causal(5), causal(-1), causal(-20), causal(-200)],
            [0, 1, 17, 31]
        );
    }
}
