//! `teacher.budget`: sampling in rounds where the student needs it. The first round asks every
//! question for `teacher.samples` rationales; each later round asks `round` more of the
//! questions that still want correct ones, until none does, `max_per_question` is reached, or
//! `max_requests` (all rounds, questions in order within a round) runs out.
//!
//! - `uniform` wants `correct` correct rationales of every question;
//! - `prop-difficulty` (DART-Math's Prop2Diff, arXiv 2407.13690) measures each question's
//!   failure rate `f` in the first round and then wants `ceil(correct × f / mean f)` correct
//!   rationales of it: harder questions get more samples, a question the teacher never failed
//!   none beyond the first round (every question `correct` when no question failed).
//!
//! The rounds are a pure function of the answers' correctness ([`run`]), so a resumed run that
//! reads the earlier answers from the request log asks exactly the same requests again and the
//! server only sees what is missing.

use crate::error::Result;
use crate::spec::raw::BudgetSpec;
use std::ops::Range;

/// How a budget decides which questions want more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `correct` correct rationales of every question.
    Uniform,
    /// Correct rationales in proportion to the first round's failure rate.
    PropDifficulty,
}

impl Kind {
    /// Parses the spec spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "uniform" => Some(Kind::Uniform),
            "prop-difficulty" => Some(Kind::PropDifficulty),
            _ => None,
        }
    }
}

/// One request of a round: a question's index and the sample indices asked of it.
pub type Request = (usize, Range<usize>);

/// What the rounds asked, per question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Samples asked of each question (its sample indices are `0..asked`).
    pub asked: Vec<usize>,
    /// Correct ones among them.
    pub correct: Vec<usize>,
    /// Each question's failure rate in the first round.
    pub first_failure: Vec<f64>,
    /// Correct rationales each question wanted after the first round.
    pub wanted: Vec<usize>,
    /// Rounds run.
    pub rounds: usize,
}

/// Runs the rounds over `n` questions. `ask` gets one round's requests, `(question, sample
/// indices)` in question order, and returns whether each requested sample is correct, in the
/// same order (one `Vec` per request).
pub fn run(
    n: usize,
    first: usize,
    b: &BudgetSpec,
    mut ask: impl FnMut(&[Request]) -> Result<Vec<Vec<bool>>>,
) -> Result<Plan> {
    let kind = Kind::parse(&b.kind).unwrap_or(Kind::Uniform);
    let max = b.max_per_question.max(first);
    let mut p = Plan {
        asked: vec![0; n],
        correct: vec![0; n],
        first_failure: vec![0.0; n],
        wanted: vec![b.correct; n],
        rounds: 0,
    };
    let mut left = b.max_requests.unwrap_or(usize::MAX);
    // 1. The first round: `first` samples of every question.
    let mut want: Vec<usize> = vec![first.min(max); n];
    loop {
        // 2. This round's requests, questions in order, within the total cap.
        let mut reqs = Vec::new();
        for (q, &w) in want.iter().enumerate() {
            let w = w.min(left);
            if w > 0 {
                reqs.push((q, p.asked[q]..p.asked[q] + w));
                left -= w;
            }
        }
        if reqs.is_empty() {
            break;
        }
        let answers = ask(&reqs)?;
        for ((q, r), ok) in reqs.iter().zip(answers) {
            p.asked[*q] = r.end;
            p.correct[*q] += ok.iter().filter(|&&c| c).count();
        }
        p.rounds += 1;
        // 3. After the first round: each question's failure rate, and (prop-difficulty) the
        //    correct rationales it wants.
        if p.rounds == 1 {
            for q in 0..n {
                p.first_failure[q] = if p.asked[q] == 0 {
                    0.0
                } else {
                    1.0 - p.correct[q] as f64 / p.asked[q] as f64
                };
            }
            if kind == Kind::PropDifficulty {
                let mean = p.first_failure.iter().sum::<f64>() / n.max(1) as f64;
                if mean > 0.0 {
                    for q in 0..n {
                        p.wanted[q] =
                            (b.correct as f64 * p.first_failure[q] / mean).ceil() as usize;
                    }
                }
            }
        }
        // 4. The next round: `round` more of every question short of what it wants.
        for (q, w) in want.iter_mut().enumerate() {
            *w = if p.correct[q] < p.wanted[q] && p.asked[q] < max {
                b.round.min(max - p.asked[q])
            } else {
                0
            };
        }
    }
    Ok(p)
}

/// The questions of a plan in difficulty buckets by their first-round failure rate: `never
/// failed` (0), `sometimes` (between) and `always failed` (1), each with its question count and
/// the samples asked of them.
pub fn buckets(p: &Plan) -> Vec<(&'static str, usize, usize)> {
    let mut out: Vec<_> = BUCKETS.iter().map(|&b| (b, 0, 0)).collect();
    for (q, &f) in p.first_failure.iter().enumerate() {
        let b = bucket_of(f);
        out[b].1 += 1;
        out[b].2 += p.asked[q];
    }
    out
}

/// The difficulty buckets, by first-round failure rate 0, between, 1.
pub const BUCKETS: [&str; 3] = ["never failed", "sometimes", "always failed"];

/// The index in [`BUCKETS`] of a first-round failure rate.
pub fn bucket_of(f: f64) -> usize {
    if f <= 0.0 {
        0
    } else if f >= 1.0 {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        kind: &str,
        correct: usize,
        round: usize,
        max: usize,
        cap: Option<usize>,
    ) -> BudgetSpec {
        BudgetSpec {
            kind: kind.into(),
            correct,
            round,
            max_per_question: max,
            max_requests: cap,
        }
    }

    /// A teacher whose sample `k` of question `q` is correct when `pattern[q][k]` is.
    fn teacher<'a>(
        pattern: &'a [&'a [bool]],
        log: &'a mut Vec<Request>,
    ) -> impl FnMut(&[Request]) -> Result<Vec<Vec<bool>>> + 'a {
        move |reqs| {
            log.extend(reqs.iter().cloned());
            Ok(reqs
                .iter()
                .map(|(q, r)| {
                    r.clone()
                        .map(|k| pattern[*q][k % pattern[*q].len()])
                        .collect()
                })
                .collect())
        }
    }

    #[test]
    fn uniform_stops_each_question_at_its_correct_count() {
        // q0 always right, q1 right every other sample, q2 never.
        let pat: [&[bool]; 3] = [&[true], &[false, true], &[false]];
        let mut log = Vec::new();
        let p = run(
            3,
            2,
            &spec("uniform", 3, 2, 8, None),
            teacher(&pat, &mut log),
        )
        .unwrap();
        // Round 1: 2 each (q0 2 correct, q1 1, q2 0). Round 2: q0 wants 1 more → 2 asked (4, 4
        // correct); q1 → 4 asked, 2 correct; q2 → 4, 0. Round 3: q1 → 6, 3 correct, done; q2 → 6.
        // Round 4: q2 → 8 = max.
        assert_eq!(p.asked, [4, 6, 8]);
        assert_eq!(p.correct, [4, 3, 0]);
        assert_eq!(p.rounds, 4);
        assert_eq!(log[0], (0, 0..2));
        assert_eq!(log[3], (0, 2..4));
        assert_eq!(log.iter().map(|(_, r)| r.len()).sum::<usize>(), 18);
    }

    #[test]
    fn prop_difficulty_asks_more_of_harder_questions() {
        // First round of 4: failure rates 0, 0.5, 1 → mean 0.5; correct 2 → wanted 0, 2, 4.
        let pat: [&[bool]; 3] = [&[true], &[false, true], &[false]];
        let mut log = Vec::new();
        let p = run(
            3,
            4,
            &spec("prop-difficulty", 2, 2, 10, None),
            teacher(&pat, &mut log),
        )
        .unwrap();
        assert_eq!(p.first_failure, [0.0, 0.5, 1.0]);
        assert_eq!(p.wanted, [0, 2, 4]);
        // q0: 4 (wants none beyond); q1 has 2 correct after round 1: 4; q2 never: up to 10.
        assert_eq!(p.asked, [4, 4, 10]);
        assert_eq!(
            buckets(&p),
            [
                ("never failed", 1, 4),
                ("sometimes", 1, 4),
                ("always failed", 1, 10)
            ]
        );
        // No question failed: every one wants `correct`.
        let all: [&[bool]; 2] = [&[true], &[true]];
        let mut log = Vec::new();
        let p = run(
            2,
            1,
            &spec("prop-difficulty", 3, 1, 5, None),
            teacher(&all, &mut log),
        )
        .unwrap();
        assert_eq!(
            (p.wanted.clone(), p.asked.clone()),
            (vec![3, 3], vec![3, 3])
        );
    }

    #[test]
    fn the_total_cap_cuts_a_round_in_question_order() {
        let pat: [&[bool]; 3] = [&[false], &[false], &[false]];
        let mut log = Vec::new();
        // 2 each in round 1 (6), then the cap 9 leaves 3: q0 gets 2, q1 1, q2 none.
        let p = run(
            3,
            2,
            &spec("uniform", 5, 2, 20, Some(9)),
            teacher(&pat, &mut log),
        )
        .unwrap();
        assert_eq!(p.asked, [4, 3, 2]);
        assert_eq!(p.asked.iter().sum::<usize>(), 9);
        // The cap can cut the first round too.
        let mut log = Vec::new();
        let p = run(
            3,
            2,
            &spec("uniform", 5, 2, 20, Some(3)),
            teacher(&pat, &mut log),
        )
        .unwrap();
        assert_eq!(p.asked, [2, 1, 0]);
    }
}
