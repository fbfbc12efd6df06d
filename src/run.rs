//! A resolved run: one sweep point and seed of a spec, with its task and strategy parsed. The
//! stages are given one; the resolver (`crate::resolve`) makes them. It names the data floor's
//! task registry, so it lives on that floor.

use crate::spec::raw::RawSpec;
use crate::spec::{Strategy, TaskKind};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The task of a run: synthetic, or real (registry entry, split scheme, data root, sources).
#[derive(Debug, Clone)]
pub enum TaskRef {
    /// A generated task.
    Synthetic(TaskKind),
    /// A task read from the data root.
    Real {
        /// Registry entry.
        def: &'static crate::data::registry::TaskDef,
        /// Split scheme.
        split: crate::data::registry::SplitScheme,
        /// Data root.
        root: PathBuf,
        /// Rationale sources (for the `file` teacher).
        sources: Vec<crate::data::sources::Wanted>,
    },
    /// A user's own task: questions from their files (`data.task = "custom"`).
    Custom {
        /// The answer type and the question files.
        task: crate::data::custom::CustomTask,
        /// `teacher.jsonl` files (for the `file` teacher).
        sources: Vec<crate::data::sources::Wanted>,
    },
}

impl TaskRef {
    /// The task name.
    pub fn name(&self) -> &str {
        match self {
            TaskRef::Synthetic(k) => k.name(),
            TaskRef::Real { def, .. } => def.name,
            TaskRef::Custom { .. } => crate::data::custom::TASK,
        }
    }
}

/// One fully resolved run: a sweep point and a seed.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The complete spec of this run, sweep values applied, defaults filled.
    pub spec: RawSpec,
    /// Swept key → value for this run (empty without a sweep).
    pub swept: BTreeMap<String, Value>,
    /// The run's seed.
    pub seed: u64,
    /// Human label: `key=value ... seed=N`.
    pub label: String,
    /// Parsed task.
    pub task: TaskRef,
    /// Parsed strategy.
    pub strategy: Strategy,
}

/// A loaded spec: where it came from and its runs.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The spec file.
    pub path: PathBuf,
    /// Experiment name.
    pub name: String,
    /// Output folder for tables and charts.
    pub output: PathBuf,
    /// Swept keys, in order.
    pub sweep_keys: Vec<String>,
    /// Every run.
    pub runs: Vec<RunSpec>,
}

/// The most runs (sweep points × seeds) one spec may resolve to: the cross product grows
/// exponentially with the number of swept keys, and every run is validated and kept in memory.
pub const MAX_RUNS: usize = 10_000;
