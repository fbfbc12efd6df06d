//! Qwen3 (`Qwen3ForCausalLM`): the Llama decoder of [`super::llama`] with an RMSNorm over each
//! query and key head (`self_attn.q_norm`, `self_attn.k_norm`, weight `[head_dim]`) applied
//! before the rotation, no biases, and a head width set by the
//! config (`head_dim`, e.g. 128 in Qwen3-0.6B, where `hidden_size / num_attention_heads` is 64).
//!
//! What is the family's own is its reading of `config.json` ([`config`]); the per-head norm
//! ([`super::llama::head_norm`]) is applied by [`super::llama::LlamaBlock`] when
//! [`LlamaConfig::qk_norm`] is set.

use super::family::Family;
use super::llama::LlamaConfig;
use crate::error::Result;
use std::path::Path;

/// The Llama-decoder config of a Qwen3 `config.json`: per-head q/k norms (its `head_dim`, read
/// for every Llama-style family, sets the head width; `attention_bias` is refused by the
/// checkpoint reader), sliding windows as Qwen2's ([`super::qwen2::sliding`]).
pub fn config(base: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    super::qwen2::sliding(
        base.with_family(Family::Qwen3).with_qk_norm(true),
        cfg_path,
        cfg,
    )
}
