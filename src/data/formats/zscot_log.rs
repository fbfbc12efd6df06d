//! Format 4: the zero-shot-CoT study's plain-text logs (`teacher-logs-davinci002/*.log`).
//!
//! After a header, items are blocks between `*****` lines, each with `Q:`, `A: Let's think step
//! by step.` and the rationale, the second-stage answer sentence ("Therefore, the answer ...
//! is X."), then `pred_before :`, `pred_after :`, `pred_list :`, `pred_mode :`, `GT :`. Items
//! are shuffled: join them to a task on the question text.

use crate::error::Result;
use std::path::Path;

/// One block of a log.
#[derive(Debug, Clone)]
pub struct LogItem {
    /// 1-based line of the block's `Q:` in the file.
    pub line: usize,
    /// The question (everything after `Q: ` up to `A:`).
    pub question: String,
    /// The rationale after the CoT trigger, including the answer sentence.
    pub rationale: String,
    /// The first-stage reasoning (before the study's answer trigger).
    pub body: String,
    /// The second-stage output after the study's answer trigger (what `pred_before` holds).
    pub answer_text: String,
    /// The study's own cleaned prediction (`pred_after`), empty when it found none.
    pub pred_after: String,
    /// The gold answer (`GT`).
    pub gold: String,
}

/// What a parse found: the items and the blocks it could not read (line, why).
#[derive(Debug, Default)]
pub struct LogParse {
    /// Parsed items.
    pub items: Vec<LogItem>,
    /// Blocks that could not be parsed, with the line and the reason.
    pub skipped: Vec<(usize, String)>,
}

const TRIGGER: &str = "A: Let's think step by step.";

/// The study's second-stage triggers: "Therefore, the answer (arabic numerals) is",
/// "Therefore, among A through E, the answer is", "Therefore, the answer (Yes or No) is", ...
static ANSWER_TRIGGER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"\nTherefore, (?:among A through [A-Z], )?the answer(?: \([^)]*\))? is")
        .expect("valid")
});

/// Parses a log file.
pub fn parse_file(path: &Path) -> Result<LogParse> {
    super::read_with(path, |text| {
        let parsed = parse(text);
        if parsed.items.is_empty() {
            return Err("not a zero-shot-CoT log: no block with `Q:`, `A: Let's think step by step.` and `pred_after :`".into());
        }
        Ok(parsed)
    })
}

/// Parses a log's text.
pub fn parse(text: &str) -> LogParse {
    let mut out = LogParse::default();
    let lines: Vec<&str> = text.lines().collect();
    // 1. Blocks are separated by lines of asterisks; a block holds an item if it has a `Q:` line.
    //    (A rationale may itself contain a `Q:` line: only a block's first one starts the item.)
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut begin = 0;
    for (i, l) in lines.iter().enumerate() {
        if !l.is_empty() && l.chars().all(|c| c == '*') {
            blocks.push((begin, i));
            begin = i + 1;
        }
    }
    blocks.push((begin, lines.len()));
    for (b, e) in blocks {
        let Some(q) = (b..e).find(|&i| lines[i].starts_with("Q: ")) else {
            continue;
        };
        let block = lines[q..e].join("\n");
        let line = q + 1;
        // 2. Question, rationale, pred_after, GT.
        let Some(a) = block.find(&format!("\n{TRIGGER}")) else {
            out.skipped
                .push((line, "no `A: Let's think step by step.`".into()));
            continue;
        };
        // After the trigger: a `pred_before :` line above it would cut the rationale backwards.
        let from = a + 1 + TRIGGER.len();
        let Some(pb) = block[from..].find("\npred_before :").map(|p| p + from) else {
            out.skipped.push((line, "no `pred_before :`".into()));
            continue;
        };
        let field = |name: &str| -> Option<String> {
            block[pb..]
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let (Some(pred_after), Some(gold)) = (field("pred_after :"), field("GT :")) else {
            out.skipped
                .push((line, "block without `pred_after :` or `GT :`".into()));
            continue;
        };
        let rationale = block[from..pb].trim().to_string();
        // 3. Split at the study's own answer trigger (the last "Therefore, ... the answer ... is").
        let (body, answer_text) = match ANSWER_TRIGGER.find_iter(&block[..pb]).last() {
            Some(m) if m.start() > a => (
                block[from..m.start().max(from)].trim().to_string(),
                block[m.end()..pb].to_string(),
            ),
            _ => {
                out.skipped
                    .push((line, "no `Therefore, ... the answer ... is` trigger".into()));
                continue;
            }
        };
        out.items.push(LogItem {
            line,
            question: block[3..a].trim().to_string(),
            rationale,
            body,
            answer_text,
            pred_after,
            gold,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXCERPT: &str = "*****************************\nheader\n*************************\n1st data\n1_th_sampling\nQ: Bianca picked 26 and her mother 15. If only 16 were good, how many bad?\nA: Let's think step by step. \nBianca picked 26 carrots.\nIn total, they had 11 bad carrots. \nTherefore, the answer (arabic numerals) is 11.\npred_before : 11.\npred_after : 11\npred_list : ['11']\npred_mode : 11\nGT : 25\n*************************\n";

    #[test]
    fn parses_a_real_excerpt() {
        let p = parse(EXCERPT);
        assert_eq!(p.items.len(), 1);
        let it = &p.items[0];
        assert_eq!(it.line, 6);
        assert!(it.question.starts_with("Bianca picked 26"));
        assert!(
            it.rationale.starts_with("Bianca picked 26 carrots.")
                && it.rationale.ends_with("is 11.")
        );
        assert!(it.body.ends_with("11 bad carrots."));
        assert_eq!(it.answer_text, " 11.");
        assert_eq!((it.pred_after.as_str(), it.gold.as_str()), ("11", "25"));
    }

    #[test]
    fn malformed_blocks_are_reported_not_dropped() {
        let broken = EXCERPT.replace("A: Let's think step by step.", "A: hmm");
        let p = parse(&broken);
        assert!(p.items.is_empty());
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].0, 6);
        let truncated = &EXCERPT[..EXCERPT.find("GT :").unwrap()];
        assert_eq!(parse(truncated).skipped.len(), 1);
    }

    #[test]
    fn pred_before_above_the_trigger_is_skipped_not_a_panic() {
        // The rationale used to be sliced from the trigger back to `pred_before :`: a panic.
        let log = "*****\nQ: x\npred_before : 1\nA: Let's think step by step.\nTherefore, the answer is 1.\npred_after : 1\nGT : 1\n*****\n";
        let p = parse(log);
        assert!(p.items.is_empty());
        assert_eq!(p.skipped, vec![(2, "no `pred_before :`".to_string())]);
    }
}
