//! `teacher.budget`: sampling in rounds where the student needs it, with exact request counts.
//!
//! The `openai` teacher is the fault proxy's canned teacher (`common/proxy.rs`,
//! `Fault::TwoStage` with the answer stage off): every rationale says 4. On a custom task whose
//! training questions have gold 4 (always right) or 7 (never right), the rounds are known in
//! advance, so the proxy must see exactly the requests the budget's rule asks, and a resumed run
//! (a request log cut short) exactly the missing ones. The `programmatic` teacher is checked
//! against the rule applied here, independently, to its unbudgeted rationales.

mod common;
use common::proxy::{Fault, Proxy};
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

const REST: &str = r#"
[student]
d_model = 32
layers = 1
heads = 2
max_seq_len = 96
vocab_size = 320
[score]
warmup_steps = 2
"#;

/// Six training questions with gold 4, then seven with gold 7 (the last one becomes the
/// validation question), and one test question.
fn files(p: &Project) {
    let train: String = (0..13)
        .map(|i| {
            let gold = if i < 6 { 4 } else { 7 };
            format!("{{\"question\": \"Q{i}: how many?\", \"answer\": {gold}}}\n")
        })
        .collect();
    std::fs::write(p.path().join("train.jsonl"), train).unwrap();
    std::fs::write(
        p.path().join("test.jsonl"),
        "{\"question\": \"T: how many?\", \"answer\": 4}\n",
    )
    .unwrap();
}

fn openai_spec(port: u16, budget: &str) -> String {
    format!(
        "[experiment]\nname = \"tiny\"\n[data]\ntask = \"custom\"\nquestions = \"train.jsonl\"\ntest_questions = \"test.jsonl\"\nvalidation = 1\n[teacher]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"smollm2-135m\"\nsamples = 2\nanswer_stage = \"never\"\nmax_tokens = 48\nconcurrency = 2\nmax_retries = 2\nbackoff_s = 0.05\ntimeout_s = 30\n[teacher.budget]\n{budget}\n{REST}"
    )
}

fn generate(p: &Project, extra: &[&str]) -> std::process::Output {
    let spec = p.spec();
    let mut args = vec!["run", spec.to_str().unwrap(), "--until", "generate"];
    args.extend(extra);
    p.morsd(&args)
}

/// Rationales per training question id, from the generate entry.
fn per_question(p: &Project) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in p
        .read_entry("generate", "rationales.json")
        .as_array()
        .unwrap()
    {
        *n.entry(r["question_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    n
}

#[test]
fn uniform_asks_until_each_question_has_its_correct_rationales_and_resumes_exactly() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    let p = Project::new(&openai_spec(
        proxy.port,
        "kind = \"uniform\"\ncorrect = 2\nround = 2\nmax_per_question = 6",
    ));
    files(&p);
    let o = generate(&p, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Gold-4 questions: 2 correct in the first round, done (2 requests). Gold-7 questions:
    // never right, asked up to the cap of 6. 6 × 2 + 6 × 6 = 48.
    assert_eq!(proxy.received.load(Ordering::SeqCst), 48, "{}", text(&o));
    let n = per_question(&p);
    assert_eq!(n.len(), 12);
    let tasks = p.read_entry("generate", "tasks.json");
    for e in tasks["train"].as_array().unwrap() {
        let want = if e["answer"] == "4" { 2 } else { 6 };
        assert_eq!(n[e["id"].as_str().unwrap()], want, "{e}");
    }
    // The buckets in the manifest: 6 never failed (12 samples), 6 always failed (36).
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.entry("generate").join("manifest.json")).unwrap(),
    )
    .unwrap();
    let b = &m["metrics"]["budget"];
    assert_eq!(
        (b["asked"].as_u64(), b["rounds"].as_u64()),
        (Some(48), Some(3))
    );
    assert_eq!(b["buckets"][0]["questions"], 6);
    assert_eq!(b["buckets"][0]["samples"], 12);
    assert_eq!(b["buckets"][2]["samples"], 36);
    // Resume: the request log cut to its first 20 lines, generate forced again: exactly the
    // 28 missing requests reach the server, and the rationales are the same.
    let log = p.path().join("cache/requests/smollm2-135m.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 48);
    std::fs::write(&log, lines[..20].join("\n") + "\n").unwrap();
    proxy.received.store(0, Ordering::SeqCst);
    let o = generate(&p, &["--force", "generate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.received.load(Ordering::SeqCst), 28, "{}", text(&o));
    assert_eq!(per_question(&p), n);
}

#[test]
fn prop_difficulty_and_the_total_cap() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    // Failure rates after the first round: 0 (gold 4) and 1 (gold 7), mean 0.5, so gold-4
    // questions want 0 more and gold-7 ones 4: round two asks 2 of each gold-7 question, but
    // the cap of 30 leaves 6 after the first round's 24: the first three gold-7 questions.
    let p = Project::new(&openai_spec(
        proxy.port,
        "kind = \"prop-difficulty\"\ncorrect = 2\nround = 2\nmax_per_question = 6\nmax_requests = 30",
    ));
    files(&p);
    let o = generate(&p, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.received.load(Ordering::SeqCst), 30, "{}", text(&o));
    let n = per_question(&p);
    let tasks = p.read_entry("generate", "tasks.json");
    let counts: Vec<usize> = tasks["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| n[e["id"].as_str().unwrap()])
        .collect();
    assert_eq!(counts, [2, 2, 2, 2, 2, 2, 4, 4, 4, 2, 2, 2]);
}

#[test]
fn the_programmatic_teacher_keeps_what_the_rule_asks() {
    // Unbudgeted with 8 samples, then budgeted (first round 2, uniform 2 correct, rounds of 1,
    // at most 8): the budgeted run keeps, of each question, the first n of the 8 where n is
    // what the rule asks, computed here from the unbudgeted rationales' correctness.
    let base = "[experiment]\nname = \"tiny\"\n[data]\ntask = \"arithmetic\"\ntrain = 30\nvalidation = 2\ntest = 2\n[teacher]\nkind = \"programmatic\"\nwrong_rate = 0.6\n";
    let full = Project::new(&format!("{base}samples = 8\n{REST}"));
    let o = generate(&full, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let tasks = full.read_entry("generate", "tasks.json");
    let gold: BTreeMap<String, String> = tasks["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["answer"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut right: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for r in full
        .read_entry("generate", "rationales.json")
        .as_array()
        .unwrap()
    {
        let q = r["question_id"].as_str().unwrap().to_string();
        let said = morsd::answer::extract(
            morsd::answer::AnswerType::Number,
            r["text"].as_str().unwrap(),
        );
        right
            .entry(q.clone())
            .or_default()
            .push(said.as_deref() == Some(gold[&q].as_str()));
    }
    // The rule: 2 first, then one more while fewer than 2 are right and fewer than 8 asked.
    let want: BTreeMap<String, usize> = right
        .iter()
        .map(|(q, r)| {
            let mut n = 2;
            while r[..n].iter().filter(|&&x| x).count() < 2 && n < 8 {
                n += 1;
            }
            (q.clone(), n)
        })
        .collect();
    assert!(
        want.values().any(|&n| n > 2) && want.values().any(|&n| n == 2),
        "{want:?}"
    );
    let budgeted = Project::new(&format!(
        "{base}samples = 2\n[teacher.budget]\ncorrect = 2\nround = 1\nmax_per_question = 8\n{REST}"
    ));
    let o = generate(&budgeted, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(per_question(&budgeted), want);
    // And the kept rationales are the unbudgeted ones' first n.
    let full_texts: Vec<String> = full
        .read_entry("generate", "rationales.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().into())
        .collect();
    for r in budgeted
        .read_entry("generate", "rationales.json")
        .as_array()
        .unwrap()
    {
        assert!(full_texts.contains(&r["text"].as_str().unwrap().to_string()));
    }
}

#[test]
fn a_budget_is_refused_where_it_cannot_apply() {
    let p = Project::new(&format!(
        "[experiment]\nname = \"tiny\"\n[data]\ntask = \"arithmetic\"\n[teacher]\nsamples = 4\n[teacher.budget]\nkind = \"most\"\n{REST}"
    ));
    let o = generate(&p, &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("teacher.budget.kind"), "{}", text(&o));
    let p = Project::new(&format!(
        "[experiment]\nname = \"tiny\"\n[data]\ntask = \"arithmetic\"\n[teacher]\nsamples = 4\n[teacher.budget]\nmax_per_question = 3\n{REST}"
    ));
    let o = generate(&p, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("teacher.budget.max_per_question"),
        "{}",
        text(&o)
    );
}

#[test]
fn against_the_real_server_the_rounds_follow_the_answers_and_resume_exactly() {
    use common::llama::Server;
    let server = Server::start();
    let proxy = Proxy::start(server.port);
    let p = Project::new(&format!(
        "[experiment]\nname = \"tiny\"\n[data]\ntask = \"arithmetic\"\ntrain = 6\nvalidation = 2\ntest = 2\n[teacher]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{}/v1\"\nmodel = \"smollm2-135m\"\nsamples = 2\nanswer_stage = \"never\"\nmax_tokens = 48\nconcurrency = 2\nmax_retries = 8\nbackoff_s = 0.05\ntimeout_s = 60\n[teacher.budget]\ncorrect = 1\nround = 2\nmax_per_question = 6\n{REST}",
        proxy.port
    ));
    let o = generate(&p, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // 1. Each question's samples, in order, replayed through the rule here: 2 first, then 2
    //    more while none is right, at most 6.
    let tasks = p.read_entry("generate", "tasks.json");
    let gold: BTreeMap<String, String> = tasks["train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().into(),
                e["answer"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut right: BTreeMap<String, Vec<(u64, bool)>> = BTreeMap::new();
    for r in p
        .read_entry("generate", "rationales.json")
        .as_array()
        .unwrap()
    {
        let q = r["question_id"].as_str().unwrap().to_string();
        let k: u64 = r["id"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let said = morsd::answer::extract(
            morsd::answer::AnswerType::Number,
            r["text"].as_str().unwrap(),
        );
        right
            .entry(q.clone())
            .or_default()
            .push((k, said.as_deref() == Some(gold[&q].as_str())));
    }
    let mut asked = 0;
    for (q, mut r) in right {
        r.sort();
        let ok: Vec<bool> = r.iter().map(|x| x.1).collect();
        let mut n = 2;
        while ok[..n].iter().all(|&x| !x) && n < 6 {
            n += 2;
            assert!(
                n <= ok.len(),
                "{q}: the rule asks {n}, the stage asked {}",
                ok.len()
            );
        }
        assert_eq!(n, ok.len(), "{q}: {ok:?}");
        asked += n;
    }
    // 2. The server saw exactly those requests.
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), asked);
    // 3. A resume from a request log cut to 5 lines sends exactly what the log lacks: every
    //    request the resumed rounds ask, but the 5 kept. (A re-asked sample may come back
    //    different from a sampling server, so the rounds after it may differ; what is sent is
    //    still exactly what is missing.)
    let log = p.path().join("cache/requests/smollm2-135m.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), asked);
    std::fs::write(&log, lines[..5].join("\n") + "\n").unwrap();
    proxy.forwarded.store(0, Ordering::SeqCst);
    let o = generate(&p, &["--force", "generate"]);
    assert!(o.status.success(), "{}", text(&o));
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.entry("generate").join("manifest.json")).unwrap(),
    )
    .unwrap();
    let now = m["metrics"]["budget"]["asked"].as_u64().unwrap() as usize;
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        now - 5,
        "{}",
        text(&o)
    );
    let keys: std::collections::BTreeSet<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.len() >= now, "every asked request is in the log once");
}
