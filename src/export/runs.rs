//! Which run `morsd export` exports: `--run` names it by its sweep values and seed
//! (`--run select.strategy=morsd,seed=0`) or by its train entry's key (a prefix of at least 6
//! hex digits). Without `--run`, or when the selector fits no run or several, the command lists
//! the runs with their accuracies and stops: it never guesses.

use super::RunInfo;
use crate::cache::{Cache, Lookup};
use crate::error::{Error, Result};
use crate::pipeline::{self, RunPlan};
use crate::run::LoadedSpec;
use crate::stages::StageKind;
use std::fmt::Write as _;
use std::path::PathBuf;

/// A run of the spec, and what the cache holds of it.
pub struct Candidate {
    /// Its plan (the run and its stage keys).
    pub plan: RunPlan,
    /// The train key.
    pub train_key: String,
    /// The train entry, when fresh in the cache.
    pub train_dir: Option<PathBuf>,
    /// The train stage's metrics.
    pub train_metrics: serde_json::Value,
    /// The eval stage's metrics, when its entry is fresh.
    pub eval_metrics: Option<serde_json::Value>,
}

/// Every run of the spec, with its cache state.
pub fn candidates(spec: &LoadedSpec, cache: &Cache) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for plan in pipeline::plan(spec)? {
        let inst = |k: StageKind| plan.stages.iter().find(|i| i.kind == k);
        let train = inst(StageKind::Train).ok_or_else(|| Error::run("a plan without train"))?;
        let (train_dir, train_metrics) = match cache.lookup(&train.doc) {
            Lookup::Fresh(m) => (Some(cache.entry_dir(&train.doc)), m.metrics.clone()),
            _ => (None, serde_json::Value::Null),
        };
        let eval_metrics = inst(StageKind::Eval).and_then(|e| match cache.lookup(&e.doc) {
            Lookup::Fresh(m) => Some(m.metrics.clone()),
            _ => None,
        });
        out.push(Candidate {
            train_key: train.key.clone(),
            plan,
            train_dir,
            train_metrics,
            eval_metrics,
        });
    }
    Ok(out)
}

/// Does `c` fit `selector`?
fn fits(c: &Candidate, selector: &str) -> Result<bool> {
    let run = &c.plan.run;
    if !selector.contains('=') {
        let s = selector.trim();
        if s.len() < 6 || !s.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(Error::BadArg {
                arg: format!("--run {selector}"),
                message: "expected KEY=VALUE pairs separated by commas (sweep keys and `seed`), or a train key prefix of at least 6 hex digits".into(),
            });
        }
        return Ok(c.train_key.starts_with(&s.to_ascii_lowercase()));
    }
    for pair in selector.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::BadArg {
                arg: format!("--run {selector}"),
                message: format!("`{pair}` is not KEY=VALUE"),
            });
        };
        let (k, v) = (k.trim(), v.trim().trim_matches('"'));
        let ok = if k == "seed" {
            v.parse::<u64>().ok() == Some(run.seed)
        } else {
            match run.swept.get(k) {
                Some(val) => {
                    let shown = match val {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    shown == v
                }
                None => {
                    return Err(Error::BadArg {
                        arg: format!("--run {selector}"),
                        message: format!(
                            "`{k}` is not swept by this spec (swept: {}; and `seed`)",
                            if run.swept.is_empty() {
                                "nothing".to_string()
                            } else {
                                run.swept.keys().cloned().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    });
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The runs as a table: selector, train key, accuracy (or why there is none).
pub fn table(cands: &[Candidate]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  {:<48}  {:<12}  accuracy", "--run", "train key");
    for c in cands {
        let run = &c.plan.run;
        let mut sel: Vec<String> = run
            .swept
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(x) => format!("{k}={x}"),
                other => format!("{k}={other}"),
            })
            .collect();
        sel.push(format!("seed={}", run.seed));
        let acc = match (&c.train_dir, &c.eval_metrics) {
            (None, _) => "not trained (morsd run the spec first)".to_string(),
            (Some(_), None) => "trained, not evaluated".to_string(),
            (Some(_), Some(m)) => match m["accuracy"].as_f64() {
                Some(a) => format!(
                    "{:.1} % ({}/{})",
                    100.0 * a,
                    m["correct"].as_u64().unwrap_or(0),
                    m["total"].as_u64().unwrap_or(0)
                ),
                None => "?".into(),
            },
        };
        let _ = writeln!(
            s,
            "  {:<48}  {:<12}  {acc}",
            sel.join(","),
            &c.train_key[..12.min(c.train_key.len())]
        );
    }
    s
}

/// The one run `selector` names, trained; else an error listing the runs.
pub fn choose<'a>(cands: &'a [Candidate], selector: Option<&str>) -> Result<&'a Candidate> {
    let Some(sel) = selector else {
        return Err(Error::BadArg {
            arg: "--run".into(),
            message: format!(
                "missing: name the run to export (morsd never guesses):\n{}",
                table(cands)
            ),
        });
    };
    let mut hits = Vec::new();
    for c in cands {
        if fits(c, sel)? {
            hits.push(c);
        }
    }
    match hits.as_slice() {
        [one] if one.train_dir.is_some() => Ok(one),
        [_] => Err(Error::BadArg {
            arg: format!("--run {sel}"),
            message: "that run has no trained student in the cache yet: `morsd run` the spec first"
                .into(),
        }),
        [] => Err(Error::BadArg {
            arg: format!("--run {sel}"),
            message: format!("fits no run of this spec; its runs:\n{}", table(cands)),
        }),
        many => Err(Error::BadArg {
            arg: format!("--run {sel}"),
            message: format!(
                "fits {} runs; add the other sweep keys or the seed:\n{}",
                many.len(),
                table(cands)
            ),
        }),
    }
}

/// What the model card says about `c`.
pub fn info(spec: &LoadedSpec, sets: &[String], c: &Candidate) -> RunInfo {
    let run = &c.plan.run;
    RunInfo {
        spec_path: spec.path.clone(),
        spec_text: std::fs::read_to_string(&spec.path).unwrap_or_default(),
        sets: sets.to_vec(),
        experiment: spec.name.clone(),
        label: run.label.clone(),
        task: run.task.name().to_string(),
        strategy: run.spec.select.strategy.clone(),
        per_question: run.spec.select.per_question,
        train_key: c.train_key.clone(),
        train_metrics: c.train_metrics.clone(),
        eval_metrics: c.eval_metrics.clone(),
        max_new_tokens: run.spec.eval.max_new_tokens,
    }
}
