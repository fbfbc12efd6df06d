//! Spec resolution, phase two of two (the schema is [`crate::spec::raw`]): a spec file plus `MORSD_*` environment variables plus `--set` overrides
//! (merged by figment in that order) resolved into validated runs, one per sweep point × seed.
//!
//! Errors name the file, the TOML line/column where there is one, and the dotted key.

use crate::error::{Error, Result};
use crate::run::{LoadedSpec, MAX_RUNS, RunSpec, TaskRef};
use crate::spec::raw::RawSpec;
use crate::spec::{Strategy, TaskKind};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Loads and resolves `path` with the `--set` overrides `sets` (`KEY=VALUE`).
pub fn load(path: &Path, sets: &[String]) -> Result<LoadedSpec> {
    load_with(
        path,
        sets,
        Env::prefixed("MORSD_")
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    )
}

/// [`load`] with the environment given explicitly as `(NAME, VALUE)` pairs instead of read
/// from the process: the same `MORSD_<SECTION>__<KEY>` rules (prefix matched case-insensitively,
/// names without `__` ignored, `__` → `.`, keys lower-cased, values parsed as figment values).
/// For fuzzing and tests, which must not mutate the process environment.
pub fn load_with_env(path: &Path, sets: &[String], env: &[(String, String)]) -> Result<LoadedSpec> {
    load_with(path, sets, EnvPairs(env.to_vec()))
}

/// `MORSD_*` variables given as pairs: what `Env::prefixed("MORSD_").filter(..).split("__")`
/// yields for the same variables.
struct EnvPairs(Vec<(String, String)>);

impl figment::Provider for EnvPairs {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("`MORSD_` environment variable(s)").interpolater(
            |_: &figment::Profile, k: &[&str]| {
                let keys: Vec<_> = k.iter().map(|k| k.to_ascii_uppercase()).collect();
                keys.join(".")
            },
        )
    }

    fn data(
        &self,
    ) -> std::result::Result<
        figment::value::Map<figment::Profile, figment::value::Dict>,
        figment::Error,
    > {
        use figment::value::{Dict, Value as FValue};
        fn merge(into: &mut Dict, from: Dict) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(FValue::Dict(_, a)), FValue::Dict(_, b)) => merge(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        const PREFIX: &str = "MORSD_";
        let mut dict = Dict::new();
        for (name, value) in &self.0 {
            let name = name.trim();
            if name.is_empty()
                || name.len() < PREFIX.len()
                || !name.is_char_boundary(PREFIX.len())
                || !name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
            {
                continue;
            }
            let rest = &name[PREFIX.len()..];
            if !rest.contains("__") {
                continue;
            }
            let key = rest.replace("__", ".");
            let key = key.trim();
            if key.split('.').any(|s| s.is_empty()) {
                continue;
            }
            let key = key.to_ascii_lowercase();
            let parsed: FValue = match value.parse() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            if let FValue::Dict(_, d) = figment::util::nest(&key, parsed) {
                merge(&mut dict, d);
            }
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Reads a spec file as UTF-8; a bad byte is reported with its line and column.
fn read_spec(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::Input {
        path: path.to_path_buf(),
        message: format!("cannot read spec: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| Error::SpecSyntax {
        file: path.to_path_buf(),
        message: crate::data::formats::utf8_message(e.as_bytes(), e.utf8_error()),
    })
}

fn load_with(path: &Path, sets: &[String], env: impl figment::Provider) -> Result<LoadedSpec> {
    // 1. Read and check the file alone: toml reports line and column of syntax errors,
    //    unknown keys and wrong types.
    let text = read_spec(path)?;
    let syntax = |e: toml::de::Error, key: Option<String>| {
        let message = clip_lines(e.to_string().trim_end(), 240);
        match key.filter(|k| !k.is_empty() && k != ".") {
            Some(k) => Error::SpecField {
                file: path.to_path_buf(),
                key: k,
                message,
            },
            None => Error::SpecSyntax {
                file: path.to_path_buf(),
                message,
            },
        }
    };
    let de = toml::Deserializer::parse(&text).map_err(|e| syntax(e, None))?;
    if let Err(e) = serde_path_to_error::deserialize::<_, RawSpec>(de) {
        let key = e.path().to_string();
        return Err(syntax(e.into_inner(), Some(key)));
    }
    // 2. Merge file, then environment, then --set.
    let mut fig = Figment::from(Toml::string(&text)).merge(env);
    // A sweep key is itself dotted (`sweep."select.per_question"`), so a `--set sweep.…` sets
    // that one list whole instead of going through figment's dotted nesting.
    let mut sweep_sets: Vec<(String, Value)> = Vec::new();
    for arg in sets {
        let (key, value) = parse_override(arg)?;
        if let Some(k) = key.strip_prefix("sweep.") {
            let k = k.trim();
            let k = k
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .unwrap_or(k);
            let value = serde_json::to_value(&value).map_err(|e| Error::BadOverride {
                arg: arg.clone(),
                message: e.to_string(),
            })?;
            sweep_sets.push((k.to_string(), value));
            continue;
        }
        fig = fig.merge(Serialized::global(key.as_str(), value));
    }
    let merged: Value = fig.extract().map_err(|e| Error::SpecSyntax {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut merged = match merged {
        Value::Object(m) => m,
        _ => Default::default(),
    };
    let mut sweep_value = merged
        .remove("sweep")
        .unwrap_or(Value::Object(Default::default()));
    if let Value::Object(m) = &mut sweep_value {
        m.extend(sweep_sets);
    }
    // 3. The base spec (without the sweep), defaults filled. A student with `weights` and no
    //    `kind` is a pretrained one, of the checkpoint's own family (a spec needs no
    //    architecture flag).
    if let Some(st) = merged.get_mut("student").and_then(|v| v.as_object_mut())
        && !st.contains_key("kind")
        && st.get("weights").is_some_and(|w| !w.is_null())
    {
        st.insert("kind".into(), "pretrained".into());
    }
    let base: RawSpec = from_json(path, Value::Object(merged), &text)?;
    let base_json = serde_json::to_value(&base).map_err(Error::run)?;
    // 4. The sweep: known keys, non-empty lists.
    let sweep: BTreeMap<String, Vec<Value>> = match sweep_value {
        Value::Object(m) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let key = format!("sweep.\"{k}\"");
                let Value::Array(items) = v else {
                    return Err(field_err(
                        path,
                        &text,
                        &key,
                        "must be a list of values".into(),
                    ));
                };
                if items.is_empty() {
                    return Err(field_err(
                        path,
                        &text,
                        &key,
                        "empty sweep list: give at least one value".into(),
                    ));
                }
                if k.starts_with("experiment.")
                    || k.starts_with("sweep")
                    || k.starts_with("executor.")
                {
                    return Err(field_err(
                        path,
                        &text,
                        &key,
                        "experiment.* and sweep.* cannot be swept (use experiment.seeds for seeds)"
                            .into(),
                    ));
                }
                if get_path(&base_json, &k).is_none() {
                    return Err(field_err(
                        path,
                        &text,
                        &key,
                        format!("`{k}` is not a spec key"),
                    ));
                }
                out.insert(k, items);
            }
            out
        }
        _ => {
            return Err(field_err(
                path,
                &text,
                "sweep",
                "must be a table of dotted key = [values]".into(),
            ));
        }
    };
    let name = base.experiment.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into())
    });
    if let Err(m) = check_name(&name) {
        let m = if base.experiment.name.is_none() {
            format!("{m} (the name comes from the spec file's name; set experiment.name)")
        } else {
            m
        };
        return Err(field_err(path, &text, "experiment.name", m));
    }
    if base.experiment.seeds.is_empty() {
        return Err(field_err(
            path,
            &text,
            "experiment.seeds",
            "give at least one seed".into(),
        ));
    }
    let output = PathBuf::from(
        base.experiment
            .output
            .clone()
            .unwrap_or_else(|| format!("results/{name}")),
    );
    // 5. Cross product × seeds, each point validated (bounded: it grows exponentially).
    let keys: Vec<String> = sweep.keys().cloned().collect();
    let n_runs = sweep
        .values()
        .try_fold(base.experiment.seeds.len(), |n, v| n.checked_mul(v.len()))
        .filter(|&n| n <= MAX_RUNS);
    if n_runs.is_none() {
        let sizes: Vec<String> = sweep.values().map(|v| v.len().to_string()).collect();
        return Err(field_err(
            path,
            &text,
            if sweep.is_empty() {
                "experiment.seeds"
            } else {
                "sweep"
            },
            format!(
                "{} sweep points × {} seeds is more than {MAX_RUNS} runs",
                if sizes.is_empty() {
                    "1".to_string()
                } else {
                    sizes.join(" × ")
                },
                base.experiment.seeds.len()
            ),
        ));
    }
    let mut points: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
    for k in &keys {
        let mut next = Vec::new();
        for p in &points {
            for v in &sweep[k] {
                let mut q = p.clone();
                q.insert(k.clone(), v.clone());
                next.push(q);
            }
        }
        points = next;
    }
    let mut runs = Vec::new();
    for point in points {
        let mut json = base_json.clone();
        for (k, v) in &point {
            set_path(&mut json, k, v.clone());
        }
        let mut spec: RawSpec = from_json(path, json, &text)?;
        let (task, strategy) = validate(path, &text, &spec)?;
        // Kind-dependent defaults, filled once here so every stage sees the same value.
        if spec.score.rd_model.is_none() {
            let d = if spec.student.is_pretrained() {
                "pretrained"
            } else {
                "warmup"
            };
            spec.score.rd_model = Some(d.into());
        }
        // The training budget: `train.steps` unless `train.epochs` is set (validated: not both).
        if spec.train.steps.is_none() && spec.train.epochs.is_none() {
            spec.train.steps = Some(crate::spec::raw::DEFAULT_TRAIN_STEPS);
        }
        for &seed in &base.experiment.seeds {
            let mut label: Vec<String> = point
                .iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect();
            label.push(format!("seed={seed}"));
            runs.push(RunSpec {
                spec: spec.clone(),
                swept: point.clone(),
                seed,
                label: label.join(" "),
                task: task.clone(),
                strategy,
            });
        }
    }
    Ok(LoadedSpec {
        path: path.to_path_buf(),
        name,
        output,
        sweep_keys: keys,
        runs,
    })
}

/// The experiment-name charset: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
/// The name becomes folder names (`results/<name>`, `<cache>/slurm/<name>`) and Slurm job
/// names, so nothing in it may mean anything to a shell or a path.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    // The charset first: past it every character is one byte, so the length is in characters.
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {c:?} is not allowed in a name (allowed: A-Z a-z 0-9 . _ -)"
        ));
    }
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "must be 1 to 64 characters long, got {}",
            name.len()
        ));
    }
    if name.starts_with(['.', '-']) {
        return Err("must not start with `.` or `-`".into());
    }
    Ok(())
}

/// Cuts every line of `s` longer than `max` characters (with `…`): toml's messages quote the
/// offending line and underline the span, and a 100 MB line must not make a 100 MB message.
fn clip_lines(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(64 * 1024));
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line.char_indices().nth(max) {
            Some((cut, _)) => {
                out.push_str(&line[..cut]);
                out.push('…');
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Shows a JSON value without quotes around strings.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_override(arg: &str) -> Result<(String, toml::Value)> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(Error::BadOverride {
            arg: arg.into(),
            message: "expected KEY=VALUE".into(),
        });
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(Error::BadOverride {
            arg: arg.into(),
            message: "the key must be a dotted path like select.per_question".into(),
        });
    }
    // A TOML value if it parses as one (numbers, booleans, lists, quoted strings), else a bare string.
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key.to_string(), value))
}

fn from_json(path: &Path, json: Value, text: &str) -> Result<RawSpec> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let key = e.path().to_string();
        let msg = format!(
            "{} (after merging the file, MORSD_* variables, --set and the sweep)",
            e.into_inner()
        );
        field_err(path, text, &key, msg)
    })
}

fn validate(path: &Path, text: &str, s: &RawSpec) -> Result<(TaskRef, Strategy)> {
    let err = |key: &str, msg: String| field_err(path, text, key, msg);
    let task = resolve_task(s).map_err(|(k, m)| err(k, m))?;
    let strategy = Strategy::parse(&s.select.strategy).ok_or_else(|| {
        let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        err(
            "select.strategy",
            format!(
                "unknown strategy `{}` (known: {})",
                s.select.strategy,
                known.join(", ")
            ),
        )
    })?;
    match (s.teacher.kind.as_str(), &task) {
        ("programmatic", TaskRef::Synthetic(_)) | ("file", TaskRef::Real { .. }) => {}
        ("file", TaskRef::Custom { sources, .. }) => {
            if sources.is_empty() {
                return Err(err(
                    "teacher.jsonl",
                    "the file teacher of a custom task reads your rationales from teacher.jsonl files: give at least one (or sample them with kind = \"openai\")".into(),
                ));
            }
        }
        ("programmatic", TaskRef::Custom { .. }) => {
            return Err(err(
                "teacher.kind",
                "the programmatic teacher writes rationales for the synthetic tasks only; a custom task's come from kind = \"openai\" (sampled) or kind = \"file\" (teacher.jsonl)".into(),
            ));
        }
        ("openai", _) => {
            if let Some(var) = &s.teacher.api_key_env
                && std::env::var_os(var).is_none()
            {
                return Err(err(
                    "teacher.api_key_env",
                    format!("environment variable {var} is not set"),
                ));
            }
            if let Err(e) = crate::templates::template_text(
                crate::templates::TEACHER_PROMPTS,
                &s.teacher.prompt,
            ) {
                return Err(err("teacher.prompt", e.to_string()));
            }
            if s.teacher.concurrency == 0 || s.teacher.max_retries == 0 {
                return Err(err(
                    "teacher.concurrency",
                    "concurrency and max_retries must be at least 1".into(),
                ));
            }
            if s.teacher
                .base_url
                .as_ref()
                .is_some_and(|u| u.to_vec().is_empty())
            {
                return Err(err("teacher.base_url", "give at least one URL".into()));
            }
        }
        ("programmatic", _) => {
            return Err(err(
                "teacher.kind",
                format!(
                    "the programmatic teacher writes rationales for the synthetic tasks only; use kind = \"file\" for {}",
                    task.name()
                ),
            ));
        }
        ("file", _) => {
            return Err(err(
                "teacher.kind",
                "the file teacher reads recorded rationales of a real task (data.task)".into(),
            ));
        }
        (k, _) => {
            return Err(err(
                "teacher.kind",
                format!("unknown teacher kind `{k}` (known: programmatic, file, openai)"),
            ));
        }
    }
    if matches!(task, TaskRef::Custom { .. })
        && s.teacher.kind == "openai"
        && s.teacher.prompt == "few-shot-cot"
    {
        return Err(err(
            "teacher.prompt",
            "few-shot-cot takes a registry task's exemplars, and a custom task has none: use zero-shot-cot or a .jinja template of your own".into(),
        ));
    }
    crate::teacher::answer_stage::check_spec(s).map_err(|(k, m)| err(k, m))?;
    crate::stages::score::check_spec(s).map_err(|(k, m)| err(k, m))?;
    if let Err(e) = crate::student::format::load(&s.student) {
        return Err(err("student.format", e.to_string()));
    }
    let rd = s.score.rd_model.as_deref();
    if let Some(w) = &s.score.rd_weights {
        if let Err(e) = crate::models::resolve_weights(w) {
            return Err(err("score.rd_weights", e.to_string()));
        }
        if !matches!(rd, None | Some("pretrained")) {
            return Err(err(
                "score.rd_model",
                "with `score.rd_weights` the RD model is that checkpoint: `pretrained`".into(),
            ));
        }
    }
    let rd = if s.score.rd_weights.is_some() {
        None
    } else {
        rd
    };
    match s.student.kind.as_str() {
        "scratch" => {
            for (k, set) in [
                ("student.weights", s.student.weights.is_some()),
                ("student.lora_rank", s.student.lora_rank.is_some()),
                ("student.lora_alpha", s.student.lora_alpha.is_some()),
                ("student.lora_targets", s.student.lora_targets.is_some()),
            ] {
                if set {
                    return Err(err(k, "only a pretrained student takes this field".into()));
                }
            }
            if !matches!(rd, None | Some("warmup" | "untrained")) {
                return Err(err(
                    "score.rd_model",
                    format!(
                        "`{}` is not an RD model of the scratch student (known: warmup, untrained)",
                        rd.unwrap_or_default()
                    ),
                ));
            }
        }
        k if k == "pretrained" || crate::student::Family::from_model_type(k).is_some() => {
            let Some(w) = &s.student.weights else {
                return Err(err(
                    "student.weights",
                    "a pretrained student needs `weights`: a model name (`morsd models list`), a .gguf file or a Hugging Face folder".into(),
                ));
            };
            if let Err(e) = crate::models::resolve_weights(w) {
                return Err(err("student.weights", e.to_string()));
            }
            if !matches!(rd, None | Some("pretrained")) {
                return Err(err(
                    "score.rd_model",
                    format!(
                        "`{}` is not an RD model of a pretrained student (it scores with its checkpoint: `pretrained`)",
                        rd.unwrap_or_default()
                    ),
                ));
            }
            if let Some(t) = &s.student.lora_targets
                && let Some(bad) = t.iter().find(|t| !crate::student::lora::known_target(t))
            {
                return Err(err(
                    "student.lora_targets",
                    format!(
                        "unknown LoRA target `{bad}` (known: {})",
                        crate::student::lora::all_targets().join(", ")
                    ),
                ));
            }
            if s.student
                .lora_alpha
                .is_some_and(|a| !(a > 0.0 && a.is_finite()))
            {
                return Err(err(
                    "student.lora_alpha",
                    "must be a positive number".into(),
                ));
            }
        }
        k => {
            return Err(err(
                "student.kind",
                format!(
                    "unknown student kind `{k}` (known: scratch, pretrained, {})",
                    crate::student::Family::ALL
                        .map(|f| f.model_type())
                        .join(", ")
                ),
            ));
        }
    }
    if s.train.grad_accum == Some(0) {
        return Err(err("train.grad_accum", "must be at least 1".into()));
    }
    for (k, v) in [
        ("teacher.wrong_rate", s.teacher.wrong_rate),
        ("teacher.flawed_rate", s.teacher.flawed_rate),
        ("teacher.duplicate_rate", s.teacher.duplicate_rate),
        ("score.warmup_share", s.score.warmup_share),
        ("select.dedup_threshold", s.select.dedup_threshold),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(err(k, format!("must be between 0 and 1, got {v}")));
        }
    }
    if s.teacher.wrong_rate + s.teacher.flawed_rate > 1.0 {
        return Err(err(
            "teacher.flawed_rate",
            "wrong_rate + flawed_rate must not exceed 1".into(),
        ));
    }
    for (k, v) in [
        ("data.train", s.data.train),
        ("data.validation", s.data.validation),
        ("data.test", s.data.test),
        ("teacher.samples", s.teacher.samples),
        ("student.d_model", s.student.d_model),
        ("student.layers", s.student.layers),
        ("student.heads", s.student.heads),
        ("select.per_question", s.select.per_question),
        ("select.dedup_ngram", s.select.dedup_ngram),
        ("score.ngram", s.score.ngram),
        ("score.batch_size", s.score.batch_size),
        ("train.batch_size", s.train.batch_size),
        ("train.eval_every", s.train.eval_every),
        ("train.patience", s.train.patience.unwrap_or(1)),
        ("eval.max_new_tokens", s.eval.max_new_tokens),
        ("eval.batch_size", s.eval.batch_size),
    ] {
        if v == 0 {
            return Err(err(k, "must be at least 1".into()));
        }
    }
    if let Some(b) = &s.teacher.budget {
        if !["programmatic", "openai"].contains(&s.teacher.kind.as_str()) {
            return Err(err(
                "teacher.budget",
                format!(
                    "a budget samples in rounds, which the `{}` teacher cannot (programmatic and openai can)",
                    s.teacher.kind
                ),
            ));
        }
        if crate::teacher::budget::Kind::parse(&b.kind).is_none() {
            return Err(err(
                "teacher.budget.kind",
                format!(
                    "unknown budget `{}` (known: uniform, prop-difficulty)",
                    b.kind
                ),
            ));
        }
        for (k, v) in [
            ("teacher.budget.correct", b.correct),
            ("teacher.budget.round", b.round),
            ("teacher.budget.max_requests", b.max_requests.unwrap_or(1)),
        ] {
            if v == 0 {
                return Err(err(k, "must be at least 1".into()));
            }
        }
        if b.max_per_question < s.teacher.samples {
            return Err(err(
                "teacher.budget.max_per_question",
                format!(
                    "must be at least teacher.samples ({}), the first round's samples",
                    s.teacher.samples
                ),
            ));
        }
    }
    match (s.train.steps, s.train.epochs) {
        (Some(_), Some(_)) => {
            return Err(err(
                "train.epochs",
                "`train.steps` and `train.epochs` are alternative training budgets (optimiser steps, or passes over the selected rationales): set one of them, not both".into(),
            ));
        }
        (Some(0), _) => return Err(err("train.steps", "must be at least 1".into())),
        (_, Some(0)) => {
            return Err(err(
                "train.epochs",
                "must be at least 1 (whole passes over the selected rationales)".into(),
            ));
        }
        _ => {}
    }
    if !matches!(s.executor.kind.as_str(), "local" | "slurm") {
        return Err(err(
            "executor.kind",
            format!(
                "unknown executor `{}` (known: local, slurm)",
                s.executor.kind
            ),
        ));
    }
    if !s.student.d_model.is_multiple_of(s.student.heads) {
        return Err(err(
            "student.heads",
            format!("must divide student.d_model ({})", s.student.d_model),
        ));
    }
    if s.student.max_seq_len < 16 {
        return Err(err("student.max_seq_len", "must be at least 16".into()));
    }
    if s.student.vocab_size < 300 {
        return Err(err(
            "student.vocab_size",
            "must be at least 300 (256 bytes + specials + merges)".into(),
        ));
    }
    if s.data.steps[0] == 0 || s.data.steps[0] > s.data.steps[1] || s.data.steps[1] > 6 {
        return Err(err(
            "data.steps",
            "must be [min, max] with 1 <= min <= max <= 6".into(),
        ));
    }
    if !(s.train.lr > 0.0 && s.train.lr.is_finite()) {
        return Err(err("train.lr", "must be a positive number".into()));
    }
    if s.select.max_total == Some(0) {
        return Err(err(
            "select.max_total",
            "must be at least 1 when set".into(),
        ));
    }
    Ok((task, strategy))
}

fn field_err(path: &Path, text: &str, key: &str, message: String) -> Error {
    let message = match locate(text, key) {
        Some((line, col)) => format!("line {line}, column {col}: {message}"),
        None => message,
    };
    Error::SpecField {
        file: path.to_path_buf(),
        key: key.to_string(),
        message,
    }
}

/// Resolves `data.task` (and for real tasks the root, split and sources). Errors: (key, message).
fn resolve_task(s: &RawSpec) -> std::result::Result<TaskRef, (&'static str, String)> {
    if s.data.task == crate::data::custom::TASK {
        let task = crate::data::custom::from_spec(&s.data)?;
        if !s.teacher.sources.is_empty() {
            return Err((
                "teacher.sources",
                "registry sources belong to registry tasks; a custom task's recorded rationales are teacher.jsonl files".into(),
            ));
        }
        let sources = s
            .teacher
            .jsonl
            .iter()
            .map(|p| crate::data::sources::Wanted::Jsonl(PathBuf::from(p)))
            .collect();
        return Ok(TaskRef::Custom { task, sources });
    }
    crate::data::custom::check_not_custom(&s.data)?;
    if let Some(k) = TaskKind::parse(&s.data.task) {
        return Ok(TaskRef::Synthetic(k));
    }
    let Some(def) = crate::data::registry::task(&s.data.task) else {
        let real: Vec<&str> = crate::data::registry::TASKS
            .iter()
            .map(|t| t.name)
            .collect();
        return Err((
            "data.task",
            format!(
                "unknown task `{}` (synthetic: arithmetic, last-letter, coin-flip; real: {}; or custom: your own question files)",
                s.data.task,
                real.join(", ")
            ),
        ));
    };
    let root = match (&s.data.root, std::env::var_os("MORSD_DATA")) {
        (Some(r), _) => PathBuf::from(r),
        (None, Some(r)) => PathBuf::from(r),
        (None, None) => {
            return Err((
                "data.root",
                format!(
                    "task {} reads files under a data root: set data.root or MORSD_DATA",
                    def.name
                ),
            ));
        }
    };
    let split = def
        .split(s.data.split.as_deref())
        .map_err(|m| ("data.split", m))?;
    let names: Vec<String> = if s.teacher.sources.is_empty() && s.teacher.jsonl.is_empty() {
        def.source_names()
    } else {
        s.teacher.sources.clone()
    };
    let sources = crate::data::sources::resolve(def, &names, &s.teacher.jsonl)
        .map_err(|m| ("teacher.sources", m))?;
    Ok(TaskRef::Real {
        def,
        split,
        root,
        sources,
    })
}

/// Finds the line/column where `key` (a dotted path) is written in the TOML text, if it is.
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let (section, field) = if let Some(rest) = key.strip_prefix("sweep.") {
        ("sweep", rest.trim_matches('"').to_string())
    } else {
        let (s, f) = key.split_once('.')?;
        (s, f.split('.').next()?.to_string())
    };
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_section = t
                .trim_end()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                == section;
            continue;
        }
        if in_section {
            let name = t.split('=').next().unwrap_or("").trim().trim_matches('"');
            if t.contains('=') && name == field {
                return Some((i + 1, line.len() - t.len() + 1));
            }
        }
    }
    None
}

/// Reads a dotted path out of a JSON object.
pub fn get_path<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.')
        .try_fold(v, |cur, part| cur.as_object()?.get(part))
}

fn set_path(v: &mut Value, key: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let map = cur.as_object_mut().expect("object");
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return;
        }
        cur = map
            .entry(part.to_string())
            .or_insert(Value::Object(Default::default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spec.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn sweep_cross_product_times_seeds() {
        let (_d, p) = write(
            "[experiment]\nseeds=[0,1]\n[sweep]\n\"select.per_question\"=[1,2]\n\"select.strategy\"=[\"random\",\"morsd\"]\n",
        );
        let s = load(&p, &[]).unwrap();
        assert_eq!(s.runs.len(), 8);
        assert!(s.runs.iter().any(|r| r.spec.select.per_question == 2
            && r.strategy == Strategy::Random
            && r.seed == 1));
    }

    #[test]
    fn set_overrides_file() {
        let (_d, p) = write("[select]\nper_question = 3\n");
        let s = load(&p, &["select.per_question=5".into()]).unwrap();
        assert_eq!(s.runs[0].spec.select.per_question, 5);
        let s = load(&p, &[]).unwrap();
        assert_eq!(s.runs[0].spec.select.per_question, 3);
    }

    #[test]
    fn set_reaches_sweep_values() {
        let (_d, p) = write("[sweep]\n\"select.per_question\" = [1, 2, 3]\n");
        let s = load(&p, &["sweep.\"select.per_question\"=[2, 4]".into()]).unwrap();
        let k: Vec<usize> = s.runs.iter().map(|r| r.spec.select.per_question).collect();
        assert_eq!(k, vec![2, 4]);
        // Unquoted, and a new swept key beside the file's.
        let s = load(
            &p,
            &["sweep.select.strategy=[\"random\", \"morsd\"]".into()],
        )
        .unwrap();
        assert_eq!(s.runs.len(), 6);
        assert_eq!(s.sweep_keys, vec!["select.per_question", "select.strategy"]);
        let e = load(&p, &["sweep.\"select.bogus\"=[1]".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("select.bogus") && e.contains("not a spec key"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let (_d, p) = write("[select]\nper_question = 3\nbogus = 1\n");
        let e = load(&p, &[]).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn env_pairs_merge_like_morsd_variables() {
        let (_d, p) = write("[select]\nper_question = 3\n");
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // The file, then the variables (prefix in any case, `__` nests), then --set.
        let s = load_with_env(
            &p,
            &[],
            &env(&[
                ("MORSD_SELECT__PER_QUESTION", "2"),
                ("morsd_train__steps", "7"),
                ("MORSD_DATA", "/ignored/without/double/underscore"),
                ("OTHER_SELECT__PER_QUESTION", "9"),
                ("MORSD_SELECT__", "ignored: empty key part"),
            ]),
        )
        .unwrap();
        assert_eq!(s.runs[0].spec.select.per_question, 2);
        assert_eq!(s.runs[0].spec.train.steps, Some(7));
        let s = load_with_env(
            &p,
            &["select.per_question=5".into()],
            &env(&[("MORSD_SELECT__PER_QUESTION", "2")]),
        )
        .unwrap();
        assert_eq!(s.runs[0].spec.select.per_question, 5);
        // A bad value names the key and says where it came from.
        let e = load_with_env(&p, &[], &env(&[("MORSD_SELECT__PER_QUESTION", "x")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("select.per_question") && e.contains("MORSD_"),
            "{e}"
        );
        let e = load_with_env(&p, &[], &env(&[("MORSD_SELECT__BOGUS", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn env_pairs_of_the_process_equal_figments_env() {
        // Whatever MORSD_* variables this process has: the same data either way.
        let pairs: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        use figment::Provider;
        let env = Env::prefixed("MORSD_")
            .filter(|k| k.as_str().contains("__"))
            .split("__");
        assert_eq!(
            format!("{:?}", env.data().unwrap()),
            format!("{:?}", EnvPairs(pairs).data().unwrap())
        );
    }

    #[test]
    fn invalid_utf8_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spec.toml");
        std::fs::write(&p, b"[select]\n\nstrategy = \"mo\xffrsd\"\n").unwrap();
        let e = load(&p, &[]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::SpecSyntax { .. }) && e.is_user_error());
        assert!(
            msg.contains(&p.display().to_string())
                && msg.contains("line 3, column 15")
                && msg.contains("0xff"),
            "{msg}"
        );
    }

    #[test]
    fn a_long_line_gives_a_short_message() {
        let long = format!("x = \"{}\" oops\n", "a".repeat(1 << 20));
        let (_d, p) = write(&long);
        let e = load(&p, &[]).unwrap_err().to_string();
        assert!(e.len() < 4096 && e.contains("line 1"), "{}", e.len());
        assert_eq!(clip_lines("abcdef\nab", 3), "abc…\nab");
    }

    #[test]
    fn train_budget_is_steps_or_epochs() {
        // Neither: 300 steps, as before `train.epochs` existed.
        let (_d, p) = write("");
        let t = &load(&p, &[]).unwrap().runs[0].spec.train;
        assert_eq!((t.steps, t.epochs), (Some(300), None));
        // Steps, from the file or --set.
        let (_d, p) = write("[train]\nsteps = 40\n");
        let t = &load(&p, &[]).unwrap().runs[0].spec.train;
        assert_eq!((t.steps, t.epochs), (Some(40), None));
        // Epochs: no steps value is made up.
        let (_d, p) = write("[train]\nepochs = 3\n");
        let t = &load(&p, &[]).unwrap().runs[0].spec.train;
        assert_eq!((t.steps, t.epochs), (None, Some(3)));
        let (_d, p) = write("");
        let t = &load(&p, &["train.epochs=2".into()]).unwrap().runs[0]
            .spec
            .train;
        assert_eq!((t.steps, t.epochs), (None, Some(2)));
        // Both: an error naming both fields and the file, from the file or through --set.
        let (_d, p) = write("[train]\nsteps = 40\nepochs = 3\n");
        let e = load(&p, &[]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::SpecField { .. }) && e.is_user_error());
        assert!(
            msg.contains("train.steps")
                && msg.contains("train.epochs")
                && msg.contains(&p.display().to_string())
                && msg.contains("line 3"),
            "{msg}"
        );
        let (_d, p) = write("[train]\nsteps = 40\n");
        let msg = load(&p, &["train.epochs=1".into()])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("train.steps") && msg.contains("train.epochs"),
            "{msg}"
        );
        // Zero epochs or steps.
        let (_d, p) = write("[train]\nepochs = 0\n");
        let msg = load(&p, &[]).unwrap_err().to_string();
        assert!(
            msg.contains("train.epochs") && msg.contains("at least 1"),
            "{msg}"
        );
        let (_d, p) = write("[train]\nsteps = 0\n");
        let msg = load(&p, &[]).unwrap_err().to_string();
        assert!(
            msg.contains("train.steps") && msg.contains("at least 1"),
            "{msg}"
        );
        let (_d, p) = write("[train]\nepochs = -1\n");
        assert!(load(&p, &[]).unwrap_err().to_string().contains("epochs"));
        // Either is sweepable in a spec that writes neither; a sweep of epochs over a file's
        // steps sets both.
        let (_d, p) = write("[sweep]\n\"train.epochs\" = [1, 2]\n");
        let s = load(&p, &[]).unwrap();
        let b: Vec<_> = s
            .runs
            .iter()
            .map(|r| (r.spec.train.steps, r.spec.train.epochs))
            .collect();
        assert_eq!(b, vec![(None, Some(1)), (None, Some(2))]);
        let (_d, p) = write("[sweep]\n\"train.steps\" = [10, 20]\n");
        let s = load(&p, &[]).unwrap();
        let b: Vec<_> = s.runs.iter().map(|r| r.spec.train.steps).collect();
        assert_eq!(b, vec![Some(10), Some(20)]);
        let (_d, p) = write("[train]\nsteps = 5\n[sweep]\n\"train.epochs\" = [1]\n");
        let msg = load(&p, &[]).unwrap_err().to_string();
        assert!(
            msg.contains("train.steps") && msg.contains("train.epochs"),
            "{msg}"
        );
    }

    #[test]
    fn bad_set_type_names_key() {
        let (_d, p) = write("");
        let e = load(&p, &["select.per_question=\"x\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("select.per_question"), "{e}");
    }
}
