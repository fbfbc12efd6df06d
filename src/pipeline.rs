//! The stage DAG of a spec: planning (keys, fresh/stale with reasons) and execution (cached,
//! locked, runs in parallel with `--jobs`).

use crate::cache::{Cache, KeyDoc, Lookup, Manifest};
use crate::error::{Error, Result};
use crate::run::{LoadedSpec, RunSpec};
use crate::stages::{StageCtx, StageKind};
use burn::prelude::Device;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One stage of one run with its key.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Which stage.
    pub kind: StageKind,
    /// Its key document.
    pub doc: KeyDoc,
    /// Its key.
    pub key: String,
}

/// The five stage instances of one run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The run.
    pub run: RunSpec,
    /// Its stages in execution order.
    pub stages: Vec<Instance>,
}

/// Fresh or stale, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// A complete, checked entry exists.
    Fresh,
    /// Must be (re)computed, and why.
    Stale(String),
}

/// Computes every run's stage keys (hashing input files; a missing one is an input error).
pub fn plan(spec: &LoadedSpec) -> Result<Vec<RunPlan>> {
    let mut hashes: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut out = Vec::new();
    for run in &spec.runs {
        let mut keys: BTreeMap<StageKind, String> = BTreeMap::new();
        let mut stages = Vec::new();
        for kind in StageKind::ORDER {
            let st = kind.stage();
            let mut inputs = BTreeMap::new();
            for (name, path) in st.inputs(run)? {
                let h = match hashes.get(&path) {
                    Some(h) => h.clone(),
                    None => {
                        let h = hash_file(&path)?;
                        hashes.insert(path.clone(), h.clone());
                        h
                    }
                };
                inputs.insert(name, h);
            }
            let doc = KeyDoc {
                stage: kind.name().into(),
                version: st.version(),
                config: st.config(run),
                upstream: st
                    .upstream()
                    .iter()
                    .map(|u| (u.name().to_string(), keys[u].clone()))
                    .collect(),
                inputs,
                seed: st.seeded().then_some(run.seed),
            };
            let key = doc.key();
            keys.insert(kind, key.clone());
            stages.push(Instance { kind, doc, key });
        }
        out.push(RunPlan {
            run: run.clone(),
            stages,
        });
    }
    Ok(out)
}

fn hash_file(path: &std::path::Path) -> Result<String> {
    crate::cache::file_sum(path)
        .map(|s| s.blake3)
        .map_err(|e| Error::Input {
            path: path.to_path_buf(),
            message: format!("input file: {e}"),
        })
}

fn slot(spec: &LoadedSpec, run: &RunSpec, kind: StageKind) -> String {
    format!("{}/{}/{}", spec.name, run.label, kind.name())
}

/// Fresh/stale per stage instance, with the reason for stale ones.
pub fn status(cache: &Cache, spec: &LoadedSpec, plans: &[RunPlan]) -> Vec<Vec<Status>> {
    plans
        .iter()
        .map(|p| {
            let mut upstream_stale: HashSet<StageKind> = HashSet::new();
            p.stages
                .iter()
                .map(|inst| {
                    let st = match cache.lookup(&inst.doc) {
                        Lookup::Fresh(_) => Status::Fresh,
                        Lookup::Corrupt(why) => {
                            Status::Stale(format!("corrupt cache entry ({why})"))
                        }
                        Lookup::Missing => {
                            let why = match cache.slot(&slot(spec, &p.run, inst.kind)) {
                                Some(old) if old != inst.doc => inst.doc.diff(&old).join(", "),
                                _ => {
                                    let up: Vec<&str> = inst
                                        .kind
                                        .stage()
                                        .upstream()
                                        .iter()
                                        .filter(|u| upstream_stale.contains(u))
                                        .map(|u| u.name())
                                        .collect();
                                    if up.is_empty() {
                                        "no cache entry".into()
                                    } else {
                                        format!("no cache entry (upstream {} stale)", up.join(", "))
                                    }
                                }
                            };
                            Status::Stale(why)
                        }
                    };
                    if st != Status::Fresh {
                        upstream_stale.insert(inst.kind);
                    }
                    st
                })
                .collect()
        })
        .collect()
}

/// How to execute.
pub struct ExecOptions {
    /// Runs in parallel.
    pub jobs: usize,
    /// Rebuild this stage even if fresh (once per key).
    pub force: Option<StageKind>,
    /// The burn device.
    pub device: Device,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
    /// Stop after this stage (`--until`).
    pub until: Option<StageKind>,
}

/// The outcome of one run: its stages' manifests, and which stages executed now.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run.
    pub run: RunSpec,
    /// Manifest per stage.
    pub manifests: BTreeMap<StageKind, Manifest>,
    /// Stages that executed in this invocation.
    pub executed: Vec<StageKind>,
    /// Entry folder per stage.
    pub dirs: BTreeMap<StageKind, PathBuf>,
}

/// Executes every run's stages, reusing fresh entries. Returns each run's outcome or error.
pub fn execute(
    cache: &Cache,
    spec: &LoadedSpec,
    plans: &[RunPlan],
    opts: &ExecOptions,
) -> Vec<Result<RunOutcome>> {
    cache.clean_tmp();
    let mp = MultiProgress::with_draw_target(if opts.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let forced_done: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunOutcome>>>> =
        Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1).min(plans.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= plans.len() {
                        break;
                    }
                    let r = run_one(
                        cache,
                        spec,
                        &plans[i],
                        i,
                        plans.len(),
                        opts,
                        &mp,
                        &forced_done,
                    );
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every run ran"))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    cache: &Cache,
    spec: &LoadedSpec,
    plan: &RunPlan,
    index: usize,
    total: usize,
    opts: &ExecOptions,
    mp: &MultiProgress,
    forced_done: &Mutex<HashSet<String>>,
) -> Result<RunOutcome> {
    let mut out = RunOutcome {
        run: plan.run.clone(),
        manifests: BTreeMap::new(),
        executed: vec![],
        dirs: BTreeMap::new(),
    };
    for inst in &plan.stages {
        if opts.until.is_some_and(|u| inst.kind > u) {
            break;
        }
        let stage = inst.kind.stage();
        let forced = |set: &Mutex<HashSet<String>>| {
            opts.force == Some(inst.kind)
                && !set
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&inst.key)
        };
        // 1. Fresh and not forced: reuse.
        let mut manifest = None;
        if !forced(forced_done) {
            match cache.lookup(&inst.doc) {
                Lookup::Fresh(m) => manifest = Some(*m),
                Lookup::Corrupt(why) => {
                    say(
                        mp,
                        opts,
                        format!(
                            "warning: {} {} cache entry is corrupt ({why}); rebuilding",
                            inst.kind.name(),
                            &inst.key[..12]
                        ),
                    );
                }
                Lookup::Missing => {}
            }
        }
        // 2. Otherwise take the key's lock, look again (another process may have built it), build.
        let manifest = match manifest {
            Some(m) => m,
            None => {
                let _lock = cache.lock(&inst.doc)?;
                let again = if forced(forced_done) {
                    None
                } else if let Lookup::Fresh(m) = cache.lookup(&inst.doc) {
                    Some(*m)
                } else {
                    None
                };
                match again {
                    Some(m) => m,
                    None => {
                        let bar = mp.add(ProgressBar::new(1));
                        bar.set_style(
                            ProgressStyle::with_template("{prefix:.bold} {bar:28.cyan/blue} {pos}/{len} {msg} [{elapsed}, ETA {eta}]")
                                .expect("valid template")
                                .progress_chars("=> "),
                        );
                        bar.set_prefix(format!(
                            "[{}/{total}] {:<8} {}",
                            index + 1,
                            inst.kind.name(),
                            &inst.key[..8]
                        ));
                        let requests_dir = cache.requests_dir();
                        let ctx = StageCtx {
                            run: &plan.run,
                            inputs: &out.dirs,
                            progress: &bar,
                            device: &opts.device,
                            requests_dir: &requests_dir,
                        };
                        let built = cache.build(&inst.doc, |dir| stage.run(&ctx, dir));
                        bar.finish_and_clear();
                        let m = built.map_err(|e| Error::Stage {
                            stage: inst.kind.name().into(),
                            key: inst.key[..12].into(),
                            message: e.to_string(),
                        })?;
                        if opts.force == Some(inst.kind) {
                            forced_done
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(inst.key.clone());
                        }
                        say(
                            mp,
                            opts,
                            format!(
                                "ran {:<8} {} in {:>6.1}s  ({})",
                                inst.kind.name(),
                                &inst.key[..12],
                                m.wall_s,
                                plan.run.label
                            ),
                        );
                        // What the stage wants the user to see (e.g. generate: each file's
                        // rows joined, held out, unmatched and unparsed).
                        for note in m.metrics["notes"].as_array().into_iter().flatten() {
                            if let Some(n) = note.as_str() {
                                say(mp, opts, format!("  {} {n}", inst.kind.name()));
                            }
                        }
                        out.executed.push(inst.kind);
                        m
                    }
                }
            }
        };
        cache.record_slot(&slot(spec, &plan.run, inst.kind), &inst.doc)?;
        out.dirs.insert(inst.kind, cache.entry_dir(&inst.doc));
        out.manifests.insert(inst.kind, manifest);
    }
    Ok(out)
}

/// A status line: above the progress bars on a terminal, plain stderr otherwise.
fn say(mp: &MultiProgress, opts: &ExecOptions, line: String) {
    if opts.progress {
        let _ = mp.println(line);
    } else {
        eprintln!("{line}");
    }
}

/// The outcome of every run from the cache alone (nothing executes): an error for each run
/// that is not complete. Used by the Slurm collect job.
pub fn collect(cache: &Cache, plans: &[RunPlan]) -> Vec<Result<RunOutcome>> {
    plans
        .iter()
        .map(|p| {
            let mut out = RunOutcome {
                run: p.run.clone(),
                manifests: BTreeMap::new(),
                executed: vec![],
                dirs: BTreeMap::new(),
            };
            for inst in &p.stages {
                match cache.lookup(&inst.doc) {
                    Lookup::Fresh(m) => {
                        out.dirs.insert(inst.kind, cache.entry_dir(&inst.doc));
                        out.manifests.insert(inst.kind, *m);
                    }
                    _ => {
                        return Err(Error::run(format!(
                            "stage {} is not in the cache",
                            inst.kind.name()
                        )));
                    }
                }
            }
            Ok(out)
        })
        .collect()
}
