//! Teachers write rationales for training questions. One file per teacher kind, plus the
//! two-stage answers of API teachers ([`answer_stage`]), the majority-vote labels of questions
//! without gold ([`majority`]) and the durable request log ([`request_log`]).

pub mod answer_stage;
pub mod budget;
pub mod majority;
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
    /// A second-stage answer output (Kojima et al.'s "Therefore, the answer ... is" request, or
    /// a recorded one: generic JSONL `answer_text`). When present, the answer is read from it
    /// ([`answer_of`]), not from `text`. Absent for one-stage rationales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_text: Option<String>,
}

/// A rationale's answer as `score` and `data stats` judge it: from its second-stage output when
/// it has one ([`answer_stage::extract`]), else from its text.
pub fn answer_of(
    kind: crate::answer::AnswerType,
    r: &Rationale,
    options: &[String],
) -> Option<String> {
    match &r.answer_text {
        Some(t) => answer_stage::extract(kind, t, options),
        None => crate::answer::extract_with_options(kind, &r.text, options),
    }
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
