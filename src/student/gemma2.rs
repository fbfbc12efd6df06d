//! Gemma 2 (`Gemma2ForCausalLM`: Gemma-2-2B/9B): the Llama decoder of [`super::llama`] with
//! Gemma's switches on:
//! - the token embedding multiplied by √`hidden_size` (the tied head uses it unscaled);
//! - four RMSNorms per layer: before and after attention, before and after the MLP
//!   (`input_layernorm`, `post_attention_layernorm`, `pre_feedforward_layernorm`,
//!   `post_feedforward_layernorm`), each scaling by `1 + w` ([`LlamaConfig::norm_plus_one`]);
//! - GeGLU (`gelu_pytorch_tanh`) in the MLP;
//! - scores scaled by `query_pre_attn_scalar^(−1/2)` and soft-capped,
//!   `attn_logit_softcapping · tanh(s / attn_logit_softcapping)`, and the logits likewise by
//!   `final_logit_softcapping`;
//! - local layers (a window of `sliding_window`) alternating with global ones, the first local.
//!
//! [`gemma_config`] reads what Gemma 2 and Gemma 3 ([`super::gemma3`]) share.

use super::family::Family;
use super::llama::LlamaConfig;
use super::readers::{bad, hf_f64, hf_layer_types};
use crate::error::Result;
use std::path::Path;

/// The Llama-decoder config of a Gemma 2 `config.json`.
pub fn config(base: LlamaConfig, cfg_path: &Path, cfg: &serde_json::Value) -> Result<LlamaConfig> {
    let c = gemma_config(base.with_family(Family::Gemma2), cfg_path, cfg)?;
    let layers = hf_layer_types(cfg_path, cfg, c.layers, |i| (i + 1) % 2 != 0)?;
    Ok(c.with_sliding_layers(layers))
}

/// What every Gemma shares: √d embeddings, sandwich norms of `1 + w`, GeGLU, the query scale,
/// the soft caps where set, the window, a tied head unless the config unties it.
pub fn gemma_config(
    c: LlamaConfig,
    cfg_path: &Path,
    cfg: &serde_json::Value,
) -> Result<LlamaConfig> {
    let act = cfg
        .get("hidden_activation")
        .or_else(|| cfg.get("hidden_act"))
        .and_then(|v| v.as_str())
        .unwrap_or("gelu_pytorch_tanh");
    if act != "gelu_pytorch_tanh" {
        return Err(bad(
            cfg_path,
            format!(
                "`hidden_activation = \"{act}\"` is not supported for `{}` (only `gelu_pytorch_tanh`)",
                c.family
            ),
        ));
    }
    let tie = cfg
        .get("tie_word_embeddings")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    Ok(c.with_norm_eps(hf_f64(cfg, "rms_norm_eps").unwrap_or(1e-6))
        .with_embed_scale(true)
        .with_sandwich_norms(true)
        .with_norm_plus_one(true)
        .with_gelu_mlp(true)
        .with_tie_embeddings(tie)
        .with_query_pre_attn_scalar(hf_f64(cfg, "query_pre_attn_scalar"))
        .with_attn_softcap(hf_f64(cfg, "attn_logit_softcapping"))
        .with_final_softcap(hf_f64(cfg, "final_logit_softcapping"))
        .with_sliding_window(
            cfg.get("sliding_window")
                .and_then(|v| v.as_u64())
                .map(|w| w as usize),
        ))
}
