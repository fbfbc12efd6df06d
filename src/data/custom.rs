//! A user's own task (`data.task = "custom"`): questions read from the user's JSON-lines files
//! instead of a registry task's benchmark files.
//!
//! ```json
//! {"id": "q1", "question": "Tom has 3 apples and buys 2 more. How many?", "answer": 5}
//! {"question": "Which is a fruit?", "options": ["car", "pear"], "answer": "B"}
//! {"question": "A question nobody has answered yet."}
//! ```
//!
//! `data.questions` holds the training questions; their `answer` is optional (questions without
//! one are labelled by `score.label = "majority"`). `data.test_questions` holds the test
//! questions, each with its `answer` (eval reads it); `data.validation_questions` (optional) the
//! validation questions, each with its `answer`; without it the last `data.validation` training
//! questions *that have an answer* (at most a fifth of them) are the validation set.
//! `data.answer` says how answers are read: `number` (default), `yes-no`, `choice`, `text`,
//! `date`. Gold answers are normalised as the registry tasks' are (`"3.0"` → `3`, `"Yes"` →
//! `yes`, an option's text → its letter). Fields other than `id`, `question`, `answer` and
//! `options` are ignored. Every bad line is an error naming the file and the line.

use super::tasks::choices_suffix;
use crate::answer::{AnswerType, MAX_CHOICES, extract_tail, letter, normalise_number};
use crate::error::{Error, Result};
use crate::spec::raw::DataSpec;
use crate::task::{Example, TaskData};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The `data.task` value of a user's own task (and its name in reports).
pub const TASK: &str = "custom";

/// The `data.answer` values.
pub const ANSWERS: &[&str] = &["number", "yes-no", "choice", "text", "date"];

/// `data.answer` when unset.
pub const DEFAULT_ANSWER: &str = "number";

/// Choices of a `choice` task none of whose questions lists its options (A–E).
const DEFAULT_CHOICES: u8 = 5;

/// A custom task as a spec names it: the answer type and the three question files.
#[derive(Debug, Clone)]
pub struct CustomTask {
    /// One of [`ANSWERS`].
    pub answer: String,
    /// Training questions (`data.questions`).
    pub train: PathBuf,
    /// Validation questions (`data.validation_questions`), if given.
    pub validation: Option<PathBuf>,
    /// Test questions (`data.test_questions`).
    pub test: PathBuf,
}

impl CustomTask {
    /// The question files with their roles (`train`, `validation`, `test`): the stage key's
    /// inputs, keyed by role so moving a file does not change the key.
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut v = vec![("train", self.train.clone())];
        if let Some(p) = &self.validation {
            v.push(("validation", p.clone()));
        }
        v.push(("test", self.test.clone()));
        v
    }
}

/// The custom-task fields of `[data]` that are set: (dotted key, set).
fn custom_fields(d: &DataSpec) -> [(&'static str, bool); 4] {
    [
        ("data.questions", d.questions.is_some()),
        ("data.test_questions", d.test_questions.is_some()),
        (
            "data.validation_questions",
            d.validation_questions.is_some(),
        ),
        ("data.answer", d.answer.is_some()),
    ]
}

/// Spec checks of a task that is not custom: none of the custom fields may be set.
pub fn check_not_custom(d: &DataSpec) -> std::result::Result<(), (&'static str, String)> {
    match custom_fields(d).into_iter().find(|f| f.1) {
        Some((k, _)) => Err((
            k,
            format!(
                "only a custom task reads its questions from files: set data.task = \"{TASK}\" (data.task is `{}`)",
                d.task
            ),
        )),
        None => Ok(()),
    }
}

/// Resolves `[data]` of a custom task: the answer type is known, both required files are
/// named, every named file exists. Errors: (dotted key, message).
pub fn from_spec(d: &DataSpec) -> std::result::Result<CustomTask, (&'static str, String)> {
    // 1. The answer type.
    let answer = d.answer.as_deref().unwrap_or(DEFAULT_ANSWER);
    if !ANSWERS.contains(&answer) {
        return Err((
            "data.answer",
            format!(
                "unknown answer type `{answer}` (known: {})",
                ANSWERS.join(", ")
            ),
        ));
    }
    if d.split.is_some() {
        return Err((
            "data.split",
            "a custom task has no split scheme: its splits are data.questions, data.validation_questions and data.test_questions".into(),
        ));
    }
    // 2. The files: training and test questions are required, and each named one must exist.
    let required = |key: &'static str, v: &Option<String>, what: &str| match v {
        Some(p) => Ok(PathBuf::from(p)),
        None => Err((
            key,
            format!("a custom task needs {key}: a JSON-lines file of {what}"),
        )),
    };
    let train = required(
        "data.questions",
        &d.questions,
        "training questions (`{\"question\": ..., \"answer\"?: ...}` per line)",
    )?;
    let test = required(
        "data.test_questions",
        &d.test_questions,
        "test questions, each with its gold `answer` (eval reads them)",
    )?;
    let validation = d.validation_questions.as_ref().map(PathBuf::from);
    for (key, path) in [
        ("data.questions", Some(&train)),
        ("data.validation_questions", validation.as_ref()),
        ("data.test_questions", Some(&test)),
    ] {
        let Some(path) = path else { continue };
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err((key, format!("{} is not a file", path.display()))),
            Err(e) => return Err((key, format!("cannot read {}: {e}", path.display()))),
        }
    }
    Ok(CustomTask {
        answer: answer.to_string(),
        train,
        validation,
        test,
    })
}

/// One question line before its answer is normalised.
struct Line {
    /// 1-based line number.
    line: usize,
    id: Option<String>,
    question: String,
    answer: Option<Value>,
    options: Vec<String>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: format!("line {line}: {msg}"),
    }
}

/// Reads one question file: one JSON object per non-blank line.
fn read_lines(path: &Path) -> Result<Vec<Line>> {
    let text = super::formats::read_text(path).map_err(|message| Error::Input {
        path: path.to_path_buf(),
        message,
    })?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // 1. A JSON object.
        let v: Value =
            serde_json::from_str(raw).map_err(|e| bad(path, n, format!("not JSON: {e}")))?;
        let Value::Object(mut m) = v else {
            return Err(bad(path, n, "not a JSON object"));
        };
        // 2. Its fields: `question` (required), `id`, `answer`, `options`.
        let question = match m.remove("question") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::String(_)) => return Err(bad(path, n, "empty `question`")),
            Some(_) => return Err(bad(path, n, "`question` must be a string")),
            None => return Err(bad(path, n, "no field `question`")),
        };
        let id = match m.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(Value::Number(x)) if x.is_u64() || x.is_i64() => Some(x.to_string()),
            Some(_) => {
                return Err(bad(
                    path,
                    n,
                    "`id` must be a non-empty string or an integer",
                ));
            }
        };
        let answer = match m.remove("answer") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(a) => Some(a),
        };
        let options = match m.remove("options") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|o| match o {
                    Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                    _ => Err(bad(
                        path,
                        n,
                        "`options` must be a list of non-empty strings",
                    )),
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(bad(path, n, "`options` must be a list of strings")),
        };
        if options.len() > MAX_CHOICES {
            return Err(bad(
                path,
                n,
                format!(
                    "{} options, more than the {MAX_CHOICES} letters A-Z",
                    options.len()
                ),
            ));
        }
        out.push(Line {
            line: n,
            id,
            question,
            answer,
            options,
        });
    }
    Ok(out)
}

/// A gold answer normalised for its answer type, as the registry tasks' are.
fn gold(answer: &str, v: &Value, options: &[String]) -> std::result::Result<String, String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(x) => x.to_string(),
        Value::Bool(b) if answer == "yes-no" => (if *b { "yes" } else { "no" }).to_string(),
        other => return Err(format!("`answer` {other} must be a string or a number")),
    };
    match answer {
        "number" => normalise_number(&s).ok_or_else(|| format!("answer {s:?} is not a number")),
        "yes-no" => match s.to_lowercase().as_str() {
            a @ ("yes" | "no") => Ok(a.to_string()),
            _ => Err(format!(
                "answer {s:?} is not yes or no (data.answer = \"yes-no\")"
            )),
        },
        "choice" => {
            let n = if options.is_empty() {
                MAX_CHOICES
            } else {
                options.len()
            };
            let up = s.to_uppercase();
            if let [c] = up.as_bytes()
                && c.is_ascii_uppercase()
                && usize::from(c - b'A') < n
            {
                return Ok(up);
            }
            options
                .iter()
                .position(|o| o.eq_ignore_ascii_case(&s))
                .map(|i| letter(i).to_string())
                .ok_or_else(|| {
                    format!(
                        "answer {s:?} is neither one of the letters A-{} nor the text of an option",
                        letter(n - 1)
                    )
                })
        }
        "date" => extract_tail(AnswerType::Date, &s, &[])
            .ok_or_else(|| format!("answer {s:?} is not a date MM/DD/YYYY")),
        // Free text is compared the way extraction reads it (quotes, periods and white space
        // dropped, lower case), or no rationale could ever match a gold such as "New York".
        _ => extract_tail(AnswerType::Text, &s, &[])
            .ok_or_else(|| format!("answer {s:?} has no text once quotes and periods are dropped")),
    }
}

/// Loads a custom task's splits. `validation`: how many labelled training questions become the
/// validation set when there is no validation file (at most a fifth of the labelled ones).
pub fn load(task: &CustomTask, validation: usize) -> Result<TaskData> {
    // 1. Read the files; each split's questions with their file and line.
    let mut splits: Vec<(&str, &Path, Vec<Line>)> = Vec::new();
    for (role, path) in [
        ("train", Some(&task.train)),
        ("val", task.validation.as_ref()),
        ("test", Some(&task.test)),
    ] {
        if let Some(path) = path {
            splits.push((role, path.as_path(), read_lines(path)?));
        }
    }
    // 2. Options only mean something to a multiple-choice task.
    if task.answer != "choice"
        && let Some((path, l)) = splits
            .iter()
            .find_map(|(_, p, ls)| ls.iter().find(|l| !l.options.is_empty()).map(|l| (p, l)))
    {
        return Err(bad(
            path,
            l.line,
            format!(
                "`options` are for multiple-choice questions: set data.answer = \"choice\" (it is `{}`)",
                task.answer
            ),
        ));
    }
    // 3. Examples: ids unique over all files, gold answers normalised; validation and test
    //    questions must have one.
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let mut train = Vec::new();
    let mut val = None;
    let mut test = Vec::new();
    for (role, path, lines) in splits {
        let mut examples = Vec::with_capacity(lines.len());
        for (i, l) in lines.into_iter().enumerate() {
            let id = l.id.unwrap_or_else(|| format!("{role}-{i}"));
            if let Some((p, n)) = seen.get(&id) {
                return Err(bad(
                    path,
                    l.line,
                    format!(
                        "id `{id}` is already the id of {} line {n} (ids must be unique over all question files)",
                        p.display()
                    ),
                ));
            }
            seen.insert(id.clone(), (path.to_path_buf(), l.line));
            let answer = match &l.answer {
                Some(v) => gold(&task.answer, v, &l.options).map_err(|m| bad(path, l.line, m))?,
                None if role == "train" => String::new(),
                None => {
                    let what = if role == "test" {
                        "test questions need gold answers (eval reads them)"
                    } else {
                        "validation questions need gold answers (checkpoint choice reads them)"
                    };
                    return Err(bad(path, l.line, format!("no `answer`: {what}")));
                }
            };
            let question = if l.options.is_empty() {
                l.question
            } else {
                format!("{}{}", l.question, choices_suffix(&l.options))
            };
            examples.push(Example {
                id,
                question,
                answer,
                options: l.options,
                problem: None,
            });
        }
        match role {
            "train" => train = examples,
            "val" => val = Some(examples),
            _ => test = examples,
        }
    }
    // 4. Without a validation file: the last labelled training questions (never unlabelled
    //    ones, never test questions).
    let validation = match val {
        Some(v) => v,
        None => {
            let labelled: Vec<usize> = (0..train.len())
                .filter(|&i| !train[i].answer.is_empty())
                .collect();
            let k = validation.min(labelled.len() / 5);
            let carve: std::collections::HashSet<usize> =
                labelled[labelled.len() - k..].iter().copied().collect();
            let (mut kept, mut carved) = (Vec::new(), Vec::new());
            for (i, e) in std::mem::take(&mut train).into_iter().enumerate() {
                if carve.contains(&i) {
                    carved.push(e);
                } else {
                    kept.push(e);
                }
            }
            train = kept;
            carved
        }
    };
    // 5. The answer type; a choice task has as many letters as its longest option list.
    let answer = match task.answer.as_str() {
        "number" => AnswerType::Number,
        "yes-no" => AnswerType::YesNo,
        "choice" => AnswerType::Choice(
            train
                .iter()
                .chain(&validation)
                .chain(&test)
                .map(|e| e.options.len() as u8)
                .max()
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_CHOICES),
        ),
        "date" => AnswerType::Date,
        _ => AnswerType::Text,
    };
    // 6. A choice question without options of its own takes the task's letters: its gold
    //    must be one of them, or no answer could ever match it.
    if let AnswerType::Choice(n) = answer {
        for (split, path) in [
            (&train, &task.train),
            (&test, &task.test),
            (&validation, task.validation.as_ref().unwrap_or(&task.train)),
        ] {
            if let Some(e) = split.iter().find(|e| {
                e.options.is_empty() && e.answer.len() == 1 && e.answer.as_bytes()[0] >= b'A' + n
            }) {
                return Err(Error::Input {
                    path: path.clone(),
                    message: format!(
                        "question {}: answer {} is beyond the task's letters A-{} (its longest option list; give the question its `options`)",
                        e.id,
                        e.answer,
                        letter(usize::from(n) - 1)
                    ),
                });
            }
        }
    }
    Ok(TaskData {
        task: TASK.into(),
        answer,
        train,
        validation,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(dir: &Path, answer: &str, train: &str, val: Option<&str>, test: &str) -> CustomTask {
        let w = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        CustomTask {
            answer: answer.into(),
            train: w("train.jsonl", train),
            validation: val.map(|v| w("val.jsonl", v)),
            test: w("test.jsonl", test),
        }
    }

    fn err(t: &CustomTask) -> String {
        load(t, 60).unwrap_err().to_string()
    }

    #[test]
    fn questions_answers_ids_and_the_carved_validation() {
        let dir = tempfile::tempdir().unwrap();
        // Ten training questions, five labelled: the last labelled one becomes validation.
        let train: String = (0..10)
            .map(|i| {
                if i % 2 == 0 {
                    format!("{{\"question\": \"q{i}\", \"answer\": \"{i}.0\"}}\n")
                } else {
                    format!("{{\"question\": \"q{i}\"}}\n\n")
                }
            })
            .collect();
        let t = task(
            dir.path(),
            "number",
            &train,
            None,
            "{\"id\": 7, \"question\": \"t\", \"answer\": \"$1,200\"}\n",
        );
        let d = load(&t, 60).unwrap();
        assert_eq!(d.task, "custom");
        assert_eq!(d.answer, AnswerType::Number);
        assert_eq!(d.validation.len(), 1);
        assert_eq!(
            (d.validation[0].id.as_str(), d.validation[0].answer.as_str()),
            ("train-8", "8")
        );
        assert_eq!(d.train.len(), 9);
        assert_eq!(
            (d.train[0].id.as_str(), d.train[0].answer.as_str()),
            ("train-0", "0")
        );
        assert_eq!(
            (d.train[1].id.as_str(), d.train[1].answer.as_str()),
            ("train-1", "")
        );
        assert_eq!(
            (d.test[0].id.as_str(), d.test[0].answer.as_str()),
            ("7", "1200")
        );
        // Nothing labelled: no validation question is carved from training.
        let t = task(
            dir.path(),
            "number",
            "{\"question\": \"a\"}\n",
            None,
            "{\"question\": \"t\", \"answer\": 1}\n",
        );
        let d = load(&t, 60).unwrap();
        assert_eq!((d.train.len(), d.validation.len()), (1, 0));
    }

    #[test]
    fn answers_are_normalised_per_type() {
        let dir = tempfile::tempdir().unwrap();
        let test = "{\"question\": \"t\", \"answer\": \"Yes\"}\n{\"question\": \"u\", \"answer\": false}\n";
        let t = task(
            dir.path(),
            "yes-no",
            "{\"question\": \"a\"}\n",
            Some("{\"question\": \"v\", \"answer\": \"NO\"}"),
            test,
        );
        let d = load(&t, 60).unwrap();
        assert_eq!(d.answer, AnswerType::YesNo);
        assert_eq!(
            (d.test[0].answer.as_str(), d.test[1].answer.as_str()),
            ("yes", "no")
        );
        assert_eq!(
            (d.validation[0].id.as_str(), d.validation[0].answer.as_str()),
            ("val-0", "no")
        );
        // Choices: a letter or an option's text; the question shows the options.
        let test = "{\"question\": \"Which?\", \"options\": [\"car\", \"pear\", \"bus\"], \"answer\": \"Pear\"}\n{\"question\": \"Which?\", \"answer\": \"c\"}\n";
        let t = task(dir.path(), "choice", "{\"question\": \"a\"}\n", None, test);
        let d = load(&t, 60).unwrap();
        assert_eq!(d.answer, AnswerType::Choice(3));
        assert_eq!(d.test[0].answer, "B");
        assert_eq!(
            d.test[0].question,
            "Which? Answer Choices: (A) car (B) pear (C) bus"
        );
        assert_eq!(d.test[1].answer, "C");
        // A letter beyond the task's (its longest option list: A-C) could never be extracted.
        let t = task(
            dir.path(),
            "choice",
            "{\"question\": \"a\"}\n",
            None,
            &test.replace("\"c\"", "\"d\""),
        );
        let e = load(&t, 60).unwrap_err().to_string();
        assert!(
            e.contains("test.jsonl") && e.contains("beyond the task's letters A-C"),
            "{e}"
        );
        let t = task(
            dir.path(),
            "date",
            "{\"question\": \"a\"}\n",
            None,
            "{\"question\": \"t\", \"answer\": \"1/2/2020\"}\n",
        );
        assert_eq!(load(&t, 60).unwrap().test[0].answer, "01/02/2020");
        let t = task(
            dir.path(),
            "text",
            "{\"question\": \"a\"}\n",
            None,
            "{\"question\": \"t\", \"answer\": \" New York. \"}\n",
        );
        // Free text as extraction reads it: "The answer is New York." gives "newyork".
        assert_eq!(load(&t, 60).unwrap().test[0].answer, "newyork");
        assert_eq!(
            crate::answer::extract_with_options(
                AnswerType::Text,
                "So. The answer is New York.",
                &[]
            )
            .as_deref(),
            Some("newyork")
        );
    }

    #[test]
    fn every_bad_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "{\"question\": \"t\", \"answer\": 1}\n";
        /// (answer type, train text, test text, message part)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str);
        let cases: &[Case] = &[
            (
                "number",
                "{\"question\": \"a\"}\n",
                "{\"question\": \"t\", \"answer\": 1}\n\n{\"question\": \"u\"}\n",
                "test.jsonl: line 3: no `answer`: test questions need gold answers",
            ),
            (
                "number",
                "{\"question\": \"a\"}\n{oops\n",
                ok,
                "train.jsonl: line 2: not JSON",
            ),
            (
                "number",
                "[1]\n",
                ok,
                "train.jsonl: line 1: not a JSON object",
            ),
            (
                "number",
                "{\"answer\": 3}\n",
                ok,
                "train.jsonl: line 1: no field `question`",
            ),
            (
                "number",
                "{\"question\": 3}\n",
                ok,
                "train.jsonl: line 1: `question` must be a string",
            ),
            (
                "number",
                "{\"question\": \"a\", \"answer\": \"many\"}\n",
                ok,
                "train.jsonl: line 1: answer \"many\" is not a number",
            ),
            (
                "number",
                "{\"question\": \"a\", \"answer\": [1]}\n",
                ok,
                "train.jsonl: line 1: `answer` [1] must be a string or a number",
            ),
            (
                "number",
                "{\"question\": \"a\", \"id\": \"x\"}\n",
                "{\"question\": \"t\", \"id\": \"x\", \"answer\": 1}\n",
                "test.jsonl: line 1: id `x` is already the id of",
            ),
            (
                "number",
                "{\"question\": \"a\", \"id\": 1.5}\n",
                ok,
                "train.jsonl: line 1: `id` must be",
            ),
            (
                "number",
                "{\"question\": \"a\", \"options\": [\"x\"]}\n",
                ok,
                "train.jsonl: line 1: `options` are for multiple-choice questions",
            ),
            (
                "choice",
                "{\"question\": \"a\", \"options\": \"x\"}\n",
                ok,
                "train.jsonl: line 1: `options` must be a list",
            ),
            (
                "choice",
                "{\"question\": \"a\", \"options\": [\"x\", \"y\"], \"answer\": \"C\"}\n",
                ok,
                "train.jsonl: line 1: answer \"C\" is neither one of the letters A-B",
            ),
            (
                "yes-no",
                "{\"question\": \"a\", \"answer\": \"maybe\"}\n",
                ok,
                "train.jsonl: line 1: answer \"maybe\" is not yes or no",
            ),
            (
                "date",
                "{\"question\": \"a\", \"answer\": \"soon\"}\n",
                ok,
                "train.jsonl: line 1: answer \"soon\" is not a date",
            ),
        ];
        for (answer, train, test, want) in cases {
            let t = task(dir.path(), answer, train, None, test);
            let e = err(&t);
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
        let options: Vec<String> = (0..27).map(|i| format!("\"o{i}\"")).collect();
        let t = task(
            dir.path(),
            "choice",
            &format!(
                "{{\"question\": \"a\", \"options\": [{}]}}\n",
                options.join(",")
            ),
            None,
            ok,
        );
        assert!(err(&t).contains("line 1: 27 options"), "{}", err(&t));
        // A validation file's questions need answers too.
        let t = task(
            dir.path(),
            "number",
            "{\"question\": \"a\"}\n",
            Some("{\"question\": \"v\"}\n"),
            ok,
        );
        assert!(
            err(&t)
                .contains("val.jsonl: line 1: no `answer`: validation questions need gold answers"),
            "{}",
            err(&t)
        );
        // Bytes that are not UTF-8, and a missing file.
        std::fs::write(&t.train, b"{\"question\": \"\xff\"}\n").unwrap();
        assert!(
            err(&t).contains("train.jsonl: line 1, column 15: not valid UTF-8"),
            "{}",
            err(&t)
        );
        std::fs::remove_file(&t.train).unwrap();
        assert!(err(&t).contains("train.jsonl"), "{}", err(&t));
    }
}
