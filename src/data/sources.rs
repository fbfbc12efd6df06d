//! Joining recorded rationales to a task's questions. Several sources can be pooled: each
//! rationale keeps its source. Rows that cannot be parsed or joined are counted and reported
//! per file, never silently dropped.

use super::formats::{self, Row};
use super::registry::{SourceDef, SourceFormat, TaskDef};
use super::tasks::join_key;
use crate::error::{Error, Result};
use crate::task::TaskData;
use crate::teacher::Rationale;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What happened to one file's rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceReport {
    /// Source name.
    pub source: String,
    /// File or folder (relative to the data root, or as given).
    pub file: String,
    /// Rows read.
    pub rows: usize,
    /// Joined to a training question.
    pub train: usize,
    /// Joined to a validation or test question (kept out of training).
    pub held_out: usize,
    /// Not matching any question of the task's split scheme.
    pub unmatched: usize,
    /// Lines that could not be parsed: (line, reason).
    pub unparsed: Vec<(usize, String)>,
    /// Of the unmatched rows, those whose question the spec cut away (`data.max_train`,
    /// `max_validation`, `max_test`): not a fault of the file. Reported, not stored.
    #[serde(skip)]
    pub unmatched_cut: usize,
    /// Line numbers of the first few unmatched rows that are not cut questions. Reported,
    /// not stored.
    #[serde(skip)]
    pub unmatched_lines: Vec<usize>,
}

impl SourceReport {
    /// Rows that are neither used nor explained by a cut: unparsed plus truly unmatched.
    pub fn faults(&self) -> usize {
        self.unparsed.len() + self.unmatched - self.unmatched_cut
    }

    /// One line for the user: `FILE: rows R, joined to training T, held out H, unmatched U,
    /// unparsed P`, then the first few reasons with their line numbers.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: rows {}, joined to training {}, held out (validation/test) {}, unmatched {}",
            self.file, self.rows, self.train, self.held_out, self.unmatched
        );
        if self.unmatched_cut > 0 {
            s.push_str(&format!(
                " ({} of them questions cut by data.max_*)",
                self.unmatched_cut
            ));
        }
        s.push_str(&format!(", unparsed {}", self.unparsed.len()));
        let mut reasons: Vec<(usize, &str)> = self
            .unparsed
            .iter()
            .map(|(l, r)| (*l, r.as_str()))
            .chain(
                self.unmatched_lines
                    .iter()
                    .map(|&l| (l, "question not in the task")),
            )
            .collect();
        reasons.sort_by_key(|r| r.0);
        let mut reasons: Vec<String> = reasons
            .into_iter()
            .map(|(l, r)| format!("line {l}: {r}"))
            .collect();
        if !reasons.is_empty() {
            let more = reasons.len().saturating_sub(REASONS_SHOWN);
            reasons.truncate(REASONS_SHOWN);
            s.push_str(&format!("; {}", reasons.join("; ")));
            if more > 0 {
                s.push_str(&format!("; … {more} more (sources.json)"));
            }
        }
        s
    }
}

/// Reasons shown per file in a report line.
const REASONS_SHOWN: usize = 3;

/// How strictly rows are taken.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// Any unparsed or (truly) unmatched row is an error naming its file and line.
    pub strict: bool,
    /// Questions the spec cut away: rows joined to them count as unmatched, but as explained.
    pub cut: &'a [crate::task::Example],
}

/// Rationales per split, with the per-file reports.
#[derive(Debug, Default)]
pub struct Pool {
    /// Training rationales (what selection sees).
    pub train: Vec<Rationale>,
    /// Rationales of validation and test questions (for `data stats` only).
    pub held_out: Vec<Rationale>,
    /// Per-file reports.
    pub reports: Vec<SourceReport>,
}

/// A source a spec asks for: a registry source by name, or a generic JSONL file.
#[derive(Debug, Clone)]
pub enum Wanted {
    /// A registry source of the task.
    Named(&'static SourceDef),
    /// A generic JSONL file.
    Jsonl(PathBuf),
}

/// Resolves source names for a task (errors list the known ones).
pub fn resolve(task: &TaskDef, names: &[String], jsonl: &[String]) -> Result<Vec<Wanted>, String> {
    let mut out = Vec::new();
    for n in names {
        let s = task.sources.iter().find(|s| s.name == n).ok_or_else(|| {
            let known: Vec<&str> = task.sources.iter().map(|s| s.name).collect();
            format!(
                "task {} has no source `{n}` (known: {})",
                task.name,
                known.join(", ")
            )
        })?;
        out.push(Wanted::Named(s));
    }
    out.extend(jsonl.iter().map(|p| Wanted::Jsonl(PathBuf::from(p))));
    Ok(out)
}

/// Files a wanted source reads (for the stage key's input hashes).
pub fn files(w: &Wanted, root: &Path) -> Result<Vec<PathBuf>> {
    Ok(match w {
        Wanted::Named(s) if s.format == SourceFormat::Dsbs => {
            formats::dsbs::files(&root.join(s.path), "train")?
        }
        Wanted::Named(s) => vec![root.join(s.path)],
        Wanted::Jsonl(p) => vec![p.clone()],
    })
}

/// Reads and joins the sources to `data`.
pub fn load(
    task: &TaskDef,
    data: &TaskData,
    root: &Path,
    wanted: &[Wanted],
    opts: LoadOptions<'_>,
) -> Result<Pool> {
    load_any(task.name, Some(task), data, root, wanted, opts)
}

/// Reads and joins generic JSONL files to a custom task's questions (by `id` or question text).
pub fn load_custom(data: &TaskData, wanted: &[Wanted], opts: LoadOptions<'_>) -> Result<Pool> {
    load_any(&data.task, None, data, Path::new("."), wanted, opts)
}

/// [`load`] for a task named `task_name`; registry sources need its registry entry `def`.
fn load_any(
    task_name: &str,
    def: Option<&TaskDef>,
    data: &TaskData,
    root: &Path,
    wanted: &[Wanted],
    opts: LoadOptions<'_>,
) -> Result<Pool> {
    // 1. Join keys of every question in every split.
    let mut by_key: HashMap<String, (&str, usize)> = HashMap::new();
    let mut by_id: HashMap<&str, (&str, usize)> = HashMap::new();
    for (name, split) in [
        ("train", &data.train),
        ("validation", &data.validation),
        ("test", &data.test),
    ] {
        for (i, e) in split.iter().enumerate() {
            by_key.entry(join_key(&e.question)).or_insert((name, i));
            by_id.insert(e.id.as_str(), (name, i));
        }
    }
    let cut_keys: std::collections::HashSet<String> =
        opts.cut.iter().map(|e| join_key(&e.question)).collect();
    let cut_ids: std::collections::HashSet<&str> = opts.cut.iter().map(|e| e.id.as_str()).collect();
    let mut pool = Pool::default();
    let mut counters: HashMap<(String, String), usize> = HashMap::new();
    for w in wanted {
        // 2. Parse the source's rows.
        let (name, file, rows, unparsed) = match w {
            Wanted::Named(s) => {
                let path = root.join(s.path);
                let Some(task) = def else {
                    return Err(Error::run(format!(
                        "source {}: registry sources belong to registry tasks, not to task {task_name}",
                        s.name
                    )));
                };
                let (rows, unparsed) = match s.format {
                    SourceFormat::MccKd => (formats::mcc_kd::read(&path)?, Vec::new()),
                    SourceFormat::FineTuneCot => (formats::fine_tune_cot::read(&path)?, Vec::new()),
                    SourceFormat::Dsbs => (dsbs_rows(task, &path)?, Vec::new()),
                    SourceFormat::ZscotLog => {
                        let p = formats::zscot_log::parse_file(&path)?;
                        let rows = p
                            .items
                            .into_iter()
                            .map(|it| Row {
                                line: it.line,
                                question: Some(it.question),
                                rationale: it.rationale,
                                body: Some(it.body),
                                answer: None,
                                answer_text: None,
                                id: None,
                            })
                            .collect();
                        (rows, p.skipped)
                    }
                };
                (s.name.to_string(), s.path.to_string(), rows, unparsed)
            }
            Wanted::Jsonl(p) => {
                let (rows, bad) = formats::jsonl::read(p)?;
                if rows.is_empty() && !bad.is_empty() {
                    return Err(Error::Input {
                        path: p.clone(),
                        message: format!("no readable line; line {}: {}", bad[0].0, bad[0].1),
                    });
                }
                (
                    p.file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "jsonl".into()),
                    p.display().to_string(),
                    rows,
                    bad,
                )
            }
        };
        let path_of = || match w {
            Wanted::Named(s) => root.join(s.path),
            Wanted::Jsonl(p) => p.clone(),
        };
        if opts.strict
            && let Some((line, why)) = unparsed.first()
        {
            return Err(Error::Input {
                path: path_of(),
                message: format!("line {line}: {why} (data.strict = true)"),
            });
        }
        let mut report = SourceReport {
            source: name.clone(),
            file,
            rows: rows.len(),
            unparsed,
            ..Default::default()
        };
        // 3. Join each row to a question, normalise, keep.
        for row in rows {
            let target = row
                .id
                .as_deref()
                .and_then(|id| by_id.get(id).copied())
                .or_else(|| {
                    row.question
                        .as_deref()
                        .and_then(|q| by_key.get(&join_key(q)).copied())
                });
            let Some((split, i)) = target else {
                report.unmatched += 1;
                let cut = row.id.as_deref().is_some_and(|id| cut_ids.contains(id))
                    || row
                        .question
                        .as_deref()
                        .is_some_and(|q| cut_keys.contains(&join_key(q)));
                if cut {
                    report.unmatched_cut += 1;
                } else if opts.strict {
                    return Err(Error::Input {
                        path: path_of(),
                        message: format!(
                            "line {}: its question is not one of task {task_name}'s questions (data.strict = true)",
                            row.line
                        ),
                    });
                } else if report.unmatched_lines.len() < REASONS_SHOWN {
                    report.unmatched_lines.push(row.line);
                }
                continue;
            };
            let ex = match split {
                "train" => &data.train[i],
                "validation" => &data.validation[i],
                _ => &data.test[i],
            };
            let (mut text, body) = normalise(&row, data, &ex.options);
            if text.is_empty() {
                if opts.strict {
                    return Err(Error::Input {
                        path: path_of(),
                        message: format!("line {}: empty rationale (data.strict = true)", row.line),
                    });
                }
                report.unparsed.push((row.line, "empty rationale".into()));
                continue;
            }
            if !text.ends_with(['.', '!', '?']) {
                text.push('.');
            }
            let k = counters.entry((ex.id.clone(), name.clone())).or_default();
            let r = Rationale {
                id: format!("{}/{name}/{k}", ex.id),
                question_id: ex.id.clone(),
                source: name.clone(),
                body,
                text,
                origin: "recorded".into(),
                answer_text: row.answer_text.clone(),
            };
            *k += 1;
            if split == "train" {
                report.train += 1;
                pool.train.push(r);
            } else {
                report.held_out += 1;
                pool.held_out.push(r);
            }
        }
        pool.reports.push(report);
    }
    Ok(pool)
}

/// The rationale text (with an answer sentence appended where it had none) and its body. A
/// row with a recorded second-stage output (`answer_text`) is stored as a two-stage sample is:
/// its reasoning plus the answer read from that output.
fn normalise(row: &Row, data: &TaskData, options: &[String]) -> (String, String) {
    if let Some(a) = &row.answer_text {
        let answer = crate::teacher::answer_stage::extract(data.answer, a, options);
        return crate::teacher::answer_stage::rationale(&row.rationale, answer.as_deref());
    }
    let (text, body) =
        crate::teacher::normalise(&row.rationale, row.answer.as_deref(), data.answer, options);
    (
        text,
        row.body
            .clone()
            .map(|b| b.trim().to_string())
            .unwrap_or(body),
    )
}

/// distilling-step-by-step chunks get their question from the same folder's train inputs.
fn dsbs_rows(task: &TaskDef, dir: &Path) -> Result<Vec<Row>> {
    let mut rows = formats::dsbs::read(dir)?;
    let folder = dir.parent().unwrap_or(dir);
    let d = folder
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inputs_path = folder.join(format!("{d}_train.json"));
    let text = std::fs::read_to_string(&inputs_path).map_err(|e| Error::Input {
        path: inputs_path.clone(),
        message: e.to_string(),
    })?;
    let questions: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v.get("input")
                .or_else(|| v.get("question"))
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    if questions.len() != rows.len() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            message: format!(
                "{} chunks for {} questions in {} ({})",
                rows.len(),
                questions.len(),
                inputs_path.display(),
                task.name
            ),
        });
    }
    for (r, q) in rows.iter_mut().zip(questions) {
        r.question = Some(q);
    }
    Ok(rows)
}
