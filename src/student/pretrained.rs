//! A pretrained checkpoint as a student ([`Pretrained`]): the dispatch on its family. A
//! Hugging Face folder's `config.json` names the family ([`super::readers`]), and GPT-2
//! ([`super::gpt2`]), T5 ([`super::t5`]) or a Llama-style decoder ([`super::checkpoint`], also
//! every `.gguf` file) loads it; [`load_named`] and [`load_pretrained`] start from a model name
//! or a spec.

use super::checkpoint::Checkpoint;
use super::family::Family;
use super::lm::{Lm, LmConfig};
use super::readers::{hf_family, hf_num, read_hf_config};
use super::tokenizer::Tok;
use super::{gpt2, phi3, t5};
use crate::error::Result;
use crate::spec::raw::StudentSpec;
use burn::prelude::*;
use std::path::Path;

/// A pretrained checkpoint loaded as a student.
pub struct Pretrained {
    /// The model, run at the requested length.
    pub model: Lm,
    /// Its architecture.
    pub config: LmConfig,
    /// Its tokenizer.
    pub tok: Tok,
    /// Its family.
    pub family: Family,
    /// The checkpoint's own context length.
    pub context_len: usize,
    /// The chat template it ships, if any.
    pub chat_template: Option<String>,
}

/// Loads a `.gguf` file or a Hugging Face folder of any supported family as a student run at
/// `max_seq_len` tokens. The family comes from the checkpoint itself (`model_type` /
/// `architectures`, GGUF's `general.architecture`).
pub fn load_checkpoint(path: &Path, max_seq_len: usize, device: &Device) -> Result<Pretrained> {
    if path.is_dir() {
        let (cfg_path, cfg) = read_hf_config(path)?;
        match hf_family(&cfg_path, &cfg)? {
            Family::Gpt2 => {
                let context_len = hf_num(&cfg_path, &cfg, "n_positions")?;
                let (m, c, tok, chat_template) = gpt2::load_hf(path, max_seq_len, device)?;
                return Ok(Pretrained {
                    model: Lm::Gpt2(m),
                    config: LmConfig::Gpt2(c),
                    tok,
                    family: Family::Gpt2,
                    context_len,
                    chat_template,
                });
            }
            Family::Phi3 => {
                let context_len = hf_num(&cfg_path, &cfg, "max_position_embeddings")?;
                let (m, c, tok, chat_template) = phi3::load_hf(path, max_seq_len, device)?;
                return Ok(Pretrained {
                    model: Lm::Phi3(m),
                    config: LmConfig::Phi3(c),
                    tok,
                    family: Family::Phi3,
                    context_len,
                    chat_template,
                });
            }
            Family::T5 => {
                // Relative positions: no context limit of its own (512 in T5's training).
                let context_len = hf_num(&cfg_path, &cfg, "n_positions").unwrap_or(512);
                let (m, c, tok, chat_template) = t5::load_hf(path, max_seq_len, device)?;
                return Ok(Pretrained {
                    model: Lm::T5(m),
                    config: LmConfig::T5(c),
                    tok,
                    family: Family::T5,
                    context_len,
                    chat_template,
                });
            }
            _ => {}
        }
    }
    let ck = Checkpoint::load(path)?;
    let context_len = ck.config.max_seq_len;
    let chat_template = ck.chat_template.clone();
    let family = ck.config.family;
    let (m, c, tok) = ck.into_llama(max_seq_len, device)?;
    Ok(Pretrained {
        model: Lm::Llama(m),
        config: LmConfig::Llama(c),
        tok,
        family,
        context_len,
        chat_template,
    })
}

/// The context a checkpoint was trained for, read from its config alone (no weights): GPT-2's
/// `n_positions`, a Llama-style decoder's `max_position_embeddings` (a GGUF's
/// `<arch>.context_length`), T5's `n_positions` where its config has one, else 512 (its
/// relative position buckets set no limit; 512 is the length it was trained at).
pub fn context_len(path: &Path) -> Result<usize> {
    if !path.is_dir() {
        return Checkpoint::gguf_context(path);
    }
    let (cfg_path, cfg) = read_hf_config(path)?;
    Ok(match hf_family(&cfg_path, &cfg)? {
        Family::Gpt2 => hf_num(&cfg_path, &cfg, "n_positions")?,
        Family::T5 => hf_num(&cfg_path, &cfg, "n_positions").unwrap_or(512),
        _ => hf_num(&cfg_path, &cfg, "max_position_embeddings").unwrap_or(2048),
    })
}

/// [`load_named`] at the checkpoint's own context ([`context_len`]), for commands that set no
/// length.
pub fn load_named_at_context(weights: &str, device: &Device) -> Result<Pretrained> {
    let path = crate::models::resolve_weights(weights)?;
    load_checkpoint(&path, context_len(&path)?, device)
}

/// A pretrained checkpoint named the way `student.weights` names one (a model name, a `.gguf`
/// file or a Hugging Face folder), run at `max_seq_len` tokens.
pub fn load_named(weights: &str, max_seq_len: usize, device: &Device) -> Result<Pretrained> {
    let path = crate::models::resolve_weights(weights)?;
    load_checkpoint(&path, max_seq_len, device)
}

/// The pretrained checkpoint a spec's `[student]` names, as a student run at
/// `student.max_seq_len`. A `kind` that names a family (`llama`, `qwen2` …) must be the
/// checkpoint's: a mismatch is an error naming both (`kind = "pretrained"` takes any).
pub fn load_pretrained(spec: &StudentSpec, device: &Device) -> Result<Pretrained> {
    let weights = spec.weights.as_deref().unwrap_or_default();
    let p = load_named(weights, spec.max_seq_len, device)?;
    if let Some(want) = Family::from_model_type(&spec.kind)
        && want != p.family
    {
        return Err(crate::error::Error::Input {
            path: crate::models::resolve_weights(weights)?,
            message: format!(
                "student.kind = \"{want}\" but this checkpoint is a `{}` model (set student.kind = \"{}\" or \"pretrained\")",
                p.family, p.family
            ),
        });
    }
    Ok(p)
}
