//! Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`): the Llama decoder of [`super::llama`] with biases on
//! the query, key and value projections (the output projection and the MLP have none), its own
//! RoPE base (10⁶ in the released models) and a head that is tied in the small models
//! (`tie_word_embeddings`) and untied in the large ones.
//!
//! What is the family's own is its reading of `config.json` ([`config`]); the weights are
//! Llama's names plus `self_attn.{q,k,v}_proj.bias`, which [`super::checkpoint`] loads when
//! [`LlamaConfig::qkv_bias`] is set.

use super::family::Family;
use super::llama::LlamaConfig;
use crate::error::{Error, Result};
use std::path::Path;

/// The Llama-decoder config of a Qwen2 `config.json`, read as Llama's: q/k/v biases on.
/// Sliding-window attention (`use_sliding_window = true`) is not built, so such a config is an
/// error rather than a silently different model.
pub fn config(base: LlamaConfig, cfg: &serde_json::Value, path: &Path) -> Result<LlamaConfig> {
    if cfg.get("use_sliding_window").and_then(|v| v.as_bool()) == Some(true) {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: "`use_sliding_window = true`: sliding-window attention is not supported"
                .into(),
        });
    }
    Ok(base.with_family(Family::Qwen2).with_qkv_bias(true))
}
