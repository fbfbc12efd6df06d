//! LoRA fine-tuning with burn's own reparameterisation (`Module::apply_lora`): every base
//! weight is frozen, the 2-D weights of the target modules get trainable factors `a·b`
//! (scaled by `alpha / rank`, `b = 0` at the start so the model is unchanged), and
//! [`merge`] folds them into plain weights before the model is saved.

use super::Lm;
use crate::error::{Error, Result};
use burn::module::{Lora, Module, ParamGroup};

/// The module names a spec may target (Hugging Face's names, as in PEFT's `target_modules`).
pub const TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// The parameter group of the target modules' weights.
pub fn target_group(targets: &[String]) -> Result<ParamGroup> {
    if let Some(t) = targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        return Err(Error::run(format!(
            "unknown LoRA target `{t}` (known: {})",
            TARGETS.join(", ")
        )));
    }
    let pattern = format!(r"(^|\.)({})\.weight$", targets.join("|"));
    ParamGroup::from_regex(&pattern).map_err(|e| Error::run(format!("LoRA targets: {e:?}")))
}

/// Attaches rank-`rank` adapters to the target modules and freezes everything else.
/// The adapters are drawn at once under [`super::INIT_LOCK`], not lazily in the first training
/// step, so a concurrent run's initialisation cannot interleave with theirs.
pub fn attach(model: Lm, rank: usize, alpha: f64, targets: &[String]) -> Result<Lm> {
    let group = target_group(targets)?;
    let _guard = super::INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let model = model.apply_lora(Lora::new(rank, alpha).set_param_group(group));
    super::materialise(&model);
    Ok(model)
}

/// Folds the adapters into the base weights (a plain model again).
pub fn merge(model: Lm) -> Lm {
    model.materialize()
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
