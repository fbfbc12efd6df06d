//! The five stages of a run, behind one trait: generate → score → select → train → eval.
//! One file per stage.

pub mod eval;
pub mod generate;
pub mod score;
pub mod select;
pub mod train;

use crate::error::{Error, Result};
use crate::run::RunSpec;
use burn::prelude::Device;
use indicatif::ProgressBar;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    /// Teacher rationales for the training questions (and the task's splits).
    Generate,
    /// Per rationale: correct or not, diversity, RD.
    Score,
    /// Strategy and budget.
    Select,
    /// Student fine-tuning.
    Train,
    /// Student accuracy on the test split.
    Eval,
}

impl StageKind {
    /// All stages in execution order.
    pub const ORDER: [StageKind; 5] = [
        StageKind::Generate,
        StageKind::Score,
        StageKind::Select,
        StageKind::Train,
        StageKind::Eval,
    ];

    /// The stage name.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Generate => "generate",
            StageKind::Score => "score",
            StageKind::Select => "select",
            StageKind::Train => "train",
            StageKind::Eval => "eval",
        }
    }

    /// Parses a stage name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ORDER.into_iter().find(|k| k.name() == s)
    }

    /// The stage implementation.
    pub fn stage(self) -> &'static dyn Stage {
        match self {
            StageKind::Generate => &generate::Generate,
            StageKind::Score => &score::Score,
            StageKind::Select => &select::Select,
            StageKind::Train => &train::Train,
            StageKind::Eval => &eval::Eval,
        }
    }
}

/// What a stage gets to run.
pub struct StageCtx<'a> {
    /// The run.
    pub run: &'a RunSpec,
    /// Entry folders of the upstream stages.
    pub inputs: &'a BTreeMap<StageKind, PathBuf>,
    /// Its progress bar.
    pub progress: &'a ProgressBar,
    /// The burn device for models.
    pub device: &'a Device,
    /// Folder of the API teachers' durable request logs (under the cache root).
    pub requests_dir: &'a Path,
}

impl StageCtx<'_> {
    /// The entry folder of an upstream stage.
    pub fn input(&self, kind: StageKind) -> Result<&Path> {
        self.inputs
            .get(&kind)
            .map(PathBuf::as_path)
            .ok_or_else(|| Error::run(format!("missing upstream {}", kind.name())))
    }
}

/// A stage: what its key covers and how it computes its entry.
pub trait Stage: Sync {
    /// Which stage.
    fn kind(&self) -> StageKind;
    /// Bumped whenever the stage's output for the same inputs changes.
    fn version(&self) -> u32;
    /// The stages whose entries it reads.
    fn upstream(&self) -> &'static [StageKind];
    /// Whether the run seed goes into its key.
    fn seeded(&self) -> bool;
    /// The canonical spec subset it reads (goes into its key).
    fn config(&self, run: &RunSpec) -> Value;
    /// Input files it reads: (key name, path); their content hashes go into its key.
    fn inputs(&self, _run: &RunSpec) -> Result<Vec<(String, PathBuf)>> {
        Ok(vec![])
    }
    /// Computes the entry into `out`; returns the metrics stored in the manifest.
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value>;
}

/// Builds a `{section: value}` config object.
pub fn sections(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Serialises a spec section.
pub fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("spec sections serialize")
}

/// The `[student]` section as it enters stage keys: without `weights` (a name or path; the
/// files' content goes in through [`student_inputs`] instead).
pub fn student_key(spec: &crate::spec::raw::StudentSpec) -> Value {
    let mut v = json(spec);
    if let Some(o) = v.as_object_mut() {
        o.remove("weights");
    }
    v
}

/// The `[train]` section as it enters the train stage's key: the budget in use and nothing
/// else of it — `steps` (300 when neither is set) or `epochs`, never a `null` — so a spec that
/// sets `train.steps` or neither has the key it had before `train.epochs` existed. `patience`
/// enters only when set, so a spec without early stopping keeps the key it had before.
pub fn train_key(spec: &crate::spec::raw::TrainSpec) -> Value {
    let mut v = json(spec);
    if let Some(o) = v.as_object_mut() {
        match spec.epochs {
            Some(e) => {
                o.remove("steps");
                o.insert("epochs".into(), e.into());
            }
            None => {
                o.remove("epochs");
                let steps = spec.steps.unwrap_or(crate::spec::raw::DEFAULT_TRAIN_STEPS);
                o.insert("steps".into(), steps.into());
            }
        }
        if spec.patience.is_none() {
            o.remove("patience");
        }
    }
    v
}

/// The checkpoint files of a `llama` student (none for `scratch`).
pub fn student_inputs(run: &RunSpec) -> Result<Vec<(String, PathBuf)>> {
    match &run.spec.student.weights {
        Some(w) if run.spec.student.is_pretrained() => {
            crate::models::weight_files(&crate::models::resolve_weights(w)?)
        }
        _ => Ok(vec![]),
    }
}
