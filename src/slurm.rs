//! The Slurm executor: hands a sweep to Slurm instead of running it here.
//!
//! `morsd run SPEC --executor slurm` submits (1) one job per distinct shared chain
//! (generate → score) that is not fresh, (2) the per-run stages of every run that is not done
//! as one `sbatch --array` job depending (`afterok`) on those, each array task running
//! `morsd run SPEC --run-index $SLURM_ARRAY_TASK_ID` against the same cache, and (3) a collect
//! job (`afterany` on the array) that writes the results folder from the cache. Job scripts come
//! from `templates/slurm/job.sh.jinja`; logs go to `<cache>/slurm/<experiment>/logs/`, and each
//! task leaves an exit-code marker beside them. Re-running the same command after failures
//! submits only what is still missing: the cache, not Slurm, says what is done.
//!
//! The cache on a shared filesystem needs no cross-host lock for correctness: entries are
//! content-addressed, built in a private temp folder and published by an atomic rename, so two
//! hosts that build the same key at once publish identical content and a node that dies
//! mid-write leaves only a temp folder (never an entry). The per-key flock is an optimisation
//! that avoids duplicate work where the filesystem supports it (NFSv4, Lustre, local disks).

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::pipeline::{self, Status};
use crate::spec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Executor settings (`--partition`, `--time`, `--gpus-per-run`, or `[executor]`).
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// Partition.
    pub partition: Option<String>,
    /// Time limit per job (`HH:MM:SS`).
    pub time: Option<String>,
    /// GPUs per run (`--gres=gpu:N`).
    pub gpus_per_run: u32,
    /// CPUs per run.
    pub cpus_per_run: u32,
}

/// What one submission sent to Slurm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    /// Shared-chain job ids.
    pub shared: Vec<String>,
    /// The array job id.
    pub array: Option<String>,
    /// Run indices in the array.
    pub indices: Vec<usize>,
    /// The collect job id.
    pub collect: Option<String>,
}

/// Every job id of a spec's submissions.
fn job_ids(subs: &[Submission]) -> Vec<String> {
    subs.iter()
        .flat_map(|s| s.shared.iter().chain(&s.array).chain(&s.collect).cloned())
        .collect()
}

fn dir_of(cache: &Cache, name: &str) -> PathBuf {
    cache.root().join("slurm").join(name)
}

fn records(cache: &Cache, name: &str) -> Vec<Submission> {
    std::fs::read(dir_of(cache, name).join("submissions.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).at(p)
}

fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| Error::run(format!("sbatch: {e} (is Slurm installed?)")))?;
    if !out.status.success() {
        return Err(Error::run(format!(
            "sbatch {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string())
}

struct Ctx {
    spec_path: PathBuf,
    sets: Vec<String>,
    name: String,
    dir: PathBuf,
    workdir: PathBuf,
    env: Vec<(String, String)>,
    exe: PathBuf,
}

impl Ctx {
    fn script(&self, job: &str, extra: &[&str], array: bool, o: &SlurmOptions) -> Result<PathBuf> {
        let mut argv = vec![
            self.exe.display().to_string(),
            "run".into(),
            self.spec_path.display().to_string(),
        ];
        for s in &self.sets {
            argv.push("--set".into());
            argv.push(s.clone());
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let command = argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).at(&logs)?;
        let log = if array {
            logs.join(format!("{job}-%A_%a.log"))
        } else {
            logs.join(format!("{job}-%j.log"))
        };
        let env: Vec<(String, String)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), shell_quote(v)))
            .collect();
        let text = minijinja::Environment::new()
            .render_str(
                include_str!("../templates/slurm/job.sh.jinja"),
                minijinja::context! {
                    name => format!("morsd-{}-{job}", self.name), workdir => shell_quote(&self.workdir.display().to_string()),
                    log => log.display().to_string(), cpus => o.cpus_per_run.max(1), partition => o.partition, time => o.time,
                    gpus => (o.gpus_per_run > 0).then_some(o.gpus_per_run), env => env, command => command,
                    marker_dir => shell_quote(&self.dir.join("markers").display().to_string()), array => array,
                },
            )
            .map_err(|e| Error::run(format!("slurm job template: {e}")))?;
        let path = self.dir.join(format!("{job}.sh"));
        std::fs::write(&path, text).at(&path)?;
        Ok(path)
    }
}

/// `morsd run SPEC --executor slurm`: submits what is not done; returns what it submitted.
pub fn submit(
    spec_path: &Path,
    sets: &[String],
    cache: &Cache,
    o: &SlurmOptions,
) -> Result<String> {
    // 1. What is missing, per the cache.
    let spec = spec::load(spec_path, sets)?;
    let plans = pipeline::plan(&spec)?;
    let status = pipeline::status(cache, &spec, &plans);
    // Runs Slurm is still working on are not resubmitted.
    let busy: HashSet<usize> = states_of(cache, &spec.name, &plans, &status)
        .iter()
        .enumerate()
        .filter(|(_, (_, st))| st.starts_with("queued") || st.starts_with("running"))
        .map(|(i, _)| i)
        .collect();
    let missing: Vec<usize> = (0..plans.len())
        .filter(|&i| !busy.contains(&i) && status[i].iter().any(|s| *s != Status::Fresh))
        .collect();
    let dir = abs(&dir_of(cache, &spec.name))?;
    std::fs::create_dir_all(dir.join("markers")).at(&dir)?;
    let mut env = vec![(
        "MORSD_CACHE".to_string(),
        abs(cache.root())?.display().to_string(),
    )];
    for k in ["MORSD_DATA", "MORSD_DEVICE", "MORSD_OPENAI_BASE_URL"] {
        if let Ok(v) = std::env::var(k) {
            let v = if k == "MORSD_DATA" {
                abs(Path::new(&v))?.display().to_string()
            } else {
                v
            };
            env.push((k.into(), v));
        }
    }
    let ctx = Ctx {
        spec_path: abs(spec_path)?,
        sets: sets.to_vec(),
        name: spec.name.clone(),
        dir: dir.clone(),
        workdir: std::env::current_dir().at(".")?,
        env,
        exe: std::env::current_exe().at("morsd")?,
    };
    let mut out = String::new();
    let mut sub = Submission {
        shared: vec![],
        array: None,
        indices: missing.clone(),
        collect: None,
    };
    if !missing.is_empty() {
        // 2. One job per distinct shared chain that is not fresh.
        let mut seen = HashSet::new();
        for &i in &missing {
            let shared_stale = status[i][..2].iter().any(|s| *s != Status::Fresh);
            if shared_stale && seen.insert(plans[i].stages[1].key.clone()) {
                let script = ctx.script(
                    &format!("shared-{}", &plans[i].stages[1].key[..8]),
                    &["--run-index", &i.to_string(), "--until", "score"],
                    false,
                    o,
                )?;
                let id = sbatch(&[], &script)?;
                out.push_str(&format!(
                    "submitted shared generate+score job {id} (run {i})\n"
                ));
                sub.shared.push(id);
            }
        }
        // 3. The per-run stages as one array job after them.
        let mut args: Vec<String> = Vec::new();
        args.push(format!(
            "--array={}",
            missing
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
        if !sub.shared.is_empty() {
            args.push(format!("--dependency=afterok:{}", sub.shared.join(":")));
        }
        // Stale markers of the runs being resubmitted go first.
        for &i in &missing {
            let _ = std::fs::remove_file(dir.join("markers").join(format!("run-{i}.exit")));
        }
        let script = ctx.script("runs", &[], true, o)?;
        let id = sbatch(&args, &script)?;
        out.push_str(&format!("submitted array job {id} for runs {missing:?}\n"));
        sub.array = Some(id.clone());
        // 4. Collect the results folder once the array has finished (whatever its outcome).
        let script = ctx.script("collect", &["--collect"], false, o)?;
        let cid = sbatch(&[format!("--dependency=afterany:{id}")], &script)?;
        out.push_str(&format!("submitted collect job {cid}\n"));
        sub.collect = Some(cid);
        let mut all = records(cache, &spec.name);
        all.push(sub);
        let path = dir.join("submissions.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&all).map_err(Error::run)?).at(&path)?;
    } else if busy.is_empty() {
        out.push_str(&format!(
            "all {} runs are done; nothing submitted\n",
            plans.len()
        ));
    } else {
        out.push_str(&format!(
            "{} runs are still queued or running; nothing else to submit\n",
            busy.len()
        ));
    }
    out.push_str(&format!(
        "follow with: morsd status {}\n",
        spec_path.display()
    ));
    Ok(out)
}

/// Slurm's state of every job and array task id it still knows (`squeue --states=all`).
fn slurm_states(ids: &[String]) -> BTreeMap<String, String> {
    if ids.is_empty() {
        return BTreeMap::new();
    }
    let out = Command::new("squeue")
        .args([
            "--states=all",
            "-h",
            "-r",
            "-o",
            "%i %T",
            "-j",
            &ids.join(","),
        ])
        .output();
    let mut m = BTreeMap::new();
    if let Ok(o) = out {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((id, st)) = line.trim().split_once(' ') {
                m.insert(id.to_string(), st.trim().to_string());
            }
        }
    }
    m
}

/// One run's state as `morsd status` reports it.
pub fn run_states(
    spec_path: &Path,
    sets: &[String],
    cache: &Cache,
) -> Result<Vec<(String, String)>> {
    let spec = spec::load(spec_path, sets)?;
    let plans = pipeline::plan(&spec)?;
    let status = pipeline::status(cache, &spec, &plans);
    Ok(states_of(cache, &spec.name, &plans, &status))
}

/// Each run's state, from the cache status of its stages, Slurm and the exit markers.
fn states_of(
    cache: &Cache,
    name: &str,
    plans: &[pipeline::RunPlan],
    status: &[Vec<Status>],
) -> Vec<(String, String)> {
    let subs = records(cache, name);
    let dir = dir_of(cache, name);
    let states = slurm_states(&job_ids(&subs));
    let mut out = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let state = if status[i].iter().all(|s| *s == Status::Fresh) {
            "done".to_string()
        } else if let Some(sub) = subs.iter().rev().find(|s| s.indices.contains(&i)) {
            let array = sub.array.clone().unwrap_or_default();
            let task = states
                .get(&format!("{array}_{i}"))
                .or_else(|| states.get(&array))
                .cloned();
            let shared_pending = sub.shared.iter().any(|id| {
                states
                    .get(id)
                    .is_some_and(|s| s == "PENDING" || s == "RUNNING")
            });
            let marker = std::fs::read_to_string(dir.join("markers").join(format!("run-{i}.exit")))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            match (task.as_deref(), marker) {
                (Some("PENDING" | "CONFIGURING"), _) => {
                    if shared_pending {
                        "queued (waiting for generate/score)".into()
                    } else {
                        "queued".into()
                    }
                }
                (Some("RUNNING" | "COMPLETING"), _) => "running".into(),
                (_, Some(code)) => format!(
                    "failed (exit {code}: {})",
                    match code {
                        2 => "bad spec or input",
                        1 => "error while running",
                        137 | 143 => "killed",
                        _ => "see the log",
                    }
                ),
                (Some(s), None) => format!("failed ({s})"),
                (None, None) => "failed (no exit record; resubmit)".into(),
            }
        } else {
            "not submitted".into()
        };
        out.push((p.run.label.clone(), state));
    }
    out
}

/// `morsd status SPEC`.
pub fn status(spec_path: &Path, sets: &[String], cache: &Cache) -> Result<String> {
    let states = run_states(spec_path, sets, cache)?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::new();
    let w = states.iter().map(|s| s.0.len()).max().unwrap_or(0);
    for (label, st) in &states {
        out.push_str(&format!("{label:<w$}  {st}\n"));
        *counts
            .entry(st.split(' ').next().unwrap_or("").to_string())
            .or_default() += 1;
    }
    out.push_str(
        &counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push('\n');
    Ok(out)
}

/// `morsd cancel SPEC`: cancels every job of the spec's submissions.
pub fn cancel(spec_path: &Path, sets: &[String], cache: &Cache) -> Result<String> {
    let spec = spec::load(spec_path, sets)?;
    let ids = job_ids(&records(cache, &spec.name));
    if ids.is_empty() {
        return Ok("no submitted jobs\n".into());
    }
    let o = Command::new("scancel")
        .args(&ids)
        .output()
        .map_err(|e| Error::run(format!("scancel: {e}")))?;
    if !o.status.success() {
        return Err(Error::run(format!(
            "scancel: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(format!("cancelled jobs {}\n", ids.join(", ")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::shell_quote("/a/b.toml"), "/a/b.toml");
        assert_eq!(super::shell_quote("x y"), "'x y'");
        assert_eq!(super::shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            super::shell_quote("select.strategy=\"morsd\""),
            "'select.strategy=\"morsd\"'"
        );
    }
}
