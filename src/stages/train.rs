//! Stage `train`: fine-tunes a fresh student on the selected rationales, choosing the
//! checkpoint on the validation split. Output: `model.bpk` (burnpack weights), `config.json`
//! (the resolved burn model config), `tokenizer.json`, `curves.json`.

use super::{Stage, StageCtx, StageKind, json, read_json, sections, write_json};
use crate::answer::{extract_with_options, matches};
use crate::error::{Error, IoContext, Result};
use crate::spec::RunSpec;
use crate::student::decode::greedy;
use crate::student::format;
use crate::student::tokenizer::Tok;
use crate::student::train::{TrainExample, TrainOptions, train};
use crate::student::{Student, init_student, model_config};
use crate::task::TaskData;
use crate::teacher::Rationale;
use burn::config::Config;
use burn::module::Module;
use serde_json::{Value, json as j};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The train stage.
pub struct Train;

impl Stage for Train {
    fn kind(&self) -> StageKind {
        StageKind::Train
    }
    fn version(&self) -> u32 {
        1
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[StageKind::Generate, StageKind::Score, StageKind::Select]
    }
    fn seeded(&self) -> bool {
        true
    }
    fn config(&self, run: &RunSpec) -> Value {
        let template = format::template(&run.spec.student).unwrap_or_default();
        sections(&[
            ("student", json(&run.spec.student)),
            ("train", json(&run.spec.train)),
            ("eval", json(&run.spec.eval)),
            ("format_template", json(&template)),
        ])
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        let gen_dir = ctx.input(StageKind::Generate)?;
        let data: TaskData = read_json(&gen_dir.join("tasks.json"))?;
        let rationales: Vec<Rationale> = read_json(&gen_dir.join("rationales.json"))?;
        let selected: HashSet<String> =
            read_json::<Vec<String>>(&ctx.input(StageKind::Select)?.join("selected.json"))?
                .into_iter()
                .collect();
        let tok_path = ctx.input(StageKind::Score)?.join("tokenizer.json");
        let tok = Tok::load(&tok_path)?;
        std::fs::copy(&tok_path, out.join("tokenizer.json")).at(out.join("tokenizer.json"))?;

        // 1. Training sequences: prompt(q) → " rationale <eos>", selected rationales only.
        let fmt = format::load(&spec.student)?;
        let kind = data.answer;
        let questions: HashMap<&str, &crate::task::Example> =
            data.train.iter().map(|e| (e.id.as_str(), e)).collect();
        let examples: Vec<TrainExample> = rationales
            .iter()
            .filter(|r| selected.contains(&r.id))
            .map(|r| format::train_example(&fmt, &tok, questions[r.question_id.as_str()], r, kind))
            .collect();
        if examples.is_empty() {
            return Err(Error::run(
                "the selection kept no rationale: nothing to train on",
            ));
        }

        // 2. A fresh student for this seed; validation accuracy picks the checkpoint.
        let config = model_config(&spec.student, tok.vocab_size());
        config
            .save(out.join("config.json"))
            .at(out.join("config.json"))?;
        let ad = ctx.device.clone().autodiff();
        let model = init_student(&config, ctx.run.seed, &ad);
        let val_prompts: Vec<String> = data
            .validation
            .iter()
            .map(|e| fmt.prompt(&e.question))
            .collect();
        let device = ctx.device.clone();
        let validate = |m: &Student| -> f64 {
            let outs = greedy(
                m,
                &tok,
                &val_prompts,
                spec.eval.max_new_tokens,
                spec.eval.batch_size,
                &device,
            );
            let ok = outs
                .iter()
                .zip(&data.validation)
                .filter(|(o, e)| {
                    matches(
                        kind,
                        extract_with_options(kind, o, &e.options).as_deref(),
                        &e.answer,
                    )
                })
                .count();
            ok as f64 / data.validation.len().max(1) as f64
        };
        let opts = TrainOptions {
            steps: spec.train.steps,
            batch_size: spec.train.batch_size,
            lr: spec.train.lr,
            warmup_steps: spec.train.warmup_steps,
            weight_decay: spec.train.weight_decay,
            eval_every: spec.train.eval_every,
            seed: ctx.run.seed,
        };
        let outcome = train(
            model,
            &examples,
            tok.pad,
            &opts,
            &ad,
            Some(&validate),
            ctx.progress,
        );

        // 3. Save the chosen checkpoint beside its config and tokenizer.
        outcome
            .model
            .clone()
            .save_file(out.join("model.bpk"))
            .map_err(|e| Error::run(format!("saving model: {e}")))?;
        write_json(
            &out.join("curves.json"),
            &j!({"loss": outcome.loss_curve, "validation_accuracy": outcome.val_curve}),
        )?;
        Ok(j!({
            "rationales": examples.len(),
            "training_tokens": outcome.tokens,
            "steps": spec.train.steps,
            "best_step": outcome.best_step,
            "val_accuracy": outcome.best_val_accuracy,
            "final_loss": outcome.loss_curve.last().map(|x| x.1),
        }))
    }
}

/// Loads a trained student from a train entry folder.
pub fn load_student(dir: &Path, device: &burn::prelude::Device) -> Result<(Student, Tok)> {
    let config = crate::student::StudentConfig::load(dir.join("config.json"))
        .map_err(|e| Error::run(format!("{}: {e}", dir.join("config.json").display())))?;
    let record = burn::store::ModuleRecord::load(dir.join("model.bpk"))
        .map_err(|e| Error::run(format!("{}: {e}", dir.join("model.bpk").display())))?;
    let model = config
        .init(device)
        .try_load_record(record)
        .map_err(|e| Error::run(format!("{}: {e}", dir.join("model.bpk").display())))?;
    Ok((model, Tok::load(&dir.join("tokenizer.json"))?))
}
