//! Teachers write rationales for training questions. One file per teacher kind.

pub mod openai;
pub mod programmatic;
pub mod request_log;

use serde::{Deserialize, Serialize};

/// One teacher rationale for one training question.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rationale {
    /// Stable id: `<question id>/r<index>`.
    pub id: String,
    /// The question it answers.
    pub question_id: String,
    /// Which teacher wrote it (`programmatic`).
    pub source: String,
    /// The reasoning steps, without the final answer sentence.
    pub body: String,
    /// The full rationale as the teacher wrote it: body + "The answer is X."
    pub text: String,
    /// How it was made (`correct`, `wrong`, `flawed`, `duplicate`); the programmatic teacher
    /// knows, a real one would not. Selection never reads this.
    pub origin: String,
}

/// A recorded or sampled rationale normalised for the student: the text (with "The answer is
/// X." appended when it has no answer sentence and X can be read from it, or is given) and its
/// reasoning without the answer part.
pub fn normalise(
    text: &str,
    given_answer: Option<&str>,
    kind: crate::answer::AnswerType,
    options: &[String],
) -> (String, String) {
    let text = text.trim().to_string();
    let (body, tail) = crate::answer::split_answer(&text);
    let body = body.trim().to_string();
    if tail.is_some() {
        return (text, body);
    }
    let answer = given_answer
        .map(String::from)
        .or_else(|| crate::answer::extract_with_options(kind, &text, options));
    match answer {
        Some(a) => (format!("{text}\nThe answer is {a}."), body),
        None => (text, body),
    }
}
