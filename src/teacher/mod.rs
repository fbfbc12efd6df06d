//! Teachers write rationales for training questions. One file per teacher kind.

pub mod programmatic;

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
