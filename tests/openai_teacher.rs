//! The `openai` teacher against a real OpenAI-compatible server (llama-cpp-python serving
//! SmolLM2-135M-Instruct on 127.0.0.1), through a fault-injecting proxy: dropped connections,
//! delays, 429 with Retry-After, 500, truncated bodies; a kill-and-resume run that repeats no
//! received request; a 401 that stops the stage naming the question; the API key nowhere on disk.
//! And servers that misbehave worse (canned by the proxy itself): endless or enormous bodies, a
//! body trickling one byte per second, invalid UTF-8, more choices than asked for, a
//! `Retry-After: NaN` — each a clear per-request error (exit 1, no panic, bounded time and
//! memory) or ignored, never losing what the request log already holds. The proxy is
//! `common/proxy.rs`; the answer stage's own tests are `teacher_answers.rs`.
//!
//! Needs `scripts/setup-llama.sh` (the `just test` recipe runs it): MORSD_LLAMA_PYTHON and
//! MORSD_SMOLLM2_GGUF, or their default places under $HOME/.cache/morsd-llama.

mod common;
use common::llama::Server;
use common::proxy::{Fault, Proxy, kill_generate_when};
use common::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn spec(proxy_port: u16, extra: &str) -> String {
    format!(
        r#"
[experiment]
name = "tiny"
[data]
task = "arithmetic"
train = 4
validation = 4
test = 4
[teacher]
kind = "openai"
base_url = "http://127.0.0.1:{proxy_port}/v1"
model = "smollm2-135m"
samples = 2
max_tokens = 48
concurrency = 2
max_retries = 8
backoff_s = 0.05
timeout_s = 60
answer_stage = "never"
{extra}
[student]
d_model = 32
layers = 1
heads = 2
vocab_size = 320
[score]
warmup_steps = 2
"#
    )
}

#[test]
fn sampling_survives_faults_and_keeps_every_sample() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    proxy.faults.lock().unwrap().extend([
        Fault::Drop,
        Fault::TooMany,
        Fault::Internal,
        Fault::Truncate,
        Fault::Delay,
        Fault::Drop,
    ]);
    // With the answer stage: every fault may hit a rationale or an answer request.
    let p = Project::new(
        &spec(proxy.port, "api_key_env = \"MORSD_TEST_API_KEY\"")
            .replace("answer_stage = \"never\"", "answer_stage = \"always\""),
    );
    let secret = "sk-test-DO-NOT-LEAK-4242";
    // `morsd run SPEC --until score` with the API key in the environment only.
    let run_until_score = || {
        p.cmd()
            .args(["run", p.spec().to_str().unwrap(), "--until", "score"])
            .env("MORSD_TEST_API_KEY", secret)
            .output()
            .unwrap()
    };
    let o = run_until_score();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // 1. Every sample is there, with its request record: 8 rationales, 8 answer requests.
    let dir = p.entry("generate");
    let requests: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("requests.json")).unwrap()).unwrap();
    assert_eq!(requests.len(), 16);
    assert_eq!(requests.iter().filter(|r| r["stage"] == 2).count(), 8);
    let seeds: std::collections::BTreeSet<u64> = requests
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds.len(), 2, "two distinct seeds per question");
    assert!(requests.iter().all(|r| r["completion_tokens"].as_u64().unwrap() > 0 && r["finish_reason"].is_string()));
    let rationales: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("rationales.json")).unwrap()).unwrap();
    assert_eq!(rationales.len(), 8);
    // 2. The retries show in the output (5 faults that need a retry; the delay does not).
    let retries: usize = out
        .split(" retries")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retries >= 5, "{out}");
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 16);
    // 3. The key went to the server and nowhere else.
    assert!(
        proxy
            .auth
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.ends_with(secret))
            && !proxy.auth.lock().unwrap().is_empty()
    );
    assert!(!out.contains(secret));
    for e in walkdir::WalkDir::new(p.path())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let bytes = std::fs::read(e.path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "API key found in {}",
            e.path().display()
        );
    }
    // 4. A second run needs no server at all.
    drop(server);
    let o = run_until_score();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn killed_and_resumed_sampling_repeats_no_received_request() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let p = Project::new(
        &spec(proxy.port, "")
            .replace("train = 4", "train = 8")
            .replace("max_tokens = 48", "max_tokens = 96"),
    );
    let log = p.path().join("cache/requests/smollm2-135m.jsonl");
    // 1. Start, kill once a few completions are in the log.
    kill_generate_when(
        &p,
        &log,
        |s| s.lines().count() >= 4,
        Duration::from_secs(240),
    );
    let done = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    assert!(
        (4..16).contains(&done),
        "killed with {done} of 16 samples in the log"
    );
    // 2. Resume: exactly the missing requests reach the server (once the killed run's
    //    in-flight requests have drained from the proxy).
    proxy.drain();
    proxy.forwarded.store(0, Ordering::SeqCst);
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--until", "generate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        16 - done,
        "{}",
        text(&o)
    );
    let requests: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(p.entry("generate").join("requests.json")).unwrap())
            .unwrap();
    assert_eq!(requests.len(), 16);
}

#[test]
fn unauthorized_stops_the_stage_naming_the_question() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    *proxy.always.lock().unwrap() = Some(Fault::Unauthorized);
    let p = Project::new(&spec(proxy.port, ""));
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--until", "generate"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("401") && out.contains("question train-"),
        "{out}"
    );
    // And persistent 5xx fails after max_retries with a summary.
    *proxy.always.lock().unwrap() = Some(Fault::Internal);
    let o = p.morsd(&[
        "run",
        p.spec().to_str().unwrap(),
        "--until",
        "generate",
        "--set",
        "teacher.max_retries=2",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("requests failed after 2 attempts"), "{out}");
}

#[test]
fn use_n_falls_back_to_single_requests_when_the_server_returns_one_choice() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let p = Project::new(&spec(proxy.port, "use_n = true"));
    let o = p.morsd(&["run", p.spec().to_str().unwrap(), "--until", "generate"]);
    assert!(o.status.success(), "{}", text(&o));
    // llama.cpp ignores n: one n-request per question brings one sample, the other is asked alone.
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 8);
    let requests: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(p.entry("generate").join("requests.json")).unwrap())
            .unwrap();
    assert_eq!(requests.len(), 8);
    assert!(
        requests
            .iter()
            .all(|r| !r["text"].as_str().unwrap().is_empty())
    );
}

/// What a bounded run of `morsd` did.
struct Watched {
    code: Option<i32>,
    out: String,
    elapsed: Duration,
    /// Peak resident memory seen (VmHWM), KiB.
    peak_kib: u64,
}

/// Runs `morsd ARGS` in `p`, killing it past `limit` or past 1 GiB resident (either fails the
/// test): a server fault must end the run by itself, in bounded time and memory.
fn run_watched(p: &Project, args: &[String], limit: Duration) -> Watched {
    let (out_path, err_path) = (p.path().join("stdout.txt"), p.path().join("stderr.txt"));
    let mut child = p
        .cmd()
        .args(args)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let t = Instant::now();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if t.elapsed() > limit || peak_kib > 1 << 20 {
            child.kill().unwrap();
            let _ = child.wait();
            panic!(
                "morsd still running after {:?} with {peak_kib} KiB resident: {}{}",
                t.elapsed(),
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!(
        "morsd {args:?}: {status} after {:?}, peak {peak_kib} KiB resident",
        t.elapsed()
    );
    Watched {
        code: status.code(),
        out: format!(
            "{}{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        ),
        elapsed: t.elapsed(),
        peak_kib,
    }
}

/// A run that failed cleanly: exit status 1 (not a signal, not a panic's 101).
fn assert_clean_failure(w: &Watched) {
    assert_eq!(w.code, Some(1), "{}", w.out);
    assert!(!w.out.contains("panicked"), "{}", w.out);
}

fn generate(p: &Project) -> Vec<String> {
    ["run", p.spec().to_str().unwrap(), "--until", "generate"]
        .map(String::from)
        .to_vec()
}

/// The lines of the durable request log.
fn logged(p: &Project) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p.path().join("cache/requests/smollm2-135m.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn an_endless_body_fails_at_the_cap_in_bounded_memory() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::Endless);
    let p = Project::new(
        &spec(proxy.port, "max_body_bytes = 65536")
            .replace("max_retries = 8", "max_retries = 2")
            .replace("timeout_s = 60", "timeout_s = 30"),
    );
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_clean_failure(&w);
    assert!(
        w.out
            .contains("response body over 65536 bytes (teacher.max_body_bytes)"),
        "{}",
        w.out
    );
    assert!(
        w.out.contains("requests failed after 2 attempts"),
        "{}",
        w.out
    );
    // The cap ended every attempt, not the 30 s timeout; what was read stayed small.
    assert!(!w.out.contains("timed out"), "{}", w.out);
    assert!(w.elapsed < Duration::from_secs(25), "{:?}", w.elapsed);
    assert!(w.peak_kib < 512 << 10, "{} KiB resident", w.peak_kib);
    assert!(logged(&p).is_empty());
}

#[test]
fn a_trickling_body_times_out_as_a_whole() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::Trickle);
    let p = Project::new(
        &spec(proxy.port, "")
            .replace("samples = 2", "samples = 1")
            .replace("concurrency = 2", "concurrency = 4")
            .replace("max_retries = 8", "max_retries = 2")
            .replace("timeout_s = 60", "timeout_s = 2"),
    );
    // 4 requests × 2 attempts of 2 s each, 4 at a time: about 4 s, though a byte arrives every
    // second of every attempt.
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_clean_failure(&w);
    assert!(
        w.out.contains("4 of 4 requests failed after 2 attempts")
            && w.out.contains("timed out after 2 s (teacher.timeout_s)"),
        "{}",
        w.out
    );
    assert!(w.elapsed < Duration::from_secs(20), "{:?}", w.elapsed);
    assert_eq!(proxy.received.load(Ordering::SeqCst), 8);
}

#[test]
fn invalid_utf8_is_a_clear_error() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::BadUtf8);
    let p = Project::new(&spec(proxy.port, "").replace("max_retries = 8", "max_retries = 2"));
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_clean_failure(&w);
    assert!(
        w.out.contains("response body is not valid UTF-8"),
        "{}",
        w.out
    );
    assert!(logged(&p).is_empty(), "nothing mangled reaches the log");
}

#[test]
fn a_nan_retry_after_is_ignored_not_a_panic() {
    let proxy = Proxy::start(0);
    proxy.faults.lock().unwrap().extend([Fault::TooManyNaN; 3]);
    *proxy.always.lock().unwrap() = Some(Fault::Answer(0));
    let p = Project::new(&spec(proxy.port, ""));
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_eq!(w.code, Some(0), "{}", w.out);
    assert_eq!(logged(&p).len(), 8);
}

#[test]
fn extra_choices_are_ignored() {
    // Asked for one choice per request, the server returns three.
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::Answer(2));
    let p = Project::new(&spec(proxy.port, ""));
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_eq!(w.code, Some(0), "{}", w.out);
    assert_eq!(proxy.received.load(Ordering::SeqCst), 8);
    let per_question = |p: &Project, samples: usize| {
        let rationales: Vec<serde_json::Value> = serde_json::from_slice(
            &std::fs::read(p.entry("generate").join("rationales.json")).unwrap(),
        )
        .unwrap();
        let mut ids = std::collections::BTreeMap::<String, Vec<String>>::new();
        for r in &rationales {
            ids.entry(r["question_id"].as_str().unwrap().into())
                .or_default()
                .push(r["id"].as_str().unwrap().into());
        }
        assert_eq!(ids.len(), 4);
        for (q, ids) in &ids {
            let want: Vec<String> = (0..samples).map(|k| format!("{q}/openai/{k}")).collect();
            assert_eq!(ids, &want);
        }
        let requests: Vec<serde_json::Value> = serde_json::from_slice(
            &std::fs::read(p.entry("generate").join("requests.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(requests.len(), 4 * samples);
        assert_eq!(logged(p).len(), 4 * samples);
    };
    per_question(&p, 2);
    // With `use_n`, asked for 4 in one request, it returns 7: 4 are kept, nothing else is sent.
    proxy.received.store(0, Ordering::SeqCst);
    *proxy.always.lock().unwrap() = Some(Fault::Answer(3));
    let p = Project::new(&spec(proxy.port, "use_n = true").replace("samples = 2", "samples = 4"));
    let w = run_watched(&p, &generate(&p), Duration::from_secs(60));
    assert_eq!(w.code, Some(0), "{}", w.out);
    assert_eq!(proxy.received.load(Ordering::SeqCst), 4);
    per_question(&p, 4);
}

#[test]
fn an_enormous_body_later_keeps_what_was_received() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    // One at a time: three good answers, then every request gets a terabyte-long body.
    proxy.faults.lock().unwrap().extend([Fault::Pass; 3]);
    *proxy.always.lock().unwrap() = Some(Fault::Huge);
    let p = Project::new(
        &spec(proxy.port, "max_body_bytes = 100000")
            .replace("concurrency = 2", "concurrency = 1")
            .replace("max_retries = 8", "max_retries = 2"),
    );
    let w = run_watched(&p, &generate(&p), Duration::from_secs(240));
    assert_clean_failure(&w);
    assert!(
        w.out.contains("5 of 8 requests failed after 2 attempts")
            && w.out
                .contains("response body over 100000 bytes (teacher.max_body_bytes)")
            && w.out.contains("3 completed requests are kept"),
        "{}",
        w.out
    );
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 3);
    assert_eq!(logged(&p).len(), 3);
    // The server recovers: only the five missing requests are sent.
    *proxy.always.lock().unwrap() = None;
    let w = run_watched(&p, &generate(&p), Duration::from_secs(240));
    assert_eq!(w.code, Some(0), "{}", w.out);
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 8);
    assert_eq!(logged(&p).len(), 8);
}

/// `experiments/openai-smoke.toml` runs whole (generate → eval) against the local SmolLM2
/// server, as its users run it: an example spec must not end in "nothing to train on".
#[test]
fn the_smoke_spec_runs_whole_against_the_local_server() {
    let server = Server::start();
    let text_of = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/openai-smoke.toml"
    ))
    .unwrap();
    let p = Project::new(&text_of);
    let o = p
        .cmd()
        .env(
            "MORSD_OPENAI_BASE_URL",
            format!("http://127.0.0.1:{}/v1", server.port),
        )
        .args(["run", p.spec().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let runs = p.runs_json("openai-smoke");
    assert_eq!(runs["runs"].as_array().map(|r| r.len()), Some(1), "{runs}");
    assert!(runs["runs"][0]["accuracy"].is_number(), "{runs}");
}
