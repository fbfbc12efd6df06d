//! Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`): the Llama decoder of [`super::llama`] with biases on
//! the query, key and value projections (the output projection and the MLP have none), its own
//! RoPE base (10⁶ in the released models) and a head that is tied in the small models
//! (`tie_word_embeddings`) and untied in the large ones.
//!
//! What is the family's own is its reading of `config.json` ([`config`]); the weights are
//! Llama's names plus `self_attn.{q,k,v}_proj.bias`, which [`super::checkpoint`] loads when
//! [`LlamaConfig::qkv_bias`] is set. (Sliding-window attention, which no released Qwen2 model
//! enables, is refused for every Llama-style family by the checkpoint reader.)

use super::family::Family;
use super::llama::LlamaConfig;

/// The Llama-decoder config of a Qwen2 `config.json`, read as Llama's: q/k/v biases on.
pub fn config(base: LlamaConfig) -> LlamaConfig {
    base.with_family(Family::Qwen2).with_qkv_bias(true)
}
