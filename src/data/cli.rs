//! `morsd data list`, `morsd data stats` and `morsd extract`.

use super::registry::{self, TASKS};
use super::sources::{self, Wanted};
use super::tasks;
use crate::answer::{AnswerType, extract_with_options, matches};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The data root: `--root`, else `MORSD_DATA`.
pub fn root(arg: Option<&Path>) -> Result<PathBuf> {
    match arg {
        Some(p) => Ok(p.to_path_buf()),
        None => std::env::var_os("MORSD_DATA")
            .map(PathBuf::from)
            .ok_or_else(|| Error::Input {
                path: PathBuf::from("MORSD_DATA"),
                message:
                    "no data root: set MORSD_DATA (e.g. MORSD_DATA=../shared/data) or pass --root"
                        .into(),
            }),
    }
}

fn mark(p: &Path) -> &'static str {
    if p.exists() { "found" } else { "MISSING" }
}

/// `morsd data list`: every task, its type, splits with sizes, sources, and what was found.
pub fn list(root: &Path) -> Result<String> {
    let mut out = format!("data root: {}\n\n", root.display());
    for t in TASKS {
        out.push_str(&format!(
            "{:<26} {:<11} answer: {}\n",
            t.name,
            t.family,
            t.answer.name()
        ));
        for f in t.files {
            out.push_str(&format!(
                "    benchmark {:<58} {}\n",
                f,
                mark(&root.join(f))
            ));
        }
        for s in t.splits {
            let files = tasks::split_files(t, *s, root);
            let found = files.iter().all(|f| f.exists());
            let sizes = if found {
                match tasks::load(t, *s, root, 60) {
                    Ok(d) => format!(
                        "train {} / validation {} / test {}",
                        d.train.len(),
                        d.validation.len(),
                        d.test.len()
                    ),
                    Err(e) => format!("unusable: {e}"),
                }
            } else {
                "files missing".into()
            };
            out.push_str(&format!("    split {:<22} {sizes}\n", s.name()));
        }
        for s in t.sources {
            out.push_str(&format!(
                "    source {:<18} {:<7} {}\n",
                s.name,
                mark(&root.join(s.path)),
                s.about
            ));
        }
    }
    Ok(out)
}

/// `morsd data stats TASK [--source S] [--split SCHEME]`.
pub fn stats(root: &Path, task: &str, sources: &[String], split: Option<&str>) -> Result<String> {
    let t = registry::task(task).ok_or_else(|| Error::Input {
        path: PathBuf::from(task),
        message: format!(
            "unknown task (known: {})",
            TASKS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let scheme = t.split(split).map_err(|message| Error::Input {
        path: PathBuf::from(split.unwrap_or_default()),
        message,
    })?;
    let names: Vec<String> = if sources.is_empty() {
        t.source_names()
    } else {
        sources.to_vec()
    };
    let wanted: Vec<Wanted> = sources::resolve(t, &names, &[]).map_err(|m| Error::Input {
        path: PathBuf::from(task),
        message: m,
    })?;
    let data = tasks::load(t, scheme, root, 60)?;
    let pool = sources::load(t, &data, root, &wanted, Default::default())?;
    let mut out = format!(
        "{} ({} split), sources: {}\n\n",
        t.name,
        scheme.name(),
        names.join(", ")
    );
    out.push_str("| split | questions | with rationales | rationales/question min/mean/max | teacher accuracy | questions with none correct |\n|---|---|---|---|---|---|\n");
    let all: Vec<&crate::teacher::Rationale> = pool.train.iter().chain(&pool.held_out).collect();
    for (name, split) in [
        ("train", &data.train),
        ("validation", &data.validation),
        ("test", &data.test),
    ] {
        let mut per_q: HashMap<&str, (usize, usize)> = HashMap::new();
        let ids: HashMap<&str, &crate::task::Example> =
            split.iter().map(|e| (e.id.as_str(), e)).collect();
        for r in &all {
            if let Some(e) = ids.get(r.question_id.as_str()) {
                let ok = matches(
                    data.answer,
                    crate::teacher::answer_of(data.answer, r, &e.options).as_deref(),
                    &e.answer,
                );
                let c = per_q.entry(r.question_id.as_str()).or_default();
                c.0 += 1;
                c.1 += usize::from(ok);
            }
        }
        let counts: Vec<usize> = split
            .iter()
            .map(|e| per_q.get(e.id.as_str()).map(|c| c.0).unwrap_or(0))
            .collect();
        let covered: Vec<&(usize, usize)> = per_q.values().collect();
        let total: usize = covered.iter().map(|c| c.0).sum();
        let correct: usize = covered.iter().map(|c| c.1).sum();
        let none = covered.iter().filter(|c| c.1 == 0).count();
        let (mn, mx) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        let mean = total as f64 / split.len().max(1) as f64;
        let acc = if total > 0 {
            format!("{:.1}%", 100.0 * correct as f64 / total as f64)
        } else {
            "-".into()
        };
        let nonec = if covered.is_empty() {
            "-".into()
        } else {
            format!("{:.1}%", 100.0 * none as f64 / covered.len() as f64)
        };
        out.push_str(&format!(
            "| {name} | {} | {} | {mn} / {mean:.2} / {mx} | {acc} | {nonec} |\n",
            split.len(),
            covered.len()
        ));
    }
    out.push_str(&majority_line(&data, &all));
    out.push_str("\n| source | file | rows | joined train | joined held-out | unmatched | unparsed |\n|---|---|---|---|---|---|---|\n");
    for r in &pool.reports {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.source,
            r.file,
            r.rows,
            r.train,
            r.held_out,
            r.unmatched,
            r.unparsed.len()
        ));
    }
    for r in &pool.reports {
        for (line, why) in r.unparsed.iter().take(5) {
            out.push_str(&format!("unparsed: {} line {line}: {why}\n", r.file));
        }
    }
    Ok(out)
}

/// One line: how often the majority answer of a question's rationales (self-consistency, what
/// `score.label = "majority"` labels with) equals its gold answer, over every question with
/// rationales; ties and questions with too few answered rationales are counted apart.
fn majority_line(data: &crate::task::TaskData, all: &[&crate::teacher::Rationale]) -> String {
    use crate::teacher::majority::{Tally, vote};
    let min = crate::teacher::majority::DEFAULT_MIN_VOTES;
    // Every question of every split, with its rationales' answers, voted against gold. Only
    // questions with rationales count (a question none wrote for has nothing to vote on).
    let questions = data.train.iter().chain(&data.validation).chain(&data.test);
    let mut tally = Tally::default();
    for (e, answers) in
        crate::teacher::majority::answers_per_question(data.answer, questions, all.iter().copied())
    {
        if !answers.is_empty() {
            tally.add(
                data.answer,
                &vote(data.answer, &answers, min),
                Some(&e.answer),
            );
        }
    }
    format!("\n{}\n", tally.describe(min))
}

/// The answer type of a task name (real or synthetic).
pub fn answer_type(task: &str) -> Option<AnswerType> {
    registry::task(task)
        .map(|t| t.answer)
        .or_else(|| crate::spec::TaskKind::parse(task).map(|k| k.answer_type()))
}

/// `morsd extract`: adds `"extracted"` (and with `gold`, `"correct"`) to each JSON line.
pub fn extract_lines(
    task: &str,
    field: &str,
    gold: Option<&str>,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<usize> {
    let kind = answer_type(task).ok_or_else(|| Error::Input {
        path: PathBuf::from(task),
        message: "unknown task".into(),
    })?;
    let stdin = PathBuf::from("<stdin>");
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::Input {
            path: stdin.clone(),
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| Error::Input {
            path: stdin.clone(),
            message: format!("line {}: {m}", i + 1),
        };
        let mut v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = v
            .get(field)
            .and_then(|x| x.as_str())
            .ok_or_else(|| bad(format!("no string field `{field}`")))?
            .to_string();
        let options: Vec<String> = v
            .get("options")
            .and_then(|o| o.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let x = extract_with_options(kind, &text, &options);
        if let Some(g) = gold {
            let gv = match v.get(g) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) if !other.is_null() => other.to_string(),
                _ => return Err(bad(format!("no field `{g}`"))),
            };
            v["correct"] = serde_json::Value::Bool(matches(kind, x.as_deref(), &gv));
        }
        v["extracted"] = x
            .map(serde_json::Value::String)
            .unwrap_or(serde_json::Value::Null);
        writeln!(output, "{v}").map_err(|e| Error::run(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}
