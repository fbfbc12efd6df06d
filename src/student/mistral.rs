//! Mistral (`MistralForCausalLM`: Mistral-7B, Ministral's text models' ancestors): the Llama
//! decoder of [`super::llama`] whose every layer attends through a sliding window of
//! `sliding_window` tokens (a query sees itself and the `sliding_window − 1` tokens before it;
//! `null` turns it off, as in Mistral-7B v0.2+). Weights and LoRA modules are Llama's.

use super::family::Family;
use super::llama::LlamaConfig;
use super::readers::hf_layer_types;
use crate::error::Result;
use std::path::Path;

/// The Llama-decoder config of a Mistral `config.json`: every layer local when
/// `sliding_window` is set (or as `layer_types` says, where a config has it).
pub fn config(base: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    let c = base.with_family(Family::Mistral);
    let Some(w) = cfg.get("sliding_window").and_then(|v| v.as_u64()) else {
        return Ok(c);
    };
    let layers = hf_layer_types(cfg_path, cfg, c.layers, |_| true)?;
    Ok(c.with_sliding_window(Some(w as usize))
        .with_sliding_layers(layers))
}
