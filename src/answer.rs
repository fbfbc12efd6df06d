//! Answer extraction: one function per answer type, used everywhere (scoring, eval, stats,
//! `morsd extract`).
//!
//! Like the zero-shot-CoT study's answer cleansing, the answer is read after the **last answer
//! trigger** when there is one — "the answer is", "the answer (arabic numerals) is", "among A
//! through E, the answer is", GSM8K's "####", Fine-tune-CoT's "-->" — taking the first
//! candidate there; without a trigger the last candidate in the whole text is taken, as
//! lm-eval-harness' "last number" filters do.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// How a task's answers are read and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerType {
    /// A number; commas, `$`, units ignored; decimals, fractions, negatives; compared numerically.
    Number,
    /// `yes` or `no`.
    YesNo,
    /// A multiple-choice letter among the first `n` letters (A–E for 5).
    Choice(u8),
    /// A short free-text string (last-letter concatenation), compared case-insensitively.
    Text,
    /// A date `MM/DD/YYYY`.
    Date,
}

impl AnswerType {
    /// The name `data list` shows.
    pub fn name(self) -> String {
        match self {
            AnswerType::Number => "number".into(),
            AnswerType::YesNo => "yes/no".into(),
            AnswerType::Choice(n) => format!("choice A-{}", letter(n.saturating_sub(1).into())),
            AnswerType::Text => "text".into(),
            AnswerType::Date => "date".into(),
        }
    }
}

static TRIGGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\banswers?\b(?:\s*\([^)]*\))?\s*(?:is|are|would be|will be|:)|####|-->")
        .expect("valid")
});
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?").expect("valid"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(0?[1-9]|1[0-2])/(0?[1-9]|[12]\d|3[01])/(\d{4})\b").expect("valid")
});
static PAREN_LETTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(([A-Za-z])\)").expect("valid"));
static LONE_LETTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b([A-Z])\b").expect("valid"));

/// The most options a multiple-choice answer can have: one per letter A–Z.
pub const MAX_CHOICES: usize = 26;

/// The letter of option `i` (0 → `A`); past `Z` it stays `Z` (callers keep to [`MAX_CHOICES`]).
pub fn letter(i: usize) -> char {
    (b'A' + i.min(MAX_CHOICES - 1) as u8) as char
}

/// Splits a rationale at its last answer trigger: (reasoning, the text after the trigger).
pub fn split_answer(text: &str) -> (&str, Option<&str>) {
    match TRIGGER.find_iter(text).last() {
        Some(m) => {
            // Back up to the start of the sentence holding the trigger.
            let start = text[..m.start()]
                .rfind(['.', '\n'])
                .map(|i| i + 1)
                .unwrap_or(0);
            (&text[..start], Some(&text[m.end()..]))
        }
        None => (text, None),
    }
}

/// The text after the last answer trigger, if any.
pub fn after_trigger(text: &str) -> Option<&str> {
    TRIGGER.find_iter(text).last().map(|m| &text[m.end()..])
}

/// Extracts the normalised answer of type `kind` from `text`, or `None`.
pub fn extract(kind: AnswerType, text: &str) -> Option<String> {
    extract_with_options(kind, text, &[])
}

/// Like [`extract`], with the options of a multiple-choice question (their text is matched
/// when no letter is given).
pub fn extract_with_options(kind: AnswerType, text: &str, options: &[String]) -> Option<String> {
    extract_at(kind, after_trigger(text), text, options)
}

/// Extracts from an answer segment that is already known to follow a trigger (the second-stage
/// output of zero-shot-CoT, the text after `####`): the first candidate in it.
pub fn extract_tail(kind: AnswerType, tail: &str, options: &[String]) -> Option<String> {
    extract_at(kind, Some(tail), tail, options)
}

fn extract_at(
    kind: AnswerType,
    tail: Option<&str>,
    text: &str,
    options: &[String],
) -> Option<String> {
    match kind {
        AnswerType::Number => number(tail, text),
        AnswerType::YesNo => yes_no(tail, text),
        AnswerType::Choice(n) => choice(
            if options.is_empty() {
                n
            } else {
                options.len().min(MAX_CHOICES) as u8
            },
            tail,
            text,
            options,
        ),
        AnswerType::Text => free_text(tail, text),
        AnswerType::Date => date(tail, text),
    }
}

static PAREN_EXPR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(\([\d\s.+\-*/()]*[+\-*/][\d\s.+\-*/()]*\))").expect("valid")
});

/// The longest expression [`eval_expression`] evaluates: the evaluator recurses once per
/// operator, so an unbounded chain (`1+1+1+…`) would overflow the stack. The longest label of
/// distilling-step-by-step's SVAMP is 31 characters.
pub const MAX_EXPRESSION_LEN: usize = 256;

/// Evaluates an arithmetic expression such as `( 84.0 / 2.0 )` (distilling-step-by-step's
/// SVAMP labels, PaLM's "The answer is (84 / 2)."), normalised like any number. `None` for
/// anything else, and for expressions longer than [`MAX_EXPRESSION_LEN`].
pub fn eval_expression(expr: &str) -> Option<String> {
    if expr.len() > MAX_EXPRESSION_LEN
        || !expr
            .chars()
            .all(|c| c.is_ascii_digit() || " .+-*/()".contains(c))
    {
        return None;
    }
    let env = minijinja::Environment::new();
    let v = env
        .compile_expression(expr)
        .ok()?
        .eval(minijinja::context! {})
        .ok()?;
    let x = f64::try_from(v).ok()?;
    x.is_finite()
        .then(|| normalise_number(&format!("{x}")))
        .flatten()
}

fn number(tail: Option<&str>, text: &str) -> Option<String> {
    let clean = |s: &str| strip_thousands(s);
    if let Some(e) = tail
        .and_then(|t| PAREN_EXPR.captures(t))
        .and_then(|c| eval_expression(&c[1]))
    {
        return Some(e);
    }
    match tail {
        Some(t) => NUMBER
            .find(&clean(t))
            .and_then(|m| normalise_number(m.as_str())),
        None => NUMBER
            .find_iter(&clean(text))
            .last()
            .and_then(|m| normalise_number(m.as_str())),
    }
}

/// Removes thousands separators (`1,200` → `1200`) without touching list commas (`3, 4`).
fn strip_thousands(s: &str) -> String {
    // Byte-wise (`,` and digits are ASCII): no per-char buffer, whatever the text's length.
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut kept = 0;
    for i in 0..b.len() {
        let sep = b[i] == b','
            && i > 0
            && b[i - 1].is_ascii_digit()
            && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if sep {
            out.push_str(&s[kept..i]);
            kept = i + 1;
        }
    }
    out.push_str(&s[kept..]);
    out
}

/// `"51.0"` → `"51"`, `"1/2"` → `"0.5"`, `"-3"` → `"-3"`.
pub fn normalise_number(s: &str) -> Option<String> {
    let v = parse_number(s)?;
    Some(if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    })
}

/// A finite number (`1e400`, `nan`, `1/1e-320` are none: they would never equal a gold answer).
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim().trim_start_matches('$').replace(',', "");
    let s = s.trim_end_matches('.');
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
            (b != 0.0).then(|| a / b)?
        }
        None => s.parse().ok()?,
    };
    v.is_finite().then_some(v)
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn yes_no(tail: Option<&str>, text: &str) -> Option<String> {
    let is_yn = |w: &String| w == "yes" || w == "no";
    match tail {
        Some(t) => words(t).into_iter().find(is_yn),
        None => words(text).into_iter().rev().find(is_yn),
    }
}

fn choice(n: u8, tail: Option<&str>, text: &str, options: &[String]) -> Option<String> {
    // In u16: `b'A' + n` overflows a u8 for n > 190.
    let valid = |c: char| {
        c.is_ascii_alphabetic()
            && u16::from(c.to_ascii_uppercase() as u8) < u16::from(b'A') + u16::from(n)
    };
    let pick = |s: &str| -> Option<String> {
        // 1. "(b)" or "(B)".
        if let Some(c) = PAREN_LETTER
            .captures_iter(s)
            .filter_map(|c| c[1].chars().next())
            .find(|&c| valid(c))
        {
            return Some(c.to_ascii_uppercase().to_string());
        }
        // 2. A lone capital letter: "E.", "C)".
        if let Some(c) = LONE_LETTER
            .captures_iter(s)
            .filter_map(|c| c[1].chars().next())
            .find(|&c| valid(c))
        {
            return Some(c.to_string());
        }
        // 3. The option's text.
        let low = s.to_lowercase();
        let mut best: Option<(usize, usize)> = None; // (position, option index)
        for (i, o) in options.iter().enumerate().take(n as usize) {
            let o = o.trim().trim_end_matches('.').to_lowercase();
            if o.is_empty() {
                continue;
            }
            if let Some(p) = low.find(&o)
                && best.is_none_or(|(bp, bi)| p < bp || (p == bp && o.len() > options[bi].len()))
            {
                best = Some((p, i));
            }
        }
        best.map(|(_, i)| letter(i).to_string())
    };
    match tail {
        Some(t) => pick(t).or_else(|| {
            // As the zero-shot-CoT cleansing does: any capital letter in range, first.
            t.chars()
                .find(|&c| c.is_ascii_uppercase() && valid(c))
                .map(|c| c.to_string())
        }),
        None => {
            // Without a trigger, the last letter mention wins.
            let last_paren = PAREN_LETTER
                .captures_iter(text)
                .filter_map(|c| c[1].chars().next())
                .filter(|&c| valid(c))
                .last();
            last_paren
                .map(|c| c.to_ascii_uppercase().to_string())
                .or_else(|| pick(text))
        }
    }
}

fn free_text(tail: Option<&str>, text: &str) -> Option<String> {
    match tail {
        Some(t) => {
            // The zero-shot-CoT cleansing for last letters: drop quotes, periods and whitespace.
            let first_line = t.trim_start().lines().next().unwrap_or("");
            let s: String = first_line
                .chars()
                .filter(|c| !matches!(c, '"' | '\'' | '.' | '“' | '”') && !c.is_whitespace())
                .collect();
            (!s.is_empty()).then(|| s.to_lowercase())
        }
        None => {
            let w = text.split_whitespace().last()?;
            let s: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
            (!s.is_empty()).then(|| s.to_lowercase())
        }
    }
}

fn date(tail: Option<&str>, text: &str) -> Option<String> {
    let fmt = |c: regex::Captures| format!("{:0>2}/{:0>2}/{}", &c[1], &c[2], &c[3]);
    match tail {
        Some(t) => DATE.captures(t).map(fmt),
        None => DATE.captures_iter(text).last().map(fmt),
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

#[cfg(test)]
mod tests;
