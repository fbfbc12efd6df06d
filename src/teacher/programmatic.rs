//! The built-in programmatic teacher: K rationales per question in varied styles, a share wrong
//! (a wrong step leading to a wrong answer), a share flawed (a wrong step, right final answer)
//! and a share of near-duplicates, so that accuracy, diversity and difficulty really differ.

use super::Rationale;
use crate::spec::raw::TeacherSpec;
use crate::task::Example;
use crate::task::synthetic::{Op, Problem};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Writes `spec.samples` rationales for every question.
pub fn generate(questions: &[Example], spec: &TeacherSpec) -> Vec<Rationale> {
    let mut out = Vec::new();
    for (qi, ex) in questions.iter().enumerate() {
        // 1. One RNG per question: adding questions never changes earlier rationales.
        let mut rng =
            StdRng::seed_from_u64(spec.seed.wrapping_mul(1_000_003).wrapping_add(qi as u64));
        let mut written: Vec<String> = Vec::new();
        for k in 0..spec.samples {
            // 2. Near-duplicate of an earlier rationale, or a fresh one of some kind.
            let u: f64 = rng.random();
            let (body, answer, origin) = if k > 0 && rng.random_bool(spec.duplicate_rate) {
                let src = written.choose(&mut rng).unwrap().clone();
                let (b, tail) = crate::answer::split_answer(&src);
                let a = tail
                    .unwrap_or_default()
                    .trim()
                    .trim_end_matches('.')
                    .to_string();
                (near_duplicate(b, &mut rng), a, "duplicate")
            } else if u < spec.wrong_rate {
                let (b, a) = write(problem(ex), Fault::Wrong, &mut rng);
                (b, a, "wrong")
            } else if u < spec.wrong_rate + spec.flawed_rate {
                let (b, a) = write(problem(ex), Fault::Flawed, &mut rng);
                (b, a, "flawed")
            } else {
                let (b, a) = write(problem(ex), Fault::None, &mut rng);
                (b, a, "correct")
            };
            let text = format!("{body} The answer is {answer}.");
            written.push(text.clone());
            out.push(Rationale {
                id: format!("{}/r{k}", ex.id),
                question_id: ex.id.clone(),
                source: "programmatic".into(),
                body,
                text,
                origin: origin.into(),
                answer_text: None,
            });
        }
    }
    out
}

/// With `teacher.budget`: the rounds of [`super::budget::run`] over the rationales this teacher
/// writes (sample k of a question is the same whatever the number asked, one RNG per question),
/// keeping those asked, in question × sample order.
pub fn generate_budgeted(
    questions: &[Example],
    spec: &TeacherSpec,
    kind: crate::answer::AnswerType,
    b: &crate::spec::raw::BudgetSpec,
) -> crate::error::Result<(Vec<Rationale>, super::budget::Plan)> {
    let per = b.max_per_question.max(spec.samples);
    let all = generate(
        questions,
        &TeacherSpec {
            samples: per,
            ..spec.clone()
        },
    );
    let correct = |q: usize, k: usize| {
        let e = &questions[q];
        let a = super::answer_of(kind, &all[q * per + k], &e.options);
        crate::answer::matches(kind, a.as_deref(), &e.answer)
    };
    let plan = super::budget::run(questions.len(), spec.samples, b, |reqs| {
        Ok(reqs
            .iter()
            .map(|(q, r)| r.clone().map(|k| correct(*q, k)).collect())
            .collect())
    })?;
    let kept = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % per < plan.asked[i / per])
        .map(|(_, r)| r)
        .collect();
    Ok((kept, plan))
}

fn problem(ex: &Example) -> &Problem {
    ex.problem.as_ref().expect(
        "the programmatic teacher only runs on synthetic tasks (checked when the spec is resolved)",
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    Wrong,
    Flawed,
}

fn near_duplicate(body: &str, rng: &mut StdRng) -> String {
    const OPENERS: &[&str] = &[
        "Let's think step by step.",
        "Step by step:",
        "We work it out.",
    ];
    match rng.random_range(0..3) {
        0 => format!("{} {body}", OPENERS.choose(rng).unwrap()),
        1 => body.replacen("Then", "Next", 1).replacen(". ", ", and ", 1),
        _ => format!("{body} That is all."),
    }
}

fn off_by(rng: &mut StdRng, x: i64) -> i64 {
    let d = rng.random_range(1..=3) * if rng.random_bool(0.5) { 1 } else { -1 };
    if x + d == x { x + 1 } else { x + d }
}

fn write(p: &Problem, fault: Fault, rng: &mut StdRng) -> (String, String) {
    match p {
        Problem::Arithmetic {
            name,
            item,
            start,
            ops,
        } => arithmetic(name, item, *start, ops, fault, rng),
        Problem::LastLetter { words } => last_letter(words, fault, rng),
        Problem::CoinFlip { people } => coin_flip(people, fault, rng),
    }
}

fn arithmetic(
    name: &str,
    item: &str,
    start: i64,
    ops: &[Op],
    fault: Fault,
    rng: &mut StdRng,
) -> (String, String) {
    // 1. Pick a style and the step that goes wrong (if any).
    let style = rng.random_range(0..4);
    let bad = rng.random_range(0..ops.len());
    let mut x = start;
    let mut parts = Vec::new();
    if style == 0 {
        parts.push(format!("{name} starts with {start} {item}."));
    }
    if style == 3 {
        let expr: String = ops
            .iter()
            .map(|o| format!(" {} {}", o.symbol(), o.operand()))
            .collect();
        parts.push(format!("We compute {start}{expr} step by step."));
    }
    for (i, op) in ops.iter().enumerate() {
        // 2. The true result, and what this rationale writes down.
        let truth = op.apply(x);
        let (written, carried) = match fault {
            Fault::Wrong if i == bad => {
                let w = off_by(rng, truth);
                (w, w)
            }
            Fault::Flawed if i == bad && i + 1 < ops.len() => (off_by(rng, truth), truth),
            _ => (truth, truth),
        };
        let eq = format!("{x} {} {} = {written}", op.symbol(), op.operand());
        let verb = match op {
            Op::Add(n) => [format!("After getting {n} more"), format!("Adding {n}")],
            Op::Sub(n) => [format!("After giving away {n}"), format!("Taking away {n}")],
            Op::Mul(n) => [
                format!("After the {item} grow {n} times"),
                format!("Multiplying by {n}"),
            ],
        };
        let s = match style {
            0 => format!("{}, {name} has {eq} {item}.", verb.choose(rng).unwrap()),
            1 => format!("{eq}."),
            2 => {
                let lead = if i == 0 {
                    ["First", "To start"]
                } else {
                    ["Then", "Next"]
                };
                format!("{}, {eq} {item}.", lead.choose(rng).unwrap())
            }
            _ => format!("{} gives {eq}.", verb[1]),
        };
        parts.push(s);
        x = carried;
    }
    // 3. A flawed one-step rationale writes the wrong operator but the right result.
    if fault == Fault::Flawed && ops.len() == 1 {
        let wrong_sym = if ops[0].symbol() == "+" { "-" } else { "+" };
        let last = parts.pop().unwrap();
        parts.push(last.replacen(
            &format!(" {} ", ops[0].symbol()),
            &format!(" {wrong_sym} "),
            1,
        ));
    }
    (parts.join(" "), x.to_string())
}

fn last_letter(words: &[String], fault: Fault, rng: &mut StdRng) -> (String, String) {
    let style = rng.random_range(0..3);
    let bad = rng.random_range(0..words.len());
    let mut letters = String::new();
    let mut parts = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let truth = w.chars().last().unwrap_or('x');
        let wrong = w.chars().nth(w.len().saturating_sub(2)).unwrap_or('x');
        let (written, carried) = match fault {
            Fault::Wrong if i == bad => (wrong, wrong),
            Fault::Flawed if i == bad => (wrong, truth),
            _ => (truth, truth),
        };
        letters.push(carried);
        parts.push(match style {
            0 => format!("The last letter of \"{w}\" is \"{written}\"."),
            1 => format!("\"{w}\" ends with \"{written}\"."),
            _ => format!("{w} -> {written}."),
        });
    }
    parts.push(match style {
        0 => format!("Putting them together gives \"{letters}\"."),
        1 => format!("So we get \"{letters}\"."),
        _ => format!("Concatenated: {letters}."),
    });
    (parts.join(" "), letters)
}

fn coin_flip(people: &[(String, bool)], fault: Fault, rng: &mut StdRng) -> (String, String) {
    let style = rng.random_range(0..2);
    let flips = people.iter().filter(|(_, f)| *f).count();
    let mut parts = Vec::new();
    let answer_of = |heads: bool| if heads { "yes" } else { "no" }.to_string();
    if style == 0 {
        // Track the state person by person.
        let bad = rng.random_range(0..people.len());
        let mut heads = true;
        parts.push("The coin starts heads up.".to_string());
        for (i, (name, f)) in people.iter().enumerate() {
            let truth = if *f { !heads } else { heads };
            let (written, carried) = match fault {
                Fault::Wrong if i == bad => (!truth, !truth),
                Fault::Flawed if i == bad && i + 1 < people.len() => (!truth, truth),
                _ => (truth, truth),
            };
            let side = if written { "heads" } else { "tails" };
            parts.push(if *f {
                format!("{name} flips it, so it is {side} up.")
            } else {
                format!("{name} does not flip it, so it is {side} up.")
            });
            heads = carried;
        }
        (parts.join(" "), answer_of(heads))
    } else {
        // Count the flips.
        let (written, used) = match fault {
            Fault::Wrong => (flips + 1, flips + 1),
            Fault::Flawed => (flips + 2, flips),
            Fault::None => (flips, flips),
        };
        let names: Vec<&str> = people
            .iter()
            .filter(|(_, f)| *f)
            .map(|(n, _)| n.as_str())
            .collect();
        if names.is_empty() {
            parts.push("Nobody flips the coin.".to_string());
        } else {
            parts.push(format!("The coin is flipped by {}.", names.join(" and ")));
        }
        let parity = if written % 2 == 0 { "even" } else { "odd" };
        parts.push(format!("That is {written} flips, which is {parity}."));
        let heads = used % 2 == 0;
        parts.push(if heads {
            "An even number of flips leaves it heads up.".into()
        } else {
            "An odd number of flips leaves it tails up.".into()
        });
        (parts.join(" "), answer_of(heads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{extract, matches};
    use crate::spec::TaskKind;
    use crate::spec::raw::DataSpec;
    use crate::task::synthetic;

    #[test]
    fn shares_of_wrong_and_correct_answers_follow_the_spec() {
        for task in [
            TaskKind::Arithmetic,
            TaskKind::LastLetter,
            TaskKind::CoinFlip,
        ] {
            let data = synthetic::generate(
                task,
                &DataSpec {
                    train: 100,
                    ..Default::default()
                },
            );
            let spec = TeacherSpec {
                samples: 8,
                wrong_rate: 0.3,
                flawed_rate: 0.1,
                duplicate_rate: 0.0,
                ..Default::default()
            };
            let rs = generate(&data.train, &spec);
            assert_eq!(rs.len(), 800);
            let gold: std::collections::HashMap<_, _> = data
                .train
                .iter()
                .map(|e| (e.id.clone(), e.answer.clone()))
                .collect();
            let mut wrong = 0;
            for r in &rs {
                let ok = matches(
                    task.answer_type(),
                    extract(task.answer_type(), &r.text).as_deref(),
                    &gold[&r.question_id],
                );
                // The origin tells the truth about the final answer.
                assert_eq!(ok, r.origin != "wrong", "{task:?} {}", r.text);
                wrong += usize::from(!ok);
            }
            let share = wrong as f64 / 800.0;
            assert!((0.2..0.4).contains(&share), "{task:?} wrong share {share}");
        }
    }
}
