//! Which invocation built what: each run's `built_by` (stage → invocation id, from the
//! manifests of the entries it used) and the folder's `invocations`, and the account of them in
//! `summary.md` and `CLAIMS.md` ([`executions_md`]).
//!
//! A study is often run in pieces — several `morsd run` sharing one cache, or the array tasks of
//! a Slurm sweep — so "what the last `morsd run` executed" misreports it. The account here counts
//! the distinct cache entries the folder's runs use and says, per entry, which recorded
//! invocation built it, or that its manifest has no record (built before invocations were
//! recorded).

use super::Stored;
use crate::cache::Manifest;
use crate::invocation::Invocation;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Stage name → id of the invocation that built each entry (stages without a record left out).
pub fn built_by<'a>(
    manifests: impl IntoIterator<Item = (&'a str, &'a Manifest)>,
) -> BTreeMap<String, String> {
    manifests
        .into_iter()
        .filter_map(|(stage, m)| Some((stage.to_string(), m.invocation.as_ref()?.id.clone())))
        .collect()
}

/// Every invocation recorded in `manifests`, plus `writer` (the one writing the folder), once
/// each, oldest first (by start time to the millisecond).
pub fn invocations<'a>(
    manifests: impl IntoIterator<Item = &'a Manifest>,
    writer: &Invocation,
) -> Vec<Invocation> {
    let mut by_id: BTreeMap<&str, &Invocation> = BTreeMap::new();
    for inv in manifests
        .into_iter()
        .filter_map(|m| m.invocation.as_ref())
        .chain([writer])
    {
        by_id.entry(inv.id.as_str()).or_insert(inv);
    }
    let mut out: Vec<Invocation> = by_id.into_values().cloned().collect();
    out.sort_by(|a, b| (a.started, &a.started_at, &a.id).cmp(&(b.started, &b.started_at, &b.id)));
    out
}

/// `text` as a Markdown code span, whatever backticks it holds.
fn code(text: &str) -> String {
    let mut fence = "`".to_string();
    while text.contains(&fence) {
        fence.push('`');
    }
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn entries(n: usize) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

/// The honest account of a folder's stage executions (Markdown, ending in a newline): how many
/// stage instances its runs are and how many distinct cache entries they use; how many of those
/// each recorded invocation built (its command line, date and host) and how many have no
/// record; and what the invocation that wrote the folder executed.
pub fn executions_md(stored: &Stored) -> String {
    let runs = stored.runs.len();
    if runs == 0 {
        return "No finished runs, so no stage entries.\n".into();
    }
    let instances = runs * 5;
    // Each distinct (stage, key) once, with the builder the first run using it recorded.
    let mut distinct: BTreeMap<(&str, &str), Option<&str>> = BTreeMap::new();
    for r in &stored.runs {
        for (stage, key) in &r.keys {
            distinct
                .entry((stage.as_str(), key.as_str()))
                .or_insert_with(|| r.built_by.get(stage).map(String::as_str));
        }
    }
    let known: BTreeMap<&str, &Invocation> = stored
        .invocations
        .iter()
        .map(|i| (i.id.as_str(), i))
        .collect();
    let mut built: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unrecorded = 0;
    let mut per_stage: Vec<(&str, usize)> = Vec::new();
    for (&(stage, _), by) in &distinct {
        match by.filter(|id| known.contains_key(id)) {
            Some(id) => *built.entry(id).or_default() += 1,
            None => unrecorded += 1,
        }
        match per_stage.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, n)) => *n += 1,
            None => per_stage.push((stage, 1)),
        }
    }
    let order = |s: &str| {
        crate::stages::StageKind::ORDER
            .iter()
            .position(|k| k.name() == s)
            .unwrap_or(usize::MAX)
    };
    per_stage.sort_by_key(|(s, _)| order(s));
    let mut s = format!(
        "Stage entries: {} {instances} stage instances (5 per run), which use {} distinct cache \
         entries ({}); generate and score are shared across selection settings and seeds, and an \
         entry built once serves every run that asks for it.",
        if runs == 1 {
            "the run is".to_string()
        } else {
            format!("the {runs} runs are")
        },
        distinct.len(),
        per_stage
            .iter()
            .map(|(st, n)| format!("{st} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if built.is_empty() {
        s.push_str(" Which invocation built them is not recorded (the folder or its entries predate invocation records).\n");
    } else {
        s.push_str(" Who built them:\n\n");
        for inv in &stored.invocations {
            if let Some(&n) = built.get(inv.id.as_str()) {
                let _ = writeln!(
                    s,
                    "- {} by {} ({} on {}, invocation `{}`)",
                    entries(n),
                    code(&inv.command_line()),
                    inv.started_at,
                    inv.host,
                    inv.id
                );
            }
        }
        if unrecorded > 0 {
            let _ = writeln!(
                s,
                "- {} without a record of who built it (built before invocations were recorded)",
                entries(unrecorded)
            );
        }
    }
    let executed: usize = stored.runs.iter().map(|r| r.executed.len()).sum();
    let writer = stored
        .written_by
        .as_deref()
        .and_then(|id| known.get(id).copied());
    let _ = writeln!(
        s,
        "\n{} executed {executed} of the {instances} stage instances; the rest came from the cache \
         or were shared with another run.",
        match writer {
            Some(w) => format!(
                "The invocation that wrote this folder, {} ({}, `{}`),",
                code(&w.command_line()),
                w.started_at,
                w.id
            ),
            None => "The `morsd run` that wrote this folder".to_string(),
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_row;

    fn inv(id: &str, started: u64, argv: &[&str]) -> Invocation {
        Invocation {
            id: id.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            started,
            started_at: crate::invocation::rfc3339(started, 0),
            host: "node1".into(),
            pid: 1,
            version: "0.1.0".into(),
            commit: None,
        }
    }

    fn row(seed: u64, built: &[(&str, &str)], executed: &[&str]) -> super::super::RunRow {
        let stages = ["generate", "score", "select", "train", "eval"];
        super::super::RunRow {
            keys: stages
                .iter()
                .map(|s| {
                    // generate and score are shared across seeds; the rest are per seed.
                    let k = if matches!(*s, "generate" | "score") {
                        format!("{s}-shared")
                    } else {
                        format!("{s}-{seed}")
                    };
                    (s.to_string(), k)
                })
                .collect(),
            built_by: built
                .iter()
                .map(|(s, i)| (s.to_string(), i.to_string()))
                .collect(),
            executed: executed.iter().map(|s| s.to_string()).collect(),
            ..test_row("morsd", 2, seed, 0.5)
        }
    }

    #[test]
    fn counts_the_entries_each_invocation_built() {
        let all = ["generate", "score", "select", "train", "eval"];
        let first: Vec<(&str, &str)> = all.iter().map(|s| (*s, "aaa")).collect();
        let second = [
            ("generate", "aaa"),
            ("score", "aaa"),
            ("select", "bbb"),
            ("train", "bbb"),
            ("eval", "bbb"),
        ];
        let stored = Stored {
            experiment: "e".into(),
            spec: "e.toml".into(),
            sweep_keys: vec![],
            runs: vec![
                row(0, &first, &[]),
                row(1, &second, &["select", "train", "eval"]),
            ],
            invocations: vec![
                inv(
                    "aaa",
                    1_714_564_800,
                    &["morsd", "run", "e.toml", "--set", "experiment.seeds=[0]"],
                ),
                inv("bbb", 1_714_568_400, &["/bin/morsd", "run", "e.toml"]),
            ],
            written_by: Some("bbb".into()),
        };
        let md = executions_md(&stored);
        assert!(md.contains("are 10 stage instances"), "{md}");
        assert!(
            md.contains(
                "8 distinct cache entries (generate 1, score 1, select 2, train 2, eval 2)"
            ),
            "{md}"
        );
        assert!(
            md.contains("- 5 entries by `morsd run e.toml --set experiment.seeds=[0]` (2024-05-01T12:00:00.000Z on node1, invocation `aaa`)"),
            "{md}"
        );
        assert!(
            md.contains("- 3 entries by `morsd run e.toml` (2024-05-01T13:00:00.000Z"),
            "{md}"
        );
        assert!(!md.contains("without a record"), "{md}");
        assert!(
            md.contains("The invocation that wrote this folder, `morsd run e.toml`"),
            "{md}"
        );
        assert!(md.contains("executed 3 of the 10 stage instances"), "{md}");

        // Entries from an older cache (no record in their manifests) are counted apart.
        let mut old = stored.clone();
        old.runs[0].built_by.clear();
        let md = executions_md(&old);
        assert!(md.contains("- 3 entries by `morsd run e.toml`"), "{md}");
        assert!(md.contains("- 5 entries without a record"), "{md}");
        assert!(!md.contains("invocation `aaa`"), "{md}");
    }

    #[test]
    fn an_old_folder_says_nothing_was_recorded() {
        let stored = Stored {
            experiment: "e".into(),
            spec: "e.toml".into(),
            sweep_keys: vec![],
            runs: vec![row(
                0,
                &[],
                &["generate", "score", "select", "train", "eval"],
            )],
            invocations: vec![],
            written_by: None,
        };
        let md = executions_md(&stored);
        assert!(md.contains("use 5 distinct cache entries"), "{md}");
        assert!(md.contains("is not recorded"), "{md}");
        assert!(
            md.contains("The `morsd run` that wrote this folder executed 5 of the 5"),
            "{md}"
        );
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
    }

    #[test]
    fn invocations_are_deduplicated_oldest_first() {
        let a = inv("aaa", 10, &["morsd"]);
        let b = inv("bbb", 5, &["morsd"]);
        // In the same second the milliseconds order them.
        let c = Invocation {
            started_at: crate::invocation::rfc3339(10, 500),
            ..inv("000", 10, &["morsd"])
        };
        let m = |i: &Invocation| Manifest {
            key: "k".into(),
            doc: crate::cache::KeyDoc {
                stage: "eval".into(),
                version: 1,
                config: serde_json::Value::Null,
                upstream: Default::default(),
                inputs: Default::default(),
                seed: None,
            },
            files: Default::default(),
            metrics: serde_json::Value::Null,
            wall_s: 0.0,
            created: 0,
            invocation: Some(i.clone()),
        };
        let ms = [m(&a), m(&c), m(&a), m(&b)];
        let got = invocations(&ms, &a);
        assert_eq!(
            got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            vec!["bbb", "aaa", "000"]
        );
        assert_eq!(
            built_by(ms.iter().map(|m| ("eval", m))),
            [("eval".to_string(), "bbb".to_string())].into()
        );
    }
}
