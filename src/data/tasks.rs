//! Loading a real task: the benchmark file(s) under the data root in their upstream layout,
//! then a split scheme, giving train / validation / test examples.

use super::registry::{Layout, SplitScheme, TaskDef};
use crate::answer::{AnswerType, MAX_CHOICES, letter, normalise_number};
use crate::error::{Error, Result};
use crate::task::{Example, TaskData};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One benchmark item before splitting.
#[derive(Debug, Clone)]
pub struct Item {
    /// The question as the student sees it (choices appended for multiple choice).
    pub question: String,
    /// Gold answer, normalised.
    pub answer: String,
    /// Option texts (multiple choice), in letter order.
    pub options: Vec<String>,
}

fn input_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: msg.to_string(),
    }
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| input_err(path, format!("cannot read: {e} (is the data root right?)")))?;
    String::from_utf8(bytes).map_err(|e| {
        input_err(
            path,
            super::formats::utf8_message(e.as_bytes(), e.utf8_error()),
        )
    })
}

/// JSON, or JSON lines (errors name the line).
fn json_or_lines(path: &Path) -> Result<Vec<Value>> {
    let text = read(path)?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(match v {
            Value::Array(a) => a,
            other => vec![other],
        });
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| input_err(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// A JSON object's entries in file order (serde_json's map would sort them).
struct Ordered(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of scores")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, f64>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The key order of every BIG-bench example's `target_scores`, read from the text: a
/// `serde_json::Value` map is sorted by key, unless a dependency switches on serde_json's
/// `preserve_order` feature, so neither can be relied on for the letters A, B, C, ...
#[derive(Deserialize)]
struct BigBenchKeys {
    #[serde(default)]
    examples: Vec<ScoreKeys>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScoreKeys {
    target_scores: Option<KeysInOrder>,
}

/// The keys of a JSON object in file order; anything else gives none (never an error).
struct KeysInOrder(Vec<String>);

impl<'de> Deserialize<'de> for KeysInOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<KeysInOrder, A::Error> {
                let mut out = Vec::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    out.push(k);
                }
                Ok(KeysInOrder(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<KeysInOrder, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(KeysInOrder(vec![]))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
            fn visit_unit<E>(self) -> std::result::Result<KeysInOrder, E> {
                Ok(KeysInOrder(vec![]))
            }
        }
        d.deserialize_any(V)
    }
}

/// " Answer Choices: (A) x (B) y", the suffix a multiple-choice question is shown with.
pub(crate) fn choices_suffix(options: &[String]) -> String {
    let parts: Vec<String> = options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("({}) {o}", letter(i)))
        .collect();
    format!(" Answer Choices: {}", parts.join(" "))
}

/// A gold multiple-choice letter (`a` → `A`): one of the options' letters, or any of A–Z
/// where the item lists none.
fn choice_letter(path: &Path, i: usize, gold: &str, options: &[String]) -> Result<String> {
    let g = gold.trim().to_uppercase();
    let n = if options.is_empty() {
        MAX_CHOICES
    } else {
        options.len()
    };
    match g.as_bytes() {
        [c] if c.is_ascii_uppercase() && usize::from(c - b'A') < n => Ok(g),
        _ => Err(input_err(
            path,
            format!(
                "item {i}: answer {gold:?} is not one of the letters A-{}",
                letter(n - 1)
            ),
        )),
    }
}

/// Options are lettered A–Z: more than [`MAX_CHOICES`] is an error naming the item.
fn check_choices(path: &Path, what: &str, options: &[String]) -> Result<()> {
    if options.len() > MAX_CHOICES {
        return Err(input_err(
            path,
            format!(
                "{what}: {} options, more than the {MAX_CHOICES} letters A-Z",
                options.len()
            ),
        ));
    }
    Ok(())
}

fn field<'a>(path: &Path, i: usize, v: &'a Value, name: &str) -> Result<&'a Value> {
    v.get(name).ok_or_else(|| {
        input_err(
            path,
            format!("item {i}: no field `{name}` (is this the right file for the task?)"),
        )
    })
}

fn num(path: &Path, i: usize, v: &Value) -> Result<String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if !a.is_empty() => return num(path, i, &a[0]),
        _ => {
            return Err(input_err(
                path,
                format!("item {i}: answer {v} is not a number"),
            ));
        }
    };
    normalise_number(&s)
        .ok_or_else(|| input_err(path, format!("item {i}: answer {s:?} is not a number")))
}

/// Loads every item of a task's benchmark, in file order (train file first where there are two).
pub fn load_items(task: &TaskDef, root: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for rel in task.files {
        items.extend(file_items(task, &root.join(rel))?);
    }
    Ok(items)
}

/// The items of one benchmark file of a task.
fn file_items(task: &TaskDef, path: &Path) -> Result<Vec<Item>> {
    let path = path.to_path_buf();
    let mut items = Vec::new();
    let mut key_order: Vec<ScoreKeys> = Vec::new();
    let text_items: Vec<Value> = match task.layout {
        Layout::Examples | Layout::BigBench => {
            let text = read(&path)?;
            let v: Value = serde_json::from_str(&text).map_err(|e| input_err(&path, e))?;
            if task.layout == Layout::BigBench {
                // Where this fails (an example that is not an object) the letters follow the
                // `Value`'s order; that example is an error below anyway.
                key_order = serde_json::from_str::<BigBenchKeys>(&text)
                    .map(|b| b.examples)
                    .unwrap_or_default();
            }
            v.get("examples")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| input_err(&path, "no `examples` list"))?
        }
        _ => json_or_lines(&path)?,
    };
    for (i, v) in text_items.iter().enumerate() {
        let s = |name: &str| -> Result<String> {
            Ok(field(&path, i, v, name)?
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string())
        };
        let item = match task.layout {
            Layout::Svamp => Item {
                question: format!(
                    "{} {}",
                    s("Body")?.trim_end_matches(['.', ' ']),
                    s("Question")?
                )
                .replace(" .", "."),
                answer: num(&path, i, field(&path, i, v, "Answer")?)?,
                options: vec![],
            },
            Layout::Mawps => Item {
                question: s("sQuestion")?,
                answer: num(&path, i, field(&path, i, v, "lSolutions")?)?,
                options: vec![],
            },
            Layout::Gsm8k => {
                let a = s("answer")?;
                let gold = a
                    .rsplit("####")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .replace(',', "");
                Item {
                    question: s("question")?,
                    answer: normalise_number(&gold)
                        .ok_or_else(|| input_err(&path, format!("line {}: no `#### N`", i + 1)))?,
                    options: vec![],
                }
            }
            Layout::Aqua => {
                let options: Vec<String> = field(&path, i, v, "options")?
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|o| o.get(2..).unwrap_or(o).trim().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                check_choices(&path, &format!("item {i}"), &options)?;
                Item {
                    question: format!("{}{}", s("question")?, choices_suffix(&options)),
                    answer: choice_letter(&path, i, &s("correct")?, &options)?,
                    options,
                }
            }
            Layout::Csqa => {
                let q = field(&path, i, v, "question")?;
                let options: Vec<String> = q["choices"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c["text"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                check_choices(&path, &format!("item {i}"), &options)?;
                let stem = q["stem"].as_str().unwrap_or_default();
                Item {
                    question: format!("{stem}{}", choices_suffix(&options)),
                    answer: choice_letter(&path, i, &s("answerKey")?, &options)?,
                    options,
                }
            }
            Layout::Examples => {
                let answer = s("answer")?.to_lowercase();
                Item {
                    question: s("question")?,
                    answer,
                    options: vec![],
                }
            }
            Layout::BigBench => {
                let mut scores: Ordered =
                    serde_json::from_value(field(&path, i, v, "target_scores")?.clone())
                        .map_err(|e| input_err(&path, format!("item {i}: {e}")))?;
                // Letters follow the file's order, as upstream's loaders assign them.
                if let Some(order) = key_order.get(i).and_then(|k| k.target_scores.as_ref()) {
                    let at: std::collections::HashMap<&str, usize> = order
                        .0
                        .iter()
                        .enumerate()
                        .rev()
                        .map(|(j, k)| (k.as_str(), j))
                        .collect();
                    scores
                        .0
                        .sort_by_key(|(k, _)| at.get(k.as_str()).copied().unwrap_or(usize::MAX));
                }
                let best = scores
                    .0
                    .iter()
                    .position(|(_, s)| *s >= 1.0)
                    .ok_or_else(|| input_err(&path, format!("item {i}: no target with score 1")))?;
                let input = s("input")?;
                if task.answer == AnswerType::YesNo {
                    Item {
                        question: input,
                        answer: scores.0[best].0.to_lowercase(),
                        options: vec![],
                    }
                } else {
                    let options: Vec<String> = scores.0.iter().map(|(k, _)| k.clone()).collect();
                    check_choices(&path, &format!("item {i}"), &options)?;
                    Item {
                        question: format!("{input}{}", choices_suffix(&options)),
                        answer: letter(best).to_string(),
                        options,
                    }
                }
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// Fine-tune-CoT's index split of a task.
fn ftc_split_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("fine-tune-cot/split/{name}__default.json"))
}

/// A part (`train`, `dev`, `test`) of the MCC-KD SVAMP split.
fn mcc_kd_path(root: &Path, part: &str) -> PathBuf {
    root.join(format!("svamp-gpt35-multi/{part}.json"))
}

/// A part (`train`, `test`) of a distilling-step-by-step split.
fn dsbs_path(root: &Path, dir: &str, part: &str) -> PathBuf {
    root.join(format!("distill-step-by-step/{dir}/{dir}_{part}.json"))
}

/// The files a task with a split scheme reads (for `data list` and the stage key).
pub fn split_files(task: &TaskDef, scheme: SplitScheme, root: &Path) -> Vec<PathBuf> {
    match scheme {
        SplitScheme::FineTuneCot(n) => {
            let mut v: Vec<PathBuf> = task.files.iter().map(|f| root.join(f)).collect();
            v.push(ftc_split_path(root, n));
            v
        }
        SplitScheme::MccKd => ["train", "dev", "test"]
            .iter()
            .map(|p| mcc_kd_path(root, p))
            .collect(),
        SplitScheme::Dsbs(d) => ["train", "test"]
            .iter()
            .map(|p| dsbs_path(root, d, p))
            .collect(),
        SplitScheme::Gsm8k => task.files.iter().map(|f| root.join(f)).collect(),
    }
}

fn example(split: &str, i: usize, it: Item) -> Example {
    Example {
        id: format!("{split}-{i}"),
        question: it.question,
        answer: it.answer,
        options: it.options,
        problem: None,
    }
}

/// Loads a task's splits. Validation is the scheme's own dev split where it has one, else the
/// last `validation` training questions (never test questions).
pub fn load(
    task: &TaskDef,
    scheme: SplitScheme,
    root: &Path,
    validation: usize,
) -> Result<TaskData> {
    let (mut train, dev, test): (Vec<Item>, Option<Vec<Item>>, Vec<Item>) = match scheme {
        SplitScheme::FineTuneCot(n) => {
            let items = load_items(task, root)?;
            let path = ftc_split_path(root, n);
            let split: Value =
                serde_json::from_str(&read(&path)?).map_err(|e| input_err(&path, e))?;
            let pick = |name: &str| -> Result<Vec<Item>> {
                let idx = split[name]
                    .as_array()
                    .ok_or_else(|| input_err(&path, format!("no `{name}` index list")))?;
                idx.iter()
                    .map(|x| {
                        let i = x.as_u64().unwrap_or(u64::MAX) as usize;
                        items.get(i).cloned().ok_or_else(|| {
                            input_err(&path, format!("index {i} is beyond the {} items of the benchmark files (this split needs files not in the data root)", items.len()))
                        })
                    })
                    .collect()
            };
            (pick("train")?, None, pick("test")?)
        }
        SplitScheme::Gsm8k => (
            file_items(task, &root.join(task.files[0]))?,
            None,
            file_items(task, &root.join(task.files[1]))?,
        ),
        SplitScheme::MccKd => {
            let part = |name: &str| -> Result<Vec<Item>> {
                let path = mcc_kd_path(root, name);
                json_or_lines(&path)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        Ok(Item {
                            question: field(&path, i, v, "instruction")?
                                .as_str()
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                            answer: num(&path, i, field(&path, i, v, "label")?)?,
                            options: vec![],
                        })
                    })
                    .collect()
            };
            (part("train")?, Some(part("dev")?), part("test")?)
        }
        SplitScheme::Dsbs(d) => {
            let part = |name: &str| -> Result<Vec<Item>> {
                let path = dsbs_path(root, d, name);
                json_or_lines(&path)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if d == "svamp" {
                            let label = field(&path, i, v, "label")?.as_str().unwrap_or_default();
                            let answer =
                                crate::answer::eval_expression(label).ok_or_else(|| {
                                    input_err(
                                        &path,
                                        format!(
                                            "line {}: label {label:?} is not an expression",
                                            i + 1
                                        ),
                                    )
                                })?;
                            Ok(Item {
                                question: field(&path, i, v, "input")?
                                    .as_str()
                                    .unwrap_or_default()
                                    .trim()
                                    .to_string(),
                                answer,
                                options: vec![],
                            })
                        } else {
                            let options: Vec<String> = field(&path, i, v, "choices")?
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|c| c.as_str().map(String::from))
                                        .collect()
                                })
                                .unwrap_or_default();
                            check_choices(&path, &format!("line {}", i + 1), &options)?;
                            let ans = field(&path, i, v, "answer")?.as_str().unwrap_or_default();
                            let letter =
                                options.iter().position(|o| o == ans).ok_or_else(|| {
                                    input_err(
                                        &path,
                                        format!("line {}: answer {ans:?} is not a choice", i + 1),
                                    )
                                })?;
                            let q = field(&path, i, v, "question")?
                                .as_str()
                                .unwrap_or_default()
                                .to_string();
                            Ok(Item {
                                question: format!("{q}{}", choices_suffix(&options)),
                                answer: self::letter(letter).to_string(),
                                options,
                            })
                        }
                    })
                    .collect()
            };
            (part("train")?, None, part("test")?)
        }
    };
    let dev = match dev {
        Some(d) => d,
        None => {
            let k = validation.min(train.len() / 5);
            train.split_off(train.len() - k)
        }
    };
    Ok(TaskData {
        task: task.name.to_string(),
        answer: task.answer,
        train: train
            .into_iter()
            .enumerate()
            .map(|(i, it)| example("train", i, it))
            .collect(),
        validation: dev
            .into_iter()
            .enumerate()
            .map(|(i, it)| example("val", i, it))
            .collect(),
        test: test
            .into_iter()
            .enumerate()
            .map(|(i, it)| example("test", i, it))
            .collect(),
    })
}

/// The join key of a question across sources: lowercase alphanumerics of the stem (multiple
/// choice lists and the object-tracking "Which choice is true ?" removed).
pub fn join_key(question: &str) -> String {
    let q = question.split("Answer Choices:").next().unwrap_or(question);
    let q = q.replace("Which choice is true ?", "");
    q.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn more_options_than_letters_is_an_error_not_a_panic() {
        // `b'A' + i as u8` used to overflow (a panic) from the 191st option on.
        let dir = tempfile::tempdir().unwrap();
        let options: Vec<String> = (0..200).map(|i| format!("\"A){i}\"")).collect();
        let p = write(
            dir.path(),
            "benchmarks/AQuA/test.json",
            &format!(
                "{{\"question\": \"q\", \"options\": [{}], \"correct\": \"A\"}}\n",
                options.join(",")
            ),
        );
        let aqua = crate::data::registry::task("aqua").unwrap();
        let e = load_items(aqua, dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("item 0: 200 options"),
            "{e}"
        );
        let scores: Vec<String> = (0..200).map(|i| format!("\"o{i}\": {}", i / 199)).collect();
        let p = write(
            dir.path(),
            "benchmarks/Bigbench_Date/task.json",
            &format!(
                "{{\"examples\": [{{\"input\": \"q\", \"target_scores\": {{{}}}}}]}}",
                scores.join(",")
            ),
        );
        let date = crate::data::registry::task("date_understanding").unwrap();
        let e = load_items(date, dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("200 options"),
            "{e}"
        );
        // 26 are fine, lettered A-Z.
        let scores: Vec<String> = (0..26).map(|i| format!("\"o{i}\": {}", i / 25)).collect();
        write(
            dir.path(),
            "benchmarks/Bigbench_Date/task.json",
            &format!(
                "{{\"examples\": [{{\"input\": \"q\", \"target_scores\": {{{}}}}}]}}",
                scores.join(",")
            ),
        );
        let items = load_items(date, dir.path()).unwrap();
        assert_eq!(items[0].answer, "Z");
        assert!(items[0].question.ends_with("(Z) o25"));
    }

    #[test]
    fn big_bench_letters_follow_the_file_order() {
        // As upstream's loaders letter them; a `serde_json::Value` map would sort the keys.
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "benchmarks/Bigbench_Date/task.json",
            r#"{"examples": [{"input": "When?", "target_scores": {"12/31/2018": 0, "01/01/2018": 1, "05/05/2000": 0}}]}"#,
        );
        let date = crate::data::registry::task("date_understanding").unwrap();
        let items = load_items(date, dir.path()).unwrap();
        assert_eq!(
            items[0].question,
            "When? Answer Choices: (A) 12/31/2018 (B) 01/01/2018 (C) 05/05/2000"
        );
        assert_eq!(items[0].answer, "B");
        assert_eq!(items[0].options, ["12/31/2018", "01/01/2018", "05/05/2000"]);
    }
}
