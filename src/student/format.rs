//! The text format the student learns, from a template in `templates/student/` (default `qa`:
//! `Q: {question}\nA:` → ` {rationale} The answer is {answer}.<eos>`). See [`crate::templates`].

use crate::answer::{AnswerType, extract_with_options};
use crate::error::Result;
use crate::spec::raw::StudentSpec;
use crate::teacher::Rationale;
pub use crate::templates::StudentFormat;
use crate::templates::{STUDENT_FORMATS, template_text};

/// The template text a spec names (built-in name or path).
pub fn template(spec: &StudentSpec) -> Result<String> {
    template_text(STUDENT_FORMATS, &spec.format)
}

/// The compiled format a spec names.
pub fn load(spec: &StudentSpec) -> Result<StudentFormat> {
    StudentFormat::new(&template(spec)?)
}

/// The training target of a rationale: its reasoning, then its *own* final answer (which may
/// be wrong: that is what an unfiltered selection teaches). Without an extractable answer the
/// whole recorded text is the target.
pub fn target(fmt: &StudentFormat, r: &Rationale, kind: AnswerType, options: &[String]) -> String {
    match extract_with_options(kind, &r.text, options) {
        Some(a) if !r.body.trim().is_empty() => {
            format!("{}{}", fmt.rationale(r.body.trim()), fmt.answer(&a))
        }
        _ => fmt.rationale(r.text.trim()),
    }
}

/// The training sequence of a rationale for an example: prompt ids, then target ids + `<eos>`.
pub fn train_example(
    fmt: &StudentFormat,
    tok: &crate::student::tokenizer::Tok,
    e: &crate::task::Example,
    r: &Rationale,
    kind: AnswerType,
) -> crate::student::train::TrainExample {
    let mut target = tok.encode(&self::target(fmt, r, kind, &e.options));
    target.push(tok.eos);
    crate::student::train::TrainExample {
        prompt: tok.encode(&fmt.prompt(&e.question)),
        target,
    }
}

/// RD's context q + r: the prompt followed by the rationale's reasoning.
pub fn with_rationale(fmt: &StudentFormat, question: &str, body: &str) -> String {
    format!("{}{}", fmt.prompt(question), fmt.rationale(body.trim()))
}
