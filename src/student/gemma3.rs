//! Gemma 3, text only (`Gemma3ForCausalLM`, `model_type` `gemma3_text`: Gemma-3-270M and
//! Gemma-3-1B; the larger, multimodal checkpoints are `gemma3` and not built): Gemma 2's
//! decoder ([`super::gemma2::gemma_config`]) with
//! - an RMSNorm (`1 + w`) over each query and key head before the rotation (as Qwen3's);
//! - five local layers to each global one (`sliding_window_pattern`, 6, in configs written
//!   before `layer_types`), the local ones rotating with their own base
//!   (`rope_local_base_freq`) and no scaling, the global ones with `rope_theta` and
//!   `rope_scaling` (`linear` in the 4B+ models);
//! - no soft caps in the released models (read where a config sets them).
//!
//! `use_bidirectional_attention` (EmbeddingGemma) is refused: this is a causal student.

use super::family::Family;
use super::llama::LlamaConfig;
use super::readers::{bad, hf_bool, hf_f64, hf_layer_types};
use crate::error::Result;
use std::path::Path;

/// The Llama-decoder config of a Gemma 3 text `config.json`.
pub fn config(base: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    if hf_bool(cfg, "use_bidirectional_attention", false) {
        return Err(bad(
            cfg_path,
            "`use_bidirectional_attention = true` is not supported (morsd's students are causal)",
        ));
    }
    let c = super::gemma2::gemma_config(base.with_family(Family::Gemma3), cfg_path, cfg)?;
    let pattern = cfg
        .get("sliding_window_pattern")
        .and_then(|v| v.as_u64())
        .unwrap_or(6)
        .max(1) as usize;
    let layers = hf_layer_types(cfg_path, cfg, c.layers, |i| (i + 1) % pattern != 0)?;
    Ok(c.with_qk_norm(true)
        .with_rope_theta(hf_f64(cfg, "rope_theta").unwrap_or(1_000_000.0))
        .with_sliding_layers(layers)
        .with_rope_local_theta(Some(hf_f64(cfg, "rope_local_base_freq").unwrap_or(10000.0))))
}
