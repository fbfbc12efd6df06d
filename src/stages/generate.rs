//! Stage `generate`: builds the task's splits and has the teacher write rationales for every
//! training question. Output: `tasks.json`, `rationales.json`; for recorded rationales
//! `sources.json` (per-file counts); for the `openai` teacher `requests.json` (every request of
//! both stages: rationales, then the answer-stage requests, `"stage": 2`).

use super::{Stage, StageCtx, StageKind, json, sections};
use crate::data::sources as data_sources;
use crate::data::{custom, tasks};
use crate::error::Result;
use crate::files::write_json;
use crate::run::RunSpec;
use crate::run::TaskRef;
use crate::task::synthetic;
use crate::teacher::{answer_stage, programmatic};
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
        // Locations are not content: the data root and JSONL paths are covered by input hashes.
        let mut data = json(&run.spec.data);
        if let Some(m) = data.as_object_mut() {
            m.remove("root");
            // A custom task's question files are input hashes too; its answer type enters as
            // what it is, written or the default.
            for k in ["questions", "validation_questions", "test_questions"] {
                m.remove(k);
            }
            if let TaskRef::Custom { task, .. } = &run.task {
                m.insert("answer".into(), j!(task.answer));
            }
            // BIG-bench options are lettered in file order since this marker exists (before,
            // in sorted key order): a version of that loader alone, so other tasks keep their
            // keys.
            if let TaskRef::Real { def, .. } = &run.task
                && def.layout == crate::data::registry::Layout::BigBench
                && matches!(def.answer, crate::answer::AnswerType::Choice(_))
            {
                m.insert("bigbench_option_order".into(), j!("file"));
            }
        }
        let mut teacher = json(&run.spec.teacher);
        // The answer stage enters as what it does (below), not as the mode that switched it on.
        if let Some(m) = teacher.as_object_mut() {
            m.remove("answer_stage");
            m.remove("answer_max_tokens");
        }
        if run.spec.teacher.kind != "openai" {
            teacher.as_object_mut().map(|m| m.remove("jsonl"));
            let mut s = vec![("data", data), ("teacher", teacher)];
            // Generic JSONL rows may carry `answer_text`, which is read since it exists.
            if !run.spec.teacher.jsonl.is_empty() {
                s.push(("jsonl_answer_text", j!(true)));
            }
            return sections(&s);
        }
        // The request set: model, rendered prompts (template text + questions), sampling
        // parameters and sample count. Where and how fast they are sent is left out.
        if let Some(m) = teacher.as_object_mut() {
            for k in [
                "base_url",
                "api_key_env",
                "concurrency",
                "max_retries",
                "timeout_s",
                "max_body_bytes",
                "backoff_s",
                "rpm",
                "tpm",
                "use_n",
                "sources",
                "jsonl",
                "wrong_rate",
                "flawed_rate",
                "duplicate_rate",
            ] {
                m.remove(k);
            }
        }
        let prompt = crate::templates::template_text(
            crate::templates::TEACHER_PROMPTS,
            &run.spec.teacher.prompt,
        )
        .unwrap_or_default();
        let mut s = vec![
            ("data", data),
            ("teacher", teacher),
            ("prompt_template", json(&prompt)),
        ];
        // The second, answer-extracting request: its trigger template and length.
        if answer_stage::enabled(&run.spec.teacher) {
            s.push((
                "answer_stage",
                j!({
                    "trigger_template": answer_stage::TRIGGER_TEMPLATE,
                    "max_tokens": run.spec.teacher.answer_max_tokens.unwrap_or(answer_stage::DEFAULT_MAX_TOKENS),
                }),
            ));
        }
        if run.spec.teacher.hint.is_some() {
            s.push(("hint_template", json(&answer_stage::HINT_TEMPLATE)));
        }
        sections(&s)
    }
    fn inputs(&self, run: &RunSpec) -> Result<Vec<(String, PathBuf)>> {
        if let TaskRef::Custom { task, sources } = &run.task {
            // The question files by role, then (file teacher) the JSONL files by position and
            // name (two files of one name in different folders stay two inputs).
            let mut files: Vec<(String, PathBuf)> = task
                .files()
                .into_iter()
                .map(|(role, p)| (format!("questions:{role}"), p))
                .collect();
            if run.spec.teacher.kind == "file" {
                for (i, w) in sources.iter().enumerate() {
                    for f in data_sources::files(w, Path::new("."))? {
                        files.push((format!("{i}:{}", jsonl_key(&f)), f));
                    }
                }
            }
            return Ok(files);
        }
        let TaskRef::Real {
            def,
            split,
            root,
            sources,
        } = &run.task
        else {
            return Ok(vec![]);
        };
        // Files under the data root are keyed by their path there (never the absolute path);
        // the user's JSONL files by position and name (two files of one name in different
        // folders stay two inputs).
        let under_root = |f: PathBuf| {
            let key = f
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| jsonl_key(&f));
            (key, f)
        };
        let mut files: Vec<(String, PathBuf)> = tasks::split_files(def, *split, root)
            .into_iter()
            .map(under_root)
            .collect();
        // Only the files this run's teacher reads.
        match run.spec.teacher.kind.as_str() {
            "file" => {
                for (i, w) in sources.iter().enumerate() {
                    for f in data_sources::files(w, root)? {
                        files.push(match w {
                            data_sources::Wanted::Jsonl(_) => (format!("{i}:{}", jsonl_key(&f)), f),
                            data_sources::Wanted::Named(_) => under_root(f),
                        });
                    }
                }
            }
            "openai" if run.spec.teacher.prompt == "few-shot-cot" => {
                files.push(under_root(few_shot_path(root)))
            }
            _ => {}
        }
        Ok(files)
    }
    fn run(&self, ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
        let spec = &ctx.run.spec;
        if spec.teacher.kind == "openai" {
            return openai_generate(ctx, out);
        }
        // 1. The task's splits (and the questions the spec's data.max_* cut away).
        let (data, cut) = task_data(ctx.run)?;
        // 2. The teacher's rationales for the training questions: written by the programmatic
        //    teacher, or recorded ones joined to the questions.
        let mut plan = None;
        let (rationales, reports) = match &ctx.run.task {
            TaskRef::Synthetic(_) => match &spec.teacher.budget {
                Some(b) => {
                    let (rs, p) = programmatic::generate_budgeted(
                        &data.train,
                        &spec.teacher,
                        data.answer,
                        b,
                    )?;
                    plan = Some(p);
                    (rs, vec![])
                }
                None => (programmatic::generate(&data.train, &spec.teacher), vec![]),
            },
            TaskRef::Real {
                def, root, sources, ..
            } => {
                let opts = data_sources::LoadOptions {
                    strict: spec.data.strict,
                    cut: &cut,
                };
                let pool = data_sources::load(def, &data, root, sources, opts)?;
                (pool.train, pool.reports)
            }
            TaskRef::Custom { sources, .. } => {
                let opts = data_sources::LoadOptions {
                    strict: spec.data.strict,
                    cut: &cut,
                };
                let pool = data_sources::load_custom(&data, sources, opts)?;
                (pool.train, pool.reports)
            }
        };
        // 3. What each file gave, for the user (printed after the stage, and in summary.md);
        //    a run with nothing to distil stops here, naming the files.
        let notes: Vec<String> = reports.iter().map(|r| r.describe()).collect();
        if rationales.is_empty() {
            return Err(crate::Error::run(format!(
                "no usable training rationale for the {} training questions{}",
                data.train.len(),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", notes.join(" | "))
                }
            )));
        }
        ctx.progress.set_length(1);
        ctx.progress.set_position(1);
        write_json(&out.join("tasks.json"), &data)?;
        write_json(&out.join("rationales.json"), &rationales)?;
        write_json(&out.join("sources.json"), &reports)?;
        let mut metrics = j!({
            "train": data.train.len(), "validation": data.validation.len(), "test": data.test.len(),
            "rationales": rationales.len(),
            "sources": reports.iter().map(|r| j!({"source": r.source, "file": r.file, "rows": r.rows, "train": r.train, "held_out": r.held_out, "unmatched": r.unmatched, "unparsed": r.unparsed.len()})).collect::<Vec<_>>(),
            "notes": notes,
        });
        if let (Some(p), Some(m)) = (plan, metrics.as_object_mut()) {
            m.insert("budget".into(), budget_metrics(&spec.teacher, &p, &[]));
        }
        Ok(metrics)
    }
}

/// The `budget` metric of a budgeted teacher: its kind, rounds, samples asked and correct, and
/// per difficulty bucket ([`crate::teacher::budget::buckets`]) the questions, samples and (API
/// teachers; `tokens`: each question's completion tokens, both stages) completion tokens.
fn budget_metrics(
    t: &crate::spec::raw::TeacherSpec,
    p: &crate::teacher::budget::Plan,
    tokens: &[u64],
) -> Value {
    use crate::teacher::budget::{BUCKETS, bucket_of};
    let mut bucket_tokens = [0u64; BUCKETS.len()];
    for (q, &f) in p.first_failure.iter().enumerate() {
        bucket_tokens[bucket_of(f)] += tokens.get(q).copied().unwrap_or(0);
    }
    j!({
        "kind": t.budget.as_ref().map(|b| b.kind.clone()),
        "rounds": p.rounds,
        "asked": p.asked.iter().sum::<usize>(),
        "correct": p.correct.iter().sum::<usize>(),
        "buckets": crate::teacher::budget::buckets(p)
            .into_iter()
            .zip(bucket_tokens)
            .map(|((name, questions, samples), tokens)| j!({
                "bucket": name, "questions": questions, "samples": samples,
                "completion_tokens": tokens,
            }))
            .collect::<Vec<_>>(),
    })
}

/// The task's splits, synthetic or real (no rationales), and the real task's questions that
/// `data.max_train` / `max_validation` / `max_test` cut away. Every split that runs need is
/// checked to be non-empty.
fn task_data(run: &RunSpec) -> Result<(crate::task::TaskData, Vec<crate::task::Example>)> {
    let spec = &run.spec;
    let mut cut = Vec::new();
    let mut data = match &run.task {
        TaskRef::Synthetic(kind) => synthetic::generate(*kind, &spec.data),
        TaskRef::Real {
            def, split, root, ..
        } => tasks::load(def, *split, root, spec.data.validation)?,
        TaskRef::Custom { task, .. } => custom::load(task, spec.data.validation)?,
    };
    if !matches!(run.task, TaskRef::Synthetic(_)) {
        for (split, n) in [
            (&mut data.train, spec.data.max_train),
            (&mut data.test, spec.data.max_test),
            (&mut data.validation, spec.data.max_validation),
        ] {
            if let Some(n) = n {
                cut.extend(split.drain(n.min(split.len())..));
            }
        }
    }
    for (name, split, cap) in [
        (
            "training",
            &data.train,
            ("data.max_train", spec.data.max_train),
        ),
        ("test", &data.test, ("data.max_test", spec.data.max_test)),
    ] {
        if split.is_empty() {
            return Err(crate::Error::run(format!(
                "task {} has no {name} question{}",
                data.task,
                match cap.1 {
                    Some(n) => format!(" ({} = {n})", cap.0),
                    None => String::new(),
                }
            )));
        }
    }
    // Gold answers where the run needs them, checked before any rationale is sampled.
    crate::task::check_gold(&data, spec.score.label.as_deref().unwrap_or("gold"))?;
    Ok((data, cut))
}

/// The request log a run's generate stage appends to under `requests_dir`: the `openai`
/// teacher's (one per model), none for the other teachers. `morsd cache gc` keeps the logs some
/// spec's run names here.
pub fn request_log_path(run: &RunSpec, requests_dir: &Path) -> Option<PathBuf> {
    (run.spec.teacher.kind == "openai")
        .then(|| crate::teacher::request_log::log_path(requests_dir, &run.spec.teacher.model))
}

/// The `openai` teacher: sample rationales for the training questions from the server(s).
fn openai_generate(ctx: &StageCtx<'_>, out: &Path) -> Result<Value> {
    use crate::teacher::openai;
    let t = &ctx.run.spec.teacher;
    let (data, _) = task_data(ctx.run)?;
    // 1. Render the prompts (few-shot exemplars from the data root where the task has them).
    let template = crate::templates::template_text(crate::templates::TEACHER_PROMPTS, &t.prompt)?;
    let exemplars = match &ctx.run.task {
        TaskRef::Real { def, root, .. } if t.prompt == "few-shot-cot" => few_shot(def, root)?,
        _ => String::new(),
    };
    //    With `teacher.hint = "gold"` the question carries its gold answer; the answer stage
    //    (where on) gets the unhinted prompt and the trigger line of the task's answer type.
    let two_stage = answer_stage::enabled(t);
    let questions: Vec<openai::Prompted> = data
        .train
        .iter()
        .map(|e| {
            let plain = crate::templates::teacher_prompt(&template, &e.question, &exemplars)?;
            let prompt = match t.hint.as_deref() {
                Some(_) => crate::templates::teacher_prompt(
                    &template,
                    &answer_stage::hinted_question(&e.question, &e.answer)?,
                    &exemplars,
                )?,
                None => plain.clone(),
            };
            let answer = if two_stage {
                Some(openai::AnswerPrompt {
                    prompt: plain,
                    trigger: answer_stage::trigger(data.answer, &e.options)?,
                })
            } else {
                None
            };
            Ok(openai::Prompted {
                example: e.clone(),
                prompt,
                answer,
                samples: 0..t.samples,
            })
        })
        .collect::<Result<_>>()?;
    // 2. Sample through the durable request log.
    let urls = t.base_url.as_ref().map(|u| u.to_vec()).unwrap_or_else(|| {
        vec![
            std::env::var("MORSD_OPENAI_BASE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8765/v1".into()),
        ]
    });
    let api_key = t.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
    let opts = openai::Options {
        urls,
        model: t.model.clone(),
        api_key,
        temperature: t.temperature,
        top_p: t.top_p,
        max_tokens: t.max_tokens,
        stop: t.stop.clone(),
        samples: t.samples,
        seed: t.seed,
        concurrency: t.concurrency,
        max_retries: t.max_retries,
        timeout: std::time::Duration::from_secs_f64(t.timeout_s.max(0.1)),
        max_body: t.max_body_bytes.unwrap_or(8 << 20),
        rpm: t.rpm,
        tpm: t.tpm,
        backoff: std::time::Duration::from_secs_f64(t.backoff_s.max(0.0)),
        use_n: t.use_n,
        answer_max_tokens: t
            .answer_max_tokens
            .unwrap_or(answer_stage::DEFAULT_MAX_TOKENS),
    };
    let log = crate::teacher::request_log::RequestLog::open(ctx.requests_dir, &t.model)?;
    let options: std::collections::HashMap<&str, &[String]> = data
        .train
        .iter()
        .map(|e| (e.id.as_str(), e.options.as_slice()))
        .collect();
    //    With `teacher.budget`, in rounds: each round asks its (question, samples) through the
    //    same log, and the answers' correctness decides the next round.
    let (outcome, plan) = match &t.budget {
        None => (openai::sample(&questions, &opts, &log, ctx.progress)?, None),
        Some(b) => {
            let mut all = openai::Outcome::default();
            let plan = crate::teacher::budget::run(questions.len(), t.samples, b, |reqs| {
                let round: Vec<openai::Prompted> = reqs
                    .iter()
                    .map(|(q, r)| openai::Prompted {
                        samples: r.clone(),
                        ..questions[*q].clone()
                    })
                    .collect();
                let o = openai::sample(&round, &opts, &log, ctx.progress)?;
                let rs = rationales_of(&o, t, data.answer, &options);
                // The completions come in the round's (question, sample) order.
                let mut it = rs.iter();
                let res = reqs
                    .iter()
                    .map(|(q, r)| {
                        let e = &data.train[*q];
                        r.clone()
                            .map(|_| {
                                it.next().is_some_and(|x| {
                                    let a = crate::teacher::answer_of(data.answer, x, &e.options);
                                    crate::answer::matches(data.answer, a.as_deref(), &e.answer)
                                })
                            })
                            .collect()
                    })
                    .collect();
                all.absorb(o);
                Ok(res)
            })?;
            (all, Some(plan))
        }
    };
    eprintln!(
        "teacher {}: {} requests answered ({} of them answer stage), {} from the request log, {} retries, {} prompt + {} completion tokens",
        t.model,
        outcome.sent,
        outcome.answers_sent,
        outcome.reused,
        outcome.retries,
        outcome.prompt_tokens,
        outcome.completion_tokens
    );
    // 3. Rationales (stage one + the answer sentence read from stage two, where asked), and
    //    every request's record, both stages.
    let rationales = rationales_of(&outcome, t, data.answer, &options);
    let requests: Vec<&crate::teacher::request_log::Completion> = outcome
        .completions
        .iter()
        .chain(outcome.answers.iter().flatten())
        .collect();
    write_json(&out.join("tasks.json"), &data)?;
    write_json(&out.join("rationales.json"), &rationales)?;
    write_json(&out.join("requests.json"), &requests)?;
    let mut metrics = j!({
        "train": data.train.len(), "validation": data.validation.len(), "test": data.test.len(),
        "rationales": rationales.len(),
        "requests_answered": outcome.sent, "answer_requests_answered": outcome.answers_sent,
        "answer_stage": two_stage, "hint": t.hint,
        "samples_from_log": outcome.reused, "retries": outcome.retries,
        "prompt_tokens": outcome.prompt_tokens, "completion_tokens": outcome.completion_tokens,
    });
    if let (Some(p), Some(m)) = (plan, metrics.as_object_mut()) {
        // Completion tokens per question (both stages), for the buckets.
        let index: std::collections::HashMap<&str, usize> = data
            .train
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.as_str(), i))
            .collect();
        let mut tokens = vec![0u64; data.train.len()];
        for c in outcome
            .completions
            .iter()
            .chain(outcome.answers.iter().flatten())
        {
            if let Some(&i) = index.get(c.question_id.as_str()) {
                tokens[i] = tokens[i].saturating_add(c.completion_tokens);
            }
        }
        m.insert("budget".into(), budget_metrics(t, &p, &tokens));
    }
    Ok(metrics)
}

/// The rationales of an `openai` outcome: stage one, with the answer sentence read from stage
/// two where it was asked.
fn rationales_of(
    outcome: &crate::teacher::openai::Outcome,
    t: &crate::spec::raw::TeacherSpec,
    kind: crate::answer::AnswerType,
    options: &std::collections::HashMap<&str, &[String]>,
) -> Vec<crate::teacher::Rationale> {
    outcome
        .completions
        .iter()
        .zip(&outcome.answers)
        .map(|(c, a)| {
            let opts = options.get(c.question_id.as_str()).copied().unwrap_or(&[]);
            let (text, body) = match a {
                Some(a) => answer_stage::rationale(
                    &c.text,
                    answer_stage::extract(kind, &a.text, opts).as_deref(),
                ),
                None => crate::teacher::normalise(&c.text, None, kind, opts),
            };
            crate::teacher::Rationale {
                id: format!("{}/openai/{}", c.question_id, c.sample),
                question_id: c.question_id.clone(),
                source: format!("openai:{}", t.model),
                body,
                text,
                origin: if t.hint.is_some() {
                    "rationalized"
                } else {
                    "sampled"
                }
                .into(),
                answer_text: a.as_ref().map(|a| a.text.clone()),
            }
        })
        .collect()
}

/// The Wei et al. exemplars of a task (`fine-tune-cot/few_shot_cot_prompts.json`).
fn few_shot(def: &crate::data::registry::TaskDef, root: &Path) -> Result<String> {
    let key = def.splits.iter().find_map(|s| match s {
        crate::data::registry::SplitScheme::FineTuneCot(n) => Some(*n),
        _ => None,
    });
    let path = few_shot_path(root);
    let text = std::fs::read_to_string(&path).map_err(|e| crate::Error::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| crate::Error::Input {
        path: path.clone(),
        message: e.to_string(),
    })?;
    key.and_then(|k| v[k]["prompt"].as_str().map(String::from))
        .ok_or_else(|| crate::Error::Input {
            path,
            message: format!("no few-shot exemplars for {}", def.name),
        })
}

/// The input key of a JSONL file outside the data root: its file name.
fn jsonl_key(f: &Path) -> String {
    format!(
        "jsonl:{}",
        f.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

fn few_shot_path(root: &Path) -> PathBuf {
    root.join("fine-tune-cot/few_shot_cot_prompts.json")
}
