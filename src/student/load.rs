//! The one loader that turns a train entry folder into an [`Lm`] (eval, `morsd generate`,
//! `morsd export` all come here), and the record of a pretrained student's base checkpoint.
//!
//! A train entry holds `student.json` (its family) and `config.json` (the resolved burn model
//! config), plus either
//! - `model.bpk` and `tokenizer.json`: every weight (scratch students, full fine-tuning), or
//! - the LoRA adapters in PEFT's layout ([`super::lora::ADAPTER_FILE`]) and the base
//!   checkpoint's identity ([`Base`]): the base is loaded again (weights and tokenizer),
//!   checked against its recorded content hashes, and the adapters are folded into it.

use super::lora;
use super::tokenizer::Tok;
use super::{Gpt2Config, LlamaConfig, Lm, LmConfig, StudentConfig};
use crate::error::{Error, Result};
use crate::files::read_json;
use burn::config::Config;
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `student.json` of a train entry says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryStudent {
    /// `scratch`, `llama` (a Llama-style decoder: Llama, Qwen2, Qwen3) or `gpt2`.
    pub kind: String,
    /// The pretrained base (pretrained students).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Base>,
    /// LoRA settings when the entry holds adapters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraInfo>,
}

/// A pretrained base checkpoint's identity: how the spec named it, where it was, and the
/// BLAKE3 of each of its files (the same sums the train stage's key holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Base {
    /// `student.weights` as the spec wrote it (a model name, a `.gguf` file, a folder).
    pub weights: String,
    /// The file or folder it resolved to when the entry was trained.
    pub path: PathBuf,
    /// BLAKE3 per file (`weights` for a single file, `weights/<name>` for a folder's files).
    pub files: BTreeMap<String, String>,
}

/// The adapters an entry holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoraInfo {
    /// Rank.
    pub rank: usize,
    /// Scaling numerator (`alpha / rank` multiplies `a·b`).
    pub alpha: f64,
    /// Target modules (Hugging Face names).
    pub targets: Vec<String>,
}

impl Base {
    /// The identity of the checkpoint `weights` names now.
    pub fn of(weights: &str) -> Result<Self> {
        let path = crate::models::resolve_weights(weights)?;
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let mut files = BTreeMap::new();
        for (name, p) in crate::models::weight_files(&path)? {
            let sum = crate::cache::file_sum(&p).map_err(|e| Error::Input {
                path: p.clone(),
                message: format!("base checkpoint: {e}"),
            })?;
            files.insert(name, sum.blake3);
        }
        Ok(Base {
            weights: weights.to_string(),
            path,
            files,
        })
    }

    /// A short content hash of the whole checkpoint (BLAKE3 over the per-file sums).
    pub fn content_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        for (name, sum) in &self.files {
            h.update(name.as_bytes());
            h.update(b"\0");
            h.update(sum.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    }

    /// Finds the recorded base again: its recorded path, else `weights` resolved today; the
    /// file hashes must match the recorded ones.
    pub fn locate(&self) -> Result<PathBuf> {
        let mut tried = Vec::new();
        for candidate in [
            Some(self.path.clone()),
            crate::models::resolve_weights(&self.weights).ok(),
        ]
        .into_iter()
        .flatten()
        {
            if !candidate.exists() {
                continue;
            }
            let now = Base::of(&candidate.to_string_lossy())?;
            if now.files == self.files {
                return Ok(candidate);
            }
            tried.push(candidate.display().to_string());
        }
        Err(Error::Input {
            path: self.path.clone(),
            message: format!(
                "the base checkpoint `{}` this LoRA entry was trained on is gone or changed (looked at: {}); its content hash was {}",
                self.weights,
                if tried.is_empty() {
                    "nothing found".to_string()
                } else {
                    format!("{} (different contents)", tried.join(", "))
                },
                &self.content_hash()[..16]
            ),
        })
    }
}

/// Reads `student.json` of a train entry (entries from before it existed are scratch).
pub fn entry_student(dir: &Path) -> Result<EntryStudent> {
    let p = dir.join("student.json");
    if !p.exists() {
        return Ok(EntryStudent {
            kind: "scratch".into(),
            base: None,
            lora: None,
        });
    }
    read_json(&p)
}

/// Whether `dir` looks like a train entry folder.
pub fn is_entry(dir: &Path) -> bool {
    dir.join("config.json").exists()
        && ((dir.join("model.bpk").exists() && dir.join("tokenizer.json").exists())
            || dir.join(lora::ADAPTER_FILE).exists())
}

/// What a loaded base checkpoint says beyond its weights (export's model card and configs).
#[derive(Debug, Clone)]
pub struct BaseMeta {
    /// Where the base was found (hashes checked).
    pub path: PathBuf,
    /// Its own context length (not the run's `student.max_seq_len`).
    pub context_len: usize,
    /// Its chat template.
    pub chat_template: Option<String>,
}

impl BaseMeta {
    /// Finds `base` again (hashes checked) and reads its metadata.
    pub fn of(base: &Base) -> Result<Self> {
        let path = base.locate()?;
        let p = super::load_checkpoint(&path, 1, &Device::flex())?;
        Ok(Self::from_pretrained(path, &p))
    }

    fn from_pretrained(path: PathBuf, p: &super::Pretrained) -> Self {
        BaseMeta {
            path,
            context_len: p.context_len,
            chat_template: p.chat_template.clone(),
        }
    }
}

/// The pretrained architecture a train entry's `config.json` stores for its `kind`.
fn entry_config(kind: &str, cfg: &Path) -> Result<LmConfig> {
    let cfg_err = |e: &dyn std::fmt::Display| Error::Input {
        path: cfg.to_path_buf(),
        message: e.to_string(),
    };
    match kind {
        "llama" => Ok(LmConfig::Llama(
            LlamaConfig::read(cfg).map_err(|e| cfg_err(&e))?,
        )),
        "phi3" => Ok(LmConfig::Phi3(
            super::phi3::Phi3Config::load(cfg).map_err(|e| cfg_err(&e))?,
        )),
        "gpt2" => Ok(LmConfig::Gpt2(
            Gpt2Config::load(cfg).map_err(|e| cfg_err(&e))?,
        )),
        "t5" => Ok(LmConfig::T5(
            super::T5Config::load(cfg).map_err(|e| cfg_err(&e))?,
        )),
        k => Err(Error::Input {
            path: cfg.with_file_name("student.json"),
            message: format!("unknown student kind `{k}` (known: scratch, llama, phi3, gpt2, t5)"),
        }),
    }
}

/// Loads a trained student from a train entry folder.
pub fn load_student(dir: &Path, device: &Device) -> Result<(Lm, Tok)> {
    load_student_with_base(dir, device).map(|(m, t, _)| (m, t))
}

/// As [`load_student`], with the base's metadata when loading it was part of the work (a LoRA
/// entry), so a caller that needs it does not find, hash and read the base a second time.
pub fn load_student_with_base(dir: &Path, device: &Device) -> Result<(Lm, Tok, Option<BaseMeta>)> {
    let cfg = dir.join("config.json");
    let cfg_err = |e: &dyn std::fmt::Display| Error::Input {
        path: cfg.clone(),
        message: e.to_string(),
    };
    let family = entry_student(dir)?;
    // 1. An adapters-only LoRA entry: the base again (hash checked), adapters folded in.
    if let Some(info) = &family.lora {
        let base = family.base.as_ref().ok_or_else(|| Error::Input {
            path: dir.join("student.json"),
            message: "a LoRA entry without its `base`".into(),
        })?;
        let config = entry_config(&family.kind, &cfg)?;
        let path = base.locate()?;
        let p = super::load_checkpoint(&path, config.max_seq_len(), device)?;
        let meta = BaseMeta::from_pretrained(path, &p);
        let (m, tok) = (p.model, p.tok);
        let adapters = lora::read_adapters(dir)?;
        let want = (info.alpha / info.rank as f64 - adapters.scale).abs();
        if want > 1e-12 {
            return Err(Error::Input {
                path: dir.join(lora::ADAPTER_CONFIG),
                message: "its r / lora_alpha disagree with student.json".into(),
            });
        }
        let model = lora::apply_adapters(m, &adapters, dir)?;
        return Ok((model, tok, Some(meta)));
    }
    // 2. Every weight in `model.bpk`, the tokenizer beside it.
    let tok = Tok::load(&dir.join("tokenizer.json"))?;
    let model = match family.kind.as_str() {
        "scratch" => Lm::Scratch(
            StudentConfig::load(&cfg)
                .map_err(|e| cfg_err(&e))?
                .init(device),
        ),
        kind => entry_config(kind, &cfg)?.init(device),
    };
    let bpk = dir.join("model.bpk");
    let record = burn::store::ModuleRecord::load(&bpk).map_err(|e| Error::Input {
        path: bpk.clone(),
        message: e.to_string(),
    })?;
    let model = model.try_load_record(record).map_err(|e| Error::Input {
        path: bpk.clone(),
        message: e.to_string(),
    })?;
    Ok((model, tok, None))
}
