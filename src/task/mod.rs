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
