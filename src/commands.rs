//! The user-facing commands (`run`, `plan`, `report`, `cache ls`, `cache gc`) as library
//! functions; `main` only parses arguments, picks the device and maps errors to exit codes.

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::files::read_json;
use crate::pipeline::{self, ExecOptions, Status};
use crate::report::{self, RunRow, Stored};
use crate::resolve;
use crate::select::Scored;
use crate::stages::StageKind;
use crate::task::TaskData;
use crate::teacher::request_log;
use burn::prelude::Device;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Options of `morsd run`.
pub struct RunArgs {
    /// The spec file.
    pub spec: PathBuf,
    /// `--set KEY=VALUE` overrides.
    pub sets: Vec<String>,
    /// Parallel runs.
    pub jobs: usize,
    /// `--force STAGE`.
    pub force: Option<String>,
    /// Draw progress bars.
    pub progress: bool,
    /// `--until STAGE`: stop after it.
    pub until: Option<String>,
    /// `--run-index I`: run only the I-th run of the spec (a Slurm array task); no results folder.
    pub run_index: Option<usize>,
    /// `--collect`: execute nothing, write the results folder from the cache.
    pub collect: bool,
}

/// `morsd run`: executes the DAG and writes the results folder. Returns the text to print.
pub fn run(args: &RunArgs, cache: &Cache, device: Device) -> Result<String> {
    let spec = resolve::load(&args.spec, &args.sets)?;
    let force = stage_arg("--force", args.force.as_deref())?;
    let until = stage_arg("--until", args.until.as_deref())?;
    let mut plans = pipeline::plan(&spec)?;
    if let Some(i) = args.run_index {
        if i >= plans.len() {
            return Err(Error::BadArg {
                arg: format!("--run-index {i}"),
                message: format!("the spec has {} runs", plans.len()),
            });
        }
        plans = vec![plans.swap_remove(i)];
    }
    let opts = ExecOptions {
        jobs: args.jobs,
        force,
        device,
        progress: args.progress,
        until,
    };
    let outcomes = if args.collect {
        pipeline::collect(cache, &plans)
    } else {
        pipeline::execute(cache, &spec, &plans, &opts)
    };
    if args.run_index.is_some() && !args.collect {
        // One run of a sweep (a Slurm array task): the collect job writes the results folder.
        let o = outcomes.into_iter().next().expect("one run")?;
        return Ok(format!(
            "run {}: executed {:?}\n",
            o.run.label,
            o.executed.iter().map(|k| k.name()).collect::<Vec<_>>()
        ));
    }
    // Results of every finished run are written even if another run failed.
    let mut failures = Vec::new();
    let mut done = Vec::new();
    for (plan, outcome) in plans.iter().zip(outcomes) {
        match outcome {
            Ok(o) => done.push(o),
            Err(e) => failures.push(format!("{}: {e}", plan.run.label)),
        }
    }
    let executed: usize = done.iter().map(|o| o.executed.len()).sum();
    let mut text = String::new();
    if let Some(u) = until.filter(|u| *u < StageKind::Eval && !args.collect) {
        // A partial run: no results folder, just what ran.
        text = format!(
            "ran until {}: {executed} stage instances executed, the rest reused from the cache\n",
            u.name()
        );
    } else if !done.is_empty() {
        let rows = done.iter().map(row_of).collect::<Result<Vec<_>>>()?;
        let stored = Stored {
            experiment: spec.name.clone(),
            spec: args.spec.display().to_string(),
            sweep_keys: spec.sweep_keys.clone(),
            runs: rows,
            invocations: report::provenance::invocations(
                done.iter().flat_map(|o| o.manifests.values()),
                crate::invocation::current(),
            ),
            written_by: Some(crate::invocation::current().id.clone()),
        };
        // The selection and stage keys first: report.html (written by report::write) reads
        // selection.json, and runs.json, written last, marks the folder complete.
        std::fs::create_dir_all(&spec.output).at(&spec.output)?;
        write_selection(&spec.output, &done, &stored)?;
        report::check::write_stages(&spec.output, &done)?;
        let preds = done
            .iter()
            .map(|o| read_json(&o.dirs[&StageKind::Eval].join("predictions.json")))
            .collect::<Result<Vec<_>>>()?;
        let reading = report::write(&spec.output, &stored, &preds)?;
        text.push_str(&results_table(&stored));
        text.push_str(&format!("\n{}\n", wrap(&reading, 100)));
        text.push_str(&format!(
            "\n{} stage instances, {executed} executed, {} reused from the cache. Results in {} \
             (open {} in a browser)\n",
            stored.runs.len() * 5,
            stored.runs.len() * 5 - executed,
            spec.output.display(),
            spec.output.join("report.html").display()
        ));
    }
    if !failures.is_empty() {
        return Err(Error::run(format!(
            "{} of {} runs failed (finished stages stay cached; run again to resume):\n  {}",
            failures.len(),
            plans.len(),
            failures.join("\n  ")
        )));
    }
    Ok(text)
}

fn row_of(o: &pipeline::RunOutcome) -> Result<RunRow> {
    let metric = |k: StageKind, name: &str| {
        o.manifests
            .get(&k)
            .and_then(|m| m.metrics.get(name))
            .cloned()
            .unwrap_or_default()
    };
    // The learning curves the train entry keeps, and the convergence rule on them.
    #[derive(serde::Deserialize)]
    struct Curves {
        loss: Vec<(u64, f64)>,
        validation_accuracy: Vec<(u64, f64)>,
    }
    let curves: Option<Curves> = match o.dirs.get(&StageKind::Train) {
        Some(d) => report::read_optional_json(&d.join("curves.json"))?,
        None => None,
    };
    let patience = o.run.spec.train.patience;
    let steps = metric(StageKind::Train, "steps").as_u64();
    let converged = curves.as_ref().map(|c| {
        let v: Vec<(usize, f64)> = c
            .validation_accuracy
            .iter()
            .map(|&(s, a)| (s as usize, a))
            .collect();
        crate::student::train::converged(&v, patience)
    });
    let (loss_curve, val_curve) = curves
        .map(|c| (c.loss, c.validation_accuracy))
        .unwrap_or_default();
    Ok(RunRow {
        stopped_step: metric(StageKind::Train, "stopped_step").as_u64().or(steps),
        stop_reason: metric(StageKind::Train, "stop_reason")
            .as_str()
            .map(String::from)
            .or_else(|| steps.map(|_| "budget".into())),
        patience: patience.map(|p| p as u64),
        converged,
        val_questions: metric(StageKind::Generate, "validation").as_u64(),
        val_curve,
        loss_curve,
        label: o.run.label.clone(),
        swept: o.run.swept.clone(),
        seed: o.run.seed,
        task: o.run.task.name().to_string(),
        strategy: o.run.strategy.name().into(),
        per_question: o.run.spec.select.per_question,
        rationales: metric(StageKind::Train, "rationales").as_u64().unwrap_or(0),
        training_tokens: metric(StageKind::Train, "training_tokens")
            .as_u64()
            .unwrap_or(0),
        train_steps: metric(StageKind::Train, "steps").as_u64(),
        epochs: metric(StageKind::Train, "epochs").as_u64(),
        accuracy: metric(StageKind::Eval, "accuracy")
            .as_f64()
            .unwrap_or(f64::NAN),
        val_accuracy: metric(StageKind::Train, "val_accuracy").as_f64(),
        best_step: metric(StageKind::Train, "best_step").as_u64().unwrap_or(0),
        wall_s: o
            .manifests
            .iter()
            .map(|(k, m)| (k.name().to_string(), m.wall_s))
            .collect(),
        executed: o.executed.iter().map(|k| k.name().to_string()).collect(),
        keys: o
            .manifests
            .iter()
            .map(|(k, m)| (k.name().to_string(), m.key[..12].to_string()))
            .collect(),
        test_questions: metric(StageKind::Eval, "total").as_u64(),
        teacher_tokens: metric(StageKind::Generate, "completion_tokens")
            .as_u64()
            .map(|c| {
                (
                    metric(StageKind::Generate, "prompt_tokens")
                        .as_u64()
                        .unwrap_or(0),
                    c,
                )
            }),
        sources: metric(StageKind::Generate, "notes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect(),
        built_by: report::provenance::built_by(o.manifests.iter().map(|(k, m)| (k.name(), m))),
        score_spearman: serde_json::from_value(metric(StageKind::Score, "score_spearman"))
            .unwrap_or_default(),
        teacher_budget: Some(metric(StageKind::Generate, "budget")).filter(|v| !v.is_null()),
    })
}

fn write_selection(dir: &Path, done: &[pipeline::RunOutcome], stored: &Stored) -> Result<()> {
    use report::html::{Question, Rationale, SelRun, SelectionData, finite};
    use std::collections::HashMap;
    let mut scored: Vec<(String, Scored)> = Vec::new();
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    // For selection.json: questions (with gold answers from the generate entry's tasks.json),
    // keyed by (generate key, question id); rationales keyed by (score key, rationale id).
    let mut data = SelectionData::default();
    let mut q_index: HashMap<(String, String), usize> = HashMap::new();
    let mut r_index: HashMap<(String, String), usize> = HashMap::new();
    for (i, o) in done.iter().enumerate() {
        let score_key = o.manifests[&StageKind::Score].key[..12].to_string();
        if seen.insert(score_key.clone()) {
            let gen_key = o.manifests[&StageKind::Generate].key[..12].to_string();
            let tasks: TaskData = read_json(&o.dirs[&StageKind::Generate].join("tasks.json"))?;
            let golds: HashMap<&str, (&str, &str)> = tasks
                .train
                .iter()
                .map(|e| (e.id.as_str(), (e.question.as_str(), e.answer.as_str())))
                .collect();
            let s: Vec<Scored> = read_json(&o.dirs[&StageKind::Score].join("scores.json"))?;
            for x in &s {
                let qk = (gen_key.clone(), x.question_id.clone());
                let q = *q_index.entry(qk).or_insert_with(|| {
                    let (text, gold) = golds
                        .get(x.question_id.as_str())
                        .copied()
                        .unwrap_or(("", ""));
                    data.questions.push(Question {
                        id: x.question_id.clone(),
                        text: text.to_string(),
                        gold: gold.to_string(),
                    });
                    data.questions.len() - 1
                });
                r_index.insert((score_key.clone(), x.id.clone()), data.rationales.len());
                data.rationales.push(Rationale {
                    id: x.id.clone(),
                    score_key: score_key.clone(),
                    q,
                    source: x.source.clone(),
                    extracted: x.extracted.clone(),
                    correct: x.correct,
                    diversity: finite(x.diversity),
                    rd: finite(x.rd),
                    text: x.text.clone(),
                    sel: vec![],
                });
            }
            scored.extend(s.into_iter().map(|x| (score_key.clone(), x)));
        }
        let ids: Vec<String> = read_json(&o.dirs[&StageKind::Select].join("selected.json"))?;
        for id in &ids {
            if let Some(&r) = r_index.get(&(score_key.clone(), id.clone())) {
                data.rationales[r].sel.push(i);
            }
        }
        let row = &stored.runs[i];
        data.runs.push(SelRun {
            label: row.label.clone(),
            strategy: row.strategy.clone(),
            per_question: row.per_question,
            seed: row.seed,
        });
        runs.push((
            o.run.label.clone(),
            score_key,
            ids.into_iter().collect::<HashSet<_>>(),
        ));
    }
    report::tables::write_selection(dir, &scored, &runs)?;
    report::html::write_selection_json(dir, &data)
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for w in text.split_whitespace() {
        if line > 0 && line + 1 + w.chars().count() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += w.chars().count();
    }
    out
}

/// A plain-text results table (setting, seed, rationales, accuracy).
pub fn results_table(stored: &Stored) -> String {
    let mut s = String::new();
    let mut head: Vec<String> = stored.sweep_keys.clone();
    head.extend(["seed", "strategy", "k", "rationales", "val acc", "test acc"].map(String::from));
    let rows: Vec<Vec<String>> = stored
        .runs
        .iter()
        .map(|r| {
            let mut v: Vec<String> = stored
                .sweep_keys
                .iter()
                .map(|k| r.swept.get(k).map(resolve::show).unwrap_or_default())
                .collect();
            v.extend([
                r.seed.to_string(),
                r.strategy.clone(),
                r.per_question.to_string(),
                r.rationales.to_string(),
                r.val_accuracy
                    .map(|x| format!("{:.1}%", 100.0 * x))
                    .unwrap_or_default(),
                format!("{:.1}%", 100.0 * r.accuracy),
            ]);
            v
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    s.push_str(&line(&head));
    s.push('\n');
    for r in &rows {
        s.push_str(&line(r));
        s.push('\n');
    }
    s
}

/// `morsd plan`: one line per distinct stage instance: stage, short key, fresh/stale + reason.
pub fn plan(spec_path: &Path, sets: &[String], cache: &Cache) -> Result<String> {
    let spec = resolve::load(spec_path, sets)?;
    let plans = pipeline::plan(&spec)?;
    let statuses = pipeline::status(cache, &spec, &plans);
    let mut seen = HashSet::new();
    let mut out = String::new();
    let (mut fresh, mut stale) = (0, 0);
    for (p, st) in plans.iter().zip(statuses) {
        for (inst, s) in p.stages.iter().zip(st) {
            if !seen.insert(inst.key.clone()) {
                continue;
            }
            let (word, why) = match s {
                Status::Fresh => {
                    fresh += 1;
                    ("fresh", String::new())
                }
                Status::Stale(why) => {
                    stale += 1;
                    ("stale", format!("  {why}"))
                }
            };
            let shared = if matches!(inst.kind, StageKind::Generate | StageKind::Score)
                && spec.runs.len() > 1
            {
                "(shared)".to_string()
            } else {
                p.run.label.clone()
            };
            out.push_str(&format!(
                "{:<8} {}  {word}{why}  [{shared}]\n",
                inst.kind.name(),
                &inst.key[..12]
            ));
        }
    }
    out.push_str(&format!(
        "{} stage instances: {fresh} fresh, {stale} stale\n",
        fresh + stale
    ));
    Ok(out)
}

/// `morsd report DIR`: rebuilds tables and charts from `DIR/runs.json`.
pub fn report(dir: &Path) -> Result<String> {
    report::rebuild(dir)?;
    Ok(format!(
        "rebuilt runs.parquet, runs.csv, summary.md, accuracy, tokens and curves charts (.svg, .png), report.html in {}{}\n",
        dir.display(),
        if dir.join("selection.json").exists() {
            ""
        } else {
            " (no selection.json here, so the page has no rationale browser)"
        }
    ))
}

/// `morsd export SPEC --run SELECTOR --format F --out DIR`.
#[allow(clippy::too_many_arguments)]
pub fn export(
    spec_path: &Path,
    sets: &[String],
    selector: Option<&str>,
    format: &str,
    dtype: Option<&str>,
    out: &Path,
    force: bool,
    with_base: bool,
    cache: &Cache,
) -> Result<String> {
    use crate::export::{self as ex, runs};
    let format = ex::Format::parse(format)?;
    let dtype = ex::Dtype::for_format(dtype, format)?;
    let spec = resolve::load(spec_path, sets)?;
    let cands = runs::candidates(&spec, cache)?;
    let chosen = runs::choose(&cands, selector)?;
    let entry = chosen
        .train_dir
        .as_deref()
        .ok_or_else(|| Error::run("the chosen run has no train entry"))?;
    let info = runs::info(&spec, sets, chosen);
    let opts = ex::Options {
        format,
        dtype,
        out,
        force,
        with_base,
    };
    ex::export(entry, &info, &opts)
}

/// `morsd cache ls`: one row per entry (stage, key, size, age), then one per API teacher's
/// request log (stage `requests`, the log's name as key), then the totals.
pub fn cache_ls(cache: &Cache) -> Result<String> {
    let entries = cache.list()?;
    let logs = cache.request_logs()?;
    // 1. The key column is as wide as its longest value: 12 hex digits of an entry's key, or a
    //    request log's whole name (which may be longer).
    let short = |k: &str| k[..12.min(k.len())].to_string();
    let keys: Vec<String> = entries
        .iter()
        .map(|e| short(&e.key))
        .chain(logs.iter().map(|l| l.name.clone()))
        .collect();
    let w = keys
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let row = |stage: &str, key: &str, size: &str, age: &str| {
        format!("{stage:<8}  {key:<w$}  {size:>10}  {age:>8}\n")
    };
    // 2. One row per entry, then per request log.
    let mut out = row("stage", "key", "size", "age");
    for (e, key) in entries.iter().zip(&keys) {
        out.push_str(&row(
            &e.stage,
            key,
            &human_bytes(e.size),
            &human_age(e.age_s),
        ));
    }
    for (l, key) in logs.iter().zip(&keys[entries.len()..]) {
        out.push_str(&row(
            "requests",
            key,
            &human_bytes(l.size),
            &human_age(l.age_s),
        ));
    }
    let size =
        entries.iter().map(|e| e.size).sum::<u64>() + logs.iter().map(|l| l.size).sum::<u64>();
    out.push_str(&format!(
        "{} entries, {}, {} in {}\n",
        entries.len(),
        request_logs(logs.len()),
        human_bytes(size),
        cache.root().display()
    ));
    Ok(out)
}

/// `morsd cache gc [--all]`: removes entries no spec under `experiments_dir` reaches (or all),
/// and the request logs no spec's `openai` teacher reaches (`--all` keeps every log). A spec
/// that cannot be planned keeps every entry a spec last built or used, and every log; a log
/// another process holds locked (a teacher appending) is kept with a note.
pub fn cache_gc(cache: &Cache, experiments_dir: &Path, all: bool) -> Result<String> {
    let mut reachable: HashSet<String> = HashSet::new();
    let mut reached_logs: HashSet<PathBuf> = HashSet::new();
    let mut notes = String::new();
    let mut unplannable: Vec<String> = Vec::new();
    let requests_dir = cache.requests_dir();
    // A specs folder that is not there would make every entry and request log unreached.
    if !all && !experiments_dir.is_dir() {
        return Err(Error::Input {
            path: experiments_dir.to_path_buf(),
            message: "no such folder of specs: nothing was removed (gc keeps what the specs under it reach; --specs DIR names another folder)".into(),
        });
    }
    if !all {
        for entry in walkdir::WalkDir::new(experiments_dir)
            .sort_by_file_name()
            .into_iter()
            .filter_map(|e| e.ok())
        {
            if entry.path().extension().is_some_and(|x| x == "toml") {
                match resolve::load(entry.path(), &[]).and_then(|s| pipeline::plan(&s)) {
                    Ok(plans) => {
                        for p in plans {
                            reached_logs.extend(crate::stages::generate::request_log_path(
                                &p.run,
                                &requests_dir,
                            ));
                            reachable.extend(p.stages.into_iter().map(|i| i.key));
                        }
                    }
                    Err(e) => {
                        // What it would reach is unknown: keep every entry any spec last built
                        // or used (the slots), so this one's are kept too; and every log.
                        if unplannable.is_empty() {
                            reachable.extend(cache.slot_keys());
                        }
                        unplannable.push(entry.path().display().to_string());
                        notes.push_str(&format!(
                            "warning: {} cannot be planned ({e}); keeping every entry a spec last built or used, and every request log\n",
                            entry.path().display()
                        ));
                    }
                }
            }
        }
    }
    let mut removed = 0;
    let mut freed = 0;
    for e in cache.list()? {
        if all || !reachable.contains(&e.key) {
            cache.remove(&e)?;
            removed += 1;
            freed += e.size;
        }
    }
    if all {
        // `--all` is about entries: the request logs stay, as they always have.
        notes.push_str(&format!(
            "removed {removed} entries ({})\n",
            human_bytes(freed)
        ));
        return Ok(notes);
    }
    let (mut logs_removed, mut logs_freed) = (0, 0);
    if unplannable.is_empty() {
        for l in cache.request_logs()? {
            if reached_logs.contains(&l.path) {
                continue;
            }
            if request_log::remove_unless_locked(&l.path)? {
                logs_removed += 1;
                logs_freed += l.size;
            } else {
                notes.push_str(&format!(
                    "note: {} is locked by another process (a teacher writing to it); kept\n",
                    l.path.display()
                ));
            }
        }
    }
    notes.push_str(&format!(
        "removed {removed} entries ({}) and {} ({})\n",
        human_bytes(freed),
        request_logs(logs_removed),
        human_bytes(logs_freed)
    ));
    Ok(notes)
}

/// "1 request log", "2 request logs".
fn request_logs(n: usize) -> String {
    format!("{n} request log{}", if n == 1 { "" } else { "s" })
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

fn human_age(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Parses a stage named by a flag (`--force`, `--until`).
fn stage_arg(flag: &str, name: Option<&str>) -> Result<Option<StageKind>> {
    name.map(|s| {
        StageKind::parse(s).ok_or_else(|| Error::BadArg {
            arg: format!("{flag} {s}"),
            message: "unknown stage (known: generate, score, select, train, eval)".into(),
        })
    })
    .transpose()
}
