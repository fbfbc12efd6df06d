//! The Slurm job scripts are safe for hostile values, without a Slurm: `MORSD_SBATCH` points
//! `morsd run --executor slurm` at a stub sbatch that records its arguments and keeps a copy of
//! each job script; every script then goes through `bash -n` and is really executed by bash, with
//! the morsd it calls replaced by a stub that records its argv and environment. Paths (working
//! directory, spec file, cache, data root, the morsd binary), `--set` values and environment
//! values are full of `$(…)`, backticks, quotes, newlines, `;`, `&`, `|`, `${IFS}`, globs and `%`:
//! nothing may run (no `PWNED` file), and every program must get exactly the intended bytes.
//! Bad partitions, time limits, names and paths the job script cannot carry are refused (exit 2)
//! before sbatch is called.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path component (no `/`) with everything a shell or sbatch could act on.
fn hostile(tag: &str) -> String {
    format!(
        "{tag} $(touch PWNED) `touch PWNED` x$(touch${{IFS}}PWNED) ;touch PWNED; &touch PWNED& \
         |touch PWNED| 'sq' \"dq\" %j %A %% \n touch PWNED #\r\t~ * ?"
    )
}

/// Payloads for values that may contain `/`: they point into `root` so that a run anywhere
/// would leave a file there.
fn hostile_value(root: &Path) -> String {
    let r = root.display();
    format!(
        "$(touch {r}/PWNED-a) `touch {r}/PWNED-b` ;touch {r}/PWNED-c; &touch {r}/PWNED-d& \
         'sq' \"dq\" ${{IFS}} \n touch {r}/PWNED-e #"
    )
}

/// `Command::output`, retried while exec fails with ETXTBSY: a file this test just wrote may
/// still be open for writing in a child that another test thread forked meanwhile (it inherits
/// the descriptor until its own exec), for a moment.
trait OutputRetry {
    fn output_retry(&mut self) -> Output;
}

impl OutputRetry for Command {
    fn output_retry(&mut self) -> Output {
        for _ in 0..200 {
            match self.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(25))
                }
                r => return r.unwrap(),
            }
        }
        self.output().unwrap()
    }
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn nul_split(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    assert_eq!(v.pop().as_deref(), Some(""), "NUL-terminated list");
    v
}

/// Every `PWNED*` file under `root` (directory names only contain the word in the middle).
fn pwned(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("PWNED"))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// A temp root with a stub sbatch in it; `calls()` reads what it recorded.
struct Stub {
    root: tempfile::TempDir,
}

impl Stub {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let calls = root.path().join("sbatch-calls");
        std::fs::create_dir_all(&calls).unwrap();
        write_exe(
            &root.path().join("sbatch"),
            &format!(
                "#!/bin/bash\nset -eu\nd='{}'\nn=$(( $(cat \"$d/count\" 2>/dev/null || echo 0) + 1 ))\n\
                 echo \"$n\" > \"$d/count\"\nprintf '%s\\0' \"$@\" > \"$d/args-$n\"\n\
                 cp -- \"${{@: -1}}\" \"$d/script-$n.sh\"\necho \"424$n;cluster\"\n",
                calls.display()
            ),
        );
        Stub { root }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    /// (sbatch arguments without the script, the script's copy), per call.
    fn calls(&self) -> Vec<(Vec<String>, PathBuf)> {
        let d = self.path().join("sbatch-calls");
        let n: usize = std::fs::read_to_string(d.join("count"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0);
        (1..=n)
            .map(|i| {
                let mut args = nul_split(&std::fs::read(d.join(format!("args-{i}"))).unwrap());
                args.pop();
                (args, d.join(format!("script-{i}.sh")))
            })
            .collect()
    }

    /// `morsd ARGS` in `workdir` with the stub sbatch and a cache under the root.
    fn morsd(&self, exe: &Path, workdir: &Path, args: &[&str]) -> Output {
        Command::new(exe)
            .current_dir(workdir)
            .env("MORSD_SBATCH", self.path().join("sbatch"))
            .env("MORSD_CACHE", self.path().join("cache"))
            .env_remove("MORSD_DEVICE")
            .env_remove("MORSD_DATA")
            .env_remove("MORSD_OPENAI_BASE_URL")
            .args(args)
            .output_retry()
    }
}

fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
}

#[test]
fn hostile_paths_and_values_reach_the_job_exactly_and_run_nothing() {
    let stub = Stub::new();
    let root = stub.path().to_path_buf();
    let work = root.join(hostile("work \\back"));
    let cache = root.join(hostile("cache"));
    let data = root.join(hostile("data \\back"));
    let bin = root.join(hostile("bin \\back"));
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let spec = work.join(format!("experiments/{}.toml", hostile("ti'ny")));
    std::fs::write(&spec, TINY).unwrap();
    // The morsd binary itself lives under a hostile path (its path goes into the script).
    let exe = bin.join("morsd");
    std::fs::copy(env!("CARGO_BIN_EXE_morsd"), &exe).unwrap();
    let set_output = format!("experiment.output=results/{}", hostile_value(&root));
    let set_strategy = "select.strategy=\"morsd\"".to_string();
    let device = format!("cpu{}", hostile_value(&root));
    let base_url = format!("http://127.0.0.1:9/{}", hostile_value(&root));

    let o = Command::new(&exe)
        .current_dir(&work)
        .env("MORSD_SBATCH", root.join("sbatch"))
        .env("MORSD_CACHE", &cache)
        .env("MORSD_DATA", &data)
        .env("MORSD_DEVICE", &device)
        .env("MORSD_OPENAI_BASE_URL", &base_url)
        .args([
            "run",
            spec.to_str().unwrap(),
            "--set",
            &set_output,
            "--set",
            &set_strategy,
            "--executor",
            "slurm",
            "--partition",
            "debug,gpu.a_b-c",
            "--time",
            "1-02:03:04",
            "--gpus-per-run",
            "2",
        ])
        .output_retry();
    assert!(o.status.success(), "{}", text(&o));
    assert!(pwned(&root).is_empty(), "submitting ran something");
    let calls = stub.calls();
    assert_eq!(calls.len(), 3, "shared, array, collect: {calls:?}");

    // The morsd a job runs is now a stub that records what it got and fails with 7.
    let got_argv = root.join("argv");
    let got_env = root.join("env");
    write_exe(
        &exe,
        &format!(
            "#!/bin/bash\nprintf '%s\\0' \"$@\" > '{a}'\n\
             printf '%s\\0' \"$PWD\" \"${{MORSD_CACHE-unset}}\" \"${{MORSD_DATA-unset}}\" \
             \"${{MORSD_DEVICE-unset}}\" \"${{MORSD_OPENAI_BASE_URL-unset}}\" > '{e}'\nexit 7\n",
            a = got_argv.display(),
            e = got_env.display()
        ),
    );
    let spec_s = spec.to_str().unwrap().to_string();
    let common = [
        "run".to_string(),
        spec_s,
        "--set".into(),
        set_output.clone(),
        "--set".into(),
        set_strategy.clone(),
    ];
    let logs = format!("{}/slurm/tiny/logs/", cache.display()).replace('%', "%%");
    let markers = cache.join("slurm/tiny/markers");
    // sbatch is called for the shared job, the array, then the collect job.
    let extras: [&[&str]; 3] = [
        &["--run-index", "0", "--until", "score"],
        &["--run-index", "0"],
        &["--collect"],
    ];
    for (k, (args, script)) in calls.iter().enumerate() {
        let body = std::fs::read_to_string(script).unwrap();
        let n = Command::new("bash").arg("-n").arg(script).output_retry();
        assert!(n.status.success(), "bash -n: {}\n{body}", text(&n));
        // Run it as slurmd would: in the working directory, with an array task id (only the
        // array's script reads it), nothing else inherited.
        let _ = std::fs::remove_file(&got_argv);
        let r = Command::new("bash")
            .arg(script)
            .current_dir(&work)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("SLURM_ARRAY_TASK_ID", "0")
            .output_retry();
        assert!(
            pwned(&root).is_empty(),
            "job {k} ran something: {:?}\n{body}",
            pwned(&root)
        );
        assert_eq!(r.status.code(), Some(7), "job {k}: {}\n{body}", text(&r));
        let mut want: Vec<String> = common.to_vec();
        want.extend(extras[k].iter().map(|s| s.to_string()));
        assert_eq!(
            nul_split(&std::fs::read(&got_argv).unwrap()),
            want,
            "job {k}: argv\n{body}"
        );
        assert_eq!(
            nul_split(&std::fs::read(&got_env).unwrap()),
            vec![
                work.to_str().unwrap().to_string(),
                cache.to_str().unwrap().to_string(),
                data.to_str().unwrap().to_string(),
                device.clone(),
                base_url.clone(),
            ],
            "job {k}: environment\n{body}"
        );
        // What sbatch was asked for, byte for byte, on its command line: no #SBATCH lines,
        // whose parser would read a newline in a value as the end of the directive.
        assert!(
            !body.lines().any(|l| l.starts_with("#SBATCH")),
            "no directives in the script:\n{body}"
        );
        assert_eq!(args[0], "--parsable");
        assert_eq!(
            arg(args, "--chdir"),
            Some(work.to_str().unwrap()),
            "{args:?}"
        );
        assert_eq!(arg(args, "--partition"), Some("debug,gpu.a_b-c"));
        assert_eq!(arg(args, "--time"), Some("1-02:03:04"));
        assert_eq!(arg(args, "--gres"), Some("gpu:2"));
        assert_eq!(arg(args, "--cpus-per-task"), Some("1"));
        let name = arg(args, "--job-name").unwrap().to_string();
        let output = arg(args, "--output").unwrap();
        assert!(output.starts_with(&logs), "{output:?} vs {logs:?}");
        let task = match k {
            0 => {
                assert!(name.starts_with("morsd-tiny-shared-"), "{name}");
                assert!(output.ends_with("-%j.log"), "{output}");
                name.clone()
            }
            1 => {
                assert_eq!(name, "morsd-tiny-runs");
                assert_eq!(arg(args, "--array"), Some("0"));
                assert_eq!(arg(args, "--dependency"), Some("afterok:4241"));
                assert!(output.ends_with("/runs-%A_%a.log"), "{output}");
                "run-0".into()
            }
            _ => {
                assert_eq!(name, "morsd-tiny-collect");
                assert_eq!(arg(args, "--dependency"), Some("afterany:4242"));
                name.clone()
            }
        };
        assert_eq!(
            std::fs::read_to_string(markers.join(format!("{task}.exit"))).unwrap(),
            "7\n",
            "job {k}: exit marker"
        );
    }
}

#[test]
fn bad_partitions_times_and_names_are_refused_before_sbatch() {
    let stub = Stub::new();
    let root = stub.path().to_path_buf();
    let work = root.join("work");
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_morsd"));
    let write = |name: &str, text: &str| {
        let p = work.join("experiments").join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let tiny = write("tiny.toml", TINY);
    let refused = |args: &[&str], needles: &[&str]| {
        let o = stub.morsd(exe, &work, args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
        for n in needles {
            assert!(t.contains(n), "{args:?}: expected {n:?} in: {t}");
        }
        assert!(stub.calls().is_empty(), "{args:?}: sbatch was called");
        assert!(pwned(&root).is_empty(), "{args:?}");
    };
    for p in [
        "gpu;touch PWNED",
        "gpu\n#SBATCH --wrap=touch PWNED",
        "gpu$(touch PWNED)",
        "a b",
        "gpu,",
        "",
        "gpu\r",
    ] {
        let flag = format!("--partition={p}");
        refused(
            &["run", &tiny, "--executor", "slurm", &flag],
            &["--partition"],
        );
    }
    for t in [
        "1:00:00; touch PWNED",
        "1:00:00\n#SBATCH --wrap=touch PWNED",
        "25 hours",
        "1:2:3:4",
        "1-",
        "-1",
        "",
    ] {
        let flag = format!("--time={t}");
        refused(&["run", &tiny, "--executor", "slurm", &flag], &["--time"]);
    }
    // The same from the spec's [executor] section (argv cannot carry a NUL; TOML can).
    let spec_p = write(
        "p.toml",
        &format!("{TINY}\n[executor]\npartition = \"gpu\\n#SBATCH --wrap=x\"\n"),
    );
    refused(
        &["run", &spec_p, "--executor", "slurm"],
        &["executor.partition"],
    );
    let spec_t = write(
        "t.toml",
        &format!("{TINY}\n[executor]\ntime = \"1:00$(touch PWNED)\\u0000\"\n"),
    );
    refused(&["run", &spec_t, "--executor", "slurm"], &["executor.time"]);
    // A hostile experiment name is refused at spec load, naming the character.
    let spec_n = write(
        "n.toml",
        &TINY.replace("name = \"tiny\"", "name = \"x$(touch${IFS}PWNED)\""),
    );
    refused(
        &["run", &spec_n, "--executor", "slurm"],
        &["experiment.name", "'$'"],
    );
    refused(
        &[
            "run",
            &tiny,
            "--set",
            "experiment.name=a`touch PWNED`",
            "--executor",
            "slurm",
        ],
        &["experiment.name", "'`'"],
    );
    // Every Slurm time format and partition list is accepted and passed on as given.
    for (p, t) in [
        ("debug", "30"),
        ("gpu,debug", "30:00"),
        ("a.b_c-d", "01:30:00"),
        ("debug", "2-12"),
        ("debug", "2-12:30"),
        ("debug", "2-12:30:15"),
        ("debug", "UNLIMITED"),
    ] {
        let s = Stub::new();
        let (pf, tf) = (format!("--partition={p}"), format!("--time={t}"));
        let o = s.morsd(exe, &work, &["run", &tiny, "--executor", "slurm", &pf, &tf]);
        assert!(o.status.success(), "{p} {t}: {}", text(&o));
        let calls = s.calls();
        assert_eq!(calls.len(), 3);
        for (args, _) in calls {
            assert_eq!(arg(&args, "--partition"), Some(p));
            assert_eq!(arg(&args, "--time"), Some(t));
        }
    }
}

#[test]
fn paths_a_job_script_cannot_carry_are_refused_before_sbatch() {
    use std::os::unix::ffi::OsStrExt;
    let stub = Stub::new();
    let root = stub.path().to_path_buf();
    let exe = Path::new(env!("CARGO_BIN_EXE_morsd"));
    // A cache path with a backslash: Slurm strips backslashes from --output.
    let work = root.join("work");
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    let spec = work.join("experiments/tiny.toml");
    std::fs::write(&spec, TINY).unwrap();
    let o = Command::new(exe)
        .current_dir(&work)
        .env("MORSD_SBATCH", root.join("sbatch"))
        .env("MORSD_CACHE", root.join("ca\\che"))
        .args(["run", spec.to_str().unwrap(), "--executor", "slurm"])
        .output_retry();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("MORSD_CACHE"), "{}", text(&o));
    assert!(stub.calls().is_empty());
    // A working directory that is not UTF-8 cannot be written into a script exactly.
    let odd = root.join(std::ffi::OsStr::from_bytes(b"w\xff"));
    std::fs::create_dir_all(odd.join("experiments")).unwrap();
    std::fs::write(odd.join("experiments/tiny.toml"), TINY).unwrap();
    let o = stub.morsd(
        exe,
        &odd,
        &["run", "experiments/tiny.toml", "--executor", "slurm"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("UTF-8"), "{}", text(&o));
    assert!(stub.calls().is_empty());
}
