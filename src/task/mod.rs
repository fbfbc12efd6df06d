//! Tasks: questions with gold answers in train / validation / test splits.
//!
//! The embedded default is synthetic ([`synthetic`]): generated from a seed, so every run of a
//! spec sees exactly the same questions.

pub mod synthetic;

use crate::answer::AnswerType;
use crate::spec::TaskKind;
use serde::{Deserialize, Serialize};

/// One question with its gold answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Example {
    /// Stable id, unique within the task (`train-17`).
    pub id: String,
    /// The question text.
    pub question: String,
    /// The gold answer, normalised for its answer type.
    pub answer: String,
    /// Option texts of a multiple-choice question, in letter order.
    #[serde(default)]
    pub options: Vec<String>,
    /// The structure a synthetic question was generated from (used by the programmatic teacher).
    #[serde(default)]
    pub problem: Option<synthetic::Problem>,
}

/// All splits of one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskData {
    /// Which task.
    pub task: String,
    /// How its answers are read.
    pub answer: AnswerType,
    /// Training questions (the teacher writes rationales for these).
    pub train: Vec<Example>,
    /// Validation questions (checkpoint choice).
    pub validation: Vec<Example>,
    /// Test questions (reported accuracy).
    pub test: Vec<Example>,
}

impl TaskKind {
    /// The answer type of the task's gold answers.
    pub fn answer_type(self) -> AnswerType {
        match self {
            TaskKind::Arithmetic => AnswerType::Number,
            TaskKind::LastLetter => AnswerType::Text,
            TaskKind::CoinFlip => AnswerType::YesNo,
        }
    }

    /// The spec spelling.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Arithmetic => "arithmetic",
            TaskKind::LastLetter => "last-letter",
            TaskKind::CoinFlip => "coin-flip",
        }
    }
}

/// Eval and checkpoint choice need gold answers on validation and test whatever the label; with
/// `label = "gold"` every training question needs one too.
pub fn check_gold(data: &TaskData, label: &str) -> crate::error::Result<()> {
    let missing = |split: &[Example]| split.iter().filter(|e| e.answer.trim().is_empty()).count();
    for (name, split) in [("validation", &data.validation), ("test", &data.test)] {
        let n = missing(split);
        if n > 0 {
            return Err(crate::error::Error::run(format!(
                "task {}: {n} of {} {name} questions have no gold answer; eval and checkpoint choice need gold answers on the validation and test splits (score.label = \"majority\" labels training questions only)",
                data.task,
                split.len()
            )));
        }
    }
    let n = missing(&data.train);
    if label == "gold" && n > 0 {
        return Err(crate::error::Error::run(format!(
            "task {}: {n} of {} training questions have no gold answer: set score.label = \"majority\" to label them by the majority of their teacher samples",
            data.task,
            data.train.len()
        )));
    }
    Ok(())
}

/// Test fixtures of tasks, for this module's tests and the stages'.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A numeric question `id` with gold `answer`.
    fn ex(id: &str, answer: &str) -> Example {
        Example {
            id: id.into(),
            question: format!("question {id}"),
            answer: answer.into(),
            options: vec![],
            problem: None,
        }
    }

    /// Task `t`: training and test questions with these gold answers, one validation question.
    pub fn data(train: &[&str], test: &[&str]) -> TaskData {
        TaskData {
            task: "t".into(),
            answer: AnswerType::Number,
            train: train
                .iter()
                .enumerate()
                .map(|(i, a)| ex(&format!("train-{i}"), a))
                .collect(),
            validation: vec![ex("validation-0", "1")],
            test: test
                .iter()
                .enumerate()
                .map(|(i, a)| ex(&format!("test-{i}"), a))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::data;
    use super::*;

    #[test]
    fn eval_needs_gold_on_test_whatever_the_label() {
        let d = data(&["1", ""], &["2", ""]);
        let e = check_gold(&d, "majority").unwrap_err().to_string();
        assert!(
            e.contains("1 of 2 test questions have no gold answer"),
            "{e}"
        );
        // Unlabelled training questions: fine for majority, an error for gold that says what to do.
        let d = data(&["1", ""], &["2"]);
        assert!(check_gold(&d, "majority").is_ok());
        let e = check_gold(&d, "gold").unwrap_err().to_string();
        assert!(
            e.contains("1 of 2 training questions") && e.contains("score.label = \"majority\""),
            "{e}"
        );
    }
}
