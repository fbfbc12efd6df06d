//! Qwen3 (`Qwen3ForCausalLM`): the Llama decoder of [`super::llama`] with an RMSNorm over each
//! query and key head (`self_attn.q_norm`, `self_attn.k_norm`, weight `[head_dim]`) applied
//! before the rotation, no biases, and a head width set by the
//! config (`head_dim`, e.g. 128 in Qwen3-0.6B, where `hidden_size / num_attention_heads` is 64).
//!
//! What is the family's own: its reading of `config.json` ([`config`]) and the per-head norm
//! ([`head_norm`]), which [`super::llama::LlamaBlock`] calls when [`LlamaConfig::qk_norm`] is set.

use super::family::Family;
use super::llama::LlamaConfig;
use crate::kernels::rms_norm;
use burn::nn::RmsNorm;
use burn::prelude::*;

/// The Llama-decoder config of a Qwen3 `config.json`: per-head q/k norms (its `head_dim`, read
/// for every Llama-style family, sets the head width; `attention_bias` and sliding windows are
/// refused by the checkpoint reader).
pub fn config(base: LlamaConfig) -> LlamaConfig {
    base.with_family(Family::Qwen3).with_qk_norm(true)
}

/// RMSNorm over the last axis of per-head queries or keys `[b, t, heads, hd]`.
pub fn head_norm(norm: &RmsNorm, x: Tensor<4>) -> Tensor<4> {
    let [b, t, n, hd] = x.dims();
    rms_norm(norm, x.reshape([b, t * n, hd])).reshape([b, t, n, hd])
}
