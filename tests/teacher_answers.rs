//! Teacher rationales judged as the studies judged them (issue 16): Kojima et al.'s two-stage
//! answers for the `openai` teacher, STaR's gold hint, majority-vote labels, and the generic
//! JSONL `answer_text`.
//!
//! Against the real llama.cpp server (through the fault proxy of `common/proxy.rs`):
//! `answer_stage = "always"` makes exactly 2 × samples requests per question, the second being
//! the first exchange + Kojima's trigger, greedy and short; the score stage extracts from the
//! stage-two text; a kill mid-way and a resume repeats no received request. Against the proxy's
//! canned two-stage teacher, whose rationales say 4 and whose answer stage says 5 or 6: score reads
//! stage two, the stored rationale carries stage two's answer, the hint reaches stage one only,
//! and majority labels (ties skipped) replace gold.
//!
//! Needs `scripts/setup-llama.sh` for the server tests, and MORSD_DATA for the JSONL one.

mod common;
use common::llama::Server;
use common::proxy::{Fault, Proxy, STAGE_ONE, kill_generate_when};
use common::*;
use morsd::answer::AnswerType;
use morsd::teacher::answer_stage;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn spec(port: u16, train: usize, samples: usize, teacher: &str, score: &str) -> String {
    format!(
        r#"
[experiment]
name = "tiny"
[data]
task = "arithmetic"
train = {train}
validation = 4
test = 4
[teacher]
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
model = "smollm2-135m"
samples = {samples}
max_tokens = 48
concurrency = 2
max_retries = 8
backoff_s = 0.05
timeout_s = 60
{teacher}
[student]
d_model = 32
layers = 1
heads = 2
vocab_size = 320
[score]
warmup_steps = 2
{score}
"#
    )
}

fn until(p: &Project, stage: &str) -> std::process::Output {
    p.morsd(&["run", p.spec().to_str().unwrap(), "--until", stage])
}

/// Request log lines (complete ones).
fn logged(p: &Project) -> Vec<Value> {
    std::fs::read_to_string(p.path().join("cache/requests/smollm2-135m.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn always_asks_twice_per_sample_and_score_reads_the_second_stage() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let p = Project::new(&spec(proxy.port, 4, 2, "answer_stage = \"always\"", ""));
    let o = until(&p, "score");
    assert!(o.status.success(), "{}", text(&o));
    // 1. Exactly 2 × samples requests per question reached the server.
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 2 * 2 * 4);
    let bodies = proxy.bodies.lock().unwrap().clone();
    let (one, two): (Vec<&Value>, Vec<&Value>) = bodies
        .iter()
        .partition(|b| b["messages"].as_array().unwrap().len() == 1);
    assert_eq!((one.len(), two.len()), (8, 8));
    // 2. Stage two: the first exchange, then Kojima's numeral trigger; greedy and short.
    let requests = p.read_entry("generate", "requests.json");
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), 16);
    let rationale_texts: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r["stage"].is_null())
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    let prompts: BTreeSet<&str> = one
        .iter()
        .map(|b| b["messages"][0]["content"].as_str().unwrap())
        .collect();
    for b in &two {
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m[1]["role"], "assistant");
        assert!(rationale_texts.contains(m[1]["content"].as_str().unwrap()));
        assert_eq!(
            m[2]["content"],
            "Therefore, the answer (arabic numerals) is"
        );
        assert_eq!(b["temperature"].as_f64(), Some(0.0));
        assert_eq!(b["max_tokens"].as_u64(), Some(32));
        assert!(prompts.contains(m[0]["content"].as_str().unwrap()));
    }
    // 3. What score extracts is the stage-two text's answer, sample by sample; the stored
    //    rationale says the same answer.
    let mut answers: BTreeMap<(String, u64), String> = BTreeMap::new();
    for r in requests.iter().filter(|r| r["stage"] == 2) {
        answers.insert(
            (
                r["question_id"].as_str().unwrap().into(),
                r["sample"].as_u64().unwrap(),
            ),
            r["text"].as_str().unwrap().into(),
        );
    }
    let scores = p.read_entry("score", "scores.json");
    let mut differs_from_stage_one = 0;
    for s in scores.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let (q, k) = id.split_once("/openai/").unwrap();
        let stage_two = &answers[&(q.to_string(), k.parse().unwrap())];
        let want = answer_stage::extract(AnswerType::Number, stage_two, &[]);
        assert_eq!(
            s["extracted"].as_str(),
            want.as_deref(),
            "{id}: {stage_two:?}"
        );
        if let Some(w) = &want {
            assert!(
                s["text"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("The answer is {w}."))
            );
        }
        let stage_one = requests
            .iter()
            .find(|r| {
                r["stage"].is_null()
                    && r["question_id"] == q
                    && r["sample"] == k.parse::<u64>().unwrap()
            })
            .unwrap();
        differs_from_stage_one += usize::from(
            morsd::answer::extract(AnswerType::Number, stage_one["text"].as_str().unwrap()) != want,
        );
    }
    eprintln!(
        "{differs_from_stage_one} of 8 stage-two answers differ from what stage one's text alone gives"
    );
}

#[test]
fn killed_and_resumed_two_stage_sampling_repeats_no_received_request() {
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let p = Project::new(&spec(proxy.port, 8, 2, "answer_stage = \"always\"", ""));
    let log = p.path().join("cache/requests/smollm2-135m.jsonl");
    // 1. Start, kill once stage two has begun (2 answers in the log).
    kill_generate_when(
        &p,
        &log,
        |s| s.lines().filter(|l| l.contains("\"stage\":2")).count() >= 2,
        Duration::from_secs(300),
    );
    let done = logged(&p).len();
    assert!(
        (18..32).contains(&done),
        "killed with {done} of 32 requests in the log"
    );
    // 2. Resume: exactly the missing requests reach the server; no key is logged twice.
    proxy.drain();
    proxy.forwarded.store(0, Ordering::SeqCst);
    let o = until(&p, "generate");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        32 - done,
        "{}",
        text(&o)
    );
    let lines = logged(&p);
    let keys: BTreeSet<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!((lines.len(), keys.len()), (32, 32));
    let requests = p.read_entry("generate", "requests.json");
    assert_eq!(requests.as_array().unwrap().len(), 32);
}

#[test]
fn the_answer_comes_from_stage_two_and_the_hint_reaches_stage_one_only() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    // 1. auto is on for the zero-shot prompt: the rationale says 4, stage two 5 (sample 0) or
    //    6 (sample 1); score reads stage two.
    let p = Project::new(&spec(proxy.port, 4, 2, "", ""));
    let o = until(&p, "score");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.received.load(Ordering::SeqCst), 16);
    let rationales = p.read_entry("generate", "rationales.json");
    for r in rationales.as_array().unwrap() {
        let want = if r["id"].as_str().unwrap().ends_with("/0") {
            "5"
        } else {
            "6"
        };
        assert_eq!(r["body"], "First, 2 + 2 = 4.");
        assert!(STAGE_ONE.starts_with(r["body"].as_str().unwrap()));
        assert_eq!(
            r["text"],
            format!("First, 2 + 2 = 4.\nThe answer is {want}.")
        );
    }
    let scores = p.read_entry("score", "scores.json");
    let tasks = p.read_entry("generate", "tasks.json");
    let gold: BTreeMap<&str, &str> = tasks["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["answer"].as_str().unwrap()))
        .collect();
    for s in scores.as_array().unwrap() {
        let want = if s["id"].as_str().unwrap().ends_with("/0") {
            "5"
        } else {
            "6"
        };
        assert_eq!(s["extracted"], want);
        assert_eq!(
            s["correct"],
            gold[s["question_id"].as_str().unwrap()] == want
        );
    }
    // 2. never: one request per sample, and the rationale's own text is read (4).
    let p = Project::new(&spec(proxy.port, 4, 2, "answer_stage = \"never\"", ""));
    proxy.received.store(0, Ordering::SeqCst);
    let o = until(&p, "score");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.received.load(Ordering::SeqCst), 8);
    let scores = p.read_entry("score", "scores.json");
    assert!(
        scores
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["extracted"] == "4")
    );
    // 3. hint = gold: the rationale request names the gold answer, the answer request does not
    //    (it gets the plain prompt), and the rationale is still judged on stage two (5 or 6).
    proxy.bodies.lock().unwrap().clear();
    let p = Project::new(&spec(proxy.port, 4, 2, "hint = \"gold\"", ""));
    let o = until(&p, "score");
    assert!(o.status.success(), "{}", text(&o));
    let tasks = p.read_entry("generate", "tasks.json");
    let bodies = proxy.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 16);
    for e in tasks["train"].as_array().unwrap() {
        let (q, a) = (
            e["question"].as_str().unwrap(),
            e["answer"].as_str().unwrap(),
        );
        let hint = format!("The correct answer is {a}.");
        let mine: Vec<&Value> = bodies
            .iter()
            .filter(|b| b["messages"][0]["content"].as_str().unwrap().contains(q))
            .collect();
        assert_eq!(mine.len(), 4);
        for b in mine {
            let first = b["messages"][0]["content"].as_str().unwrap();
            let staged = b["messages"].as_array().unwrap().len() == 3;
            assert_eq!(first.contains(&hint), !staged, "{first}");
        }
    }
    let scores = p.read_entry("score", "scores.json");
    assert!(
        scores
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["extracted"] != "4")
    );
    assert!(
        p.read_entry("generate", "rationales.json")
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["origin"] == "rationalized")
    );
}

#[test]
fn majority_labels_replace_gold_and_ties_are_skipped() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    // 1. Three samples answer 5, 6, 5: every question is labelled 5, whatever its gold.
    let p = Project::new(&spec(proxy.port, 4, 3, "", "label = \"majority\""));
    let o = until(&p, "score");
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("majority labels: 4 questions labelled, 0 ties"),
        "{out}"
    );
    let labels = p.read_entry("score", "labels.json");
    assert!(
        labels
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["vote"]["status"] == "majority"
                && l["vote"]["answer"] == "5"
                && l["vote"]["votes"] == 2)
    );
    let scores = p.read_entry("score", "scores.json");
    for s in scores.as_array().unwrap() {
        assert_eq!(s["correct"], s["extracted"] == "5", "{s}");
    }
    // 2. Two samples answer 5 and 6: every question is a tie, nothing is left to score.
    let p = Project::new(&spec(proxy.port, 4, 2, "", "label = \"majority\""));
    let o = until(&p, "score");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("no training question got a label")
            && out.contains("0 questions labelled, 4 ties"),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    // 3. Bad values are spec errors naming the field.
    let p = Project::new(&spec(proxy.port, 4, 2, "answer_stage = \"sometimes\"", ""));
    let o = until(&p, "generate");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("teacher.answer_stage"), "{}", text(&o));
    let p = Project::new(&spec(proxy.port, 4, 2, "", "label = \"vote\""));
    let o = until(&p, "generate");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("score.label"), "{}", text(&o));
    let p = Project::new(&spec(
        proxy.port,
        4,
        2,
        "hint = \"gold\"",
        "label = \"majority\"",
    ));
    let o = until(&p, "generate");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("teacher.hint"), "{}", text(&o));
}

#[test]
fn jsonl_answer_text_is_where_the_answer_is_read() {
    let root = std::env::var("MORSD_DATA").expect("set MORSD_DATA to the shared data root");
    let p = Project::new("");
    // Rationales for the first two SVAMP training questions: their own text says 7, the
    // recorded second stage says 9 (one row) or nothing (the other row reads its text).
    let jsonl = p.path().join("mine.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"train-0\", \"rationale\": \"3 + 4 = 7. So the answer is 7.\", \"answer_text\": \" 9.\"}\n{\"id\": \"train-1\", \"rationale\": \"3 + 4 = 7. So the answer is 7.\"}\n",
    )
    .unwrap();
    std::fs::write(
        p.spec(),
        format!(
            r#"
[experiment]
name = "tiny"
[data]
task = "svamp"
root = "{root}"
max_train = 2
max_validation = 4
max_test = 4
[teacher]
kind = "file"
jsonl = ["{}"]
[student]
d_model = 32
layers = 1
heads = 2
vocab_size = 320
[score]
warmup_steps = 2
"#,
            jsonl.display()
        ),
    )
    .unwrap();
    let o = until(&p, "score");
    assert!(o.status.success(), "{}", text(&o));
    let rationales = p.read_entry("generate", "rationales.json");
    let r0 = rationales
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["question_id"] == "train-0")
        .unwrap();
    assert_eq!(r0["text"], "3 + 4 = 7.\nThe answer is 9.");
    assert_eq!(r0["answer_text"], " 9.");
    let scores = p.read_entry("score", "scores.json");
    let by_q: BTreeMap<&str, &str> = scores
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["question_id"].as_str().unwrap(),
                s["extracted"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_q["train-0"], "9");
    assert_eq!(by_q["train-1"], "7");
}
