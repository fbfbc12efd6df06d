//! Majority-vote labels for questions without gold answers (self-consistency, Wang et al. 2023):
//! a question's label is the answer most of its teacher samples reach. A tie for the most votes,
//! or fewer answered samples than asked for, leaves the question unlabelled (reported, skipped).

use crate::answer::{AnswerType, matches};
use serde::Serialize;

/// The outcome of one question's vote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Vote {
    /// One answer has more votes than any other.
    Majority {
        /// The winning answer (as extracted from the first sample that gave it).
        answer: String,
        /// Its votes.
        votes: usize,
        /// Samples with a readable answer.
        answered: usize,
    },
    /// Two or more answers share the most votes.
    Tie {
        /// The tied answers, in first-seen order.
        answers: Vec<String>,
        /// Their (shared) vote count.
        votes: usize,
    },
    /// Fewer samples with a readable answer than `min_votes`.
    TooFew {
        /// Samples with a readable answer.
        answered: usize,
        /// Samples in all.
        samples: usize,
    },
}

impl Vote {
    /// The label, when there is one.
    pub fn label(&self) -> Option<&str> {
        match self {
            Vote::Majority { answer, .. } => Some(answer),
            _ => None,
        }
    }
}

/// `score.majority_min_votes` when unset: a label needs at least two answered samples.
pub const DEFAULT_MIN_VOTES: usize = 2;

/// Votes over one question's sample answers (`None`: no readable answer). Answers are the same
/// when [`matches`] says so (numbers numerically: `5` and `5.0` are one answer).
pub fn vote(kind: AnswerType, answers: &[Option<String>], min_votes: usize) -> Vote {
    // 1. Group equal answers, keeping first-seen order.
    let mut groups: Vec<(String, usize)> = Vec::new();
    for a in answers.iter().flatten() {
        match groups.iter_mut().find(|(g, _)| matches(kind, Some(a), g)) {
            Some(g) => g.1 += 1,
            None => groups.push((a.clone(), 1)),
        }
    }
    // 2. Too few answered samples: no label.
    let answered: usize = groups.iter().map(|g| g.1).sum();
    if answered == 0 || answered < min_votes {
        return Vote::TooFew {
            answered,
            samples: answers.len(),
        };
    }
    // 3. The most votes; shared by two or more answers, a tie.
    let top = groups.iter().map(|g| g.1).max().unwrap_or(0);
    let winners: Vec<String> = groups
        .into_iter()
        .filter(|g| g.1 == top)
        .map(|g| g.0)
        .collect();
    if winners.len() > 1 {
        return Vote::Tie {
            answers: winners,
            votes: top,
        };
    }
    Vote::Majority {
        answer: winners.into_iter().next().unwrap_or_default(),
        votes: top,
        answered,
    }
}

/// Each question's sample answers (what `score` would read from each of its rationales, in
/// rationale order), in the order of `questions`; a question without rationales gets none.
pub fn answers_per_question<'a, 'r>(
    kind: AnswerType,
    questions: impl IntoIterator<Item = &'a crate::task::Example>,
    rationales: impl IntoIterator<Item = &'r crate::teacher::Rationale>,
) -> Vec<(&'a crate::task::Example, Vec<Option<String>>)> {
    let mut out: Vec<(&crate::task::Example, Vec<Option<String>>)> =
        questions.into_iter().map(|e| (e, Vec::new())).collect();
    let index: std::collections::HashMap<&str, usize> = out
        .iter()
        .enumerate()
        .map(|(i, (e, _))| (e.id.as_str(), i))
        .collect();
    for r in rationales {
        if let Some(&i) = index.get(r.question_id.as_str()) {
            let a = crate::teacher::answer_of(kind, r, &out[i].0.options);
            out[i].1.push(a);
        }
    }
    out
}

/// Counts over many questions' votes.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    /// Questions with a majority label.
    pub labelled: usize,
    /// Questions skipped for a tie.
    pub ties: usize,
    /// Questions skipped for too few answered samples.
    pub too_few: usize,
    /// Of the labelled questions with a gold answer, how many labels equal it.
    pub agree_with_gold: usize,
    /// Labelled questions that have a gold answer.
    pub with_gold: usize,
}

impl Tally {
    /// Adds one question's vote (and its gold answer, if it has one).
    pub fn add(&mut self, kind: AnswerType, v: &Vote, gold: Option<&str>) {
        match v {
            Vote::Majority { answer, .. } => {
                self.labelled += 1;
                if let Some(g) = gold.filter(|g| !g.trim().is_empty()) {
                    self.with_gold += 1;
                    self.agree_with_gold += usize::from(matches(kind, Some(answer), g));
                }
            }
            Vote::Tie { .. } => self.ties += 1,
            Vote::TooFew { .. } => self.too_few += 1,
        }
    }

    /// One line for the user.
    pub fn describe(&self, min_votes: usize) -> String {
        let agree = if self.with_gold > 0 {
            format!(
                "; the majority label equals gold on {} of {} ({:.1}%)",
                self.agree_with_gold,
                self.with_gold,
                100.0 * self.agree_with_gold as f64 / self.with_gold as f64
            )
        } else {
            String::new()
        };
        format!(
            "majority labels: {} questions labelled, {} ties and {} with fewer than {min_votes} answered samples skipped{agree}",
            self.labelled, self.ties, self.too_few
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(String::from)).collect()
    }

    #[test]
    fn the_most_common_answer_wins_numbers_compared_numerically() {
        let v = vote(
            AnswerType::Number,
            &s(&[
                Some("5"),
                Some("7"),
                Some("5.0"),
                None,
                Some("7"),
                Some("5"),
            ]),
            2,
        );
        assert_eq!(
            v,
            Vote::Majority {
                answer: "5".into(),
                votes: 3,
                answered: 5
            }
        );
        assert_eq!(v.label(), Some("5"));
    }

    #[test]
    fn a_tie_has_no_label() {
        let v = vote(
            AnswerType::YesNo,
            &s(&[Some("yes"), Some("no"), Some("no"), Some("yes"), None]),
            2,
        );
        assert_eq!(
            v,
            Vote::Tie {
                answers: vec!["yes".into(), "no".into()],
                votes: 2
            }
        );
        assert_eq!(v.label(), None);
        // Two samples that disagree: a tie, too.
        assert!(matches!(
            vote(AnswerType::Choice(5), &s(&[Some("A"), Some("B")]), 2),
            Vote::Tie { .. }
        ));
    }

    #[test]
    fn no_answer_and_one_sample_are_too_few() {
        assert_eq!(
            vote(AnswerType::Number, &s(&[None, None, None]), 2),
            Vote::TooFew {
                answered: 0,
                samples: 3
            }
        );
        assert_eq!(
            vote(AnswerType::Number, &s(&[Some("4")]), 2),
            Vote::TooFew {
                answered: 1,
                samples: 1
            }
        );
        // One readable answer among three samples: too few at 2, a label at 1.
        let one = s(&[None, Some("4"), None]);
        assert!(matches!(
            vote(AnswerType::Number, &one, 2),
            Vote::TooFew { answered: 1, .. }
        ));
        assert_eq!(vote(AnswerType::Number, &one, 1).label(), Some("4"));
        // No sample at all, even with min_votes 0.
        assert!(matches!(
            vote(AnswerType::Number, &[], 0),
            Vote::TooFew { answered: 0, .. }
        ));
    }

    #[test]
    fn the_tally_counts_agreement_with_gold() {
        let mut t = Tally::default();
        let k = AnswerType::Number;
        t.add(k, &vote(k, &s(&[Some("3"), Some("3")]), 2), Some("3"));
        t.add(k, &vote(k, &s(&[Some("4"), Some("4")]), 2), Some("5"));
        t.add(k, &vote(k, &s(&[Some("4"), Some("5")]), 2), Some("5"));
        t.add(k, &vote(k, &s(&[Some("4")]), 2), None);
        t.add(k, &vote(k, &s(&[Some("6"), Some("6")]), 2), None);
        assert_eq!(
            (
                t.labelled,
                t.ties,
                t.too_few,
                t.with_gold,
                t.agree_with_gold
            ),
            (3, 1, 1, 2, 1)
        );
        assert!(t.describe(2).contains("equals gold on 1 of 2 (50.0%)"));
    }
}
