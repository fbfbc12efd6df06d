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
//! - With the answer stage on ([`super::answer_stage`]), each received rationale is followed by
//!   a second, greedy request (the first exchange + the answer-trigger line); both go through
//!   the same log, retries and fault handling, under separate keys (stage 1 and 2).
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
    /// Samples per question (`teacher.samples`: the first round under `teacher.budget`); which
    /// sample indices are asked is each question's [`Prompted::samples`].
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
    /// `max_tokens` of the second, answer-extracting request (greedy).
    pub answer_max_tokens: usize,
}

/// One training question as the teacher asks it.
#[derive(Debug, Clone)]
pub struct Prompted {
    /// The question.
    pub example: Example,
    /// The rendered first-stage prompt (with the gold hint where `teacher.hint` asks for one).
    pub prompt: String,
    /// The second, answer-extracting stage, when it is asked.
    pub answer: Option<AnswerPrompt>,
    /// The sample indices to ask (`0..teacher.samples`, or one round of `teacher.budget`).
    pub samples: std::ops::Range<usize>,
}

/// What the second stage sends after a rationale.
#[derive(Debug, Clone)]
pub struct AnswerPrompt {
    /// The first exchange's user turn, without any hint.
    pub prompt: String,
    /// The answer-trigger line ("Therefore, the answer (arabic numerals) is").
    pub trigger: String,
}

/// What sampling did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every rationale completion (stage 1), in question × sample order.
    pub completions: Vec<Completion>,
    /// The second-stage completion of each rationale (same order), where the stage was asked.
    pub answers: Vec<Option<Completion>>,
    /// Requests answered by the server in this run (both stages).
    pub sent: usize,
    /// Of those, second-stage requests.
    pub answers_sent: usize,
    /// Completions found in the request log (both stages).
    pub reused: usize,
    /// Retried attempts.
    pub retries: usize,
    /// Usage totals (both stages).
    pub prompt_tokens: u64,
    /// Usage totals (both stages).
    pub completion_tokens: u64,
}

impl Outcome {
    /// Adds another round's outcome (its completions after this one's).
    pub fn absorb(&mut self, o: Outcome) {
        self.completions.extend(o.completions);
        self.answers.extend(o.answers);
        self.sent += o.sent;
        self.answers_sent += o.answers_sent;
        self.reused += o.reused;
        self.retries += o.retries;
        self.prompt_tokens = self.prompt_tokens.saturating_add(o.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(o.completion_tokens);
    }
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

/// The request key of the second, answer-extracting request about one sample: over the model,
/// the whole chat (first exchange + trigger), its greedy parameters and the sample index.
pub fn answer_key(o: &Options, messages: &Value, sample: usize, seed: u64) -> (String, Value) {
    let params = json!({"temperature": 0.0, "max_tokens": o.answer_max_tokens, "seed": seed});
    let doc = json!({"model": o.model, "messages": messages, "params": params, "sample": sample, "stage": 2});
    (
        blake3::hash(doc.to_string().as_bytes())
            .to_hex()
            .to_string(),
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

/// One request to fetch: its question, sample, stage, identity and body.
struct Job {
    question_id: String,
    sample: usize,
    stage: u8,
    key: String,
    seed: u64,
    params: Value,
    /// The request body without `n`.
    body: Value,
    /// Tokens it may cost (for the tokens-per-minute limit).
    tokens: u64,
}

impl Job {
    /// A server completion recorded as this request's.
    fn stamp(&self, mut c: Completion) -> Completion {
        c.key = self.key.clone();
        c.question_id = self.question_id.clone();
        c.sample = self.sample;
        c.seed = self.seed;
        c.params = self.params.clone();
        c.stage = self.stage;
        c
    }

    /// "question Q (sample k)" or "question Q (sample k, answer stage)".
    fn name(&self) -> String {
        format!(
            "question {} (sample {}{})",
            self.question_id,
            self.sample,
            if self.stage == 2 {
                ", answer stage"
            } else {
                ""
            }
        )
    }
}

/// The body of a chat request.
fn body(o: &Options, messages: Value, temperature: f64, max_tokens: usize, seed: u64) -> Value {
    json!({
        "model": o.model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "seed": seed,
    })
}

/// Shared state of one sampling run: the HTTP agent, the rate limiter, the URL rotation.
struct Client<'a> {
    o: &'a Options,
    log: &'a RequestLog,
    progress: &'a ProgressBar,
    agent: ureq::Agent,
    limiter: Limiter,
    next_url: AtomicUsize,
}

/// What fetching one batch of jobs did.
#[derive(Default)]
struct Fetched {
    sent: usize,
    retries: usize,
    failures: Vec<String>,
    fatal: Option<String>,
}

/// Samples the completions each question asks (`Prompted::samples`) for its rendered prompt,
/// then (where asked) the second-stage answer of each, reusing the log for both.
pub fn sample(
    questions: &[Prompted],
    o: &Options,
    log: &RequestLog,
    progress: &ProgressBar,
) -> Result<Outcome> {
    // 1. Every (question, sample) job; the ones already in the log are done.
    let mut out = Outcome::default();
    let mut jobs = VecDeque::new();
    let mut order = Vec::new();
    for q in questions {
        for k in q.samples.clone() {
            let (key, seed, params) = request_key(o, &q.prompt, k);
            order.push(key.clone());
            if log.get(&key).is_some() {
                out.reused += 1;
            } else {
                let mut b = body(
                    o,
                    json!([{"role": "user", "content": q.prompt}]),
                    o.temperature,
                    o.max_tokens,
                    seed,
                );
                if let Some(p) = o.top_p {
                    b["top_p"] = json!(p);
                }
                if !o.stop.is_empty() {
                    b["stop"] = json!(o.stop);
                }
                jobs.push_back(Job {
                    question_id: q.example.id.clone(),
                    sample: k,
                    stage: 1,
                    key,
                    seed,
                    params,
                    body: b,
                    tokens: (o.max_tokens + q.prompt.len() / 4) as u64,
                });
            }
        }
    }
    let staged: usize = questions
        .iter()
        .filter(|q| q.answer.is_some())
        .map(|q| q.samples.len())
        .sum();
    progress.set_length((order.len() + staged) as u64);
    progress.set_position(out.reused as u64);
    let client = Client {
        o,
        log,
        progress,
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(o.timeout))
            .http_status_as_error(false)
            .build()
            .into(),
        limiter: Limiter {
            rpm: o.rpm,
            tpm: o.tpm,
            window: Mutex::new(VecDeque::new()),
        },
        next_url: AtomicUsize::new(0),
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
                client
                    .limiter
                    .acquire(group[0].tokens + (o.max_tokens * (group.len() - 1)) as u64);
                if let Attempt::Done(choices) =
                    send(&client.agent, &o.urls[0], o, &group[0].body, group.len())
                {
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
    // 2. The rationales.
    let total = order.len() + staged;
    let f = client.fetch(jobs, 0);
    out.sent = f.sent + n_sent;
    out.retries = f.retries;
    check(&f, &out, total, o, log)?;
    // 3. Every rationale, in order, from the log.
    for key in &order {
        let c = log
            .get(key)
            .ok_or_else(|| Error::run("a completion vanished from the request log"))?;
        out.completions.push(c);
    }
    // 4. The second stage: after each rationale, its first exchange and the answer trigger.
    let by_id: std::collections::HashMap<&str, &Prompted> = questions
        .iter()
        .map(|q| (q.example.id.as_str(), q))
        .collect();
    let mut jobs = VecDeque::new();
    let mut answer_keys = Vec::with_capacity(out.completions.len());
    for c in &out.completions {
        let Some(a) = by_id
            .get(c.question_id.as_str())
            .and_then(|q| q.answer.as_ref())
        else {
            answer_keys.push(None);
            continue;
        };
        let messages = super::answer_stage::messages(&a.prompt, &c.text, &a.trigger);
        let (key, params) = answer_key(o, &messages, c.sample, c.seed);
        answer_keys.push(Some(key.clone()));
        if log.get(&key).is_some() {
            out.reused += 1;
            progress.inc(1);
            continue;
        }
        let tokens = (o.answer_max_tokens + (a.prompt.len() + c.text.len()) / 4) as u64;
        jobs.push_back(Job {
            question_id: c.question_id.clone(),
            sample: c.sample,
            stage: 2,
            key,
            seed: c.seed,
            params,
            body: body(o, messages, 0.0, o.answer_max_tokens, c.seed),
            tokens,
        });
    }
    let f = client.fetch(jobs, out.retries);
    out.sent += f.sent;
    out.answers_sent = f.sent;
    out.retries += f.retries;
    check(&f, &out, total, o, log)?;
    for k in answer_keys {
        out.answers.push(match k {
            Some(k) => Some(
                log.get(&k)
                    .ok_or_else(|| Error::run("an answer vanished from the request log"))?,
            ),
            None => None,
        });
    }
    // 5. Usage over both stages. Saturating: usage is whatever the server claims.
    for c in out.completions.iter().chain(out.answers.iter().flatten()) {
        out.prompt_tokens = out.prompt_tokens.saturating_add(c.prompt_tokens);
        out.completion_tokens = out.completion_tokens.saturating_add(c.completion_tokens);
    }
    Ok(out)
}

/// The stage's error when a batch of requests did not all succeed.
fn check(f: &Fetched, out: &Outcome, total: usize, o: &Options, log: &RequestLog) -> Result<()> {
    if let Some(fatal) = &f.fatal {
        return Err(Error::run(format!(
            "{fatal} (not retried; {} completed requests are kept in {})",
            out.sent + out.reused,
            log.path().display()
        )));
    }
    if !f.failures.is_empty() {
        return Err(Error::run(format!(
            "{} of {total} requests failed after {} attempts each; {} completed requests are kept in {} (run again to resume):\n  {}",
            f.failures.len(),
            o.max_retries,
            out.sent + out.reused,
            log.path().display(),
            f.failures
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        )));
    }
    Ok(())
}

impl Client<'_> {
    /// Sends every job (`concurrency` at a time), retrying transient faults; each completion is
    /// appended to the log as it arrives. `retries_before`: retries of earlier batches (shown).
    fn fetch(&self, jobs: VecDeque<Job>, retries_before: usize) -> Fetched {
        let o = self.o;
        let queue = Mutex::new(jobs);
        let abort = AtomicBool::new(false);
        let (sent, retries) = (AtomicUsize::new(0), AtomicUsize::new(retries_before));
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
                        // 1. One request, retried on transient faults.
                        let mut attempt = 0;
                        loop {
                            self.limiter.acquire(job.tokens);
                            let url = &o.urls
                                [self.next_url.fetch_add(1, Ordering::SeqCst) % o.urls.len()];
                            match send(&self.agent, url, o, &job.body, 1) {
                                Attempt::Done(choices) => {
                                    let c = job.stamp(
                                        choices
                                            .into_iter()
                                            .next()
                                            .expect("send returns Done with at least one choice"),
                                    );
                                    if let Err(e) = self.log.append(&c) {
                                        *fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                                            Some(e.to_string());
                                        abort.store(true, Ordering::SeqCst);
                                    }
                                    sent.fetch_add(1, Ordering::SeqCst);
                                    completion_tokens
                                        .fetch_add(c.completion_tokens, Ordering::SeqCst);
                                    self.progress.inc(1);
                                    self.progress.set_message(format!(
                                        "{} completion tokens, {} retries",
                                        completion_tokens.load(Ordering::SeqCst),
                                        retries.load(Ordering::SeqCst)
                                    ));
                                    break;
                                }
                                Attempt::Fatal(why) => {
                                    *fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                                        Some(format!("{}: {why}", job.name()));
                                    abort.store(true, Ordering::SeqCst);
                                    break;
                                }
                                Attempt::Retry(why, after) => {
                                    attempt += 1;
                                    if attempt >= o.max_retries {
                                        failures
                                            .lock()
                                            .unwrap_or_else(|e| e.into_inner())
                                            .push(format!("{}: {why}", job.name()));
                                        break;
                                    }
                                    retries.fetch_add(1, Ordering::SeqCst);
                                    // 2. Exponential backoff with jitter, or the server's Retry-After.
                                    let base =
                                        o.backoff.as_secs_f64() * 2f64.powi(attempt as i32 - 1);
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
        Fetched {
            sent: sent.into_inner(),
            retries: retries.into_inner() - retries_before,
            failures: failures.into_inner().unwrap_or_else(|e| e.into_inner()),
            fatal: fatal.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

fn send(agent: &ureq::Agent, url: &str, o: &Options, body: &Value, n: usize) -> Attempt {
    let mut body = body.clone();
    body["n"] = json!(n);
    let seed = body["seed"].as_u64().unwrap_or(0);
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
                stage: 1,
            })
            .collect(),
    )
}
