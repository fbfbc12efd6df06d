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
        ..Default::default()
    }
}

/// The answer-only sequence of a rationale's question (strategy `answer-only`): prompt ids,
/// then the answer segment of the rationale's own final answer + `<eos>`, no reasoning. `None`
/// when the rationale has no extractable answer.
pub fn answer_only_example(
    fmt: &StudentFormat,
    tok: &crate::student::tokenizer::Tok,
    e: &crate::task::Example,
    r: &Rationale,
    kind: AnswerType,
) -> Option<crate::student::train::TrainExample> {
    let a = extract_with_options(kind, &r.text, &e.options)?;
    let mut target = tok.encode(&fmt.answer(&a));
    target.push(tok.eos);
    Some(crate::student::train::TrainExample {
        prompt: tok.encode(&fmt.prompt(&e.question)),
        target,
        ..Default::default()
    })
}

/// RD's context q + r: the prompt followed by the rationale's reasoning.
pub fn with_rationale(fmt: &StudentFormat, question: &str, body: &str) -> String {
    let (prompt, rationale) = rd_context(fmt, question, body);
    format!("{prompt}{rationale}")
}

/// RD's context as its two parts, the prompt (q) and the rationale's reasoning (r): a
/// decoder-only student reads them as one text ([`with_rationale`]), an encoder–decoder reads q
/// with its encoder and r with its decoder.
pub fn rd_context(fmt: &StudentFormat, question: &str, body: &str) -> (String, String) {
    (fmt.prompt(question), fmt.rationale(body.trim()))
}

/// The stop test of decoding: whether a generated text already holds a complete answer
/// segment — the format's answer marker (the `answer` block's text before `{{ answer }}`),
/// something after it, then the block's closing text (e.g. `.`) or a line break. The marker is
/// rendered once, here, not at every decoding step.
pub struct AnswerStop {
    /// Text before the answer (trimmed); empty when the format has none (never stops).
    pre: String,
    /// Text after the answer (trimmed), e.g. `.`.
    post: String,
}

impl AnswerStop {
    /// The stop test of a format.
    pub fn new(fmt: &StudentFormat) -> Self {
        let probe = fmt.answer("\u{1}");
        let (pre, post) = probe.split_once('\u{1}').unwrap_or(("", ""));
        AnswerStop {
            pre: pre.trim().to_string(),
            post: post.trim().to_string(),
        }
    }

    /// Whether `text` holds a complete answer segment.
    pub fn done(&self, text: &str) -> bool {
        let (pre, post) = (self.pre.as_str(), self.post.as_str());
        if pre.is_empty() {
            return false;
        }
        let Some(at) = text.rfind(pre) else {
            return false;
        };
        let rest = text[at + pre.len()..].trim_start_matches([' ', '\t']);
        // "The answer is 3.5." must not stop at the decimal point: the closing text counts
        // only once white space follows it (one token later).
        let closed = (!post.is_empty())
            .then(|| {
                rest.match_indices(post)
                    .find(|(i, _)| rest[i + post.len()..].starts_with(char::is_whitespace))
                    .map(|(i, _)| &rest[..i])
            })
            .flatten();
        let cut = closed.or_else(|| rest.find('\n').map(|i| &rest[..i]));
        cut.is_some_and(|a| !a.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::{STUDENT_FORMATS, template_text};

    #[test]
    fn answer_stop_waits_for_the_closing_text() {
        let qa = StudentFormat::new(&template_text(STUDENT_FORMATS, "qa").unwrap()).unwrap();
        let qa = AnswerStop::new(&qa);
        assert!(!qa.done(" 3 + 4 = 7."));
        assert!(!qa.done(" 3 + 4 = 7. The answer is"));
        assert!(!qa.done(" 3 + 4 = 7. The answer is 7"));
        assert!(!qa.done(" 3 + 4 = 7. The answer is 7."));
        assert!(!qa.done(" The answer is 3.5"));
        assert!(qa.done(" 3 + 4 = 7. The answer is 7. "));
        assert!(qa.done(" The answer is 3.5.\n"));
        assert!(qa.done(" The answer is 7\nQ:"));
        let ftc =
            StudentFormat::new(&template_text(STUDENT_FORMATS, "fine-tune-cot").unwrap()).unwrap();
        let ftc = AnswerStop::new(&ftc);
        assert!(!ftc.done(" 3 + 4 = 7 --> 7"));
        assert!(ftc.done(" 3 + 4 = 7 --> 7\n"));
    }
}
