//! Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`): the Llama decoder of [`super::llama`] with biases on
//! the query, key and value projections (the output projection and the MLP have none), its own
//! RoPE base (10⁶ in the released models) and a head that is tied in the small models
//! (`tie_word_embeddings`) and untied in the large ones.
//!
//! What is the family's own is its reading of `config.json` ([`config`]); the weights are
//! Llama's names plus `self_attn.{q,k,v}_proj.bias`, which [`super::checkpoint`] loads when
//! [`LlamaConfig::qkv_bias`] is set. Sliding-window attention, which no released Qwen2 model
//! enables, is built as transformers builds it ([`sliding`], shared with Qwen3).

use super::family::Family;
use super::llama::LlamaConfig;
use super::readers::{hf_bool, hf_layer_types};
use crate::error::Result;
use std::path::Path;

/// The Llama-decoder config of a Qwen2 `config.json`, read as Llama's: q/k/v biases on.
pub fn config(base: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    sliding(
        base.with_family(Family::Qwen2).with_qkv_bias(true),
        cfg_path,
        cfg,
    )
}

/// Qwen's sliding windows: only with `use_sliding_window = true` (the released configs set a
/// `sliding_window` of 4096 or more and leave it off); then `layer_types`, or, in configs
/// written before it, every layer from `max_window_layers` on.
pub fn sliding(c: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    if !hf_bool(cfg, "use_sliding_window", false) {
        return Ok(c);
    }
    let Some(w) = cfg.get("sliding_window").and_then(|v| v.as_u64()) else {
        return Ok(c);
    };
    let first = cfg
        .get("max_window_layers")
        .and_then(|v| v.as_u64())
        .unwrap_or(28) as usize;
    let layers = hf_layer_types(cfg_path, cfg, c.layers, |i| i >= first)?;
    Ok(c.with_sliding_window(Some(w as usize))
        .with_sliding_layers(layers))
}
