//! Synthetic tasks generated from a seed: multi-step arithmetic word problems, last-letter
//! concatenation and coin flip, each with disjoint train / validation / test splits.

use super::{Example, TaskData};
use crate::spec::TaskKind;
use crate::spec::raw::DataSpec;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One arithmetic operation applied to the running quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Gains `n` more.
    Add(i64),
    /// Loses `n`.
    Sub(i64),
    /// Ends up with `n` times as many.
    Mul(i64),
}

impl Op {
    /// Applies the operation.
    pub fn apply(self, x: i64) -> i64 {
        match self {
            Op::Add(n) => x + n,
            Op::Sub(n) => x - n,
            Op::Mul(n) => x * n,
        }
    }
    /// The operand.
    pub fn operand(self) -> i64 {
        match self {
            Op::Add(n) | Op::Sub(n) | Op::Mul(n) => n,
        }
    }
    /// The operator symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Add(_) => "+",
            Op::Sub(_) => "-",
            Op::Mul(_) => "*",
        }
    }
}

/// The structure behind a question.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Problem {
    /// `name` starts with `start` `item`s and applies `ops` in order.
    Arithmetic {
        name: String,
        item: String,
        start: i64,
        ops: Vec<Op>,
    },
    /// Concatenate the last letters of `words`.
    LastLetter { words: Vec<String> },
    /// The coin starts heads up; each person flips it or not.
    CoinFlip { people: Vec<(String, bool)> },
}

const NAMES: &[&str] = &[
    "Ann", "Bob", "Cara", "Dan", "Eve", "Finn", "Gina", "Hugo", "Ivy", "Jack", "Kim", "Leo", "Mia",
    "Nick", "Olga", "Paul", "Rosa", "Sam", "Tina", "Umar", "Vera", "Walt", "Yara", "Zeke",
];
const ITEMS: &[&str] = &[
    "apples", "books", "coins", "stickers", "marbles", "pencils", "cookies", "cards",
];
const WORDS: &[&str] = &[
    "river", "stone", "cloud", "maple", "tiger", "lemon", "piano", "candle", "forest", "rocket",
    "garden", "silver", "window", "button", "pepper", "orbit", "violin", "bridge", "castle",
    "desert", "falcon", "jungle", "kettle", "marble", "needle", "planet", "saddle", "tunnel",
    "velvet", "wizard",
];

/// Generates the task's three splits. Questions are unique across splits.
pub fn generate(task: TaskKind, spec: &DataSpec) -> TaskData {
    // 1. One RNG per task and seed, so a spec always sees the same questions.
    let mut rng =
        StdRng::seed_from_u64(spec.seed ^ (task as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut seen = HashSet::new();
    let mut split = |name: &str, n: usize, rng: &mut StdRng| {
        let mut out = Vec::with_capacity(n);
        let mut tries = 0;
        // 2. Draw problems until `n` new questions exist (duplicates across splits are skipped).
        while out.len() < n && tries < n * 200 {
            tries += 1;
            let problem = draw(task, spec, rng);
            let (question, answer) = render(&problem);
            if seen.insert(question.clone()) {
                out.push(Example {
                    id: format!("{name}-{}", out.len()),
                    question,
                    answer,
                    options: vec![],
                    problem: Some(problem),
                });
            }
        }
        out
    };
    let train = split("train", spec.train, &mut rng);
    let validation = split("val", spec.validation, &mut rng);
    let test = split("test", spec.test, &mut rng);
    TaskData {
        task: task.name().to_string(),
        answer: task.answer_type(),
        train,
        validation,
        test,
    }
}

fn draw(task: TaskKind, spec: &DataSpec, rng: &mut StdRng) -> Problem {
    match task {
        TaskKind::Arithmetic => {
            let steps = rng.random_range(spec.steps[0]..=spec.steps[1]);
            // Small operands keep the arithmetic facts learnable by a tiny student.
            let start = rng.random_range(2..=9);
            let mut x = start;
            let mut ops = Vec::new();
            for _ in 0..steps {
                let op = match rng.random_range(0..5) {
                    0 | 1 => Op::Add(rng.random_range(1..=9)),
                    2 | 3 if x > 1 => Op::Sub(rng.random_range(1..x.min(10))),
                    2 | 3 => Op::Add(rng.random_range(1..=9)),
                    _ if x <= 10 => Op::Mul(2),
                    _ => Op::Sub(rng.random_range(1..x.min(10))),
                };
                x = op.apply(x);
                ops.push(op);
            }
            Problem::Arithmetic {
                name: NAMES.choose(rng).unwrap().to_string(),
                item: ITEMS.choose(rng).unwrap().to_string(),
                start,
                ops,
            }
        }
        TaskKind::LastLetter => {
            let n = rng.random_range(2..=4);
            let words = (0..n)
                .map(|_| WORDS.choose(rng).unwrap().to_string())
                .collect();
            Problem::LastLetter { words }
        }
        TaskKind::CoinFlip => {
            let n = rng.random_range(2..=4);
            let mut names: Vec<&str> = NAMES.to_vec();
            let mut people = Vec::new();
            for _ in 0..n {
                let i = rng.random_range(0..names.len());
                people.push((names.remove(i).to_string(), rng.random_bool(0.5)));
            }
            Problem::CoinFlip { people }
        }
    }
}

/// The question text and the gold answer of a problem.
pub fn render(p: &Problem) -> (String, String) {
    match p {
        Problem::Arithmetic {
            name,
            item,
            start,
            ops,
        } => {
            let mut q = format!("{name} has {start} {item}.");
            let mut x = *start;
            for op in ops {
                let s = match op {
                    Op::Add(n) => format!(" Then {name} gets {n} more {item}."),
                    Op::Sub(n) => format!(" Then {name} gives away {n} {item}."),
                    Op::Mul(2) => format!(" Then the number of {item} doubles."),
                    Op::Mul(n) => format!(" Then the number of {item} becomes {n} times as many."),
                };
                q.push_str(&s);
                x = op.apply(x);
            }
            q.push_str(&format!(" How many {item} does {name} have now?"));
            (q, x.to_string())
        }
        Problem::LastLetter { words } => {
            let q = format!(
                "Take the last letters of the words in \"{}\" and concatenate them.",
                words.join(" ")
            );
            let a: String = words.iter().filter_map(|w| w.chars().last()).collect();
            (q, a)
        }
        Problem::CoinFlip { people } => {
            let mut q = String::from("A coin is heads up.");
            let mut heads = true;
            for (name, flips) in people {
                if *flips {
                    q.push_str(&format!(" {name} flips the coin."));
                    heads = !heads;
                } else {
                    q.push_str(&format!(" {name} does not flip the coin."));
                }
            }
            q.push_str(" Is the coin still heads up?");
            (q, if heads { "yes" } else { "no" }.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_disjoint_and_deterministic() {
        let spec = DataSpec {
            train: 50,
            validation: 10,
            test: 10,
            ..Default::default()
        };
        for task in [
            TaskKind::Arithmetic,
            TaskKind::LastLetter,
            TaskKind::CoinFlip,
        ] {
            let a = generate(task, &spec);
            let b = generate(task, &spec);
            assert_eq!(a.train.len(), 50);
            assert_eq!(a.train[7].question, b.train[7].question);
            let train: HashSet<_> = a.train.iter().map(|e| &e.question).collect();
            assert!(a.test.iter().all(|e| !train.contains(&e.question)));
        }
    }

    #[test]
    fn arithmetic_answer_matches_ops() {
        let p = Problem::Arithmetic {
            name: "Ann".into(),
            item: "apples".into(),
            start: 3,
            ops: vec![Op::Add(4), Op::Mul(2), Op::Sub(5)],
        };
        assert_eq!(render(&p).1, "9");
    }
}
