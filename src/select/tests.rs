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
        nll_response: None,
        nll_response_alone: None,
        mean_rank: None,
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
        correct_only: true,
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

/// A candidate with response scores: (nll given q, nll alone, mean rank).
fn r(q: &str, id: &str, words: usize, correct: bool, (w, a, k): (f64, f64, f64)) -> Scored {
    Scored {
        nll_response: Some(w),
        nll_response_alone: Some(a),
        mean_rank: Some(k),
        ..s(q, id, &vec!["w"; words].join(" "), correct, 1.0)
    }
}

/// One question, five candidates whose scores order them differently (worked by hand):
///
/// | id | correct | words | nll(r\|q) | nll(r) | rank | IFD | PPL ratio | GRAPE | RSR |
/// |---|---|---|---|---|---|---|---|---|---|
/// | a | yes | 5 | 1.0 | 2.0 | 2.0 | 0.50 | e^-1.0 = .37 | -1.0 | 2.0 |
/// | b | yes | 9 | 2.0 | 2.5 | 9.0 | 0.80 | e^-0.5 = .61 | -2.0 | 4.5 |
/// | c | yes | 3 | 0.9 | 1.0 | 3.0 | 0.90 | e^-0.1 = .90 | -0.9 | 3.33 |
/// | d | no  | 1 | 0.1 | 9.0 | 1.0 | 0.01 | e^-8.9      | -0.1 | 10.0 |
/// | e | yes | 7 | 3.0 | 2.0 | 3.0 | 1.50 | e^1.0 = 2.7 | -3.0 | 1.0 |
///
/// IFD keeps < 1, highest first: c, b, a (e ≥ 1, d wrong). Superfiltering's perplexity ratio
/// orders the same three c, b, a; with d allowed it stays last. GRAPE: c, a, b, e. RSR: e, a, c,
/// b. Shortest: c, a, e, b; longest: b, e, a, c. Answer-only: a (first correct by id).
fn scored_set() -> Vec<Scored> {
    vec![
        r("q", "a", 5, true, (1.0, 2.0, 2.0)),
        r("q", "b", 9, true, (2.0, 2.5, 9.0)),
        r("q", "c", 3, true, (0.9, 1.0, 3.0)),
        r("q", "d", 1, false, (0.1, 9.0, 1.0)),
        r("q", "e", 7, true, (3.0, 2.0, 3.0)),
    ]
}

fn order(strategy: Strategy, k: usize, correct_only: bool) -> Vec<String> {
    pick(
        strategy,
        &scored_set(),
        &Params {
            correct_only,
            ..params(k)
        },
    )
    .into_iter()
    .map(|id| id.trim_start_matches("q/").to_string())
    .collect()
}

#[test]
fn the_score_strategies_rank_as_their_papers_say() {
    assert_eq!(order(Strategy::Ifd, 10, true), ["c", "b", "a"]);
    assert_eq!(order(Strategy::Ifd, 2, true), ["c", "b"]);
    assert_eq!(order(Strategy::Superfilter, 10, true), ["c", "b", "a"]);
    assert_eq!(order(Strategy::Grape, 10, true), ["c", "a", "b", "e"]);
    assert_eq!(order(Strategy::Rsr, 10, true), ["e", "a", "c", "b"]);
    assert_eq!(order(Strategy::Shortest, 10, true), ["c", "a", "e", "b"]);
    assert_eq!(order(Strategy::Longest, 2, true), ["b", "e"]);
    assert_eq!(order(Strategy::AnswerOnly, 10, true), ["a"]);
    // Without the accuracy filter the wrong rationale d competes: it is GRAPE's most likely and
    // the shortest.
    assert_eq!(order(Strategy::Grape, 1, false), ["d"]);
    assert_eq!(order(Strategy::Shortest, 1, false), ["d"]);
    assert_eq!(order(Strategy::Ifd, 10, false), ["c", "b", "a", "d"]);
    assert_eq!(order(Strategy::Rsr, 10, false).last().unwrap(), "d");
}

#[test]
fn the_loss_ratio_and_the_perplexity_ratio_can_disagree() {
    // x: IFD 0.9 / 1.0 = 0.9, perplexity ratio e^-0.1 = 0.905; y: IFD 3.0 / 3.2 = 0.9375,
    // ratio e^-0.2 = 0.819. Both keep the highest: IFD picks y, Superfiltering x.
    let set = vec![
        r("q", "x", 3, true, (0.9, 1.0, 1.0)),
        r("q", "y", 3, true, (3.0, 3.2, 1.0)),
    ];
    assert_eq!(pick(Strategy::Ifd, &set, &params(1)), ["q/y"]);
    assert_eq!(pick(Strategy::Superfilter, &set, &params(1)), ["q/x"]);
}

#[test]
fn spearman_matches_hand_values() {
    use super::scores::{ranks, spearman, within_question_spearman};
    assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
    // d = rank differences 0, -1, 1, 0 → 1 − 6·2 / (4·15) = 0.8 (no ties).
    let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap();
    assert!((r - 0.8).abs() < 1e-12);
    assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    // Within the hand set every RD is 1.0, so RD's five pairs are undefined and left out: 10 of
    // the 15 pairs remain.
    let w = within_question_spearman(&scored_set());
    assert_eq!(w.len(), 10, "{w:?}");
    assert!(!w.contains_key("rd~ifd"));
    let (g_len, n) = w["grape~length"];
    assert_eq!(n, 1);
    // grape: a -1, b -2, c -.9, d -.1, e -3 → ranks 3, 2, 4, 5, 1; length 5, 9, 3, 1, 7 →
    // ranks 3, 5, 2, 1, 4; d = 0, -3, 2, 4, -3 → Σd² = 38 → 1 − 6·38/120 = −0.9.
    assert!((g_len + 0.9).abs() < 1e-12, "{g_len}");
}
