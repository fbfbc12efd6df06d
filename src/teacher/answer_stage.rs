//! Kojima et al.'s two-stage answers for API teachers, and STaR's rationalization hint.
//!
//! A zero-shot-CoT rationale often never states its answer in a form an extractor can read ("so
//! the coin is still heads up"). Zero-shot CoT therefore asks a second time: the first exchange
//! (prompt + rationale), then an answer-trigger line per answer type ("Therefore, the answer
//! (Yes or No) is", from `templates/teacher/answer-trigger.jinja`), answered greedily in a few
//! tokens. The answer is the first candidate of that second-stage output ([`extract`]), as the
//! study's answer cleansing reads it; the stored rationale is the first stage's reasoning plus the
//! answer sentence the student format wants ([`rationale`]).
//!
//! `teacher.hint = "gold"` (rationalization, Zelikman et al. 2022) gives the teacher the gold
//! answer in the question ([`hinted_question`]); the second stage then sees the unhinted prompt,
//! so a hinted rationale is still judged on what its own text leads to.

use crate::answer::{AnswerType, extract_tail, letter};
use crate::error::{Error, Result};
use crate::spec::raw::{RawSpec, TeacherSpec};
use serde_json::{Value, json};

/// The answer-trigger template (one line per answer type).
pub const TRIGGER_TEMPLATE: &str = include_str!("../../templates/teacher/answer-trigger.jinja");
/// The rationalization hint template (question + gold answer).
pub const HINT_TEMPLATE: &str = include_str!("../../templates/teacher/gold-hint.jinja");
/// Second-stage `max_tokens` when `teacher.answer_max_tokens` is unset (the study's 32).
pub const DEFAULT_MAX_TOKENS: usize = 32;
/// The answer-stage modes `teacher.answer_stage` takes.
pub const MODES: &[&str] = &["auto", "always", "never"];

/// Whether the teacher asks the second, answer-extracting question: `always`, `never`, or
/// (`auto`, the default) when the prompt is zero-shot — any prompt but `few-shot-cot` and
/// templates that use `exemplars`. Only the `openai` teacher samples, so only it asks.
pub fn enabled(t: &TeacherSpec) -> bool {
    if t.kind != "openai" {
        return false;
    }
    match t.answer_stage.as_deref().unwrap_or("auto") {
        "always" => true,
        "never" => false,
        _ => zero_shot(&t.prompt),
    }
}

/// Whether a teacher prompt (built-in name or template path) is zero-shot: it shows no exemplars.
pub fn zero_shot(prompt: &str) -> bool {
    if prompt == "few-shot-cot" {
        return false;
    }
    crate::templates::template_text(crate::templates::TEACHER_PROMPTS, prompt)
        .map(|t| !t.contains("exemplars"))
        .unwrap_or(true)
}

/// The answer-trigger line of an answer type (`options`: a multiple-choice question's options,
/// which set the last letter; without them the type's own count does).
pub fn trigger(kind: AnswerType, options: &[String]) -> Result<String> {
    let (name, n) = match kind {
        AnswerType::Number => ("number", 0),
        AnswerType::YesNo => ("yes-no", 0),
        AnswerType::Choice(n) => (
            "choice",
            if options.is_empty() {
                usize::from(n)
            } else {
                options.len()
            },
        ),
        AnswerType::Text => ("text", 0),
        AnswerType::Date => ("date", 0),
    };
    let last_letter = letter(n.max(1) - 1).to_string();
    minijinja::Environment::new()
        .render_str(
            TRIGGER_TEMPLATE,
            minijinja::context! { answer_type => name, last_letter },
        )
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::run(format!("answer-trigger template: {e}")))
}

/// The question as the rationalizing teacher sees it: with its gold answer as a hint.
pub fn hinted_question(question: &str, answer: &str) -> Result<String> {
    minijinja::Environment::new()
        .render_str(HINT_TEMPLATE, minijinja::context! { question, answer })
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::run(format!("gold-hint template: {e}")))
}

/// The second-stage chat: the first exchange (the unhinted prompt and the rationale), then the
/// answer-trigger line.
pub fn messages(prompt: &str, stage_one: &str, trigger: &str) -> Value {
    json!([
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": stage_one},
        {"role": "user", "content": trigger},
    ])
}

/// The answer in a second-stage output: its first candidate, as the zero-shot-CoT study's
/// answer cleansing reads it (`pred_after`). The one function the teacher, `score` and
/// `data stats` use for stage two.
pub fn extract(kind: AnswerType, stage_two: &str, options: &[String]) -> Option<String> {
    extract_tail(kind, stage_two, options)
}

/// The stored rationale of a two-stage sample: (text, body). The body is stage one's reasoning
/// (any answer sentence of its own cut off); the text is the body plus "The answer is X." with
/// X read from stage two, so training targets and accuracy agree on the answer. Without an
/// answer in stage two, the text is stage one as written.
pub fn rationale(stage_one: &str, answer: Option<&str>) -> (String, String) {
    let stage_one = stage_one.trim();
    let (body, tail) = crate::answer::split_answer(stage_one);
    let body = if tail.is_some() { body } else { stage_one }.trim();
    match answer {
        Some(a) if body.is_empty() => (format!("The answer is {a}."), String::new()),
        Some(a) => (format!("{body}\nThe answer is {a}."), body.to_string()),
        None => (stage_one.to_string(), body.to_string()),
    }
}

/// Spec checks of `teacher.answer_stage`, `teacher.answer_max_tokens` and `teacher.hint`:
/// (dotted key, message).
pub fn check_spec(s: &RawSpec) -> std::result::Result<(), (&'static str, String)> {
    let t = &s.teacher;
    if let Some(m) = t.answer_stage.as_deref() {
        if !MODES.contains(&m) {
            return Err((
                "teacher.answer_stage",
                format!("unknown answer stage `{m}` (known: {})", MODES.join(", ")),
            ));
        }
        if m == "always" && t.kind != "openai" {
            return Err((
                "teacher.answer_stage",
                "only the `openai` teacher asks a second, answer-extracting question".into(),
            ));
        }
    }
    if t.answer_max_tokens == Some(0) {
        return Err(("teacher.answer_max_tokens", "must be at least 1".into()));
    }
    if let Some(h) = t.hint.as_deref() {
        if h != "gold" {
            return Err(("teacher.hint", format!("unknown hint `{h}` (known: gold)")));
        }
        if t.kind != "openai" {
            return Err((
                "teacher.hint",
                "only the `openai` teacher can be given the gold answer".into(),
            ));
        }
        if s.score.label.as_deref() == Some("majority") {
            return Err((
                "teacher.hint",
                "a gold hint gives the teacher the gold answers that score.label = \"majority\" does without".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_kojimas() {
        let t = |k| trigger(k, &[]).unwrap();
        assert_eq!(
            t(AnswerType::Number),
            "Therefore, the answer (arabic numerals) is"
        );
        assert_eq!(t(AnswerType::YesNo), "Therefore, the answer (Yes or No) is");
        assert_eq!(
            t(AnswerType::Choice(5)),
            "Therefore, among A through E, the answer is"
        );
        assert_eq!(t(AnswerType::Text), "Therefore, the answer is");
        assert_eq!(t(AnswerType::Date), "Therefore, the answer (MM/DD/YYYY) is");
        let three: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
        assert_eq!(
            trigger(AnswerType::Choice(5), &three).unwrap(),
            "Therefore, among A through C, the answer is"
        );
    }

    #[test]
    fn the_stored_rationale_carries_the_second_stage_answer() {
        // Stage one states its own (different) answer: the text carries stage two's.
        let (text, body) = rationale("2 + 3 = 5. So the answer is 5.", Some("6"));
        assert_eq!(body, "2 + 3 = 5.");
        assert_eq!(text, "2 + 3 = 5.\nThe answer is 6.");
        let (text, body) = rationale("The coin is still heads up.", Some("yes"));
        assert_eq!(body, "The coin is still heads up.");
        assert!(text.ends_with("The answer is yes."));
        // No answer in stage two: stage one as written.
        let (text, _) = rationale(" heads up ", None);
        assert_eq!(text, "heads up");
    }

    #[test]
    fn stage_two_is_read_from_its_first_candidate() {
        assert_eq!(
            extract(AnswerType::Number, " 11.\n\nQ: 12 apples", &[]).as_deref(),
            Some("11")
        );
        assert_eq!(
            extract(AnswerType::YesNo, " No, the coin is not heads up.", &[]).as_deref(),
            Some("no")
        );
        assert_eq!(
            extract(AnswerType::Choice(5), " (C) table", &[]).as_deref(),
            Some("C")
        );
    }

    #[test]
    fn auto_is_on_for_zero_shot_prompts_only() {
        let mut t = TeacherSpec {
            kind: "openai".into(),
            ..Default::default()
        };
        assert!(enabled(&t));
        t.prompt = "few-shot-cot".into();
        assert!(!enabled(&t));
        t.answer_stage = Some("always".into());
        assert!(enabled(&t));
        t.prompt = "zero-shot-cot".into();
        t.answer_stage = Some("never".into());
        assert!(!enabled(&t));
        t.answer_stage = None;
        t.kind = "file".into();
        assert!(!enabled(&t));
    }

    #[test]
    fn the_hint_names_the_gold_answer() {
        let q = hinted_question("How many apples?", "7").unwrap();
        assert!(q.starts_with("How many apples?") && q.contains("correct answer is 7"));
    }
}
