//! `morsd report --check DIR SPEC`: is a (committed) results folder what the spec computes
//! today? The spec is loaded and planned — input files hashed, nothing executed, the cache not
//! touched — and each run's five stage keys are compared, by run label, with the keys the folder
//! records.
//!
//! `morsd run` writes `stages.json` beside `runs.json` so that a difference can be explained:
//! for each run label the full key of each stage, and each distinct key's document
//! ([`KeyDoc`]). A stage whose key moved is then named with [`KeyDoc::diff`]'s reasons
//! (`train: train.steps changed`, `eval: eval version changed (3 → 4)`, `select: upstream
//! score changed`). A folder without `stages.json` (written before it existed) is compared on
//! `runs.json`'s 12-hex keys alone, and a moved key is shown as old → new.

use super::Stored;
use crate::cache::KeyDoc;
use crate::error::{Error, Result};
use crate::pipeline::{self, RunOutcome};
use crate::resolve;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The file `morsd run` writes into a results folder.
pub const STAGES_FILE: &str = "stages.json";

/// What `stages.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// Run label → stage name → full key.
    pub runs: BTreeMap<String, BTreeMap<String, String>>,
    /// Full key → its key document (each distinct key once: shared stages are stored once).
    pub docs: BTreeMap<String, KeyDoc>,
}

impl Stages {
    /// The stages of finished runs.
    pub fn of(done: &[RunOutcome]) -> Stages {
        let mut s = Stages::default();
        for o in done {
            let keys = o
                .manifests
                .iter()
                .map(|(k, m)| {
                    s.docs.insert(m.key.clone(), m.doc.clone());
                    (k.name().to_string(), m.key.clone())
                })
                .collect();
            s.runs.insert(o.run.label.clone(), keys);
        }
        s
    }

    /// The recorded document of a run's stage.
    fn doc(&self, label: &str, stage: &str) -> Option<&KeyDoc> {
        self.docs.get(self.runs.get(label)?.get(stage)?)
    }
}

/// Writes `DIR/stages.json` for the finished runs `done`.
pub fn write_stages(dir: &Path, done: &[RunOutcome]) -> Result<()> {
    let json = serde_json::to_vec_pretty(&Stages::of(done)).map_err(Error::run)?;
    super::atomic_write(&dir.join(STAGES_FILE), &json)
}

/// Reads `DIR/stages.json`: `None` when the folder has none, an input error naming the file
/// when it cannot be read.
pub fn read_stages(dir: &Path) -> Result<Option<Stages>> {
    super::read_optional_json(&dir.join(STAGES_FILE))
}

/// One run, compared.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCheck {
    /// Every stage key is what the spec computes.
    Current(String),
    /// Some stage keys moved: stage → why.
    Differs {
        /// The run label.
        label: String,
        /// Each stage whose key moved, with the reasons.
        stages: Vec<(String, Vec<String>)>,
    },
    /// In the spec, not in the folder.
    Missing(String),
    /// In the folder, not in the spec.
    Extra(String),
}

/// Compares the folder (`stored`, and `recorded` when it has `stages.json`) with the planned
/// runs (label → the five key documents, in stage order): the spec's runs in order, then the
/// folder's runs the spec does not have.
pub fn compare(
    stored: &Stored,
    recorded: Option<&Stages>,
    planned: &[(String, Vec<KeyDoc>)],
) -> Vec<RunCheck> {
    let mut out = Vec::new();
    for (label, docs) in planned {
        let Some(row) = stored.runs.iter().find(|r| &r.label == label) else {
            out.push(RunCheck::Missing(label.clone()));
            continue;
        };
        let mut stages = Vec::new();
        for new in docs {
            let stage = new.stage.as_str();
            let new_key = new.key();
            let short = row.keys.get(stage);
            // A recorded document counts only if it is the one runs.json names.
            let old = recorded
                .and_then(|r| r.doc(label, stage))
                .filter(|d| short.is_none_or(|k| d.key().starts_with(k.as_str())));
            let why = match (old, short) {
                (Some(old), _) if old.key() == new_key => None,
                (Some(old), _) => {
                    let why = new.diff(old);
                    Some(if why.is_empty() {
                        vec![format!("key {} → {}", &old.key()[..12], &new_key[..12])]
                    } else {
                        why
                    })
                }
                (None, Some(k)) if new_key.starts_with(k.as_str()) => None,
                (None, Some(k)) => Some(vec![format!(
                    "key {k} → {} (the folder has no {STAGES_FILE} record of this run to say why)",
                    &new_key[..12]
                )]),
                (None, None) => Some(vec!["no key recorded in the folder".into()]),
            };
            if let Some(why) = why {
                stages.push((stage.to_string(), why));
            }
        }
        out.push(if stages.is_empty() {
            RunCheck::Current(label.clone())
        } else {
            RunCheck::Differs {
                label: label.clone(),
                stages,
            }
        });
    }
    for row in &stored.runs {
        if !planned.iter().any(|(l, _)| l == &row.label) {
            out.push(RunCheck::Extra(row.label.clone()));
        }
    }
    out
}

/// The listing of a comparison: one line per run, the reasons indented under it, and a count.
pub fn render(checks: &[RunCheck]) -> String {
    let mut s = String::new();
    let (mut current, mut differs, mut missing, mut extra) = (0, 0, 0, 0);
    for c in checks {
        match c {
            RunCheck::Current(l) => {
                current += 1;
                let _ = writeln!(s, "  {l}: current");
            }
            RunCheck::Differs { label, stages } => {
                differs += 1;
                let _ = writeln!(s, "  {label}: differs");
                for (stage, why) in stages {
                    let _ = writeln!(s, "    {stage}: {}", why.join(", "));
                }
            }
            RunCheck::Missing(l) => {
                missing += 1;
                let _ = writeln!(s, "  {l}: in the spec, not in the folder");
            }
            RunCheck::Extra(l) => {
                extra += 1;
                let _ = writeln!(s, "  {l}: in the folder, not in the spec");
            }
        }
    }
    let _ = write!(
        s,
        "{current} run(s) current, {differs} differ, {missing} missing from the folder, {extra} not in the spec"
    );
    s
}

/// `morsd report --check DIR SPEC [--set KEY=VALUE]...`: `Ok` with the listing when every run
/// of the spec is in the folder with the keys the spec computes today and the folder has no
/// other run; [`Error::NotCurrent`] with the listing otherwise.
pub fn check(dir: &Path, spec_path: &Path, sets: &[String]) -> Result<String> {
    let stored = super::read_stored(dir)?;
    let recorded = read_stages(dir)?;
    let spec = resolve::load(spec_path, sets)?;
    let planned: Vec<(String, Vec<KeyDoc>)> = pipeline::plan(&spec)?
        .into_iter()
        .map(|p| (p.run.label, p.stages.into_iter().map(|i| i.doc).collect()))
        .collect();
    let checks = compare(&stored, recorded.as_ref(), &planned);
    let listing = render(&checks);
    if checks.iter().all(|c| matches!(c, RunCheck::Current(_))) {
        Ok(format!(
            "{} is current: every stage key of its {} run(s) is what {} computes today{}\n{listing}\n",
            dir.display(),
            checks.len(),
            spec_path.display(),
            if recorded.is_none() {
                format!(" (compared on runs.json's short keys: no {STAGES_FILE})")
            } else {
                String::new()
            }
        ))
    } else {
        Err(Error::NotCurrent {
            dir: dir.to_path_buf(),
            spec: spec_path.to_path_buf(),
            report: listing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_row;

    fn doc(stage: &str, version: u32, steps: u64, upstream: Option<&KeyDoc>) -> KeyDoc {
        KeyDoc {
            stage: stage.into(),
            version,
            config: serde_json::json!({ "train": { "steps": steps } }),
            upstream: upstream
                .map(|u| (u.stage.clone(), u.key()))
                .into_iter()
                .collect(),
            inputs: Default::default(),
            seed: Some(0),
        }
    }

    /// A folder with one run `seed=0` (train, eval) and its stages.json.
    fn folder(train: &KeyDoc, eval: &KeyDoc) -> (Stored, Stages) {
        let row = crate::report::RunRow {
            label: "seed=0".into(),
            keys: [train, eval]
                .iter()
                .map(|d| (d.stage.clone(), d.key()[..12].to_string()))
                .collect(),
            ..test_row("morsd", 2, 0, 0.5)
        };
        let stages = Stages {
            runs: [(
                "seed=0".to_string(),
                [train, eval]
                    .iter()
                    .map(|d| (d.stage.clone(), d.key()))
                    .collect(),
            )]
            .into(),
            docs: [train, eval]
                .iter()
                .map(|d| (d.key(), (*d).clone()))
                .collect(),
        };
        let stored = Stored {
            runs: vec![row],
            ..Default::default()
        };
        (stored, stages)
    }

    #[test]
    fn names_the_stage_and_field_that_moved() {
        let train = doc("train", 1, 8, None);
        let eval = doc("eval", 3, 8, Some(&train));
        let (stored, stages) = folder(&train, &eval);
        let same = vec![("seed=0".to_string(), vec![train.clone(), eval.clone()])];
        assert_eq!(
            compare(&stored, Some(&stages), &same),
            vec![RunCheck::Current("seed=0".into())]
        );
        // Without stages.json the short keys still tell current from not.
        assert_eq!(
            compare(&stored, None, &same),
            vec![RunCheck::Current("seed=0".into())]
        );

        let train2 = doc("train", 1, 16, None);
        let eval2 = doc("eval", 4, 8, Some(&train2));
        let moved = vec![("seed=0".to_string(), vec![train2, eval2])];
        let got = compare(&stored, Some(&stages), &moved);
        assert_eq!(
            got,
            vec![RunCheck::Differs {
                label: "seed=0".into(),
                stages: vec![
                    ("train".into(), vec!["train.steps changed".into()]),
                    (
                        "eval".into(),
                        vec![
                            "eval version changed (3 → 4)".into(),
                            "upstream train changed".into()
                        ]
                    ),
                ],
            }]
        );
        let text = render(&got);
        assert!(text.contains("    train: train.steps changed"), "{text}");
        // Without stages.json: the moved keys, old → new.
        let RunCheck::Differs { stages, .. } = &compare(&stored, None, &moved)[0] else {
            panic!("the keys moved")
        };
        assert!(stages[0].1[0].starts_with(&format!("key {} → ", &train.key()[..12])));
    }

    #[test]
    fn runs_missing_from_the_folder_and_extra_in_it() {
        let train = doc("train", 1, 8, None);
        let eval = doc("eval", 3, 8, Some(&train));
        let (stored, stages) = folder(&train, &eval);
        let other = vec![("seed=1".to_string(), vec![train, eval])];
        let got = compare(&stored, Some(&stages), &other);
        assert_eq!(
            got,
            vec![
                RunCheck::Missing("seed=1".into()),
                RunCheck::Extra("seed=0".into())
            ]
        );
        assert!(
            render(&got).ends_with(
                "0 run(s) current, 0 differ, 1 missing from the folder, 1 not in the spec"
            )
        );
    }
}
