//! Stage `generate`: builds the task's splits and has the teacher write rationales for every
//! training question. Output: `tasks.json`, `rationales.json`.

use super::{Stage, StageCtx, StageKind, json, sections, write_json};
use crate::error::Result;
use crate::spec::RunSpec;
use crate::task::synthetic;
use crate::teacher::programmatic;
use serde_json::{Value, json as j};
use std::path::Path;

/// The generate stage.
pub struct Generate;

impl Stage for Generate {
    fn kind(&self) -> StageKind {
        StageKind::Generate
    }
    fn version(&self) -> u32 {
        // 2: smaller arithmetic operands.
        2
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[]
    }
    fn seeded(&self) -> bool {
        false
    }
    fn config(&self, run: &RunSpec) -> Value {
        sections(&[("data", json(&run.spec.data)), ("teacher", json(&run.spec.teacher))])
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        // 1. The task's splits.
        let data = synthetic::generate(ctx.run.task, &spec.data);
        ctx.progress.set_length(data.train.len() as u64);
        // 2. The teacher's rationales for the training questions.
        let rationales = programmatic::generate(&data.train, &spec.teacher);
        ctx.progress.set_position(data.train.len() as u64);
        write_json(&out.join("tasks.json"), &data)?;
        write_json(&out.join("rationales.json"), &rationales)?;
        Ok(j!({
            "train": data.train.len(), "validation": data.validation.len(), "test": data.test.len(),
            "rationales": rationales.len(),
        }))
    }
}
