//! Answer extraction: one function per answer type, used by scoring, eval and reports alike.
//!
//! The answer is read after the last "The answer is" marker when there is one (the marker the
//! teachers and the student format use), else from the end of the text, as lm-eval-harness'
//! "last number" style filters do.

use serde::{Deserialize, Serialize};

/// How a task's answers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerType {
    /// A number; compared numerically with a small tolerance.
    Number,
    /// `yes` or `no`.
    YesNo,
    /// A short free-text string, compared case-insensitively.
    Text,
}

const MARKER: &str = "the answer is";

/// Extracts the normalised answer from `text`, or `None` if there is none.
pub fn extract(kind: AnswerType, text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let tail = lower.rfind(MARKER).map(|i| &text[i + MARKER.len()..]);
    match kind {
        AnswerType::Number => match tail {
            Some(t) => numbers(t).into_iter().next(),
            None => numbers(text).pop(),
        },
        AnswerType::YesNo => {
            let words = |s: &str| -> Vec<String> {
                s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
            };
            let pick = |ws: Vec<String>| ws.into_iter().find(|w| w == "yes" || w == "no");
            match tail {
                Some(t) => pick(words(t)),
                None => words(text).into_iter().rev().find(|w| w == "yes" || w == "no"),
            }
        }
        AnswerType::Text => {
            let t = tail.unwrap_or(text);
            let word = t
                .split_whitespace()
                .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                .find(|w| !w.is_empty())?;
            Some(word.to_lowercase())
        }
    }
}

/// Whether an extracted answer equals the gold one.
pub fn matches(kind: AnswerType, predicted: Option<&str>, gold: &str) -> bool {
    let Some(p) = predicted else { return false };
    match kind {
        AnswerType::Number => match (parse_number(p), parse_number(gold)) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            _ => false,
        },
        _ => p.trim().eq_ignore_ascii_case(gold.trim()),
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim().replace(',', "");
    if let Some((a, b)) = s.split_once('/') {
        let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
        return (b != 0.0).then(|| a / b);
    }
    s.parse().ok()
}

/// Every number in `text`, normalised (`1,200.50` → `1200.5`, `-3` → `-3`), in order.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let neg = chars[i] == '-' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit()
            && (i == 0 || !chars[i - 1].is_alphanumeric());
        if chars[i].is_ascii_digit() || neg {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || ((chars[i] == ',' || chars[i] == '.' || chars[i] == '/')
                        && i + 1 < chars.len()
                        && chars[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            let raw: String = chars[start..i].iter().filter(|c| **c != ',').collect();
            if let Some(v) = parse_number(&raw) {
                out.push(fmt_number(v));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_after_marker_or_last() {
        assert_eq!(extract(AnswerType::Number, "3 + 4 = 7. 7 * 2 = 14. The answer is 14.").as_deref(), Some("14"));
        assert_eq!(extract(AnswerType::Number, "So she has 1,200.50 dollars").as_deref(), Some("1200.5"));
        assert_eq!(extract(AnswerType::Number, "The answer is -3 apples, not 5").as_deref(), Some("-3"));
        assert_eq!(extract(AnswerType::Number, "no digits here"), None);
        assert_eq!(extract(AnswerType::Number, "half is 1/2").as_deref(), Some("0.5"));
        assert!(matches(AnswerType::Number, Some("14.0"), "14"));
        assert!(!matches(AnswerType::Number, Some("15"), "14"));
        assert!(!matches(AnswerType::Number, None, "14"));
    }

    #[test]
    fn yes_no_and_text() {
        assert_eq!(extract(AnswerType::YesNo, "It flips twice, so yes it is. The answer is no.").as_deref(), Some("no"));
        assert_eq!(extract(AnswerType::YesNo, "So, yes.").as_deref(), Some("yes"));
        assert_eq!(extract(AnswerType::Text, "Putting them together: \"ab\". The answer is ReK.").as_deref(), Some("rek"));
        assert!(matches(AnswerType::Text, Some("rek"), "REK"));
    }
}
