//! The text format the student learns: `Q: {question}\nA:` → ` {rationale} The answer is {answer}.<eos>`.
//!
//! The answer marker "The answer is" is the one the teachers write and [`crate::answer`] reads.

/// The prompt for a question.
pub fn prompt(question: &str) -> String {
    format!("Q: {question}\nA:")
}

/// The training target for a rationale's full text (it already ends with the answer sentence).
pub fn target(rationale_text: &str) -> String {
    format!(" {rationale_text}")
}

/// The answer segment `a` of RD(q, r) = PPL(a | q, r) / PPL(a | q).
pub fn answer_segment(gold: &str) -> String {
    format!(" The answer is {gold}.")
}

/// The context q + r (the rationale's reasoning without its own answer sentence).
pub fn with_rationale(question: &str, body: &str) -> String {
    format!("{} {body}", prompt(question))
}
