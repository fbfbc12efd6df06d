//! Teacher kind `openai`: samples rationales from any OpenAI-compatible chat-completions server
//! (vLLM, llama.cpp, Ollama, a hosted API).
//!
//! - `samples` per question as separate requests with distinct seeds (`seed + sample index`),
//!   since llama.cpp ignores `n`; each finished completion goes to the durable request log
//!   ([`super::request_log`]) before anything else, so a restart re-sends nothing received.
//! - Faults: connection errors, timeouts (of the whole response: a body trickling in past
//!   `timeout` fails), truncated, malformed or non-UTF-8 bodies, bodies over `max_body` bytes
//!   (never read further), 429 (honouring `Retry-After`) and 5xx are retried with exponential
//!   backoff and jitter; other 4xx (401, 400 context length) stop the stage with an error
//!   naming the question. Choices beyond the `n` asked for are ignored. After
//!   `max_retries` failed attempts of one request the stage fails with a summary; every
//!   completed sample stays in the log.
//! - Requests-per-minute and tokens-per-minute limits; several base URLs share the load.
//! - The API key is read from the environment variable the spec names and is sent only in the
//!   `Authorization` header: it never reaches a key, a log line, an error or a results file.

use super::request_log::{Completion, RequestLog};
use crate::error::{Error, Result};
use crate::task::Example;
use indicatif::ProgressBar;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Resolved settings of the `openai` teacher.
#[derive(Clone)]
pub struct Options {
    /// Base URLs (`http://host:port/v1`); requests are spread over them.
    pub urls: Vec<String>,
    /// Model name sent in requests.
    pub model: String,
    /// API key (from the environment), if any.
    pub api_key: Option<String>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Completion length cap.
    pub max_tokens: usize,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Samples per question.
    pub samples: usize,
    /// Base seed.
    pub seed: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Attempts per request before giving up.
    pub max_retries: usize,
    /// Per-request timeout (the whole response, body included).
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body: u64,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// First backoff delay (doubles per attempt, capped at 30 s, with jitter).
    pub backoff: Duration,
    /// Ask for a question's missing samples in one request with `n` first; samples the server
    /// does not return (llama.cpp answers one choice) are then requested one by one.
    pub use_n: bool,
}

/// What sampling did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every completion, in question × sample order.
    pub completions: Vec<Completion>,
    /// Requests answered by the server in this run.
    pub sent: usize,
    /// Samples found in the request log.
    pub reused: usize,
    /// Retried attempts.
    pub retries: usize,
    /// Usage totals.
    pub prompt_tokens: u64,
    /// Usage totals.
    pub completion_tokens: u64,
}

/// The request key of one sample.
pub fn request_key(o: &Options, prompt: &str, sample: usize) -> (String, u64, Value) {
    let seed = o.seed.wrapping_add(sample as u64);
    let params = json!({"temperature": o.temperature, "top_p": o.top_p, "max_tokens": o.max_tokens, "stop": o.stop, "seed": seed});
    let doc = json!({"model": o.model, "prompt": prompt, "params": params, "sample": sample});
    (
        blake3::hash(doc.to_string().as_bytes())
            .to_hex()
            .to_string(),
        seed,
        params,
    )
}

enum Attempt {
    Done(Vec<Completion>),
    Retry(String, Option<Duration>),
    Fatal(String),
}

struct Limiter {
    rpm: Option<u32>,
    tpm: Option<u32>,
    window: Mutex<VecDeque<(Instant, u64)>>,
}

impl Limiter {
    fn acquire(&self, tokens: u64) {
        if self.rpm.is_none() && self.tpm.is_none() {
            return;
        }
        loop {
            let wait = {
                let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while w
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) >= Duration::from_secs(60))
                {
                    w.pop_front();
                }
                let used: u64 = w.iter().map(|x| x.1).sum();
                let ok_r = self.rpm.is_none_or(|r| (w.len() as u32) < r);
                let ok_t = self
                    .tpm
                    .is_none_or(|t| used + tokens <= t as u64 || w.is_empty());
                if ok_r && ok_t {
                    w.push_back((now, tokens));
                    return;
                }
                w.front()
                    .map(|(t, _)| Duration::from_secs(60).saturating_sub(now.duration_since(*t)))
                    .unwrap_or_default()
            };
            std::thread::sleep(
                wait.min(Duration::from_millis(500))
                    .max(Duration::from_millis(10)),
            );
        }
    }
}

/// One sample to fetch: its question, prompt and request identity.
struct Job {
    question_id: String,
    prompt: String,
    sample: usize,
    key: String,
    seed: u64,
    params: Value,
}

impl Job {
    /// A server completion recorded as this sample's.
    fn stamp(&self, mut c: Completion) -> Completion {
        c.key = self.key.clone();
        c.question_id = self.question_id.clone();
        c.sample = self.sample;
        c.seed = self.seed;
        c.params = self.params.clone();
        c
    }
}

/// Samples `o.samples` completions for every question's rendered prompt, reusing the log.
pub fn sample(
    questions: &[(Example, String)],
    o: &Options,
    log: &RequestLog,
    progress: &ProgressBar,
) -> Result<Outcome> {
    // 1. Every (question, sample) job; the ones already in the log are done.
    let mut out = Outcome::default();
    let mut jobs = VecDeque::new();
    let mut order = Vec::new();
    for (e, prompt) in questions {
        for k in 0..o.samples {
            let (key, seed, params) = request_key(o, prompt, k);
            order.push(key.clone());
            if log.get(&key).is_some() {
                out.reused += 1;
            } else {
                jobs.push_back(Job {
                    question_id: e.id.clone(),
                    prompt: prompt.clone(),
                    sample: k,
                    key,
                    seed,
                    params,
                });
            }
        }
    }
    progress.set_length(order.len() as u64);
    progress.set_position(out.reused as u64);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(o.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let limiter = Limiter {
        rpm: o.rpm,
        tpm: o.tpm,
        window: Mutex::new(VecDeque::new()),
    };
    let mut n_sent = 0;
    if o.use_n {
        // 1b. One request with `n` per question (jobs are in question order); what comes back
        //     is logged, the rest stays queued for single requests.
        let mut rest = VecDeque::new();
        while let Some(first) = jobs.pop_front() {
            let mut group = vec![first];
            while jobs
                .front()
                .is_some_and(|j| j.question_id == group[0].question_id)
            {
                group.extend(jobs.pop_front());
            }
            let mut taken = 0;
            if group.len() > 1 {
                limiter.acquire((o.max_tokens * group.len() + group[0].prompt.len() / 4) as u64);
                if let Attempt::Done(choices) = send(
                    &agent,
                    &o.urls[0],
                    o,
                    &group[0].prompt,
                    group[0].seed,
                    group.len(),
                ) {
                    n_sent += 1;
                    for (c, j) in choices.into_iter().zip(&group) {
                        log.append(&j.stamp(c))?;
                        progress.inc(1);
                        taken += 1;
                    }
                }
            }
            rest.extend(group.into_iter().skip(taken));
        }
        jobs = rest;
    }
    let queue = Mutex::new(jobs);
    let abort = AtomicBool::new(false);
    let (sent, retries, next_url) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let completion_tokens = AtomicU64::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let fatal: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..o.concurrency.max(1) {
            s.spawn(|| {
                let mut rng = rand::rng();
                loop {
                    if abort.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                    else {
                        break;
                    };
                    // 2. One request, retried on transient faults.
                    let mut attempt = 0;
                    loop {
                        limiter.acquire((o.max_tokens + job.prompt.len() / 4) as u64);
                        let url = &o.urls[next_url.fetch_add(1, Ordering::SeqCst) % o.urls.len()];
                        match send(&agent, url, o, &job.prompt, job.seed, 1) {
                            Attempt::Done(choices) => {
                                let c = job.stamp(
                                    choices
                                        .into_iter()
                                        .next()
                                        .expect("send returns Done with at least one choice"),
                                );
                                if let Err(e) = log.append(&c) {
                                    *fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                                        Some(e.to_string());
                                    abort.store(true, Ordering::SeqCst);
                                }
                                sent.fetch_add(1, Ordering::SeqCst);
                                completion_tokens.fetch_add(c.completion_tokens, Ordering::SeqCst);
                                progress.inc(1);
                                progress.set_message(format!(
                                    "{} completion tokens, {} retries",
                                    completion_tokens.load(Ordering::SeqCst),
                                    retries.load(Ordering::SeqCst)
                                ));
                                break;
                            }
                            Attempt::Fatal(why) => {
                                *fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                                    "question {} (sample {}): {why}",
                                    job.question_id, job.sample
                                ));
                                abort.store(true, Ordering::SeqCst);
                                break;
                            }
                            Attempt::Retry(why, after) => {
                                attempt += 1;
                                if attempt >= o.max_retries {
                                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(
                                        format!(
                                            "question {} sample {}: {why}",
                                            job.question_id, job.sample
                                        ),
                                    );
                                    break;
                                }
                                retries.fetch_add(1, Ordering::SeqCst);
                                // 3. Exponential backoff with jitter, or the server's Retry-After.
                                let base = o.backoff.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
                                let wait = after.unwrap_or_else(|| {
                                    Duration::from_secs_f64(
                                        base.min(30.0) * (0.5 + rng.random::<f64>() * 0.5),
                                    )
                                });
                                std::thread::sleep(wait);
                            }
                        }
                    }
                }
            });
        }
    });
    out.sent = sent.into_inner() + n_sent;
    out.retries = retries.into_inner();
    if let Some(f) = fatal.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(Error::run(format!(
            "{f} (not retried; {} completed samples are kept in {})",
            out.sent + out.reused,
            log.path().display()
        )));
    }
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if !failures.is_empty() {
        return Err(Error::run(format!(
            "{} of {} requests failed after {} attempts each; {} completed samples are kept in {} (run again to resume):\n  {}",
            failures.len(),
            order.len(),
            o.max_retries,
            out.sent + out.reused,
            log.path().display(),
            failures
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        )));
    }
    // 4. Every sample, in order, from the log.
    for key in &order {
        let c = log
            .get(key)
            .ok_or_else(|| Error::run("a completion vanished from the request log"))?;
        // Saturating: usage is whatever the server claims.
        out.prompt_tokens = out.prompt_tokens.saturating_add(c.prompt_tokens);
        out.completion_tokens = out.completion_tokens.saturating_add(c.completion_tokens);
        out.completions.push(c);
    }
    Ok(out)
}

fn send(agent: &ureq::Agent, url: &str, o: &Options, prompt: &str, seed: u64, n: usize) -> Attempt {
    let mut body = json!({
        "model": o.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": o.temperature,
        "max_tokens": o.max_tokens,
        "seed": seed,
        "n": n,
    });
    if let Some(p) = o.top_p {
        body["top_p"] = json!(p);
    }
    if !o.stop.is_empty() {
        body["stop"] = json!(o.stop);
    }
    let mut req = agent.post(format!("{}/chat/completions", url.trim_end_matches('/')));
    if let Some(k) = &o.api_key {
        req = req.header("Authorization", format!("Bearer {k}"));
    }
    let timed_out = || {
        format!(
            "timed out after {} s (teacher.timeout_s)",
            o.timeout.as_secs_f64()
        )
    };
    let mut resp = match req.send_json(&body) {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => return Attempt::Retry(timed_out(), None),
        Err(e) => return Attempt::Retry(format!("connection: {e}"), None),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 120.0)));
    // The body, at most `max_body` bytes (an endless one is cut there, one that announces more is
    // not read at all), all of it within the request's timeout: ureq's global timeout covers
    // every byte of the body, not only the first (a trickling server times out).
    let over = || {
        format!(
            "response body over {} bytes (teacher.max_body_bytes)",
            o.max_body
        )
    };
    let declared = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = if declared.is_some_and(|n| n > o.max_body) {
        Err(over())
    } else {
        match resp
            .body_mut()
            .with_config()
            .limit(o.max_body)
            .read_to_vec()
        {
            Ok(b) => Ok(b),
            Err(ureq::Error::BodyExceedsLimit(_)) => Err(over()),
            Err(ureq::Error::Timeout(_)) => Err(format!("reading the body {}", timed_out())),
            Err(e) => Err(format!("reading the body: {e}")),
        }
    };
    let short: String = match &bytes {
        Ok(b) => String::from_utf8_lossy(&b[..b.len().min(800)])
            .chars()
            .take(200)
            .collect(),
        Err(e) => format!("({e})"),
    };
    match status {
        200 => {}
        429 => return Attempt::Retry("HTTP 429 rate limited".into(), retry_after),
        500..=599 => return Attempt::Retry(format!("HTTP {status}: {short}"), retry_after),
        _ => return Attempt::Fatal(format!("HTTP {status} (not retryable): {short}")),
    }
    let text = match bytes.map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Attempt::Retry(
                format!(
                    "response body is not valid UTF-8 (byte {} of {})",
                    e.utf8_error().valid_up_to(),
                    e.as_bytes().len()
                ),
                None,
            );
        }
        Err(e) => return Attempt::Retry(format!("HTTP {status}: {e}"), None),
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Attempt::Retry(format!("malformed response body ({e})"), None),
    };
    // Choices beyond the `n` asked for are ignored: never more samples than requested.
    let mut choices: Vec<&Value> = v["choices"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    choices.truncate(n);
    if choices.is_empty()
        || choices
            .iter()
            .any(|c| c["message"]["content"].as_str().is_none())
    {
        return Attempt::Retry(
            format!("response without choices[].message.content: {short}"),
            None,
        );
    }
    // Usage covers all choices (ignored ones included, so the totals are what the server
    // counted): the prompt is counted once, completion tokens split evenly over the kept ones.
    let total = v["usage"]["completion_tokens"].as_u64().unwrap_or(0);
    let each = total / choices.len() as u64;
    Attempt::Done(
        choices
            .iter()
            .enumerate()
            .map(|(i, c)| Completion {
                key: String::new(),
                question_id: String::new(),
                sample: 0,
                seed,
                params: Value::Null,
                text: c["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                finish_reason: c["finish_reason"].as_str().map(String::from),
                prompt_tokens: if i == 0 {
                    v["usage"]["prompt_tokens"].as_u64().unwrap_or(0)
                } else {
                    0
                },
                completion_tokens: if i == 0 {
                    total - each * (choices.len() as u64 - 1)
                } else {
                    each
                },
            })
            .collect(),
    )
}
