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
//!
//! # Values in job scripts
//!
//! Everything that reaches Slurm comes from the user (the spec, `--set`, the environment, paths
//! of the working directory, spec, cache, data root and morsd binary), so none of it is ever
//! read by a shell or by sbatch's `#SBATCH` parser as anything but data:
//! - The sbatch options (`--job-name`, `--chdir`, `--output`, `--cpus-per-task`, `--partition`,
//!   `--time`, `--gres`, `--array`, `--dependency`) go on sbatch's command line, one argument
//!   each (`Command::arg`, no shell), not into `#SBATCH` lines: a directive ends at a newline, so
//!   a path with a newline in it would end the comment and start a shell line, and sbatch's
//!   directive reader has quoting rules of its own (a backslash escapes even inside quotes). So
//!   the scripts have no `#SBATCH` lines, and no comment in them carries a value.
//! - In the script body every `{{ … }}` goes through the renderer's formatter, which
//!   shell-quotes it (single quotes, `'\''` for a quote; a newline is literal inside them):
//!   there is no way to write a value raw, even by mistake (a list or an undefined variable is
//!   an error). The template's own text (`${SLURM_ARRAY_TASK_ID}`, `$code`) is the only code.
//! - The partition and time limit are checked against Slurm's syntax before anything is
//!   submitted — `executor.partition` / `--partition`: names of letters, digits, `_ - .`, comma
//!   separated; `executor.time` / `--time`: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
//!   `D-HH:MM:SS`, `INFINITE`, `UNLIMITED` — and refused as user errors (exit 2); the experiment
//!   name is checked at spec load ([`crate::spec::resolve::check_name`]).
//! - Paths must be UTF-8 (a script is text; a lossy conversion would name another file), and the
//!   cache path may not contain a backslash, since Slurm drops every backslash from an `--output`
//!   path; a `%` in it is doubled there so that Slurm does not expand it.
//!
//! `MORSD_SBATCH` names the sbatch program (default: `sbatch` on `PATH`), for a site's wrapper
//! or for a stub that records the arguments and runs the scripts (`tests/slurm_quoting.rs`).

use crate::cache::Cache;
use crate::error::{Error, IoContext, Result};
use crate::pipeline::{self, Status};
use crate::resolve;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Executor settings (`--partition`, `--time`, `--gpus-per-run`, or `[executor]`).
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// Partition, or a comma-separated list (checked: letters, digits, `_ - .`).
    pub partition: Option<String>,
    /// Time limit per job (checked: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`).
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

/// Every job id of a spec's submissions (only well-formed ones reach squeue and scancel, so
/// an edited `submissions.json` cannot smuggle in an option such as `--user=...`).
fn job_ids(subs: &[Submission]) -> Vec<String> {
    subs.iter()
        .flat_map(|s| s.shared.iter().chain(&s.array).chain(&s.collect).cloned())
        .filter(|id| is_job_id(id))
        .collect()
}

/// A Slurm job id as `sbatch --parsable` prints it: decimal digits.
fn is_job_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
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

/// `s` as one shell word: unchanged if it is made of characters no shell acts on (and holds no
/// `=`, which would make a first word an assignment), else in single quotes.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).at(p)
}

/// The formatter of the job template: every `{{ … }}` becomes one shell word.
fn shell_formatter(
    out: &mut minijinja::Output,
    _: &minijinja::State,
    v: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    let word = match v.kind() {
        ValueKind::String => shell_quote(v.as_str().unwrap_or_default()),
        ValueKind::Number | ValueKind::Bool => shell_quote(&v.to_string()),
        k => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("a {k} cannot go into a job script as a value"),
            ));
        }
    };
    Ok(out.write_str(&word)?)
}

/// One job script's text (see the module docs on quoting). `argv` is the command; `task` names
/// the exit marker (array tasks use `run-$SLURM_ARRAY_TASK_ID` and append `--run-index`).
fn render(
    task: &str,
    argv: &[String],
    env: &[(String, String)],
    marker_dir: &str,
    array: bool,
) -> Result<String> {
    let mut jinja = minijinja::Environment::new();
    jinja.set_formatter(shell_formatter);
    jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    jinja.set_keep_trailing_newline(true);
    jinja
        .render_str(
            include_str!("../templates/slurm/job.sh.jinja"),
            minijinja::context! { task, argv, env, marker_dir, array },
        )
        .map_err(|e| Error::run(format!("slurm job template: {e:#}")))
}

/// The sbatch program: `MORSD_SBATCH`, else `sbatch` on `PATH`.
fn sbatch_program() -> std::ffi::OsString {
    std::env::var_os("MORSD_SBATCH")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sbatch".into())
}

/// Submits `script` with `args` (no shell: each is one argument); returns the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let program = sbatch_program();
    let out = Command::new(&program)
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| {
            Error::run(format!(
                "{}: {e} (is Slurm installed?)",
                Path::new(&program).display()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::run(format!(
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !is_job_id(&id) {
        return Err(Error::run(format!(
            "sbatch printed no job id (expected `ID` or `ID;CLUSTER`): {:?}",
            stdout.trim()
        )));
    }
    Ok(id)
}

/// A Slurm partition, or a comma-separated list of them: ASCII letters, digits, `_ - .`.
fn check_partition(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() {
        return Err("must not be empty (leave it unset for the cluster's default)".into());
    }
    for name in p.split(',') {
        if name.is_empty() {
            return Err(format!(
                "{p:?} has an empty name in its comma-separated list"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(format!(
                "{p:?}: character {c:?} is not allowed in a partition name \
                 (allowed: A-Z a-z 0-9 _ - . and commas between names)"
            ));
        }
    }
    Ok(())
}

/// A Slurm time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS` (decimal
/// numbers), `INFINITE` or `UNLIMITED`.
fn check_time(t: &str) -> std::result::Result<(), String> {
    let num = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = t.eq_ignore_ascii_case("infinite") || t.eq_ignore_ascii_case("unlimited") || {
        let (days, rest) = match t.split_once('-') {
            Some((d, r)) => (Some(d), r),
            None => (None, t),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        days.is_none_or(num) && parts.len() <= 3 && parts.iter().all(|p| num(p))
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{t:?} is not a Slurm time limit (use MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, \
             D-HH:MM:SS, INFINITE or UNLIMITED)"
        ))
    }
}

/// Checks the partition and time limit, naming where a bad one came from: the spec's
/// `[executor]` (or a `--set`/`MORSD_EXECUTOR__*` override of it) or the command-line flag.
fn check_options(spec_path: &Path, spec: &crate::run::LoadedSpec, o: &SlurmOptions) -> Result<()> {
    type Check = fn(&str) -> std::result::Result<(), String>;
    let ex = spec.runs.first().map(|r| &r.spec.executor);
    let one = |key: &str,
               flag: &str,
               value: &Option<String>,
               spec_value: Option<&Option<String>>,
               check: Check| {
        let Some(v) = value else { return Ok(()) };
        check(v).map_err(|message| {
            if spec_value == Some(value) {
                Error::SpecField {
                    file: spec_path.to_path_buf(),
                    key: key.into(),
                    message,
                }
            } else {
                Error::Input {
                    path: spec_path.to_path_buf(),
                    message: format!("{flag}: {message}"),
                }
            }
        })
    };
    one(
        "executor.partition",
        "--partition",
        &o.partition,
        ex.map(|e| &e.partition),
        check_partition,
    )?;
    one(
        "executor.time",
        "--time",
        &o.time,
        ex.map(|e| &e.time),
        check_time,
    )
}

/// `p` as text for a job script, or a user error naming `what` (the script cannot carry it).
fn utf8(p: &Path, what: &str) -> Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| Error::Input {
        path: p.to_path_buf(),
        message: format!("{what} is not valid UTF-8, so a Slurm job script cannot name it"),
    })
}

struct Ctx {
    /// The spec, absolute.
    spec_path: String,
    sets: Vec<String>,
    name: String,
    /// `<cache>/slurm/<name>`, absolute.
    dir: PathBuf,
    /// `dir/logs` as an `--output` pattern (`%` doubled).
    logs: String,
    /// `dir/markers`.
    markers: String,
    workdir: String,
    env: Vec<(String, String)>,
    exe: String,
    /// sbatch options every job gets (partition, time, CPUs, GPUs).
    options: Vec<String>,
}

impl Ctx {
    /// Writes job `job`'s script; returns it with the sbatch arguments it is submitted with.
    fn script(&self, job: &str, extra: &[&str], array: bool) -> Result<(PathBuf, Vec<String>)> {
        let mut argv = vec![self.exe.clone(), "run".into(), self.spec_path.clone()];
        for s in &self.sets {
            argv.push("--set".into());
            argv.push(s.clone());
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).at(&logs)?;
        let job_name = format!("morsd-{}-{job}", self.name);
        let pattern = if array { "%A_%a" } else { "%j" };
        let mut args = vec![
            format!("--job-name={job_name}"),
            format!("--chdir={}", self.workdir),
            format!("--output={}/{job}-{pattern}.log", self.logs),
        ];
        args.extend(self.options.iter().cloned());
        let text = render(&job_name, &argv, &self.env, &self.markers, array)?;
        let path = self.dir.join(format!("{job}.sh"));
        std::fs::write(&path, text).at(&path)?;
        Ok((path, args))
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
    let spec = resolve::load(spec_path, sets)?;
    // The options go onto sbatch's command line: checked before anything else happens.
    check_options(spec_path, &spec, o)?;
    let plans = pipeline::plan(&spec)?;
    let (seen, status) = observe(
        || Seen::read(cache, &spec.name, plans.len()),
        || pipeline::status(cache, &spec, &plans),
    );
    // Runs Slurm is still working on are not resubmitted.
    let busy: HashSet<usize> = states_of(&seen, &labels(&plans), &status)
        .iter()
        .enumerate()
        .filter(|(_, (_, st))| st.starts_with("queued") || st.starts_with("running"))
        .map(|(i, _)| i)
        .collect();
    let missing: Vec<usize> = (0..plans.len())
        .filter(|&i| !busy.contains(&i) && status[i].iter().any(|s| *s != Status::Fresh))
        .collect();
    let dir = abs(&dir_of(cache, &spec.name))?;
    // Every path and value that goes into the scripts: text, and expressible to Slurm.
    let cache_root = utf8(&abs(cache.root())?, "the cache path (MORSD_CACHE)")?;
    if cache_root.contains('\\') {
        return Err(Error::Input {
            path: cache_root.into(),
            message: "the cache path (MORSD_CACHE) contains a backslash, which Slurm removes \
                      from --output paths; use a cache path without one"
                .into(),
        });
    }
    let mut env = vec![("MORSD_CACHE".to_string(), cache_root)];
    for k in ["MORSD_DATA", "MORSD_DEVICE", "MORSD_OPENAI_BASE_URL"] {
        if let Some(v) = std::env::var_os(k) {
            let v = if k == "MORSD_DATA" {
                utf8(&abs(Path::new(&v))?, k)?
            } else {
                utf8(Path::new(&v), k)?
            };
            env.push((k.into(), v));
        }
    }
    let mut options = vec![format!("--cpus-per-task={}", o.cpus_per_run.max(1))];
    if let Some(p) = &o.partition {
        options.push(format!("--partition={p}"));
    }
    if let Some(t) = &o.time {
        options.push(format!("--time={t}"));
    }
    if o.gpus_per_run > 0 {
        options.push(format!("--gres=gpu:{}", o.gpus_per_run));
    }
    let ctx = Ctx {
        spec_path: utf8(&abs(spec_path)?, "the spec path")?,
        sets: sets.to_vec(),
        name: spec.name.clone(),
        logs: utf8(&dir.join("logs"), "the cache path (MORSD_CACHE)")?.replace('%', "%%"),
        markers: utf8(&dir.join("markers"), "the cache path (MORSD_CACHE)")?,
        dir: dir.clone(),
        workdir: utf8(
            &std::env::current_dir().at(".")?,
            "the working directory (the jobs' --chdir)",
        )?,
        env,
        exe: utf8(
            &std::env::current_exe().at("morsd")?,
            "the morsd binary's path",
        )?,
        options,
    };
    std::fs::create_dir_all(dir.join("markers")).at(&dir)?;
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
                let (script, args) = ctx.script(
                    &format!("shared-{}", &plans[i].stages[1].key[..8]),
                    &["--run-index", &i.to_string(), "--until", "score"],
                    false,
                )?;
                let id = sbatch(&args, &script)?;
                out.push_str(&format!(
                    "submitted shared generate+score job {id} (run {i})\n"
                ));
                sub.shared.push(id);
            }
        }
        // 3. The per-run stages as one array job after them.
        let (script, mut args) = ctx.script("runs", &[], true)?;
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
        let id = sbatch(&args, &script)?;
        out.push_str(&format!("submitted array job {id} for runs {missing:?}\n"));
        sub.array = Some(id.clone());
        // 4. Collect the results folder once the array has finished (whatever its outcome).
        let (script, mut args) = ctx.script("collect", &["--collect"], false)?;
        args.push(format!("--dependency=afterany:{id}"));
        let cid = sbatch(&args, &script)?;
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
    let spec = resolve::load(spec_path, sets)?;
    let plans = pipeline::plan(&spec)?;
    let (seen, status) = observe(
        || Seen::read(cache, &spec.name, plans.len()),
        || pipeline::status(cache, &spec, &plans),
    );
    Ok(states_of(&seen, &labels(&plans), &status))
}

fn labels(plans: &[pipeline::RunPlan]) -> Vec<&str> {
    plans.iter().map(|p| p.run.label.as_str()).collect()
}

/// Reads Slurm and the markers (`seen`), then the cache (`status`): in that order (see [`Seen`]).
fn observe<S>(seen: impl FnOnce() -> Seen, status: impl FnOnce() -> S) -> (Seen, S) {
    let seen = seen();
    (seen, status())
}

/// What Slurm and the exit markers say, read *before* the cache's status. A task publishes its
/// cache entries, exits, and only then leaves its marker and leaves Slurm's running states; so
/// read in this order, a marker or a finished state always comes with the entries it built.
/// Read the other way round, a task that finished between the two reads showed as
/// `failed (exit 0)`: its entries were missing when the cache was read, its marker present
/// when the markers were.
struct Seen {
    subs: Vec<Submission>,
    states: BTreeMap<String, String>,
    /// Each run's exit marker, where there is one.
    markers: Vec<Option<i32>>,
}

impl Seen {
    fn read(cache: &Cache, name: &str, runs: usize) -> Seen {
        let subs = records(cache, name);
        let dir = dir_of(cache, name);
        let states = slurm_states(&job_ids(&subs));
        let markers = (0..runs)
            .map(|i| {
                std::fs::read_to_string(dir.join("markers").join(format!("run-{i}.exit")))
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok())
            })
            .collect();
        Seen {
            subs,
            states,
            markers,
        }
    }
}

/// Each run's state, from the cache status of its stages, Slurm and the exit markers.
fn states_of(seen: &Seen, labels: &[&str], status: &[Vec<Status>]) -> Vec<(String, String)> {
    let (subs, states) = (&seen.subs, &seen.states);
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
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
            let marker = seen.markers.get(i).copied().flatten();
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
                        0 => "but its cache entries are gone; resubmit",
                        _ => "see the log",
                    }
                ),
                (Some(s), None) => format!("failed ({s})"),
                (None, None) => "failed (no exit record; resubmit)".into(),
            }
        } else {
            "not submitted".into()
        };
        out.push((label.to_string(), state));
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
    let spec = resolve::load(spec_path, sets)?;
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
    use super::*;

    /// A run's array task finishes (publishes its entries, exits 0, leaves its marker) between
    /// `morsd status`'s two reads: whichever read comes first sees it running, the second sees
    /// it finished. The state must be `running` or `done`, never `failed (exit 0)`.
    #[test]
    fn a_task_finishing_between_the_reads_is_never_failed() {
        use std::cell::Cell;
        let finished = Cell::new(false);
        let subs = vec![Submission {
            shared: vec![],
            array: Some("7".into()),
            indices: vec![0],
            collect: None,
        }];
        let seen = || {
            let done = finished.replace(true);
            let state = if done { "COMPLETED" } else { "RUNNING" };
            Seen {
                subs: subs.clone(),
                states: BTreeMap::from([("7_0".to_string(), state.to_string())]),
                markers: vec![done.then_some(0)],
            }
        };
        let status = || {
            let done = finished.replace(true);
            vec![vec![if done {
                Status::Fresh
            } else {
                Status::Stale("no cache entry".into())
            }]]
        };
        let (seen, status) = observe(seen, status);
        let st = states_of(&seen, &["run"], &status);
        assert_eq!(st[0].1, "done", "{st:?}");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b.toml"), "/a/b.toml");
        assert_eq!(shell_quote("x y"), "'x y'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            shell_quote("select.strategy=\"morsd\""),
            "'select.strategy=\"morsd\"'"
        );
        assert_eq!(shell_quote("a=b"), "'a=b'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn sbatch_values_are_checked() {
        for p in ["debug", "gpu,debug", "a.b_c-D9", "x"] {
            assert_eq!(check_partition(p), Ok(()), "{p}");
        }
        for p in [
            "",
            "a b",
            "gpu,",
            ",gpu",
            "gpu;x",
            "gpu\n#SBATCH",
            "g$(x)",
            "g`x`",
            "g'",
            "é",
        ] {
            assert!(check_partition(p).is_err(), "{p:?}");
        }
        for t in [
            "30",
            "30:00",
            "01:30:00",
            "2-12",
            "2-12:30",
            "2-12:30:15",
            "INFINITE",
            "unlimited",
        ] {
            assert_eq!(check_time(t), Ok(()), "{t}");
        }
        for t in [
            "",
            "1:2:3:4",
            "1-",
            "-1",
            "1-2-3",
            "1:",
            ":1",
            "1h",
            "1 ",
            "1\n",
            "1;x",
            "0x1",
            "1.5",
            "1-1:1:1:1",
        ] {
            assert!(check_time(t).is_err(), "{t:?}");
        }
        assert!(check_time("25 hours").unwrap_err().contains("D-HH:MM:SS"));
        assert!(check_partition("a b").unwrap_err().contains("' '"));
        assert!(is_job_id("4242") && !is_job_id("") && !is_job_id("--user=x"));
        assert!(!is_job_id("12_3") && !is_job_id("1 2"));
    }

    /// Hostile values in every slot of a rendered script: bash parses it and, run, it hands the
    /// command and the environment exactly those bytes and runs nothing else.
    #[test]
    fn rendered_scripts_run_exactly_the_intended_command() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_str().unwrap().to_string();
        let hostile = "$(touch PWNED) `touch PWNED` ;touch PWNED; &touch PWNED& |touch PWNED| \
                       'sq' \"dq\" ${IFS} * ~ \\ %j\n touch PWNED #\r\t=";
        let dir = format!("{root}/{}", hostile.replace('/', ""));
        std::fs::create_dir_all(&dir).unwrap();
        let stub = format!("{dir}/morsd");
        std::fs::write(
            &stub,
            format!("#!/bin/bash\nprintf '%s\\0' \"$@\" \"$HOSTILE\" > {root}/argv\nexit 3\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let argv: Vec<String> = [stub.as_str(), "run", hostile, "--set", hostile, ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let env = vec![("HOSTILE".to_string(), hostile.to_string())];
        let markers = format!("{dir}/markers");
        for array in [false, true] {
            let text = render("morsd-x-collect", &argv, &env, &markers, array).unwrap();
            assert!(!text.lines().any(|l| l.starts_with("#SBATCH")), "{text}");
            assert!(text.ends_with("exit \"$code\"\n"), "{text}");
            let script = format!("{root}/job.sh");
            std::fs::write(&script, &text).unwrap();
            let n = Command::new("bash")
                .arg("-n")
                .arg(&script)
                .status()
                .unwrap();
            assert!(n.success(), "{text}");
            let mut c = Command::new("bash");
            c.arg(&script).current_dir(&root).env_clear();
            c.env("PATH", std::env::var_os("PATH").unwrap());
            if array {
                c.env("SLURM_ARRAY_TASK_ID", "4");
            }
            assert_eq!(c.status().unwrap().code(), Some(3), "{text}");
            let got = std::fs::read(format!("{root}/argv")).unwrap();
            let mut want: Vec<&str> = argv[1..].iter().map(|s| s.as_str()).collect();
            if array {
                want.extend(["--run-index", "4"]);
            }
            want.push(hostile);
            let want: Vec<u8> = want
                .iter()
                .flat_map(|a| [a.as_bytes(), &b"\0"[..]].concat())
                .collect();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{text}"
            );
            let marker = if array { "run-4" } else { "morsd-x-collect" };
            let m = std::fs::read_to_string(format!("{markers}/{marker}.exit")).unwrap();
            assert_eq!(m, "3\n");
            let pwned: Vec<_> = walkdir::WalkDir::new(&root)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name() == "PWNED")
                .collect();
            assert!(pwned.is_empty(), "{pwned:?}\n{text}");
        }
        // No way to put a list or an undefined value in raw.
        let mut jinja = minijinja::Environment::new();
        jinja.set_formatter(shell_formatter);
        assert!(
            jinja
                .render_str("{{ x }}", minijinja::context! { x => vec!["a"] })
                .is_err()
        );
        jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        assert!(jinja.render_str("{{ y }}", minijinja::context! {}).is_err());
    }
}
