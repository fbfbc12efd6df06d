//! Stage `eval`: greedy decoding of the test questions with the trained student (KV cache for
//! a `llama` student; a row stops at end of sequence or once its answer sentence is complete),
//! answer extraction, accuracy. Output: `predictions.json`.

use super::{Stage, StageCtx, StageKind, json, sections};
use crate::answer::{extract_with_options, matches};
use crate::error::Result;
use crate::files::{read_json, write_json};
use crate::run::RunSpec;
use crate::student::decode::{DecodeOptions, greedy_with};
use crate::student::format;
use crate::student::load::load_student;
use crate::task::TaskData;
use serde_json::{Value, json as j};
use std::path::Path;

/// The eval stage.
pub struct Eval;

impl Stage for Eval {
    fn kind(&self) -> StageKind {
        StageKind::Eval
    }
    fn version(&self) -> u32 {
        // 2: decoding stops once the answer sentence is complete. 3: fused kernels
        // (src/kernels): logits move by float rounding. 4: morsd's own matmul and fused
        // attention (src/kernels/{matmul,attention}.rs): the same, by float rounding.
        4
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[StageKind::Generate, StageKind::Train]
    }
    fn seeded(&self) -> bool {
        true
    }
    fn config(&self, run: &RunSpec) -> Value {
        let template = format::template(&run.spec.student).unwrap_or_default();
        sections(&[
            ("eval", json(&run.spec.eval)),
            ("format_template", json(&template)),
        ])
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        let data: TaskData = read_json(&ctx.input(StageKind::Generate)?.join("tasks.json"))?;
        let (model, tok) = load_student(ctx.input(StageKind::Train)?, ctx.device)?;
        let kind = data.answer;
        let fmt = format::load(&spec.student)?;
        let prompts: Vec<String> = data.test.iter().map(|e| fmt.prompt(&e.question)).collect();
        ctx.progress.set_length(prompts.len() as u64);
        let mut outputs = Vec::new();
        let answer_stop = format::AnswerStop::new(&fmt);
        let stop = |t: &str| answer_stop.done(t);
        let opts = DecodeOptions {
            max_new: spec.eval.max_new_tokens,
            batch_size: spec.eval.batch_size,
            stop: Some(&stop),
        };
        for chunk in prompts.chunks(spec.eval.batch_size) {
            outputs.extend(greedy_with(&model, &tok, chunk, &opts, ctx.device));
            ctx.progress.inc(chunk.len() as u64);
        }
        let mut correct = 0;
        let preds: Vec<Value> = data
            .test
            .iter()
            .zip(&outputs)
            .map(|(e, o)| {
                let x = extract_with_options(kind, o, &e.options);
                let ok = matches(kind, x.as_deref(), &e.answer);
                correct += usize::from(ok);
                j!({"id": e.id, "output": o, "extracted": x, "gold": e.answer, "correct": ok})
            })
            .collect();
        write_json(&out.join("predictions.json"), &preds)?;
        Ok(
            j!({"accuracy": correct as f64 / data.test.len().max(1) as f64, "correct": correct, "total": data.test.len()}),
        )
    }
}
