//! Stage `score`: per rationale, accuracy (extracted answer = gold), diversity (1 − highest
//! n-gram Jaccard to a sibling) and Rationale Difficulty RD(q, r) = PPL(a | q, r) / PPL(a | q),
//! computed by the student *before* distillation. Also trains the student's tokenizer.
//! Output: `tokenizer.json`, `scores.json`.
//!
//! For the strategies that rank by them (`ifd`, `superfilter`, `grape`, `rsr`) it also measures
//! the response's mean NLL with and without the question and its tokens' mean rank, by the same
//! model that computes RD ([`crate::select::scores`]), and the within-question rank correlations
//! of every score (metric `score_spearman`).
//!
//! A student trained from scratch knows nothing, so by default (`rd_model = "warmup"`) a copy is
//! first trained briefly on a slice of the (unfiltered) training rationales and then discarded;
//! `rd_model = "untrained"` scores with the freshly initialised student. A `llama` student
//! scores with its pretrained checkpoint as loaded (`rd_model = "pretrained"`), before any
//! distillation, as in the paper; its tokenizer is the checkpoint's.
//!
//! A rationale's answer is read from its second-stage output where it has one
//! ([`crate::teacher::answer_of`]). Accuracy and RD are measured against the gold answer, or
//! with `label = "majority"` against the majority answer of the question's samples
//! ([`crate::teacher::majority`]); questions without a majority (ties, too few answered samples)
//! are reported in `labels.json` and the metrics, and their rationales are not scored.

use super::{Stage, StageCtx, StageKind, json, sections, student_inputs, student_key};
use crate::answer::matches;
use crate::error::Result;
use crate::files::{read_json, write_json};
use crate::run::RunSpec;
use crate::select::scores::{RANK_CLIP, within_question_spearman};
use crate::select::{Scored, jaccard, ngrams};
use crate::student::format;
use crate::student::score::{ResponseStats, answer_nll_rd, response_stats};
use crate::student::tokenizer::Tok;
use crate::student::train::{Budget, TrainExample, TrainOptions, train};
use crate::student::{init_student, load_named, load_pretrained, model_config};
use crate::task::TaskData;
use crate::teacher::majority::{DEFAULT_MIN_VOTES, Tally, Vote, vote};
use crate::teacher::{Rationale, answer_of};
use serde_json::{Value, json as j};
use std::collections::HashMap;
use std::path::Path;

/// Whether the score stage warms up a scratch student to compute RD with: a scratch student,
/// `score.rd_model = "warmup"` (the default) with warm-up steps, and no `score.rd_weights`
/// (whose checkpoint computes RD instead, so a warm-up would be thrown away).
fn warms_up(s: &crate::spec::raw::RawSpec) -> bool {
    !s.student.is_pretrained()
        && s.score.rd_weights.is_none()
        && s.score.rd_model.as_deref().unwrap_or("warmup") == "warmup"
        && s.score.warmup_steps > 0
}

/// The score stage.
pub struct Score;

impl Stage for Score {
    fn kind(&self) -> StageKind {
        StageKind::Score
    }
    fn version(&self) -> u32 {
        // 2: fused kernels (src/kernels): the warm-up and the NLLs move by float rounding.
        // 3: morsd's own matmul and fused attention (src/kernels/{matmul,attention}.rs): the
        // same, by float rounding. 4: the kernels' parameter-gradient sums are added in a fixed
        // order (src/kernels/mod.rs `map_rows_summing`, matmul's bias sums), so the warm-up is
        // the same from one invocation to the next; it moves by float rounding once.
        4
    }
    fn upstream(&self) -> &'static [StageKind] {
        &[StageKind::Generate]
    }
    fn seeded(&self) -> bool {
        false
    }
    fn config(&self, run: &RunSpec) -> Value {
        let template = format::template(&run.spec.student).unwrap_or_default();
        let mut v = sections(&[
            ("score", {
                // `rd_weights` is a name or path: its files' content is an input instead.
                let mut v = json(&run.spec.score);
                if let Some(o) = v.as_object_mut() {
                    o.remove("rd_weights");
                }
                v
            }),
            ("student", student_key(&run.spec.student)),
            ("format_template", json(&template)),
        ]);
        // The field's scores (IFD, Superfiltering, GRAPE, RSR) are measured only for the runs
        // whose strategy ranks by them: an entry of their own, so no other key moves.
        if run.strategy.needs_response_scores()
            && let Some(o) = v.as_object_mut()
        {
            o.insert("response_scores".into(), serde_json::json!(true));
        }
        // The warm-up student trains with these `train.*` settings: they are in the key when it
        // runs (a scratch student, `rd_model = "warmup"`, warm-up steps > 0), else absent.
        let s = &run.spec;
        let warms_up = warms_up(s);
        if warms_up && let Some(o) = v.as_object_mut() {
            o.insert(
                "warmup_train".into(),
                serde_json::json!({
                    "batch_size": s.train.batch_size,
                    "lr": s.train.lr,
                    "warmup_steps": s.train.warmup_steps.min(s.score.warmup_steps / 2),
                    "weight_decay": s.train.weight_decay,
                    "group_by_length": s.train.group_by_length == Some(true),
                }),
            );
        }
        v
    }
    fn inputs(&self, run: &RunSpec) -> Result<Vec<(String, std::path::PathBuf)>> {
        let mut files = student_inputs(run)?;
        if let Some(w) = &run.spec.score.rd_weights {
            let path = crate::models::resolve_weights(w)?;
            for (name, p) in crate::models::weight_files(&path)? {
                files.push((format!("rd_{name}"), p));
            }
        }
        Ok(files)
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        let gen_dir = ctx.input(StageKind::Generate)?;
        let data: TaskData = read_json(&gen_dir.join("tasks.json"))?;
        let rationales: Vec<Rationale> = read_json(&gen_dir.join("rationales.json"))?;
        let by_id: HashMap<&str, &crate::task::Example> =
            data.train.iter().map(|e| (e.id.as_str(), e)).collect();
        let kind = data.answer;
        if rationales.is_empty() {
            return Err(crate::Error::run(
                "no rationale to score (the generate stage produced none)",
            ));
        }
        let fmt = format::load(&spec.student)?;
        let options_of = |qid: &str| by_id.get(qid).map(|e| e.options.as_slice()).unwrap_or(&[]);

        // 0. The label of every training question: gold, or the majority of its samples'
        //    answers; the rationales of questions left without one are not scored.
        let label_mode = spec.score.label.as_deref().unwrap_or("gold");
        crate::task::check_gold(&data, label_mode)?;
        let min_votes = spec.score.majority_min_votes.unwrap_or(DEFAULT_MIN_VOTES);
        let (labels, votes, tally) = labels(&data, &rationales, label_mode, min_votes);
        let rationales: Vec<Rationale> = rationales
            .into_iter()
            .filter(|r| labels.contains_key(r.question_id.as_str()))
            .collect();
        if rationales.is_empty() {
            return Err(crate::Error::run(format!(
                "no training question got a label: {}",
                tally.describe(min_votes)
            )));
        }
        let label_of = |qid: &str| labels[qid].as_str();

        // 1.-2. The RD model and its tokenizer: a pretrained checkpoint as loaded, or a
        //       scratch student (tokenizer trained here, optionally warmed up).
        let mut warmup_loss = None;
        let (model, tok) = if spec.student.is_pretrained() {
            ctx.progress.set_message("loading checkpoint");
            let p = load_pretrained(&spec.student, ctx.device)?;
            (p.model, p.tok)
        } else {
            // 1. The student's tokenizer, trained on the training questions and rationales.
            let texts: Vec<String> = data
                .train
                .iter()
                .map(|e| fmt.prompt(&e.question))
                .chain(
                    rationales
                        .iter()
                        .map(|r| format::target(&fmt, r, kind, options_of(&r.question_id))),
                )
                .collect();
            let tok = Tok::train(texts.iter().map(String::as_str), spec.student.vocab_size)?;

            // 2. The RD model: fresh student, optionally warmed up on a slice of the rationales.
            let config = model_config(&spec.student, tok.vocab_size());
            let ad = ctx.device.clone().autodiff();
            let mut model = init_student(&config, spec.score.seed, &ad);
            if warms_up(spec) {
                let n_q =
                    ((data.train.len() as f64 * spec.score.warmup_share).ceil() as usize).max(1);
                let first: HashMap<&str, &crate::task::Example> = data
                    .train
                    .iter()
                    .take(n_q)
                    .map(|e| (e.id.as_str(), e))
                    .collect();
                let slice: Vec<TrainExample> = rationales
                    .iter()
                    .filter_map(|r| {
                        let e = first.get(r.question_id.as_str())?;
                        Some(format::train_example(&fmt, &tok, e, r, kind))
                    })
                    .collect();
                if slice.is_empty() {
                    return Err(crate::Error::run(format!(
                        "no rationale to warm up on: the first {n_q} of {} training questions (score.warmup_share = {}) have none of the {} rationales; raise score.warmup_share or set score.rd_model = \"untrained\"",
                        data.train.len(),
                        spec.score.warmup_share,
                        rationales.len()
                    )));
                }
                ctx.progress.set_message("warm-up");
                let opts = TrainOptions {
                    budget: Budget::Steps(spec.score.warmup_steps),
                    batch_size: spec.train.batch_size,
                    grad_accum: 1,
                    lr: spec.train.lr,
                    warmup_steps: spec.train.warmup_steps.min(spec.score.warmup_steps / 2),
                    weight_decay: spec.train.weight_decay,
                    eval_every: spec.score.warmup_steps,
                    seed: spec.score.seed,
                    group_by_length: spec.train.group_by_length == Some(true),
                    patience: None,
                };
                let outcome = train(model, &slice, tok.pad, &opts, &ad, None, ctx.progress)
                    .map_err(|e| crate::Error::run(format!("RD warm-up: {e}")))?;
                warmup_loss = outcome.loss_curve.last().map(|x| x.1);
                model = outcome.model;
            } else {
                model = burn::module::Module::valid(&model);
            }
            (model, tok)
        };
        tok.save(&out.join("tokenizer.json"))?;
        // RD transfer: another (pretrained) checkpoint computes RD, with its own tokenizer.
        let (model, tok) = match &spec.score.rd_weights {
            Some(w) => {
                ctx.progress.set_message("loading the RD checkpoint");
                let p = load_named(w, spec.student.max_seq_len, ctx.device)?;
                (p.model, p.tok)
            }
            None => (model, tok),
        };

        // 3. PPL(a | q) once per question, PPL(a | q, r) per rationale.
        ctx.progress.set_message("RD");
        ctx.progress.set_position(0);
        ctx.progress.set_length(rationales.len() as u64);
        let device = ctx.device;
        let labelled: Vec<&crate::task::Example> = data
            .train
            .iter()
            .filter(|e| labels.contains_key(e.id.as_str()))
            .collect();
        let without_pairs: Vec<(String, String, String)> = labelled
            .iter()
            .map(|e| {
                (
                    fmt.prompt(&e.question),
                    String::new(),
                    fmt.answer(label_of(&e.id)),
                )
            })
            .collect();
        let without = answer_nll_rd(&model, &tok, &without_pairs, spec.score.batch_size, device);
        let nll_q: HashMap<&str, f64> = labelled
            .iter()
            .map(|e| e.id.as_str())
            .zip(without)
            .collect();
        let mut with = Vec::with_capacity(rationales.len());
        for chunk in rationales.chunks(spec.score.batch_size * 4) {
            let pairs: Vec<(String, String, String)> = chunk
                .iter()
                .map(|r| {
                    let e = by_id[r.question_id.as_str()];
                    let (prompt, context) = format::rd_context(&fmt, &e.question, &r.body);
                    (prompt, context, fmt.answer(label_of(&e.id)))
                })
                .collect();
            with.extend(answer_nll_rd(
                &model,
                &tok,
                &pairs,
                spec.score.batch_size,
                device,
            ));
            ctx.progress.inc(chunk.len() as u64);
        }

        // 3b. What IFD, Superfiltering, GRAPE and RSR are made of (only for strategies that
        //     rank by them): the response the student trains on (rationale, answer, <eos>),
        //     its mean NLL and mean token rank given the question, and its mean NLL alone.
        let response: Option<(Vec<ResponseStats>, Vec<ResponseStats>)> =
            if ctx.run.strategy.needs_response_scores() {
                ctx.progress.set_message("response scores");
                let with_q: Vec<TrainExample> = rationales
                    .iter()
                    .map(|r| {
                        format::train_example(&fmt, &tok, by_id[r.question_id.as_str()], r, kind)
                    })
                    .collect();
                let alone: Vec<TrainExample> = with_q
                    .iter()
                    .map(|e| TrainExample {
                        prompt: Vec::new(),
                        ..e.clone()
                    })
                    .collect();
                let b = spec.score.batch_size;
                Some((
                    response_stats(&model, tok.pad, &with_q, b, RANK_CLIP, device),
                    response_stats(&model, tok.pad, &alone, b, RANK_CLIP, device),
                ))
            } else {
                None
            };
        fn measured(x: &ResponseStats) -> Option<&ResponseStats> {
            (x.tokens > 0).then_some(x)
        }

        // 4. Accuracy and diversity, then the scored table.
        let mut siblings: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, r) in rationales.iter().enumerate() {
            siblings.entry(r.question_id.as_str()).or_default().push(i);
        }
        let grams: Vec<_> = rationales
            .iter()
            .map(|r| ngrams(&r.text, spec.score.ngram))
            .collect();
        let scored: Vec<Scored> = rationales
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let e = by_id[r.question_id.as_str()];
                let extracted = answer_of(kind, r, &e.options);
                let correct = matches(kind, extracted.as_deref(), label_of(&e.id));
                let max_sim = siblings[r.question_id.as_str()]
                    .iter()
                    .filter(|&&k| k != i)
                    .map(|&k| jaccard(&grams[i], &grams[k]))
                    .fold(0.0, f64::max);
                let nw = nll_q[r.question_id.as_str()];
                Scored {
                    id: r.id.clone(),
                    question_id: r.question_id.clone(),
                    source: r.source.clone(),
                    text: r.text.clone(),
                    extracted,
                    correct,
                    diversity: 1.0 - max_sim,
                    nll_with: with[i],
                    nll_without: nw,
                    rd: (with[i] - nw).exp(),
                    nll_response: response
                        .as_ref()
                        .and_then(|(w, _)| measured(&w[i]))
                        .map(|x| x.mean_nll),
                    nll_response_alone: response
                        .as_ref()
                        .and_then(|(_, a)| measured(&a[i]))
                        .map(|x| x.mean_nll),
                    mean_rank: response
                        .as_ref()
                        .and_then(|(w, _)| measured(&w[i]))
                        .map(|x| x.mean_rank),
                }
            })
            .collect();
        write_json(&out.join("scores.json"), &scored)?;
        if label_mode == "majority" {
            write_json(&out.join("labels.json"), &votes)?;
        }
        let n = scored.len().max(1) as f64;
        let acc = scored.iter().filter(|s| s.correct).count() as f64 / n;
        let mean_rd = |c: bool| {
            let v: Vec<f64> = scored
                .iter()
                .filter(|s| s.correct == c)
                .map(|s| s.rd)
                .collect();
            if v.is_empty() {
                None
            } else {
                Some(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        // 5. How the scores relate: Spearman within questions, per pair (with response scores).
        let spearman = response.is_some().then(|| {
            within_question_spearman(&scored)
                .into_iter()
                .map(|(k, (rho, n))| (k, j!([rho, n])))
                .collect::<serde_json::Map<String, Value>>()
        });
        let mut metrics = j!({
            "rationales": scored.len(),
            "teacher_accuracy": acc,
            "mean_rd_correct": mean_rd(true),
            "mean_rd_wrong": mean_rd(false),
            "rd_model": if spec.score.rd_weights.is_some() || spec.student.is_pretrained() {
                "pretrained"
            } else {
                spec.score.rd_model.as_deref().unwrap_or("warmup")
            },
            "warmup_final_loss": warmup_loss,
            "vocab_size": tok.vocab_size(),
            "label": label_mode,
            "majority": (label_mode == "majority").then(|| j!({
                "labelled": tally.labelled, "ties": tally.ties, "too_few": tally.too_few,
                "min_votes": min_votes,
                "agree_with_gold": tally.agree_with_gold, "with_gold": tally.with_gold,
            })),
            "notes": if label_mode == "majority" { vec![tally.describe(min_votes)] } else { vec![] },
        });
        if let (Some(sp), Some(o)) = (spearman, metrics.as_object_mut()) {
            o.insert("score_spearman".into(), Value::Object(sp));
        }
        Ok(metrics)
    }
}

/// The labels `score.label` takes.
pub const LABELS: &[&str] = &["gold", "majority"];

/// Spec checks of `score.label` and `score.majority_min_votes`: (dotted key, message).
pub fn check_spec(
    s: &crate::spec::raw::RawSpec,
) -> std::result::Result<(), (&'static str, String)> {
    if let Some(l) = s.score.label.as_deref()
        && !LABELS.contains(&l)
    {
        return Err((
            "score.label",
            format!("unknown label `{l}` (known: {})", LABELS.join(", ")),
        ));
    }
    if s.score.majority_min_votes == Some(0) {
        return Err(("score.majority_min_votes", "must be at least 1".into()));
    }
    Ok(())
}

/// Question id → label, each training question's vote (majority only) and their tally.
fn labels<'a>(
    data: &'a TaskData,
    rationales: &[Rationale],
    mode: &str,
    min_votes: usize,
) -> (HashMap<&'a str, String>, Vec<Value>, Tally) {
    let mut tally = Tally::default();
    if mode != "majority" {
        let l = data
            .train
            .iter()
            .map(|e| (e.id.as_str(), e.answer.clone()))
            .collect();
        return (l, Vec::new(), tally);
    }
    // 1. Each question's sample answers, in rationale order; 2. the vote per question (only a
    //    majority labels it).
    let mut labels = HashMap::new();
    let mut votes = Vec::new();
    for (e, a) in
        crate::teacher::majority::answers_per_question(data.answer, &data.train, rationales)
    {
        let v = vote(data.answer, &a, min_votes);
        tally.add(data.answer, &v, Some(&e.answer));
        if let Vote::Majority { answer, .. } = &v {
            labels.insert(e.id.as_str(), answer.clone());
        }
        votes.push(j!({"question_id": e.id, "vote": v, "gold": e.answer}));
    }
    (labels, votes, tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::testing::data;

    fn r(q: &str, k: usize, text: &str) -> Rationale {
        Rationale {
            id: format!("{q}/{k}"),
            question_id: q.into(),
            source: "s".into(),
            body: String::new(),
            text: text.into(),
            origin: "sampled".into(),
            answer_text: None,
        }
    }

    #[test]
    fn majority_labels_skip_ties_and_questions_with_too_few_answers() {
        // train-0 has no gold: 3, 3, 4 gives it 3. train-1: 5 vs 6, a tie. train-2: one sample.
        let d = data(&["", "6", "7"], &["1"]);
        let rs = vec![
            r("train-0", 0, "The answer is 3."),
            r("train-0", 1, "So 3."),
            r("train-0", 2, "The answer is 4."),
            r("train-1", 0, "The answer is 5."),
            r("train-1", 1, "The answer is 6."),
            r("train-2", 0, "The answer is 7."),
        ];
        let (got, votes, tally) = labels(&d, &rs, "majority", 2);
        assert_eq!(got.len(), 1);
        assert_eq!(got["train-0"], "3");
        assert_eq!((tally.labelled, tally.ties, tally.too_few), (1, 1, 1));
        assert_eq!(votes.len(), 3);
        assert_eq!(votes[1]["vote"]["status"], "tie");
        assert_eq!(votes[2]["vote"]["status"], "too-few");
        // Gold labels: every training question, from the task.
        let (got, votes, _) = labels(&d, &rs, "gold", 2);
        assert_eq!(got["train-1"], "6");
        assert!(votes.is_empty());
    }
}
