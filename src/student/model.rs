//! The scratch student: a small GPT-style decoder-only transformer, in one file.
//!
//! token + learned position embeddings → `layers` × [LayerNorm → causal multi-head attention →
//! residual → LayerNorm → GELU MLP → residual] → LayerNorm → linear head over the vocabulary.
//! Position ids are passed in, so left-padded batches (decoding) and right-padded batches
//! (training, scoring) use the same code; an additive attention bias carries the causal and
//! key-padding masks.

use super::batch::{KvCache, extend_cache};
// The batch types, kept at their old paths here.
pub use super::batch::{Batch, EncoderInput};
use crate::kernels::{attention, gelu, layer_norm, linear, linear_split};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

/// Architecture of the scratch student (built from the user's `[student]` section).
#[derive(Config, Debug)]
pub struct StudentConfig {
    /// Vocabulary size (from the trained tokenizer).
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP hidden width.
    pub d_ff: usize,
    /// Longest sequence (size of the position table).
    pub max_seq_len: usize,
}

impl StudentConfig {
    /// Builds the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> Student {
        let blocks = (0..self.layers)
            .map(|_| Block::new(self.d_model, self.heads, self.d_ff, false, device))
            .collect();
        Student {
            tok: EmbeddingConfig::new(self.vocab_size, self.d_model).init(device),
            pos: EmbeddingConfig::new(self.max_seq_len, self.d_model).init(device),
            blocks,
            norm: LayerNormConfig::new(self.d_model).init(device),
            head: LinearConfig::new(self.d_model, self.vocab_size)
                .with_bias(false)
                .init(device),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// One pre-norm transformer block (also GPT-2's, [`super::gpt2`]).
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before attention (GPT-2 `ln_1`).
    pub(crate) ln1: LayerNorm,
    /// Fused q/k/v projection `[d, 3d]` (GPT-2 `attn.c_attn`).
    pub(crate) qkv: Linear,
    /// Attention output projection (GPT-2 `attn.c_proj`).
    pub(crate) proj: Linear,
    /// LayerNorm before the MLP (GPT-2 `ln_2`).
    pub(crate) ln2: LayerNorm,
    /// MLP up (GPT-2 `mlp.c_fc`).
    pub(crate) up: Linear,
    /// MLP down (GPT-2 `mlp.c_proj`).
    pub(crate) down: Linear,
    pub(crate) heads: usize,
    /// GPT-2's tanh approximation of GELU (`gelu_new`) instead of the exact (erf) one.
    pub(crate) tanh_gelu: bool,
}

impl Block {
    /// A block of width `d` with `heads` heads and MLP width `d_ff`, freshly initialised;
    /// `tanh_gelu` for GPT-2's GELU.
    pub(crate) fn new(
        d: usize,
        heads: usize,
        d_ff: usize,
        tanh_gelu: bool,
        device: &Device,
    ) -> Self {
        Block {
            ln1: LayerNormConfig::new(d).init(device),
            qkv: LinearConfig::new(d, 3 * d).init(device),
            proj: LinearConfig::new(d, d).init(device),
            ln2: LayerNormConfig::new(d).init(device),
            up: LinearConfig::new(d, d_ff).init(device),
            down: LinearConfig::new(d_ff, d).init(device),
            heads,
            tanh_gelu,
        }
    }

    /// The block on `x` `[b, t, d]`; with `cache` (decoding), attending also to the cached keys
    /// and values, which it extends (`bias` then covers `[b, 1, t, cached + t]`).
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        bias: Tensor<4>,
        cache: Option<&mut Option<(Tensor<4>, Tensor<4>)>>,
    ) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let hd = d / self.heads;
        // 1. Queries, keys and values per head: [b, heads, t, hd] (three products with the
        //    fused projection's column blocks).
        let [q, mut k, mut v] = linear_split::<3, 3>(&self.qkv, layer_norm(&self.ln1, x.clone()))
            .map(|y| y.reshape([b, t, self.heads, hd]).swap_dims(1, 2));
        // 2. Decoding: prepend the cached keys/values and remember the extended ones.
        if let Some(slot) = cache {
            (k, v) = extend_cache(slot, k, v);
        }
        // 3. Scaled dot-product attention with the additive mask (causal + padding), the
        //    heads merged back into [b, t, d].
        let att = attention(q, k, v, bias, 1.0 / (hd as f32).sqrt(), 1);
        // 4. Project, residual.
        let x = x + linear(&self.proj, att);
        // 5. MLP, residual.
        let up = linear(&self.up, layer_norm(&self.ln2, x.clone()));
        let act = if self.tanh_gelu {
            burn::tensor::activation::gelu_approximate(up)
        } else {
            gelu(up)
        };
        x + linear(&self.down, act)
    }
}

/// The student model.
#[derive(Module, Debug)]
pub struct Student {
    tok: Embedding,
    pos: Embedding,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
    max_seq_len: usize,
}

impl Student {
    /// Final hidden states `[b, t, d]`.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        let mut x = self.tok.forward(batch.ids.clone()) + self.pos.forward(batch.pos.clone());
        for block in &self.blocks {
            x = block.forward(x, batch.bias.clone(), None);
        }
        layer_norm(&self.norm, x)
    }

    /// Like [`Student::hidden`], attending also to (and extending) `cache`. (Decoding recomputes
    /// the scratch student's prefix instead, the way its reference results were made.)
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        pos: &Tensor<2, Int>,
        bias: Tensor<4>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        cache.fit(self.blocks.len());
        let mut x = self.tok.forward(ids) + self.pos.forward(pos.clone());
        for (block, slot) in self.blocks.iter().zip(&mut cache.layers) {
            x = block.forward(x, bias.clone(), Some(slot));
        }
        layer_norm(&self.norm, x)
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        linear(&self.head, h)
    }

    /// Longest sequence the model accepts.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
}

/// A scratch student's tensors in burn's layout (`Linear` weights `[in, out]`), for export:
/// `(weight, bias)` pairs, a missing bias (or LayerNorm shift) as zeros.
pub struct Parts {
    /// Token embedding `[vocab, d]`.
    pub tok: Tensor<2>,
    /// Position embedding `[max_seq_len, d]`.
    pub pos: Tensor<2>,
    /// Per block.
    pub blocks: Vec<BlockParts>,
    /// Final LayerNorm (gamma, beta).
    pub norm: (Tensor<1>, Tensor<1>),
    /// Output head `[d, vocab]` (no bias).
    pub head: Tensor<2>,
    /// LayerNorm epsilon.
    pub eps: f64,
}

/// One block's tensors.
pub struct BlockParts {
    /// LayerNorm before attention.
    pub ln1: (Tensor<1>, Tensor<1>),
    /// Fused q/k/v projection `[d, 3d]`.
    pub qkv: (Tensor<2>, Tensor<1>),
    /// Attention output projection `[d, d]`.
    pub proj: (Tensor<2>, Tensor<1>),
    /// LayerNorm before the MLP.
    pub ln2: (Tensor<1>, Tensor<1>),
    /// MLP up `[d, d_ff]`.
    pub up: (Tensor<2>, Tensor<1>),
    /// MLP down `[d_ff, d]`.
    pub down: (Tensor<2>, Tensor<1>),
}

impl BlockParts {
    /// The tensors of `b` (GPT-2's blocks are this type too).
    pub fn of(b: &Block) -> Self {
        BlockParts {
            ln1: ln_parts(&b.ln1),
            qkv: linear_parts(&b.qkv),
            proj: linear_parts(&b.proj),
            ln2: ln_parts(&b.ln2),
            up: linear_parts(&b.up),
            down: linear_parts(&b.down),
        }
    }
}

/// A LayerNorm's (gamma, beta), a missing beta as zeros.
pub fn ln_parts(n: &LayerNorm) -> (Tensor<1>, Tensor<1>) {
    let g = n.gamma.val();
    let b = n
        .beta
        .as_ref()
        .map(|b| b.val())
        .unwrap_or_else(|| g.zeros_like());
    (g, b)
}

fn linear_parts(l: &Linear) -> (Tensor<2>, Tensor<1>) {
    let w = l.weight.val();
    let out = w.dims()[1];
    let b = l
        .bias
        .as_ref()
        .map(|b| b.val())
        .unwrap_or_else(|| Tensor::zeros([out], &w.device()));
    (w, b)
}

impl Student {
    /// The tensors, for export.
    pub fn parts(&self) -> Parts {
        Parts {
            tok: self.tok.weight.val(),
            pos: self.pos.weight.val(),
            blocks: self.blocks.iter().map(BlockParts::of).collect(),
            norm: ln_parts(&self.norm),
            head: self.head.weight.val(),
            // As written (1e-5), not the f32 constant widened.
            eps: crate::kernels::layer_norm::EPS
                .to_string()
                .parse()
                .unwrap_or(1e-5),
        }
    }
}
