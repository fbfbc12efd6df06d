//! The Hugging Face files every pretrained family reads, with no family of their own:
//! `config.json` (its family, its numbers), every `*.safetensors` shard (tensors as f32
//! [`Weight`]s), `tokenizer.json` with its special ids and chat template, and the input error
//! they report ([`bad`]). The families ([`super::checkpoint`] for the Llama-style decoders,
//! [`super::gpt2`], [`super::t5`]) build on these; the choice between them is
//! [`super::pretrained`]'s.

use super::family::Family;
use super::tokenizer::Tok;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One weight: row-major shape (PyTorch order, e.g. `[d_out, d_in]`) and f32 values.
pub struct Weight {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// An input error about `path`.
pub(crate) fn bad(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A row-major `[rows, cols]` matrix transposed to row-major `[cols, rows]` (Hugging Face's
/// `[out, in]` ↔ burn's `[in, out]`, PEFT's factors ↔ burn's).
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; data.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = data[i * cols + j];
        }
    }
    out
}

/// The family a Hugging Face config names: its `model_type`, else its `architectures`. A
/// family morsd does not build would load as the wrong model (a Qwen2 folder's q/k/v biases
/// silently dropped), so it is an error naming the family and the supported ones.
pub fn hf_family(cfg_path: &Path, cfg: &serde_json::Value) -> Result<Family> {
    let model_type = cfg.get("model_type").and_then(|v| v.as_str());
    let archs: Vec<&str> = cfg
        .get("architectures")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if let Some(t) = model_type {
        return Family::from_model_type(t).ok_or_else(|| {
            bad(
                cfg_path,
                format!(
                    "model family `{t}` (`model_type`) is not supported; morsd loads: {}",
                    Family::supported()
                ),
            )
        });
    }
    if let Some(f) = archs.iter().find_map(|a| Family::from_architecture(a)) {
        return Ok(f);
    }
    Err(bad(
        cfg_path,
        if archs.is_empty() {
            format!(
                "names no model family (neither `model_type` nor `architectures`); morsd loads: {}",
                Family::supported()
            )
        } else {
            format!(
                "architecture `{}` (`architectures`) is not supported; morsd loads: {}",
                archs.join(", "),
                Family::supported()
            )
        },
    ))
}

/// A Hugging Face folder's `config.json`: its path and contents.
pub fn read_hf_config(dir: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| bad(&cfg_path, e))?;
    let cfg = serde_json::from_str(&text).map_err(|e| bad(&cfg_path, format!("not JSON: {e}")))?;
    Ok((cfg_path, cfg))
}

/// A number `config.json` must have.
pub fn hf_num(cfg_path: &Path, cfg: &serde_json::Value, k: &str) -> Result<usize> {
    cfg.get(k)
        .and_then(serde_json::Value::as_u64)
        .map(|x| x as usize)
        .ok_or_else(|| bad(cfg_path, format!("`{k}` missing or not a number")))
}

/// A number of `config.json` that may be absent or null (`None` then).
pub fn hf_f64(cfg: &serde_json::Value, k: &str) -> Option<f64> {
    cfg.get(k).and_then(serde_json::Value::as_f64)
}

/// A flag of `config.json` (absent or null: `default`).
pub fn hf_bool(cfg: &serde_json::Value, k: &str, default: bool) -> bool {
    cfg.get(k)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(default)
}

/// Which of the `layers` layers attend through a sliding window: `layer_types`
/// (`sliding_attention` or `full_attention` per layer) when the config has it, else
/// `default(layer)`, the family's rule for configs written before `layer_types` existed. Any
/// other attention type (`chunked_attention` …), or a list of the wrong length, is an error.
pub fn hf_layer_types(
    cfg_path: &Path,
    cfg: &serde_json::Value,
    layers: usize,
    default: impl Fn(usize) -> bool,
) -> Result<Vec<bool>> {
    let Some(types) = cfg.get("layer_types").and_then(|v| v.as_array()) else {
        return Ok((0..layers).map(default).collect());
    };
    if types.len() != layers {
        return Err(bad(
            cfg_path,
            format!(
                "`layer_types` has {} entries for {layers} layers",
                types.len()
            ),
        ));
    }
    types
        .iter()
        .enumerate()
        .map(|(i, t)| match t.as_str() {
            Some("sliding_attention") => Ok(true),
            Some("full_attention") => Ok(false),
            other => Err(bad(
                cfg_path,
                format!(
                    "`layer_types[{i}]` = {} is not supported (morsd builds `sliding_attention` and `full_attention`)",
                    other.map_or_else(|| t.to_string(), |x| format!("`{x}`"))
                ),
            )),
        })
        .collect()
}

/// Every tensor of a Hugging Face folder's `*.safetensors` shards, by name, with its storage
/// type.
pub fn read_safetensors(dir: &Path) -> Result<HashMap<String, (String, candle_core::Tensor)>> {
    let mut by_name = HashMap::new();
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(bad(dir, "no *.safetensors file in this folder"));
    }
    for shard in &shards {
        let tensors = candle_core::safetensors::load(shard, &candle_core::Device::Cpu)
            .map_err(|e| bad(shard, format!("not a safetensors file: {e}")))?;
        for (k, t) in tensors {
            by_name.insert(k, (format!("{:?}", t.dtype()), t));
        }
    }
    Ok(by_name)
}

/// Takes tensor `name` out of `by_name` as f32 ([`Weight`]) with its storage type.
pub fn take_hf(
    dir: &Path,
    by_name: &mut HashMap<String, (String, candle_core::Tensor)>,
    name: &str,
) -> Result<(Weight, String)> {
    let (dtype, t) = by_name
        .remove(name)
        .ok_or_else(|| bad(dir, format!("no tensor `{name}` in the safetensors files")))?;
    let shape = t.dims().to_vec();
    let data = t
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| bad(dir, format!("tensor `{name}`: {e}")))?;
    Ok((Weight { shape, data }, dtype))
}

/// A Hugging Face folder's tokenizer (`tokenizer.json`) with its special ids (`config.json`'s,
/// else the usual names) and the chat template of `tokenizer_config.json`, if any.
pub fn hf_tokenizer(
    dir: &Path,
    cfg_path: &Path,
    cfg: &serde_json::Value,
) -> Result<(Tok, Option<String>)> {
    let tok_path = dir.join("tokenizer.json");
    let inner = tokenizers::Tokenizer::from_file(&tok_path)
        .map_err(|e| bad(&tok_path, format!("not a tokenizer.json: {e}")))?;
    let id_of = |key: &str, names: &[&str]| -> Option<u32> {
        cfg.get(key)
            .and_then(|v| v.as_u64().or_else(|| v.get(0).and_then(|x| x.as_u64())))
            .map(|x| x as u32)
            .or_else(|| names.iter().find_map(|n| inner.token_to_id(n)))
    };
    let eos = id_of("eos_token_id", &["<|im_end|>", "</s>", "<|endoftext|>"]).ok_or_else(|| {
        bad(
            cfg_path,
            "no `eos_token_id` and no known end-of-sequence token",
        )
    })?;
    let pad = id_of("pad_token_id", &[]).unwrap_or(eos);
    let chat_template = std::fs::read_to_string(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("chat_template")?.as_str().map(String::from));
    Ok((Tok::new(inner, pad, eos), chat_template))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layer_types_or_the_familys_rule_and_unknown_types_named() {
        let p = Path::new("config.json");
        // Without `layer_types`: the family's rule.
        let got = hf_layer_types(p, &json!({}), 4, |i| i % 2 == 0).unwrap();
        assert_eq!(got, vec![true, false, true, false]);
        // With it: exactly what it says.
        let cfg = json!({"layer_types": ["full_attention", "sliding_attention"]});
        assert_eq!(
            hf_layer_types(p, &cfg, 2, |_| false).unwrap(),
            vec![false, true]
        );
        // A type morsd does not build, or the wrong length, is an error naming it.
        let cfg = json!({"layer_types": ["chunked_attention", "full_attention"]});
        let e = hf_layer_types(p, &cfg, 2, |_| false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer_types[0]") && e.contains("`chunked_attention`"),
            "{e}"
        );
        let e = hf_layer_types(p, &cfg, 3, |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 entries for 3 layers"), "{e}");
    }
}
