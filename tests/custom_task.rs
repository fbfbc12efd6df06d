//! A user's own task (`data.task = "custom"`, issue 16): unlabelled training questions from the
//! user's JSONL file are distilled end to end with majority labels, and eval reads the gold
//! answers of the user's test file.
//!
//! The teacher is the fault proxy's canned two-stage teacher (`common/proxy.rs`,
//! `Fault::TwoStage`): every rationale says 4, and its answer stage says 5 for an even seed and
//! 6 for an odd one, so three samples vote 5, 6, 5 and every question's majority label is 5,
//! whatever its gold. No real LLM is needed. A `file`-teacher variant reads the rationales from
//! a JSONL file instead; the error cases need no server at all.

mod common;
use common::proxy::{Fault, Proxy};
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

const STUDENT: &str = r#"
[student]
d_model = 32
layers = 1
heads = 2
max_seq_len = 96
vocab_size = 320
[score]
warmup_steps = 2
batch_size = 16
{score}
[select]
strategy = "correct"
per_question = 2
[train]
steps = 6
batch_size = 8
warmup_steps = 2
eval_every = 3
[eval]
max_new_tokens = 12
batch_size = 16
"#;

/// A custom-task spec: `data` lines (besides `task`), `teacher` lines, `score` lines.
fn spec(data: &str, teacher: &str, score: &str) -> String {
    format!(
        "[experiment]\nname = \"tiny\"\n[data]\ntask = \"custom\"\n{data}\n[teacher]\n{teacher}\n{}",
        STUDENT.replace("{score}", score)
    )
}

fn openai(port: u16, samples: usize) -> String {
    format!(
        "kind = \"openai\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"smollm2-135m\"\nsamples = {samples}\nmax_tokens = 48\nconcurrency = 2\nmax_retries = 2\nbackoff_s = 0.05\ntimeout_s = 30"
    )
}

fn write(p: &Project, name: &str, text: &str) {
    std::fs::write(p.path().join(name), text).unwrap();
}

fn run(p: &Project, extra: &[&str]) -> std::process::Output {
    let spec = p.spec();
    let mut args = vec!["run", spec.to_str().unwrap()];
    args.extend(extra);
    p.morsd(&args)
}

/// Twelve training questions: the first six without an answer, the last six with gold 7 (which
/// no teacher sample says); test questions with gold 5, 3.0 and $1,000.
fn question_files(p: &Project) {
    let train: String = (0..12)
        .map(|i| match i {
            0 => "{\"id\": \"mine-0\", \"question\": \"Ann has 2 apples and gets 2 more. How many now?\"}\n".to_string(),
            i if i < 6 => format!("{{\"question\": \"Box {i} holds 2 and 2 more. How many?\"}}\n"),
            i => format!("{{\"question\": \"Bag {i} holds 3 and 4 more. How many?\", \"answer\": 7}}\n"),
        })
        .collect();
    write(p, "train.jsonl", &train);
    write(
        p,
        "test.jsonl",
        "{\"question\": \"Cat has 2 and 3 more. How many?\", \"answer\": \"5\"}\n\n{\"id\": \"t-b\", \"question\": \"Dog has 1 and 2. How many?\", \"answer\": \"3.0\"}\n{\"question\": \"Eel has 999 and 1. How many?\", \"answer\": \"$1,000\"}\n",
    );
}

#[test]
fn unlabelled_questions_are_distilled_with_majority_labels() {
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    let p = Project::new(&spec(
        "questions = \"train.jsonl\"\ntest_questions = \"test.jsonl\"\nvalidation = 2",
        &openai(proxy.port, 3),
        "label = \"majority\"",
    ));
    question_files(&p);
    // 1. The whole pipeline runs: generate, score, select, train, eval.
    let o = run(&p, &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("majority labels: 11 questions labelled, 0 ties")
            && out.contains("the majority label equals gold on 0 of 5"),
        "{out}"
    );
    // 2. The splits: the last labelled training question is the validation set (six labelled,
    //    a fifth of them, at most data.validation); ids from the file or by position.
    let tasks = p.read_entry("generate", "tasks.json");
    assert_eq!(tasks["task"], "custom");
    assert_eq!(tasks["answer"], "number");
    let ids = |split: &str| -> Vec<String> {
        tasks[split]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("validation"), ["train-11"]);
    assert_eq!(tasks["validation"][0]["answer"], "7");
    assert_eq!(ids("train").len(), 11);
    assert_eq!(ids("train")[..2], ["mine-0", "train-1"]);
    assert_eq!(ids("test"), ["test-0", "t-b", "test-2"]);
    // 3. Only training questions were sent: 11 × 3 samples × 2 stages.
    assert_eq!(proxy.received.load(Ordering::SeqCst), 66);
    // 4. labels.json: every training question labelled 5 by 2 of its 3 votes, gold or not.
    let labels = p.read_entry("score", "labels.json");
    let labels = labels.as_array().unwrap();
    assert_eq!(labels.len(), 11);
    for l in labels {
        assert_eq!(l["vote"]["status"], "majority", "{l}");
        assert_eq!(l["vote"]["answer"], "5", "{l}");
        assert_eq!(l["vote"]["votes"], 2, "{l}");
        let qid = l["question_id"].as_str().unwrap();
        let gold = match qid
            .strip_prefix("train-")
            .map(|n| n.parse::<usize>().unwrap())
        {
            Some(n) if n >= 6 => "7",
            _ => "",
        };
        assert_eq!(l["gold"], gold, "{l}");
    }
    // 5. score's `correct` follows the majority (5), not the file's gold (7): the samples
    //    answering 5 are correct, those answering 6 are not.
    let scores = p.read_entry("score", "scores.json");
    let scores = scores.as_array().unwrap();
    assert_eq!(scores.len(), 33);
    let mut by_answer: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for s in scores {
        assert_eq!(s["correct"], s["extracted"] == "5", "{s}");
        *by_answer
            .entry((
                s["extracted"].as_str().unwrap().into(),
                s["correct"].as_bool().unwrap(),
            ))
            .or_default() += 1;
    }
    assert_eq!(
        by_answer.into_iter().collect::<Vec<_>>(),
        [
            (("5".to_string(), true), 22),
            (("6".to_string(), false), 11)
        ]
    );
    // 6. Eval reads the test file's gold, normalised.
    let preds = p.read_entry("eval", "predictions.json");
    let gold: Vec<(&str, &str)> = preds
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["id"].as_str().unwrap(), x["gold"].as_str().unwrap()))
        .collect();
    assert_eq!(gold, [("test-0", "5"), ("t-b", "3"), ("test-2", "1000")]);
    // 7. The files' content is in the generate key, their paths are not: the same questions
    //    under another name reuse every entry; a changed test answer rebuilds generate.
    std::fs::copy(p.path().join("train.jsonl"), p.path().join("moved.jsonl")).unwrap();
    let o = run(&p, &["--set", "data.questions=\"moved.jsonl\""]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(executed(&p.runs_json("tiny"))[0].is_empty(), "{}", text(&o));
    write(
        &p,
        "test.jsonl",
        "{\"question\": \"Cat has 2 and 3 more. How many?\", \"answer\": 6}\n",
    );
    let o = run(&p, &["--until", "generate"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("ran generate") && out.contains("1 stage instances executed"),
        "{out}"
    );
}

#[test]
fn recorded_rationales_of_a_custom_task_are_joined_by_id_or_question() {
    let p = Project::new(&spec(
        "questions = \"train.jsonl\"\ntest_questions = \"test.jsonl\"\nvalidation_questions = \"val.jsonl\"\nanswer = \"yes-no\"",
        "kind = \"file\"\njsonl = [\"rationales.jsonl\"]",
        "label = \"majority\"",
    ));
    write(
        &p,
        "train.jsonl",
        "{\"id\": \"c1\", \"question\": \"A coin is heads up. Nobody flips it. Is it heads up?\"}\n{\"question\": \"A coin is heads up. Ann flips it. Is it heads up?\"}\n",
    );
    write(
        &p,
        "val.jsonl",
        "{\"question\": \"A coin is heads up. Bo flips it twice. Is it heads up?\", \"answer\": \"Yes\"}\n",
    );
    write(
        &p,
        "test.jsonl",
        "{\"question\": \"A coin is heads up. Cy flips it. Is it heads up?\", \"answer\": false}\n",
    );
    // c1 by id: yes, yes, no → yes. The second by its text: no, no → no. One row matches nothing.
    write(
        &p,
        "rationales.jsonl",
        concat!(
            "{\"id\": \"c1\", \"rationale\": \"Nobody flipped it. So the answer is yes.\"}\n",
            "{\"id\": \"c1\", \"rationale\": \"It stays heads up.\", \"answer_text\": \" Yes.\"}\n",
            "{\"id\": \"c1\", \"rationale\": \"Hmm. So the answer is no.\"}\n",
            "{\"question\": \"A coin is heads up. Ann flips it. Is it heads up?\", \"rationale\": \"One flip. So the answer is no.\"}\n",
            "{\"question\": \"a coin is heads up. ann flips it. is it heads up\", \"rationale\": \"Odd flips. So the answer is no.\"}\n",
            "{\"question\": \"Not one of the questions.\", \"rationale\": \"So the answer is yes.\"}\n",
        ),
    );
    let o = run(&p, &["--until", "score"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("rationales.jsonl: rows 6, joined to training 5, held out (validation/test) 0, unmatched 1")
            && out.contains("line 6: question not in the task"),
        "{out}"
    );
    let tasks = p.read_entry("generate", "tasks.json");
    assert_eq!(tasks["answer"], "yes-no");
    assert_eq!(tasks["validation"][0]["answer"], "yes");
    assert_eq!(tasks["test"][0]["answer"], "no");
    let labels = p.read_entry("score", "labels.json");
    let by_q: BTreeMap<&str, &str> = labels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["question_id"].as_str().unwrap(),
                l["vote"]["answer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_q, BTreeMap::from([("c1", "yes"), ("train-1", "no")]));
    let scores = p.read_entry("score", "scores.json");
    for s in scores.as_array().unwrap() {
        assert_eq!(
            s["correct"],
            s["extracted"] == by_q[s["question_id"].as_str().unwrap()],
            "{s}"
        );
    }
    // Without the JSONL file the file teacher has nothing to read: a spec error.
    write(
        &p,
        "experiments/tiny.toml",
        &spec(
            "questions = \"train.jsonl\"\ntest_questions = \"test.jsonl\"\nanswer = \"yes-no\"",
            "kind = \"file\"",
            "label = \"majority\"",
        ),
    );
    let o = run(&p, &["--until", "generate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`teacher.jsonl`"), "{}", text(&o));
}

#[test]
fn bad_custom_inputs_are_clear_errors() {
    // A proxy that would answer, to show that no request is sent before the inputs are checked.
    let proxy = Proxy::start(0);
    *proxy.always.lock().unwrap() = Some(Fault::TwoStage);
    let files = "questions = \"train.jsonl\"\ntest_questions = \"test.jsonl\"";
    let case = |data: &str, teacher: &str, score: &str, test: Option<&str>| {
        let p = Project::new(&spec(data, teacher, score));
        question_files(&p);
        if let Some(t) = test {
            write(&p, "test.jsonl", t);
        }
        let o = run(&p, &["--until", "generate"]);
        (p, o)
    };
    let teacher = openai(proxy.port, 3);
    // 1. Unlabelled training questions with gold labels: the error says what to do.
    let (_p, o) = case(files, &teacher, "", None);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("6 of 11 training questions have no gold answer")
            && out.contains("set score.label = \"majority\""),
        "{out}"
    );
    // 2. A test question without its answer: the file and the line.
    let (_p, o) = case(
        files,
        &teacher,
        "label = \"majority\"",
        Some("{\"question\": \"q\", \"answer\": 1}\n{\"question\": \"r\"}\n"),
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("test.jsonl: line 2: no `answer`: test questions need gold answers"),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(proxy.received.load(Ordering::SeqCst), 0);
    // 3. Spec errors (exit 2) naming the field: a missing file, a missing test file, an unknown
    //    answer type, custom fields on another task, a teacher that cannot serve a custom task.
    let cases: Vec<(String, String, &str)> = vec![
        (
            "questions = \"nope.jsonl\"\ntest_questions = \"test.jsonl\"".into(),
            teacher.clone(),
            "`data.questions`: line 5, column 1: cannot read nope.jsonl",
        ),
        (
            "questions = \"train.jsonl\"".into(),
            teacher.clone(),
            "`data.test_questions`: a custom task needs data.test_questions",
        ),
        (
            format!("{files}\nanswer = \"float\""),
            teacher.clone(),
            "unknown answer type `float` (known: number, yes-no, choice, text, date)",
        ),
        (
            format!("{files}\nsplit = \"mcc-kd\""),
            teacher.clone(),
            "`data.split`",
        ),
        (
            files.into(),
            "kind = \"programmatic\"".into(),
            "`teacher.kind`",
        ),
        (
            files.into(),
            format!("{teacher}\nprompt = \"few-shot-cot\""),
            "`teacher.prompt`",
        ),
    ];
    for (data, teacher, want) in &cases {
        let (_p, o) = case(data, teacher, "label = \"majority\"", None);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(want), "{want:?} not in {}", text(&o));
    }
    let p =
        Project::new(&TINY.replace("steps = [1, 1]", "steps = [1, 1]\nquestions = \"q.jsonl\""));
    let o = run(&p, &["--until", "generate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`data.questions`") && text(&o).contains("set data.task = \"custom\""),
        "{}",
        text(&o)
    );
    assert_eq!(proxy.received.load(Ordering::SeqCst), 0);
}
