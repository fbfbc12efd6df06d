//! Each strategy selects what it claims, on a hand-made set of scored rationales.

use super::*;

fn s(q: &str, id: &str, text: &str, correct: bool, rd: f64) -> Scored {
    Scored {
        id: format!("{q}/{id}"),
        question_id: q.into(),
        source: "hand".into(),
        text: text.into(),
        extracted: None,
        correct,
        diversity: 0.0,
        nll_with: rd.ln(),
        nll_without: 0.0,
        rd,
    }
}

/// Question q1: a (correct, rd .5), b = near-duplicate of a (correct, rd .4), c (wrong, rd .1),
/// d (correct, rd .9), e (correct, rd .7, distinct). Question q2: f (wrong, rd .3), g (correct, rd .6).
fn set() -> Vec<Scored> {
    vec![
        s(
            "q1",
            "a",
            "Ann starts with 3 apples and gets 4 more so she has 7 apples in total now",
            true,
            0.5,
        ),
        s(
            "q1",
            "b",
            "Ann starts with 3 apples and gets 4 more so she has 7 apples in total now okay",
            true,
            0.4,
        ),
        s("q1", "c", "three plus four is eight", false, 0.1),
        s(
            "q1",
            "d",
            "we add the numbers up carefully and find seven",
            true,
            0.9,
        ),
        s(
            "q1",
            "e",
            "adding four to three gives seven apples",
            true,
            0.7,
        ),
        s("q2", "f", "the coin flips twice so it is tails", false, 0.3),
        s("q2", "g", "two flips leave it heads up", true, 0.6),
    ]
}

fn params(k: usize) -> Params {
    Params {
        per_question: k,
        max_total: None,
        dedup_threshold: 0.7,
        ngram: 3,
        seed: 1,
    }
}

fn ids(v: Vec<String>) -> Vec<String> {
    let mut v = v;
    v.sort();
    v
}

#[test]
fn all_keeps_everything() {
    assert_eq!(pick(Strategy::All, &set(), &params(1)).len(), 7);
}

#[test]
fn random_keeps_k_per_question_and_depends_on_seed() {
    let picks: Vec<Vec<String>> = (0..8)
        .map(|seed| {
            ids(pick(
                Strategy::Random,
                &set(),
                &Params { seed, ..params(2) },
            ))
        })
        .collect();
    for p in &picks {
        assert_eq!(p.iter().filter(|i| i.starts_with("q1")).count(), 2);
        assert_eq!(p.iter().filter(|i| i.starts_with("q2")).count(), 2);
    }
    assert!(
        picks.iter().any(|p| p != &picks[0]),
        "seeds must change the sample"
    );
    assert_eq!(
        pick(Strategy::Random, &set(), &params(2)),
        pick(Strategy::Random, &set(), &params(2))
    );
}

#[test]
fn correct_drops_wrong_answers() {
    let p = ids(pick(Strategy::Correct, &set(), &params(10)));
    assert_eq!(p, ["q1/a", "q1/b", "q1/d", "q1/e", "q2/g"]);
}

#[test]
fn dedup_never_keeps_both_near_duplicates() {
    for seed in 0..10 {
        let p = pick(Strategy::Dedup, &set(), &Params { seed, ..params(10) });
        let both = p.contains(&"q1/a".to_string()) && p.contains(&"q1/b".to_string());
        assert!(!both, "{p:?}");
        assert_eq!(p.len(), 6, "one of a/b removed, the rest kept: {p:?}");
    }
}

#[test]
fn rd_min_and_rd_max_rank_by_difficulty() {
    assert_eq!(
        pick(Strategy::RdMin, &set(), &params(2)),
        ["q1/c", "q1/b", "q2/f", "q2/g"]
    );
    assert_eq!(
        pick(Strategy::RdMax, &set(), &params(2)),
        ["q1/d", "q1/e", "q2/g", "q2/f"]
    );
}

#[test]
fn morsd_is_correct_then_dedup_then_lowest_rd() {
    // c is wrong (dropped despite the lowest RD); a duplicates b and b has lower RD; then e (.7).
    assert_eq!(
        pick(Strategy::Morsd, &set(), &params(2)),
        ["q1/b", "q1/e", "q2/g"]
    );
    assert_eq!(
        pick(Strategy::Morsd, &set(), &params(6)),
        ["q1/b", "q1/e", "q1/d", "q2/g"]
    );
}

#[test]
fn global_cap_is_round_robin() {
    let p = pick(
        Strategy::RdMin,
        &set(),
        &Params {
            max_total: Some(3),
            ..params(2)
        },
    );
    assert_eq!(p, ["q1/c", "q2/f", "q1/b"]);
}

#[test]
fn jaccard_of_near_duplicates_is_high() {
    let a = ngrams("Ann starts with 3 apples and gets 4 more", 3);
    let b = ngrams("Ann starts with 3 apples and gets 4 more okay", 3);
    assert!(jaccard(&a, &b) > 0.8);
    assert!(jaccard(&a, &ngrams("something else entirely here", 3)) < 0.1);
}
