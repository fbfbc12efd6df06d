//! `just bench` (teacher part): completion tokens/s of the `openai` teacher through morsd with
//! two llama.cpp servers on two ports, against the same servers driven directly (plain HTTP
//! requests, same prompts, seeds and concurrency), and morsd's overhead per request.
//! Needs `scripts/setup-llama.sh`. Writes a markdown table to the path given (first argument).

use morsd::teacher::openai::{Options, sample};
use morsd::teacher::request_log::RequestLog;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn start(py: &str, gguf: &str) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(py)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            gguf,
            "--model_alias",
            "smollm2-135m",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
        ])
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start llama.cpp server (run scripts/setup-llama.sh)");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.contains("smollm2") {
                return (child, port);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("server did not start");
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "results/bench/teacher.md".into());
    let home = format!(
        "{}/.cache/morsd-llama",
        std::env::var("HOME").unwrap_or_default()
    );
    let py =
        std::env::var("MORSD_LLAMA_PYTHON").unwrap_or_else(|_| format!("{home}/venv/bin/python"));
    let gguf = std::env::var("MORSD_SMOLLM2_GGUF")
        .unwrap_or_else(|_| format!("{home}/SmolLM2-135M-Instruct.Q4_1.gguf"));
    let (mut a, pa) = start(&py, &gguf);
    let (mut b, pb) = start(&py, &gguf);
    let urls = vec![
        format!("http://127.0.0.1:{pa}/v1"),
        format!("http://127.0.0.1:{pb}/v1"),
    ];
    let data = morsd::task::synthetic::generate(
        morsd::spec::TaskKind::Arithmetic,
        &morsd::spec::raw::DataSpec {
            train: 8,
            ..Default::default()
        },
    );
    let questions: Vec<(morsd::task::Example, String)> = data
        .train
        .iter()
        .map(|e| {
            (
                e.clone(),
                format!("Q: {}\nA: Let's think step by step.", e.question),
            )
        })
        .collect();
    let opts = Options {
        urls: urls.clone(),
        model: "smollm2-135m".into(),
        api_key: None,
        temperature: 0.7,
        top_p: None,
        max_tokens: 64,
        stop: vec![],
        samples: 2,
        seed: 7,
        concurrency: 2,
        max_retries: 3,
        timeout: Duration::from_secs(120),
        rpm: None,
        tpm: None,
        backoff: Duration::from_millis(200),
        use_n: false,
    };
    // 1. Direct: the same requests, 2 in flight, one per server.
    let jobs: Vec<(String, u64)> = questions
        .iter()
        .flat_map(|(_, p)| (0..opts.samples).map(move |k| (p.clone(), 7 + k as u64)))
        .collect();
    let next = AtomicUsize::new(0);
    let tokens = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..2 {
            let (jobs, next, tokens, url) = (&jobs, &next, &tokens, urls[w].clone());
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(120))).build().into();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((p, seed)) = jobs.get(i) else { break };
                    let body = serde_json::json!({"model": "smollm2-135m", "messages": [{"role": "user", "content": p}], "temperature": 0.7, "max_tokens": 64, "seed": seed, "n": 1});
                    let mut r = agent.post(format!("{url}/chat/completions")).send_json(&body).expect("direct request");
                    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    tokens.fetch_add(v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize, Ordering::SeqCst);
                }
            });
        }
    });
    let direct_s = t.elapsed().as_secs_f64();
    let direct_tok = tokens.load(Ordering::SeqCst) as f64;
    // 2. Through morsd (fresh request log, so every request is sent).
    let dir = tempfile::tempdir().unwrap();
    let log = RequestLog::open(dir.path(), "smollm2-135m").unwrap();
    let t = Instant::now();
    let o =
        sample(&questions, &opts, &log, &indicatif::ProgressBar::hidden()).expect("morsd sampling");
    let morsd_s = t.elapsed().as_secs_f64();
    let morsd_tok = o.completion_tokens as f64;
    let _ = (a.kill(), b.kill(), a.wait(), b.wait());
    let n = jobs.len() as f64;
    let (rd, rm) = (direct_tok / direct_s, morsd_tok / morsd_s);
    let table = format!(
        "# morsd teacher bench\n\n2 llama-cpp-python servers (SmolLM2-135M-Instruct Q4_1, 1 thread each) on 2 ports, {} requests \
         (8 questions × 2 samples, max_tokens 64), 2 in flight.\n\n| path | completion tokens | seconds | tokens/s |\n|---|---|---|---|\n\
         | direct HTTP | {direct_tok:.0} | {direct_s:.2} | {rd:.1} |\n| morsd `openai` teacher | {morsd_tok:.0} | {morsd_s:.2} | {rm:.1} |\n\n\
         Ratio morsd ÷ direct: **{:.3}** (goal ≥ 0.9). Overhead per request: {:.1} ms (wall-clock difference ÷ requests; \
         the servers' own variance dominates it).\n",
        jobs.len(),
        rm / rd,
        1e3 * (morsd_s - direct_s * morsd_tok / direct_tok.max(1.0)) / n
    );
    if let Some(d) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(&out, &table).unwrap();
    print!("{table}");
}
