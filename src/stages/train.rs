//! Stage `train`: fine-tunes the student on the selected rationales — a fresh scratch student
//! for this seed, or the pretrained `llama` checkpoint (every weight, or LoRA adapters) —
//! choosing the checkpoint on the validation split. Output: `config.json` (the resolved burn
//! model config), `student.json` (its family and, for a pretrained student, the base
//! checkpoint's identity), `curves.json`, and the weights: `model.bpk` (burnpack, every
//! weight) with `tokenizer.json`, or, for LoRA, the adapters only in PEFT's layout
//! (`adapter_model.safetensors`, `adapter_config.json`; see [`crate::student::lora`]), the
//! tokenizer being the base's.
//! [`crate::student::load::load_student`] reads either back.

use super::{Stage, StageCtx, StageKind, json, sections, student_inputs, student_key, train_key};
use crate::answer::{extract_with_options, matches};
use crate::error::{Error, IoContext, Result};
use crate::files::{read_json, write_json};
use crate::run::RunSpec;
use crate::student::decode::{DecodeOptions, greedy_with};
use crate::student::format;
use crate::student::load::{Base, EntryStudent, LoraInfo};
use crate::student::tokenizer::Tok;
use crate::student::train::{Budget, TrainExample, TrainOptions, train};
use crate::student::{Lm, init_student, load_pretrained, lora, model_config};
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
        // 2: decoding stops once the answer sentence is complete. 3: fused kernels
        // (src/kernels): the weights move by float rounding. 4: morsd's own matmul and fused
        // attention (src/kernels/{matmul,attention}.rs): the same, by float rounding. 5: the
        // kernels' parameter-gradient sums are added in a fixed order, so a run trains to the
        // same weights in every invocation (with two threads it did not); by float rounding.
        5
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[StageKind::Generate, StageKind::Score, StageKind::Select]
    }
    fn seeded(&self) -> bool {
        true
    }
    fn config(&self, run: &RunSpec) -> Value {
        let template = format::template(&run.spec.student).unwrap_or_default();
        let mut sections_ = vec![
            ("student", student_key(&run.spec.student)),
            ("train", train_key(&run.spec.train)),
            ("eval", json(&run.spec.eval)),
            ("format_template", json(&template)),
        ];
        // A LoRA entry holds its adapters only, drawn from the run seed (since this marker
        // exists; before, the merged model, from unseeded adapters): its output changed, so
        // its key does, and no other entry's key moves.
        if is_lora(run) {
            sections_.push(("lora_entry", j!("adapters")));
        }
        sections(&sections_)
    }
    fn inputs(&self, run: &RunSpec) -> Result<Vec<(String, std::path::PathBuf)>> {
        student_inputs(run)
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
        // A LoRA entry's tokenizer is its base checkpoint's (recorded and hash-checked in
        // student.json), so only full-weight entries keep a copy.
        if !is_lora(ctx.run) {
            tok.save(&out.join("tokenizer.json"))?;
        }

        // 1. Training sequences: prompt(q) → " rationale <eos>", selected rationales only.
        let fmt = format::load(&spec.student)?;
        let kind = data.answer;
        let questions: HashMap<&str, &crate::task::Example> =
            data.train.iter().map(|e| (e.id.as_str(), e)).collect();
        //    `answer-only`: prompt(q) → " The answer is …<eos>", the selected rationale's answer.
        let answer_only = ctx.run.strategy == crate::spec::Strategy::AnswerOnly;
        let examples: Vec<TrainExample> = rationales
            .iter()
            .filter(|r| selected.contains(&r.id))
            .filter_map(|r| {
                let e = questions[r.question_id.as_str()];
                if answer_only {
                    format::answer_only_example(&fmt, &tok, e, r, kind)
                } else {
                    Some(format::train_example(&fmt, &tok, e, r, kind))
                }
            })
            .collect();
        if examples.is_empty() {
            return Err(Error::run(
                "the selection kept no rationale: nothing to train on",
            ));
        }

        // 2. The student: a fresh scratch model for this seed, or the pretrained checkpoint
        //    (LoRA: adapters on the target modules, everything else frozen).
        let ad = ctx.device.clone().autodiff();
        let ad = if spec.train.gradient_checkpointing == Some(true) {
            ad.gradient_checkpointing()
        } else {
            ad
        };
        let lora_rank = spec.student.lora_rank.unwrap_or(0);
        let lora_alpha = spec.student.lora_alpha.unwrap_or(16.0);
        let (model, family) = if spec.student.is_pretrained() {
            let weights = spec.student.weights.as_deref().unwrap_or_default();
            let base = Base::of(weights)?;
            let p = load_pretrained(&spec.student, &ad)?;
            let (model, config) = (p.model, p.config);
            // PEFT's default target modules for the family when the spec names none.
            let targets = spec.student.lora_targets.clone().unwrap_or_else(|| {
                p.family
                    .default_lora_targets()
                    .iter()
                    .map(|t| t.to_string())
                    .collect()
            });
            config
                .save(&out.join("config.json"))
                .at(out.join("config.json"))?;
            let (model, lora) = if lora_rank > 0 {
                let model =
                    lora::attach(model, lora_rank, lora_alpha, &targets, ctx.run.seed, &ad)?;
                let info = LoraInfo {
                    rank: lora_rank,
                    alpha: lora_alpha,
                    targets: targets.clone(),
                };
                (model, Some(info))
            } else {
                (model, None)
            };
            let family = EntryStudent {
                kind: config.kind().into(),
                base: Some(base),
                lora,
            };
            (model, family)
        } else {
            let config = model_config(&spec.student, tok.vocab_size());
            config
                .save(out.join("config.json"))
                .at(out.join("config.json"))?;
            let family = EntryStudent {
                kind: "scratch".into(),
                base: None,
                lora: None,
            };
            (init_student(&config, ctx.run.seed, &ad), family)
        };
        let trainable = lora::trainable_params(&model);
        write_json(&out.join("student.json"), &family)?;
        let answer_stop = format::AnswerStop::new(&fmt);
        let stop = |t: &str| answer_stop.done(t);
        let val_prompts: Vec<String> = data
            .validation
            .iter()
            .map(|e| fmt.prompt(&e.question))
            .collect();
        let device = ctx.device.clone();
        let validate = |m: &Lm| -> f64 {
            let opts = DecodeOptions {
                max_new: spec.eval.max_new_tokens,
                batch_size: spec.eval.batch_size,
                stop: Some(&stop),
            };
            let outs = greedy_with(m, &tok, &val_prompts, &opts, &device);
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
        // The budget: `train.epochs` passes over the training sequences, else `train.steps`.
        let budget = match spec.train.epochs {
            Some(e) => Budget::Epochs(e),
            None => Budget::Steps(
                spec.train
                    .steps
                    .unwrap_or(crate::spec::raw::DEFAULT_TRAIN_STEPS),
            ),
        };
        let opts = TrainOptions {
            budget,
            batch_size: spec.train.batch_size,
            grad_accum: spec.train.grad_accum.unwrap_or(1),
            lr: spec.train.lr,
            warmup_steps: spec.train.warmup_steps,
            weight_decay: spec.train.weight_decay,
            eval_every: spec.train.eval_every,
            seed: ctx.run.seed,
            group_by_length: spec.train.group_by_length == Some(true),
            patience: spec.train.patience,
        };
        let outcome = train(
            model,
            &examples,
            tok.pad,
            &opts,
            &ad,
            Some(&validate),
            ctx.progress,
        )
        .map_err(|e| Error::run(format!("{e} ({} selected rationales)", examples.len())))?;

        // 3. Save the chosen checkpoint beside its config and tokenizer: LoRA's adapters alone
        //    (the base is recorded in student.json), else every weight.
        match (&family.base, &family.lora) {
            (Some(base), Some(info)) => {
                lora::save_adapters(
                    &outcome.model,
                    lora_rank,
                    lora_alpha,
                    &info.targets,
                    &base.weights,
                    out,
                )?;
            }
            _ => outcome
                .model
                .clone()
                .save_file(out.join("model.bpk"))
                .map_err(|e| Error::run(format!("saving model: {e}")))?,
        }
        write_json(
            &out.join("curves.json"),
            &j!({"loss": outcome.loss_curve, "validation_accuracy": outcome.val_curve}),
        )?;
        let mut metrics = j!({
            "rationales": examples.len(),
            "training_tokens": outcome.tokens,
            "steps": outcome.steps,
            "epochs": spec.train.epochs,
            "best_step": outcome.best_step,
            "val_accuracy": outcome.best_val_accuracy,
            "final_loss": outcome.loss_curve.last().map(|x| x.1),
            "trainable_params": trainable,
        });
        // With early stopping, where and why it stopped (a spec without `train.patience` keeps
        // the outputs it had before: it always stops at `steps`, by budget).
        if let (Some(p), Some(o)) = (spec.train.patience, metrics.as_object_mut()) {
            o.insert("patience".into(), p.into());
            o.insert("stopped_step".into(), outcome.stopped_step.into());
            o.insert("stop_reason".into(), outcome.stop_reason.name().into());
        }
        Ok(metrics)
    }
}

/// Whether the run fine-tunes a pretrained student with LoRA adapters.
fn is_lora(run: &RunSpec) -> bool {
    run.spec.student.is_pretrained() && run.spec.student.lora_rank.unwrap_or(0) > 0
}
