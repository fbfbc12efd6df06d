//! Stage `select`: applies the run's strategy and budget to the scored rationales.
//! Output: `selected.json` (rationale ids, in rank order per question).

use super::{Stage, StageCtx, StageKind, json, sections};
use crate::error::Result;
use crate::files::{read_json, write_json};
use crate::run::RunSpec;
use crate::select::{Params, Scored, pick};
use serde_json::{Value, json as j};
use std::collections::HashMap;
use std::path::Path;

/// The select stage.
pub struct Select;

impl Stage for Select {
    fn kind(&self) -> StageKind {
        StageKind::Select
    }
    fn version(&self) -> u32 {
        1
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[StageKind::Score]
    }
    fn seeded(&self) -> bool {
        true
    }
    fn config(&self, run: &RunSpec) -> Value {
        sections(&[("select", json(&run.spec.select))])
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let s = &ctx.run.spec.select;
        let scored: Vec<Scored> = read_json(&ctx.input(StageKind::Score)?.join("scores.json"))?;
        let params = Params {
            per_question: s.per_question,
            max_total: s.max_total,
            dedup_threshold: s.dedup_threshold,
            ngram: s.dedup_ngram,
            seed: ctx.run.seed,
            correct_only: s.correct_only.unwrap_or(true),
        };
        // The score strategies need the response's NLLs and ranks, which the score stage
        // measures only for them.
        if ctx.run.strategy.needs_response_scores()
            && scored.iter().any(|x| x.nll_response.is_none())
        {
            return Err(crate::Error::run(format!(
                "strategy `{}` needs the response scores, which this score entry lacks",
                ctx.run.strategy.name()
            )));
        }
        let ids = pick(ctx.run.strategy, &scored, &params);
        write_json(&out.join("selected.json"), &ids)?;
        let by_id: HashMap<&str, &Scored> = scored.iter().map(|s| (s.id.as_str(), s)).collect();
        let chosen: Vec<&Scored> = ids
            .iter()
            .filter_map(|i| by_id.get(i.as_str()).copied())
            .collect();
        let n = chosen.len().max(1) as f64;
        let questions: std::collections::HashSet<&str> =
            chosen.iter().map(|s| s.question_id.as_str()).collect();
        Ok(j!({
            "selected": chosen.len(),
            "questions_covered": questions.len(),
            "correct_share": chosen.iter().filter(|s| s.correct).count() as f64 / n,
            "mean_rd": chosen.iter().map(|s| s.rd).sum::<f64>() / n,
        }))
    }
}
