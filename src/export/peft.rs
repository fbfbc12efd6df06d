//! `--format peft`: a LoRA run's adapters as PEFT writes them, for
//! `peft.PeftModel.from_pretrained(base, DIR)`: `adapter_model.safetensors` (the train entry
//! holds it in that layout already, see [`crate::student::lora`]), `adapter_config.json` with
//! `base_model_name_or_path`, and `base.json`: the base checkpoint's identity (how the spec
//! named it, its file hashes and their combined content hash).
//!
//! With `--with-base`, the base itself is written under `base/` as a Hugging Face folder (f32):
//! for a base transformers cannot read as it is (SmolLM2's Q4_1 GGUF), that folder is the
//! model the adapters load onto.

use super::{Dtype, Loaded, RunInfo};
use crate::error::{Error, IoContext, Result};
use crate::student::Lm;
use crate::student::lora::{ADAPTER_CONFIG, ADAPTER_FILE};
use serde_json::{Value, json};
use std::path::Path;

/// Writes the adapters (and with `with_base`, `base/`) into `dir`.
pub fn write(entry: &Path, loaded: &Loaded, with_base: bool, dir: &Path) -> Result<()> {
    let base = loaded
        .base
        .as_ref()
        .ok_or_else(|| Error::run("a LoRA entry without its base checkpoint"))?;
    // 1. The adapters, byte for byte as the entry holds them.
    std::fs::copy(entry.join(ADAPTER_FILE), dir.join(ADAPTER_FILE)).at(entry.join(ADAPTER_FILE))?;
    // 2. PEFT's config, naming the base the way transformers users know it.
    let mut cfg: Value = crate::files::read_json(&entry.join(ADAPTER_CONFIG))?;
    let name = if with_base {
        "base".to_string()
    } else {
        base.hub_id
            .clone()
            .unwrap_or_else(|| base.path.display().to_string())
    };
    cfg["base_model_name_or_path"] = json!(name);
    crate::files::write_json(&dir.join(ADAPTER_CONFIG), &cfg)?;
    let files = loaded
        .family
        .base
        .as_ref()
        .map(|b| json!(b.files))
        .unwrap_or(Value::Null);
    crate::files::write_json(
        &dir.join("base.json"),
        &json!({
            "weights": base.weights,
            "path": base.path,
            "hub_id": base.hub_id,
            "content_hash": base.content_hash,
            "files_blake3": files,
        }),
    )?;
    // 3. The base as a Hugging Face folder, on request.
    if with_base {
        let Lm::Llama(_) = &loaded.model else {
            return Err(Error::run("--with-base: not a Llama-family base"));
        };
        let plain = Loaded {
            model: Lm::Llama(
                crate::student::checkpoint::Checkpoint::load(&base.path)?
                    .into_llama(base.context_len, &burn::prelude::Device::flex())?
                    .0,
            ),
            tok: loaded.tok.clone(),
            family: loaded.family.clone(),
            base: Some(base.clone()),
        };
        let sub = dir.join("base");
        std::fs::create_dir_all(&sub).at(&sub)?;
        let info = RunInfo {
            max_new_tokens: 256,
            ..RunInfo::default()
        };
        super::hf::write(entry, &plain, &info, Dtype::F32, &sub)?;
    }
    Ok(())
}
