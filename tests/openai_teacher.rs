//! The `openai` teacher against a real OpenAI-compatible server (llama-cpp-python serving
//! SmolLM2-135M-Instruct on 127.0.0.1), through a fault-injecting proxy: dropped connections,
//! delays, 429 with Retry-After, 500, truncated bodies; a kill-and-resume run that repeats no
//! received request; a 401 that stops the stage naming the question; the API key nowhere on disk.
//!
//! Needs `scripts/setup-llama.sh` (the `just test` recipe runs it): MORSD_LLAMA_PYTHON and
//! MORSD_SMOLLM2_GGUF, or their default places under $HOME/.cache/morsd-llama.

mod common;
use common::llama::Server;
use common::*;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Fault {
    Drop,
    Delay,
    TooMany,
    Internal,
    Truncate,
    Unauthorized,
}

/// A proxy between morsd and the server that injects the queued faults, then forwards.
struct Proxy {
    port: u16,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    always: Arc<Mutex<Option<Fault>>>,
    forwarded: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    auth: Arc<Mutex<Vec<String>>>,
}

fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
    }
}

fn forward(req: &[u8], upstream: u16) -> Vec<u8> {
    let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&req[..end]).to_string();
    let mut new_head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_lowercase().starts_with("connection:"))
        .collect();
    new_head.push("Connection: close");
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    up.write_all(format!("{}\r\n\r\n", new_head.join("\r\n")).as_bytes())
        .unwrap();
    up.write_all(&req[end + 4..]).unwrap();
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).unwrap();
    resp
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            faults: Arc::default(),
            always: Arc::default(),
            forwarded: Arc::default(),
            active: Arc::default(),
            auth: Arc::default(),
        };
        let (faults, always, forwarded, auth) = (
            p.faults.clone(),
            p.always.clone(),
            p.forwarded.clone(),
            p.auth.clone(),
        );
        let active = p.active.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let (faults, always, forwarded, auth, active) = (
                    faults.clone(),
                    always.clone(),
                    forwarded.clone(),
                    auth.clone(),
                    active.clone(),
                );
                active.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    struct Done(Arc<AtomicUsize>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _done = Done(active);
                    let Some(req) = read_request(&mut s) else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&req).to_string();
                    if let Some(a) = head
                        .lines()
                        .find(|l| l.to_lowercase().starts_with("authorization:"))
                    {
                        auth.lock().unwrap().push(a.to_string());
                    }
                    let fault = always
                        .lock()
                        .unwrap()
                        .or_else(|| faults.lock().unwrap().pop_front());
                    let reply = |s: &mut TcpStream, status: &str, extra: &str, body: &str| {
                        let _ = s.write_all(format!("HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
                    };
                    match fault {
                        Some(Fault::Drop) => drop(s),
                        Some(Fault::TooMany) => reply(
                            &mut s,
                            "429 Too Many Requests",
                            "Retry-After: 1\r\n",
                            "{\"error\":\"slow down\"}",
                        ),
                        Some(Fault::Internal) => reply(
                            &mut s,
                            "500 Internal Server Error",
                            "",
                            "{\"error\":\"boom\"}",
                        ),
                        Some(Fault::Unauthorized) => reply(
                            &mut s,
                            "401 Unauthorized",
                            "",
                            "{\"error\":{\"message\":\"invalid api key\"}}",
                        ),
                        Some(Fault::Truncate) => {
                            let resp = forward(&req, upstream);
                            let cut = resp.len()
                                - (resp.len()
                                    - resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap())
                                    / 2;
                            let _ = s.write_all(&resp[..cut]);
                        }
                        Some(Fault::Delay) | None => {
                            if matches!(fault, Some(Fault::Delay)) {
                                std::thread::sleep(Duration::from_millis(1500));
                            }
                            let resp = forward(&req, upstream);
                            if resp.starts_with(b"HTTP/1.1 200") {
                                forwarded.fetch_add(1, Ordering::SeqCst);
                            }
                            let _ = s.write_all(&resp);
                        }
                    }
                });
            }
        });
        p
    }
}

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

fn generate_entry(p: &Project) -> PathBuf {
    std::fs::read_dir(p.path().join("cache/entries/generate"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
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
    let p = Project::new(&spec(proxy.port, "api_key_env = \"MORSD_TEST_API_KEY\""));
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
    // 1. Every sample is there, with its request record.
    let dir = generate_entry(&p);
    let requests: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("requests.json")).unwrap()).unwrap();
    assert_eq!(requests.len(), 8);
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
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 8);
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
    let mut child = p
        .cmd()
        .args(["run", p.spec().to_str().unwrap(), "--until", "generate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(240) {
        let lines = std::fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if lines >= 4 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
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
    let t = Instant::now();
    while proxy.active.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
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
        serde_json::from_slice(&std::fs::read(generate_entry(&p).join("requests.json")).unwrap())
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
        serde_json::from_slice(&std::fs::read(generate_entry(&p).join("requests.json")).unwrap())
            .unwrap();
    assert_eq!(requests.len(), 8);
    assert!(
        requests
            .iter()
            .all(|r| !r["text"].as_str().unwrap().is_empty())
    );
}
