//! `just bench` (teacher part): completion tokens/s of the `openai` teacher through morsd with
//! two llama.cpp servers on two ports, against the same servers driven directly (plain HTTP
//! requests, same prompts, seeds and concurrency), and morsd's overhead per request.
//! Needs `scripts/setup-llama.sh`. Writes a markdown table to the path given (first argument).

use morsd::teacher::openai::{Options, sample};
use morsd::teacher::request_log::RequestLog;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/common/llama.rs"]
mod llama;

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "results/bench/teacher.md".into());
    let (a, b) = (llama::Server::start(), llama::Server::start());
    let (pa, pb) = (a.port, b.port);
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
    // One stage only: the bench compares the same single requests sent directly.
    let questions: Vec<morsd::teacher::openai::Prompted> = data
        .train
        .iter()
        .map(|e| morsd::teacher::openai::Prompted {
            example: e.clone(),
            prompt: format!("Q: {}\nA: Let's think step by step.", e.question),
            answer: None,
            samples: 0..2,
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
        max_body: 8 << 20,
        answer_max_tokens: 32,
        rpm: None,
        tpm: None,
        backoff: Duration::from_millis(200),
        use_n: false,
    };
    // 1. Direct: the same requests, 2 in flight, one per server.
    let jobs: Vec<(String, u64)> = questions
        .iter()
        .flat_map(|q| (0..opts.samples).map(move |k| (q.prompt.clone(), 7 + k as u64)))
        .collect();
    let next = AtomicUsize::new(0);
    let tokens = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for url in urls.iter().take(2) {
            let (jobs, next, tokens, url) = (&jobs, &next, &tokens, url.clone());
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
    drop((a, b));
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
