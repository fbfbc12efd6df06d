//! Prompt and student-format templates (minijinja). The built-in ones live in `templates/` and
//! are embedded in the binary; a spec may name one of them or give a path to its own file.

use crate::error::{Error, Result};
use minijinja::{Environment, context};
use std::path::Path;

/// Built-in student formats: name → template text.
pub const STUDENT_FORMATS: &[(&str, &str)] = &[
    ("qa", include_str!("../templates/student/qa.jinja")),
    (
        "fine-tune-cot",
        include_str!("../templates/student/fine-tune-cot.jinja"),
    ),
    ("chat", include_str!("../templates/student/chat.jinja")),
    (
        "seq2seq",
        include_str!("../templates/student/seq2seq.jinja"),
    ),
];

/// Built-in teacher prompts: name → template text.
pub const TEACHER_PROMPTS: &[(&str, &str)] = &[
    (
        "zero-shot-cot",
        include_str!("../templates/teacher/zero-shot-cot.jinja"),
    ),
    (
        "few-shot-cot",
        include_str!("../templates/teacher/few-shot-cot.jinja"),
    ),
];

/// The results page (`report.html`), rendered by `report::html`.
pub const REPORT_HTML: &str = include_str!("../templates/report/report.html.jinja");

/// The text of a built-in template by name, or of a template file by path.
pub fn template_text(builtins: &[(&str, &str)], name_or_path: &str) -> Result<String> {
    if let Some((_, t)) = builtins.iter().find(|(n, _)| *n == name_or_path) {
        return Ok((*t).to_string());
    }
    let p = Path::new(name_or_path);
    if p.extension().is_some_and(|e| e == "jinja" || e == "j2") || p.exists() {
        return std::fs::read_to_string(p).map_err(|e| Error::Input {
            path: p.to_path_buf(),
            message: format!("template: {e}"),
        });
    }
    let known: Vec<&str> = builtins.iter().map(|(n, _)| *n).collect();
    Err(Error::Input {
        path: p.to_path_buf(),
        message: format!(
            "no built-in template of that name (known: {}) and no such file",
            known.join(", ")
        ),
    })
}

/// A student format: renders the prompt, the rationale and the answer segment.
pub struct StudentFormat {
    env: Environment<'static>,
}

impl StudentFormat {
    /// Compiles a format from its template text (must define blocks prompt, rationale, answer).
    pub fn new(text: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(false);
        env.add_template_owned("format", text.to_string())
            .map_err(|e| Error::run(format!("student format: {e}")))?;
        let f = StudentFormat { env };
        // Check every block renders.
        for b in ["prompt", "rationale", "answer"] {
            f.block(b, context! { question => "q", body => "b", answer => "a" })?;
        }
        Ok(f)
    }

    fn block(&self, name: &str, ctx: minijinja::Value) -> Result<String> {
        let t = self
            .env
            .get_template("format")
            .map_err(|e| Error::run(e.to_string()))?;
        #[allow(deprecated)]
        // render_captured renders the whole file; blocks are rendered one by one here
        let mut state = t
            .eval_to_state(ctx)
            .map_err(|e| Error::run(format!("student format: {e}")))?;
        state
            .render_block(name)
            .map_err(|e| Error::run(format!("student format block `{name}`: {e}")))
    }

    /// The prompt for a question.
    pub fn prompt(&self, question: &str) -> String {
        self.block("prompt", context! { question })
            .unwrap_or_default()
    }

    /// The rationale segment.
    pub fn rationale(&self, body: &str) -> String {
        self.block("rationale", context! { body })
            .unwrap_or_default()
    }

    /// The answer segment.
    pub fn answer(&self, answer: &str) -> String {
        self.block("answer", context! { answer })
            .unwrap_or_default()
    }
}

/// Renders a teacher prompt template for a question (`exemplars`: the few-shot text, if any).
pub fn teacher_prompt(text: &str, question: &str, exemplars: &str) -> Result<String> {
    let env = Environment::new();
    env.render_str(text, context! { question, exemplars })
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::run(format!("teacher prompt: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qa_format_renders_the_synthetic_teachers_text() {
        let f = StudentFormat::new(&template_text(STUDENT_FORMATS, "qa").unwrap()).unwrap();
        assert_eq!(f.prompt("How many?"), "Q: How many?\nA:");
        assert_eq!(
            format!("{}{}", f.rationale("3 + 4 = 7."), f.answer("7")),
            " 3 + 4 = 7. The answer is 7."
        );
    }

    #[test]
    fn fine_tune_cot_format() {
        let f =
            StudentFormat::new(&template_text(STUDENT_FORMATS, "fine-tune-cot").unwrap()).unwrap();
        assert_eq!(f.prompt("How many?"), "How many? ###");
        let out = format!("{}{}", f.rationale("3 + 4 = 7."), f.answer("7"));
        assert_eq!(out, " 3 + 4 = 7. --> 7");
        assert_eq!(
            crate::answer::extract(crate::answer::AnswerType::Number, &out).as_deref(),
            Some("7")
        );
    }

    #[test]
    fn teacher_prompts() {
        let z = teacher_prompt(
            &template_text(TEACHER_PROMPTS, "zero-shot-cot").unwrap(),
            "What is 2+2?",
            "",
        )
        .unwrap();
        assert_eq!(z, "Q: What is 2+2?\nA: Let's think step by step.");
        let f = teacher_prompt(
            &template_text(TEACHER_PROMPTS, "few-shot-cot").unwrap(),
            "What is 2+2?",
            "Q: 1+1?\nA: 1 + 1 = 2. The answer is 2.\n",
        )
        .unwrap();
        assert_eq!(
            f,
            "Q: 1+1?\nA: 1 + 1 = 2. The answer is 2.\nQ: What is 2+2?\nA:"
        );
    }

    #[test]
    fn unknown_template_and_missing_block() {
        assert!(
            template_text(STUDENT_FORMATS, "nope")
                .unwrap_err()
                .to_string()
                .contains("qa")
        );
        assert!(StudentFormat::new("{% block prompt %}x{% endblock %}").is_err());
    }
}
