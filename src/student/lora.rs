//! LoRA fine-tuning with burn's own reparameterisation (`Module::apply_lora`): every base
//! weight is frozen, the 2-D weights of the target modules get trainable factors `a·b`
//! (scaled by `alpha / rank`, `b = 0` at the start so the model is unchanged).
//!
//! A LoRA train entry stores the adapters only, in PEFT's layout ([`save_adapters`]):
//! `adapter_model.safetensors` with PEFT's key names
//! (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`, `lora_A` `[r, d_in]`,
//! `lora_B` `[d_out, r]`) and `adapter_config.json`. [`apply_adapters`] folds them into a
//! freshly loaded base exactly as burn's merge does (`w + (a·b)·scale`, burn's `[d_in, d_out]`
//! orientation), so a stored entry gives the same weights as the merged model it was trained as.

use super::{Family, Lm};
use crate::error::{Error, IoContext, Result};
use burn::module::{Lora, Module, ModuleMapper, ModuleVisitor, Param, ParamGroup};
use burn::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// The adapters' weights file of a LoRA entry or a PEFT export.
pub const ADAPTER_FILE: &str = "adapter_model.safetensors";
/// PEFT's adapter config file.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

/// Whether some family has a LoRA module PEFT calls `name` (a spec is checked against its
/// checkpoint's family when it is loaded).
pub fn known_target(name: &str) -> bool {
    Family::ALL.iter().any(|f| f.lora_module(name).is_some())
}

/// Every family's LoRA module names, for messages.
pub fn all_targets() -> Vec<String> {
    let mut v: Vec<String> = Family::ALL
        .iter()
        .flat_map(|f| f.lora_modules().iter().map(|m| m.peft.to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The family of a model LoRA can adapt (a pretrained one).
fn family_of(model: &Lm) -> Result<Family> {
    model
        .family()
        .ok_or_else(|| Error::run("LoRA adapts a pretrained student, not the scratch one"))
}

/// The parameter group of the target modules' weights in `family` (PEFT's module names; GPT-2's
/// `c_proj` is both the attention and the MLP output, as in PEFT).
pub fn target_group(family: Family, targets: &[String]) -> Result<ParamGroup> {
    let mut fields = Vec::new();
    for t in targets {
        let found: Vec<&str> = family
            .lora_modules()
            .iter()
            .filter(|m| m.peft == t.as_str())
            .map(|m| m.field)
            .collect();
        if found.is_empty() {
            let mut known: Vec<&str> = family.lora_modules().iter().map(|m| m.peft).collect();
            known.dedup();
            return Err(Error::run(format!(
                "unknown LoRA target `{t}` for a `{family}` student (known: {})",
                known.join(", ")
            )));
        }
        fields.extend(found);
    }
    let pattern = format!(r"(^|\.)({})\.weight$", fields.join("|"));
    ParamGroup::from_regex(&pattern).map_err(|e| Error::run(format!("LoRA targets: {e:?}")))
}

/// Attaches rank-`rank` adapters to the target modules and freezes everything else.
/// The adapters are drawn at once under [`super::INIT_LOCK`] from the device's RNG seeded with
/// `seed` (the run seed), not lazily in the first training step, so a concurrent run's
/// initialisation cannot interleave with theirs and a run's adapters are reproducible.
pub fn attach(
    model: Lm,
    rank: usize,
    alpha: f64,
    targets: &[String],
    seed: u64,
    device: &Device,
) -> Result<Lm> {
    let group = target_group(family_of(&model)?, targets)?;
    let _guard = super::INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let model = model.apply_lora(Lora::new(rank, alpha).set_param_group(group));
    super::materialise(&model);
    Ok(model)
}

/// Trainable parameters (elements) of a model: with adapters attached, only theirs.
pub fn trainable_params(model: &Lm) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::Tensor<D>>) {
            if param.is_require_grad() {
                self.0 += param.shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    model.visit(&mut c);
    c.0
}

/// PEFT's key prefix of the adapter on block `layer`'s field `field` (before `.lora_A.weight`):
/// `base_model.model.model.layers.3.self_attn.q_proj`, `base_model.model.transformer.h.3.attn.c_attn`.
pub fn peft_prefix(family: Family, layer: usize, field: &str) -> Option<String> {
    family
        .lora_field(field)
        .map(|m| format!("base_model.model.{}.{layer}.{}", family.hf_layers(), m.hf))
}

/// The (block, field) a module path names, for paths such as `Llama.blocks.3.q_proj.weight`
/// (the visitor's stack).
fn block_target(path: &[String]) -> Option<(usize, &str)> {
    let b = path.iter().position(|p| p == "blocks")?;
    let layer: usize = path.get(b + 1)?.parse().ok()?;
    let module = path.get(b + 2)?;
    if path.get(b + 3).map(String::as_str) != Some("weight") || path.len() != b + 4 {
        return None;
    }
    Some((layer, module.as_str()))
}

/// PEFT's prefix of the adapter on the weight a module path names (`[…, "blocks", "3",
/// "q_proj", "weight"]`, the visitor's stack).
pub fn prefix_of(family: Family, path: &[String]) -> Option<String> {
    if family == Family::T5 {
        return super::t5::peft_prefix(path);
    }
    block_target(path).and_then(|(l, f)| peft_prefix(family, l, f))
}

/// Which factor of an adapter a module path names: 0 for `a`, 1 for `b` (burn visits an
/// adapted weight's factors as `….q_proj.weight.lora.a` and `….lora.b`).
fn factor_part(path: &[String]) -> Option<usize> {
    let n = path.len();
    if n < 3 || path[n - 2] != "lora" {
        return None;
    }
    match path[n - 1].as_str() {
        "a" => Some(0),
        "b" => Some(1),
        _ => None,
    }
}

/// The PEFT prefix and the factor (0: `a` = `lora_Aᵀ`, 1: `b` = `lora_Bᵀ`) of the adapter factor
/// a module path names, if it names one.
pub fn factor_of(family: Family, path: &[String]) -> Option<(String, usize)> {
    let part = factor_part(path)?;
    prefix_of(family, &path[..path.len() - 2]).map(|p| (p, part))
}

/// Row-major f32 values of a 2-D tensor, transposed (`[r, c]` → `[c, r]`).
fn transposed(t: Tensor<2>) -> (Vec<usize>, Vec<f32>) {
    let [r, c] = t.dims();
    let v: Vec<f32> = t.into_data().iter::<f32>().collect();
    (vec![c, r], super::readers::transpose(&v, r, c))
}

/// Writes a LoRA student's adapters (the model still carries them, unmerged) in PEFT's layout
/// into `dir`: [`ADAPTER_FILE`] and [`ADAPTER_CONFIG`] (`base` is its
/// `base_model_name_or_path`). Returns the number of adapted modules.
pub fn save_adapters(
    model: &Lm,
    rank: usize,
    alpha: f64,
    targets: &[String],
    base: &str,
    dir: &Path,
) -> Result<usize> {
    // 1. Walk the module tree with its path. burn visits an adapted weight as its base
    //    (`….q_proj.weight`) followed by the adapter's factors (`….q_proj.weight.lora.a`,
    //    `….lora.b`); they give `lora_A = aᵀ` and `lora_B = bᵀ` (burn's a: [d_in, r],
    //    b: [r, d_out]).
    struct Collect {
        family: Family,
        path: Vec<String>,
        found: std::collections::BTreeMap<String, [Option<Factor>; 2]>,
        unnamed: usize,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(part) = factor_part(&self.path) else {
                return;
            };
            let Some(prefix) = prefix_of(self.family, &self.path[..self.path.len() - 2]) else {
                self.unnamed += 1;
                return;
            };
            let [r, c] = param.shape().dims::<D>()[..] else {
                self.unnamed += 1;
                return;
            };
            let t: Tensor<2> = param.val().reshape([r, c]);
            self.found.entry(prefix).or_default()[part] = Some(transposed(t));
        }
    }
    let family = family_of(model)?;
    let mut c = Collect {
        family,
        path: Vec::new(),
        found: Default::default(),
        unnamed: 0,
    };
    model.visit(&mut c);
    let found: Vec<(String, Factor, Factor)> = c
        .found
        .into_iter()
        .filter_map(|(p, [a, b])| Some((p, a?, b?)))
        .collect();
    if c.unnamed > 0 || found.is_empty() {
        return Err(Error::run(format!(
            "LoRA adapters: {} adapter factors have no PEFT name, {} adapters have one",
            c.unnamed,
            found.len()
        )));
    }
    // 2. The safetensors file (PEFT drops the adapter name `default` from saved keys).
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, a, b) in &found {
        for (part, (shape, v)) in [("lora_A", a), ("lora_B", b)] {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            tensors.push((format!("{prefix}.{part}.weight"), shape.clone(), bytes));
        }
    }
    write_safetensors(&dir.join(ADAPTER_FILE), &tensors, None)?;
    // 3. PEFT's config, with PEFT's names and the values morsd trained with.
    let mut targets: Vec<String> = targets.to_vec();
    targets.sort();
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": if family.is_seq2seq() { "SEQ_2_SEQ_LM" } else { "CAUSAL_LM" },
        "base_model_name_or_path": base,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": targets,
        "bias": "none",
        // GPT-2's Conv1D stores `[in, out]`; PEFT marks its adapters so.
        "fan_in_fan_out": family == Family::Gpt2,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "modules_to_save": null,
        "layers_to_transform": null,
        "revision": null,
    });
    crate::files::write_json(&dir.join(ADAPTER_CONFIG), &config)?;
    Ok(found.len())
}

/// Writes f32 tensors `(name, shape, little-endian bytes)` as a safetensors file.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<u8>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_safetensors_typed(
        path,
        tensors
            .iter()
            .map(|(n, s, b)| (n.clone(), safetensors::Dtype::F32, s.clone(), b.as_slice())),
        metadata,
    )
}

/// Writes tensors `(name, dtype, shape, bytes)` as a safetensors file.
pub fn write_safetensors_typed<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (String, safetensors::Dtype, Vec<usize>, &'a [u8])>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let views = tensors
        .into_iter()
        .map(|(n, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(dtype, shape, bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::run(format!("{}: tensor `{n}`: {e}", path.display())))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| Error::run(format!("{}: {e}", path.display())))?;
    // The crate writes through a private temp file (mode 0600); an exported or cached weights
    // file is as readable as any other file morsd writes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).at(path)?;
    }
    Ok(())
}

/// One LoRA factor: shape and row-major f32 values.
pub type Factor = (Vec<usize>, Vec<f32>);

/// The adapters of a LoRA entry or PEFT folder: `alpha / r` and, per PEFT prefix, burn's
/// `a` `[d_in, r]` and `b` `[r, d_out]`.
pub struct Adapters {
    /// `lora_alpha / r`.
    pub scale: f64,
    /// Burn-oriented factors by PEFT prefix.
    pub factors: HashMap<String, (Factor, Factor)>,
}

/// Reads [`ADAPTER_CONFIG`] and [`ADAPTER_FILE`] from `dir`.
pub fn read_adapters(dir: &Path) -> Result<Adapters> {
    let cfg_path = dir.join(ADAPTER_CONFIG);
    let cfg: serde_json::Value = crate::files::read_json(&cfg_path)?;
    let bad = |m: String| Error::Input {
        path: cfg_path.clone(),
        message: m,
    };
    let r = cfg["r"]
        .as_u64()
        .filter(|r| *r > 0)
        .ok_or_else(|| bad("`r` missing or not a positive integer".into()))?;
    let alpha = cfg["lora_alpha"]
        .as_f64()
        .ok_or_else(|| bad("`lora_alpha` missing or not a number".into()))?;
    if cfg["use_rslora"].as_bool() == Some(true) || cfg["use_dora"].as_bool() == Some(true) {
        return Err(bad("rsLoRA and DoRA adapters are not supported".into()));
    }
    let file = dir.join(ADAPTER_FILE);
    let bytes = std::fs::read(&file).at(&file)?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Input {
        path: file.clone(),
        message: format!("not a safetensors file: {e}"),
    })?;
    let mut halves: HashMap<String, [Option<Factor>; 2]> = HashMap::new();
    for (name, view) in st.tensors() {
        let bad_t = |m: &str| Error::Input {
            path: file.clone(),
            message: format!("tensor `{name}`: {m}"),
        };
        let (prefix, part) = if let Some(p) = name.strip_suffix(".lora_A.weight") {
            (p, 0)
        } else if let Some(p) = name.strip_suffix(".lora_B.weight") {
            (p, 1)
        } else {
            return Err(bad_t(
                "not a LoRA factor (`….lora_A.weight` / `….lora_B.weight`)",
            ));
        };
        if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 2 {
            return Err(bad_t("expected a 2-D f32 tensor"));
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let [rows, cols] = [view.shape()[0], view.shape()[1]];
        // PEFT [r, d_in] / [d_out, r] → burn [d_in, r] / [r, d_out].
        let t = super::readers::transpose(&v, rows, cols);
        halves.entry(prefix.to_string()).or_default()[part] = Some((vec![cols, rows], t));
    }
    let mut factors = HashMap::new();
    for (prefix, [a, b]) in halves {
        match (a, b) {
            (Some(a), Some(b)) if a.0[1] == r as usize && b.0[0] == r as usize => {
                factors.insert(prefix, (a, b));
            }
            _ => {
                return Err(Error::Input {
                    path: file.clone(),
                    message: format!(
                        "`{prefix}`: needs lora_A [{r}, d_in] and lora_B [d_out, {r}]"
                    ),
                });
            }
        }
    }
    Ok(Adapters {
        scale: alpha / r as f64,
        factors,
    })
}

/// Folds adapters into a plain (unadapted) pretrained model: `w + (a·b)·scale` on every
/// adapted weight, the same expression burn's merge evaluates. Every adapter must find its
/// weight.
pub fn apply_adapters(model: Lm, adapters: &Adapters, source: &Path) -> Result<Lm> {
    struct Fold<'a> {
        family: Family,
        path: Vec<String>,
        adapters: &'a Adapters,
        used: usize,
        error: Option<String>,
    }
    impl ModuleMapper for Fold<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some(prefix) = prefix_of(self.family, &self.path) else {
                return param;
            };
            let Some(((sa, a), (sb, b))) = self.adapters.factors.get(&prefix) else {
                return param;
            };
            let dims = param.shape().dims::<D>().to_vec();
            if D != 2 || dims[0] != sa[0] || dims[1] != sb[1] {
                self.error = Some(format!(
                    "`{prefix}`: adapter {sa:?}·{sb:?} does not fit the weight {dims:?}"
                ));
                return param;
            }
            self.used += 1;
            let scale = self.adapters.scale;
            param.map(|w| {
                let device = w.device();
                let a = Tensor::<2>::from_data(TensorData::new(a.clone(), [sa[0], sa[1]]), &device);
                let b = Tensor::<2>::from_data(TensorData::new(b.clone(), [sb[0], sb[1]]), &device);
                let delta: Tensor<D> = a.matmul(b).mul_scalar(scale).reshape(w.shape());
                w + delta
            })
        }
    }
    let mut fold = Fold {
        family: family_of(&model)?,
        path: Vec::new(),
        adapters,
        used: 0,
        error: None,
    };
    let model = model.map(&mut fold);
    if let Some(e) = fold.error {
        return Err(Error::Input {
            path: source.to_path_buf(),
            message: e,
        });
    }
    if fold.used != adapters.factors.len() {
        return Err(Error::Input {
            path: source.to_path_buf(),
            message: format!(
                "{} of {} adapters match no weight of this model",
                adapters.factors.len() - fold.used,
                adapters.factors.len()
            ),
        });
    }
    Ok(model)
}

/// Sets the factors of a model that carries (unmerged) adapters to `adapters`' values — PEFT's
/// saved adapters, e.g. to continue from them or to compare one training step with PEFT's.
/// Every adapter must find its factors, and trainable factors stay trainable.
pub fn set_factors(model: Lm, adapters: &Adapters, source: &Path) -> Result<Lm> {
    struct Set<'a> {
        family: Family,
        path: Vec<String>,
        adapters: &'a Adapters,
        used: std::collections::HashSet<String>,
        error: Option<String>,
    }
    impl ModuleMapper for Set<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some((prefix, part)) = factor_of(self.family, &self.path) else {
                return param;
            };
            let Some((fa, fb)) = self.adapters.factors.get(&prefix) else {
                return param;
            };
            let (shape, values) = if part == 0 { fa } else { fb };
            let dims = param.shape().dims::<D>().to_vec();
            if dims != *shape {
                self.error = Some(format!(
                    "`{prefix}`: factor {shape:?} does not fit the adapter {dims:?}"
                ));
                return param;
            }
            self.used.insert(format!("{prefix}/{part}"));
            param.map(|old| {
                let grad = old.is_require_grad();
                let t = Tensor::<D>::from_data(
                    TensorData::new(values.clone(), dims.clone()),
                    &old.device(),
                );
                if grad { t.require_grad() } else { t }
            })
        }
    }
    let mut set = Set {
        family: family_of(&model)?,
        path: Vec::new(),
        adapters,
        used: Default::default(),
        error: None,
    };
    let model = model.map(&mut set);
    if let Some(e) = set.error {
        return Err(Error::Input {
            path: source.to_path_buf(),
            message: e,
        });
    }
    if set.used.len() != 2 * adapters.factors.len() {
        return Err(Error::Input {
            path: source.to_path_buf(),
            message: format!(
                "{} of {} adapters found no attached factors in this model",
                adapters.factors.len() - set.used.len() / 2,
                adapters.factors.len()
            ),
        });
    }
    Ok(model)
}
