//! Stage `generate`: builds the task's splits and has the teacher write rationales for every
//! training question. Output: `tasks.json`, `rationales.json`.

use super::{Stage, StageCtx, StageKind, json, sections, write_json};
use crate::error::Result;
use crate::data::sources as data_sources;
use crate::data::tasks;
use crate::spec::RunSpec;
use crate::spec::resolve::TaskRef;
use crate::task::synthetic;
use crate::teacher::programmatic;
use serde_json::{Value, json as j};
use std::path::{Path, PathBuf};

/// The generate stage.
pub struct Generate;

impl Stage for Generate {
    fn kind(&self) -> StageKind {
        StageKind::Generate
    }
    fn version(&self) -> u32 {
        // 2: smaller arithmetic operands. 3: real tasks, sources.json.
        3
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[]
    }
    fn seeded(&self) -> bool {
        false
    }
    fn config(&self, run: &RunSpec) -> Value {
        // The data root and JSONL paths are locations, not content: input hashes cover them.
        let mut data = json(&run.spec.data);
        data.as_object_mut().map(|m| m.remove("root"));
        let mut teacher = json(&run.spec.teacher);
        teacher.as_object_mut().map(|m| m.remove("jsonl"));
        sections(&[("data", data), ("teacher", teacher)])
    }
    fn inputs(&self, run: &RunSpec) -> Result<Vec<(String, PathBuf)>> {
        let TaskRef::Real { def, split, root, sources } = &run.task else { return Ok(vec![]) };
        let mut files = tasks::split_files(def, *split, root);
        for w in sources {
            files.extend(data_sources::files(w, root)?);
        }
        // Keyed by the path under the data root (never the absolute path), or the file name.
        Ok(files
            .into_iter()
            .map(|f| {
                let key = f.strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| {
                    format!("jsonl:{}", f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
                });
                (key, f)
            })
            .collect())
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        let (data, rationales, reports) = match &ctx.run.task {
            TaskRef::Synthetic(kind) => {
                // 1. The task's splits.
                let data = synthetic::generate(*kind, &spec.data);
                // 2. The teacher's rationales for the training questions.
                let rationales = programmatic::generate(&data.train, &spec.teacher);
                (data, rationales, vec![])
            }
            TaskRef::Real { def, split, root, sources } => {
                // 1. The benchmark under its split scheme, optionally cut.
                let mut data = tasks::load(def, *split, root, spec.data.validation)?;
                if let Some(n) = spec.data.max_train {
                    data.train.truncate(n);
                }
                if let Some(n) = spec.data.max_test {
                    data.test.truncate(n);
                }
                // 2. Recorded rationales joined to the training questions.
                let pool = data_sources::load(def, &data, root, sources)?;
                (data, pool.train, pool.reports)
            }
        };
        ctx.progress.set_length(1);
        ctx.progress.set_position(1);
        write_json(&out.join("tasks.json"), &data)?;
        write_json(&out.join("rationales.json"), &rationales)?;
        write_json(&out.join("sources.json"), &reports)?;
        Ok(j!({
            "train": data.train.len(), "validation": data.validation.len(), "test": data.test.len(),
            "rationales": rationales.len(),
            "sources": reports.iter().map(|r| j!({"source": r.source, "rows": r.rows, "train": r.train, "held_out": r.held_out, "unmatched": r.unmatched, "unparsed": r.unparsed.len()})).collect::<Vec<_>>(),
        }))
    }
}
