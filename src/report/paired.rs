//! Paired comparisons of two arms (e.g. morsd against `all`) that ran at the same seeds on the
//! same test questions: the mean difference in points, its 95 % CI from a two-level bootstrap
//! (seeds, then test questions within each seed), an exact paired sign-flip p-value over the
//! seeds, the per-seed differences, the minimum detectable effect (80 % power at α = 0.05) and
//! the verdict rules of `CLAIMS.md`.
//!
//! A comparison may pool several *strata* (tasks): its statistic is the mean over strata of
//! each stratum's mean difference, and the resampling and sign flips stay within each stratum.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use std::collections::BTreeMap;

/// Bootstrap replicates of every comparison.
pub const REPLICATES: usize = 10_000;
/// The bootstrap's random seed: a report is the same every time it is rebuilt.
pub const BOOTSTRAP_SEED: u64 = 0x006d_6f72_7364; // "morsd"
/// Exact sign-flip enumeration up to this many seeds (2^20 sign patterns); Monte Carlo above.
const EXACT_FLIPS: usize = 20;

/// One seed of a paired comparison: per shared test question, `a correct − b correct`.
#[derive(Debug, Clone)]
pub struct SeedDiffs {
    /// The run seed.
    pub seed: u64,
    /// Per question: +1 (only a right), 0 (both or neither), −1 (only b right).
    pub diffs: Vec<i8>,
}

impl SeedDiffs {
    /// Pairs two runs' per-question outcomes on the question ids both have (sorted by id).
    pub fn pair(seed: u64, a: &BTreeMap<String, bool>, b: &BTreeMap<String, bool>) -> Self {
        let diffs = a
            .iter()
            .filter_map(|(q, &x)| b.get(q).map(|&y| i8::from(x) - i8::from(y)))
            .collect();
        SeedDiffs { seed, diffs }
    }

    /// Mean difference over the questions (a fraction; NaN with none).
    pub fn mean(&self) -> f64 {
        if self.diffs.is_empty() {
            return f64::NAN;
        }
        self.diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / self.diffs.len() as f64
    }

    /// (+1 count, −1 count).
    fn counts(&self) -> (u64, u64) {
        self.diffs.iter().fold((0, 0), |(p, m), &d| match d {
            1 => (p + 1, m),
            -1 => (p, m + 1),
            _ => (p, m),
        })
    }
}

/// One stratum (task) of a comparison: its seeds.
#[derive(Debug, Clone, Default)]
pub struct Stratum {
    /// Its name (the task).
    pub name: String,
    /// Seeds at which both arms ran, with questions.
    pub seeds: Vec<SeedDiffs>,
    /// Runs of both arms at those seeds.
    pub runs: usize,
    /// Of them, the runs still improving when training ended (not converged, or, in an older
    /// folder, best checkpoint at the last step).
    pub still_improving: usize,
    /// Of them, the runs whose convergence is unknown (an older folder with no curves).
    pub unknown: usize,
    /// Mean training tokens per run of arm a and of arm b.
    pub tokens: (f64, f64),
}

/// The result of a paired comparison. Differences are fractions (×100 for points).
#[derive(Debug, Clone)]
pub struct Paired {
    /// Mean over strata of the mean over seeds of the per-seed mean difference.
    pub mean: f64,
    /// 95 % bootstrap percentile interval (seeds, then questions within each seed).
    pub ci: (f64, f64),
    /// Two-sided p-value of the exact paired sign-flip test over seeds.
    pub p: f64,
    /// The smallest p-value the sign-flip test can give with these seeds (2 / 2^seeds).
    pub p_floor: f64,
    /// Minimum detectable effect: 80 % power at α = 0.05 (two-sided), from the observed
    /// between-seed variance of the differences (at least the within-seed question variance).
    pub mde: f64,
    /// (stratum, seed, mean difference) per seed.
    pub per_seed: Vec<(String, u64, f64)>,
    /// Seeds in all strata.
    pub seeds: usize,
    /// Paired (seed, question) outcomes in all strata.
    pub pairs: usize,
    /// The fewest seeds of any stratum: with one, the CI and the MDE cover the test questions'
    /// noise only, not the training noise between seeds.
    pub min_seeds: usize,
    /// Runs of both arms in all strata.
    pub runs: usize,
    /// Of them, the runs still improving when training ended.
    pub still_improving: usize,
    /// Of them, the runs whose convergence is unknown.
    pub unknown: usize,
    /// Mean over strata of each arm's mean training tokens per run: (a, b).
    pub tokens: (f64, f64),
}

/// Compares two arms over `strata`. `None` when no stratum has a seed with shared questions.
pub fn compare(strata: &[Stratum]) -> Option<Paired> {
    // 1. Keep the seeds with questions, and the strata with seeds.
    let kept: Vec<&Stratum> = strata
        .iter()
        .filter(|s| s.seeds.iter().any(|d| !d.diffs.is_empty()))
        .collect();
    let strata: Vec<Vec<&SeedDiffs>> = kept
        .iter()
        .map(|s| s.seeds.iter().filter(|d| !d.diffs.is_empty()).collect())
        .collect();
    if strata.is_empty() {
        return None;
    }
    // 2. The statistic: mean over strata of the mean over seeds.
    let stat = |means: &[Vec<f64>]| {
        means
            .iter()
            .map(|m| m.iter().sum::<f64>() / m.len() as f64)
            .sum::<f64>()
            / means.len() as f64
    };
    let seed_means: Vec<Vec<f64>> = strata
        .iter()
        .map(|s| s.iter().map(|d| d.mean()).collect())
        .collect();
    let mean = stat(&seed_means);
    // 3. Two-level bootstrap: per stratum, draw its seeds with replacement, then each drawn
    //    seed's questions with replacement. A question resample of a seed only needs how many
    //    +1 and −1 it draws: a multinomial over (+1, −1, 0), drawn as two binomials.
    let mut rng = StdRng::seed_from_u64(BOOTSTRAP_SEED);
    let counts: Vec<Vec<(u64, u64, u64)>> = strata
        .iter()
        .map(|s| {
            s.iter()
                .map(|d| {
                    let (p, m) = d.counts();
                    (p, m, d.diffs.len() as u64)
                })
                .collect()
        })
        .collect();
    let mut reps: Vec<f64> = (0..REPLICATES)
        .map(|_| {
            let mut total = 0.0;
            for s in &counts {
                let mut acc = 0.0;
                for _ in 0..s.len() {
                    let (p, m, n) = s[rng.random_range(0..s.len())];
                    let plus = binomial(&mut rng, n, p as f64 / n as f64);
                    let rest = n - plus;
                    let q = if n > p {
                        m as f64 / (n - p) as f64
                    } else {
                        0.0
                    };
                    let minus = binomial(&mut rng, rest, q.min(1.0));
                    acc += (plus as f64 - minus as f64) / n as f64;
                }
                total += acc / s.len() as f64;
            }
            total / counts.len() as f64
        })
        .collect();
    reps.sort_by(f64::total_cmp);
    let ci = (quantile(&reps, 0.025), quantile(&reps, 0.975));
    // 4. Sign flips over seeds: under "no difference" each seed's difference is as likely
    //    negated. Exact over all 2^seeds patterns up to EXACT_FLIPS seeds, Monte Carlo above.
    let flat: Vec<(usize, f64)> = seed_means
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.iter().map(move |&x| (i, x)))
        .collect();
    let n_seeds = flat.len();
    let weights: Vec<f64> = flat
        .iter()
        .map(|&(i, _)| 1.0 / (seed_means[i].len() as f64 * seed_means.len() as f64))
        .collect();
    let flipped = |signs: &dyn Fn(usize) -> bool| {
        flat.iter()
            .enumerate()
            .map(|(j, &(_, x))| if signs(j) { -x } else { x } * weights[j])
            .sum::<f64>()
    };
    let observed = mean.abs() - 1e-12;
    let p = if n_seeds <= EXACT_FLIPS {
        let total = 1u64 << n_seeds;
        let hits = (0..total)
            .filter(|&bits| flipped(&|j| bits >> j & 1 == 1).abs() >= observed)
            .count();
        hits as f64 / total as f64
    } else {
        let draws = 100_000;
        let hits = (0..draws)
            .filter(|_| {
                let signs: Vec<bool> = (0..n_seeds).map(|_| rng.random()).collect();
                flipped(&|j| signs[j]).abs() >= observed
            })
            .count();
        (hits + 1) as f64 / (draws + 1) as f64
    };
    let p_floor = if n_seeds <= EXACT_FLIPS {
        2.0 / (1u64 << n_seeds) as f64
    } else {
        1.0 / 100_001.0
    };
    // 5. Power: the standard error of the statistic from each stratum's between-seed variance
    //    (never below the within-seed binomial variance of its questions, so a lucky agreement
    //    of few seeds cannot promise a tiny MDE); df = Σ (seeds − 1).
    let mut var = 0.0;
    let mut df = 0usize;
    for (s, means) in strata.iter().zip(&seed_means) {
        let k = means.len() as f64;
        let within = s
            .iter()
            .map(|d| {
                let m = d.mean();
                let n = d.diffs.len() as f64;
                let v = d
                    .diffs
                    .iter()
                    .map(|&x| (f64::from(x) - m).powi(2))
                    .sum::<f64>()
                    / (n - 1.0).max(1.0);
                v / n
            })
            .sum::<f64>()
            / k;
        let between = if means.len() > 1 {
            let m = means.iter().sum::<f64>() / k;
            means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1.0)
        } else {
            0.0
        };
        var += between.max(within) / k;
        df += means.len() - 1;
    }
    let se = var.sqrt() / strata.len() as f64;
    let mde = (quantile_t(0.975, df) + quantile_t(0.80, df)) * se;
    let per_seed = strata
        .iter()
        .zip(&seed_means)
        .flat_map(|(s, m)| s.iter().zip(m).map(|(d, &x)| (String::new(), d.seed, x)))
        .collect();
    Some(Paired {
        mean,
        ci,
        p,
        p_floor,
        mde,
        per_seed,
        seeds: n_seeds,
        pairs: strata.iter().flatten().map(|d| d.diffs.len()).sum(),
        min_seeds: strata.iter().map(|s| s.len()).min().unwrap_or(0),
        runs: kept.iter().map(|s| s.runs).sum(),
        still_improving: kept.iter().map(|s| s.still_improving).sum(),
        unknown: kept.iter().map(|s| s.unknown).sum(),
        tokens: (
            kept.iter().map(|s| s.tokens.0).sum::<f64>() / kept.len() as f64,
            kept.iter().map(|s| s.tokens.1).sum::<f64>() / kept.len() as f64,
        ),
    })
}

impl Paired {
    /// A comparison of six seeds with the given CI and MDE, for tests of the verdict rules.
    #[cfg(test)]
    pub(crate) fn with_ci(lo: f64, hi: f64, mde: f64) -> Paired {
        Paired {
            mean: (lo + hi) / 2.0,
            ci: (lo, hi),
            p: 0.5,
            p_floor: 0.03,
            mde,
            per_seed: vec![],
            seeds: 6,
            pairs: 6000,
            min_seeds: 6,
            runs: 12,
            still_improving: 0,
            unknown: 0,
            tokens: (1.0, 1.0),
        }
    }
}

/// [`compare`], with each per-seed difference labelled by its stratum's name.
pub fn compare_named(strata: &[Stratum]) -> Option<Paired> {
    let mut out = compare(strata)?;
    let names = strata
        .iter()
        .filter(|s| s.seeds.iter().any(|d| !d.diffs.is_empty()))
        .flat_map(|s| {
            s.seeds
                .iter()
                .filter(|d| !d.diffs.is_empty())
                .map(|_| s.name.clone())
        });
    for (row, name) in out.per_seed.iter_mut().zip(names) {
        row.0 = name;
    }
    Some(out)
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        0
    } else if p >= 1.0 {
        n
    } else {
        Binomial::new(n, p).map_or(0, |b| b.sample(rng))
    }
}

/// Linear-interpolated quantile of sorted values (R's type 7).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// The `q` quantile of Student's t with `df` degrees of freedom (the normal's for df = 0,
/// i.e. when the variance is known, as with one seed's questions).
pub fn quantile_t(q: f64, df: usize) -> f64 {
    if df == 0 {
        return Normal::new(0.0, 1.0).map_or(f64::NAN, |n| n.inverse_cdf(q));
    }
    StudentsT::new(0.0, 1.0, df as f64).map_or(f64::NAN, |t| t.inverse_cdf(q))
}

/// A comparison's verdict against a claimed direction (a > b) and a smallest effect of interest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// The CI lies wholly on the claimed side of 0.
    Reproduced,
    /// The CI lies wholly on the other side.
    Contradicted,
    /// The CI contains 0 and the MDE is at most the effect of interest.
    NoEffect,
    /// The CI contains 0 and the study could not have detected the effect of interest
    /// (the MDE, as a fraction).
    Inconclusive(f64),
    /// Some stratum has a single seed: training noise is not measured, so no verdict.
    OneSeed,
    /// (N, M): N of the comparison's M runs were still improving when training ended, so the
    /// difference measures the training budget as much as the arms: no verdict.
    NotConverged(usize, usize),
    /// The runs needed are not there.
    Unmeasured,
}

impl Decision {
    /// The verdict rules.
    pub fn of(p: Option<&Paired>, effect: f64) -> Decision {
        match p {
            None => Decision::Unmeasured,
            Some(p) if p.still_improving > 0 => Decision::NotConverged(p.still_improving, p.runs),
            Some(p) if p.min_seeds < 2 => Decision::OneSeed,
            Some(p) if p.ci.0 > 0.0 => Decision::Reproduced,
            Some(p) if p.ci.1 < 0.0 => Decision::Contradicted,
            Some(p) if p.mde <= effect => Decision::NoEffect,
            Some(p) => Decision::Inconclusive(p.mde),
        }
    }

    /// The verdict as `CLAIMS.md` prints it; `effect` is the claim's effect size (a fraction).
    pub fn text(self, effect: f64) -> String {
        match self {
            Decision::Reproduced => "**reproduced**".into(),
            Decision::Contradicted => "**contradicted**".into(),
            Decision::NoEffect => format!(
                "**no effect at the paper's size** (an effect of {:.1} points would have been detected)",
                100.0 * effect
            ),
            Decision::Inconclusive(m) => format!("**inconclusive (MDE {:.1} points)**", 100.0 * m),
            Decision::Unmeasured => "**not measured**".into(),
            Decision::NotConverged(n, m) => {
                format!("**inconclusive (not converged: {n} of {m} runs still improving)**")
            }
            Decision::OneSeed => {
                "**inconclusive (one seed: the noise between training runs is not measured)**"
                    .into()
            }
        }
    }
}

/// `41 200 / 93 800`: the two arms' mean training tokens per run.
pub fn tokens_text(p: &Paired) -> String {
    format!("{:.0} / {:.0}", p.tokens.0, p.tokens.1)
}

/// Whether every run of a comparison had finished learning: `all 12 converged`, or the
/// not-converged verdict.
pub fn learned_text(p: &Paired) -> String {
    match Decision::of(Some(p), 0.0) {
        Decision::NotConverged(n, m) => Decision::NotConverged(n, m).text(0.0),
        _ if p.unknown > 0 => format!(
            "unknown for {} of {} runs (no learning curves recorded)",
            p.unknown, p.runs
        ),
        _ => format!("all {} converged", p.runs),
    }
}

/// `+2.1 [−0.4, +4.6]`: a difference and its CI in points.
pub fn points(p: &Paired) -> String {
    format!(
        "{:+.1} [{:+.1}, {:+.1}]",
        100.0 * p.mean,
        100.0 * p.ci.0,
        100.0 * p.ci.1
    )
}

/// `0.031` or `< 0.001`; with `(floor 0.062)` when the seeds cannot give p < 0.05.
pub fn p_text(p: &Paired) -> String {
    let v = if p.p < 0.001 {
        "< 0.001".to_string()
    } else {
        format!("{:.3}", p.p)
    };
    if p.p_floor >= 0.05 {
        format!("{v} (floor {:.3})", p.p_floor)
    } else {
        v
    }
}

/// `p = 0.031` or `p < 0.001`, for a sentence.
pub fn p_sentence(p: &Paired) -> String {
    let t = p_text(p);
    if t.starts_with('<') {
        format!("p {t}")
    } else {
        format!("p = {t}")
    }
}

/// The per-seed differences in points, `+3.0, −1.0, …`.
pub fn per_seed_text(p: &Paired) -> String {
    p.per_seed
        .iter()
        .map(|(_, _, d)| format!("{:+.1}", 100.0 * d))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(seed: u64, plus: usize, minus: usize, zero: usize) -> SeedDiffs {
        let mut diffs = vec![1i8; plus];
        diffs.extend(vec![-1i8; minus]);
        diffs.extend(vec![0i8; zero]);
        SeedDiffs { seed, diffs }
    }

    fn one(seeds: Vec<SeedDiffs>) -> Vec<Stratum> {
        vec![Stratum {
            name: "t".into(),
            seeds,
            ..Default::default()
        }]
    }

    #[test]
    fn pairs_on_shared_question_ids() {
        let a: BTreeMap<String, bool> = [("q1", true), ("q2", false), ("q3", true)]
            .map(|(q, c)| (q.to_string(), c))
            .into();
        let b: BTreeMap<String, bool> = [("q1", false), ("q2", false), ("q4", true)]
            .map(|(q, c)| (q.to_string(), c))
            .into();
        let d = SeedDiffs::pair(7, &a, &b);
        assert_eq!(d.diffs, vec![1, 0]);
        assert_eq!(d.mean(), 0.5);
    }

    /// Per-seed differences 0.10, 0.20, 0.05, 0.15, −0.02, on 100 questions each.
    fn five_seeds() -> Vec<SeedDiffs> {
        vec![
            seed(0, 10, 0, 90),
            seed(1, 20, 0, 80),
            seed(2, 5, 0, 95),
            seed(3, 15, 0, 85),
            seed(4, 0, 2, 98),
        ]
    }

    // The values below were computed independently of this code (Python 3, the standard
    // library only: `statistics`, `itertools.product` over all sign patterns, and the t
    // quantiles from R's qt()).

    #[test]
    fn sign_flip_p_is_exact() {
        // Per-seed differences 0.10, 0.20, 0.05, 0.15, −0.02 (100 questions each). Of the 32
        // sign patterns, those with |mean| ≥ 0.096 number 4 → p = 4/32 = 0.125.
        let p = compare(&one(five_seeds())).unwrap();
        assert!((p.mean - 0.096).abs() < 1e-12, "{}", p.mean);
        assert!((p.p - 0.125).abs() < 1e-12, "{}", p.p);
        assert!((p.p_floor - 0.0625).abs() < 1e-12);
        assert_eq!(p.seeds, 5);
        assert_eq!(p.pairs, 500);
    }

    #[test]
    fn all_positive_seeds_reach_the_floor() {
        // Six seeds all +0.05: only the all-plus and all-minus patterns reach |0.05| → 2/64.
        let seeds = (0..6).map(|s| seed(s, 5, 0, 95)).collect();
        let p = compare(&one(seeds)).unwrap();
        assert!((p.p - 2.0 / 64.0).abs() < 1e-12, "{}", p.p);
        assert!(p.ci.0 > 0.0, "{:?}", p.ci);
    }

    #[test]
    fn mde_uses_t_quantiles_and_the_between_seed_variance() {
        // Per-seed differences 0.10, 0.20, 0.05, 0.15, −0.02: sd = 0.0856154, se = sd/√5 =
        // 0.0382884; qt(.975, 4) = 2.776445, qt(.80, 4) = 0.940965 → MDE = 0.142334.
        // (The within-seed variance of the mean, 0.000898 on average, is below the
        // between-seed 0.00733, so the between-seed variance is used.)
        let p = compare(&one(five_seeds())).unwrap();
        assert!((p.mde - 0.142334).abs() < 2e-6, "{}", p.mde);
        assert!((quantile_t(0.975, 4) - 2.776445).abs() < 1e-6);
        assert!((quantile_t(0.80, 4) - 0.940965).abs() < 1e-6);
        assert!((quantile_t(0.975, 0) - 1.959964).abs() < 1e-6);
    }

    #[test]
    fn mde_never_below_the_question_noise() {
        // Five seeds of identical difference 0.05 on 100 questions: no between-seed variance;
        // the within-seed variance of d ∈ {+1 ×5, 0 ×95} is 0.05·0.95·100/99 = 0.0479798, so
        // se² = 0.0479798/100/5 → se = 0.0097959, MDE = 3.717410 · se = 0.036415.
        let seeds = (0..5).map(|s| seed(s, 5, 0, 95)).collect();
        let p = compare(&one(seeds)).unwrap();
        assert!((p.mde - 0.036415).abs() < 2e-6, "{}", p.mde);
    }

    #[test]
    fn bootstrap_ci_brackets_the_mean_and_matches_its_spread() {
        // One seed of 1000 questions, 300 × +1, 100 × −1: mean 0.2, and the question-level
        // bootstrap's sd is √(Var(d)/n) = √((0.4 − 0.04)/1000) = 0.018974 → a 95 % interval of
        // about ±0.0372.
        let p = compare(&one(vec![seed(0, 300, 100, 600)])).unwrap();
        assert!((p.mean - 0.2).abs() < 1e-12);
        let half = (p.ci.1 - p.ci.0) / 2.0;
        assert!((half - 0.0372).abs() < 0.003, "{:?}", p.ci);
        assert!(p.ci.0 < 0.2 && p.ci.1 > 0.2);
        // Rebuilt reports are identical: the bootstrap is seeded.
        let again = compare(&one(vec![seed(0, 300, 100, 600)])).unwrap();
        assert_eq!(p.ci, again.ci);
    }

    #[test]
    fn strata_average_and_resample_separately() {
        // Two tasks: one with seed differences +0.2, +0.2, one with 0.0, 0.0 → mean 0.1.
        let strata = vec![
            Stratum {
                name: "a".into(),
                seeds: vec![seed(0, 20, 0, 80), seed(1, 20, 0, 80)],
                ..Default::default()
            },
            Stratum {
                name: "b".into(),
                seeds: vec![seed(0, 0, 0, 100), seed(1, 0, 0, 100)],
                ..Default::default()
            },
        ];
        let p = compare_named(&strata).unwrap();
        assert!((p.mean - 0.1).abs() < 1e-12);
        assert_eq!(p.per_seed[0].0, "a");
        assert_eq!(p.per_seed[3].0, "b");
        // Flipping task b's zero differences changes nothing; of the 4 patterns of task a's
        // two, 2 reach |0.1| → p = 8/16.
        assert!((p.p - 0.5).abs() < 1e-12, "{}", p.p);
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let mk = Paired::with_ci;
        let e = 0.046;
        assert_eq!(
            Decision::of(Some(&mk(0.01, 0.05, 0.03)), e),
            Decision::Reproduced
        );
        assert_eq!(
            Decision::of(Some(&mk(-0.05, -0.01, 0.03)), e),
            Decision::Contradicted
        );
        assert_eq!(
            Decision::of(Some(&mk(-0.02, 0.02, 0.03)), e),
            Decision::NoEffect
        );
        assert_eq!(
            Decision::of(Some(&mk(-0.02, 0.08, 0.09)), e),
            Decision::Inconclusive(0.09)
        );
        assert_eq!(Decision::of(None, e), Decision::Unmeasured);
        let one = Paired {
            min_seeds: 1,
            ..mk(0.01, 0.05, 0.03)
        };
        assert_eq!(Decision::of(Some(&one), e), Decision::OneSeed);
        // A run still improving takes the verdict away, even from a CI clear of 0.
        let cut = Paired {
            still_improving: 3,
            ..mk(0.01, 0.05, 0.03)
        };
        assert_eq!(Decision::of(Some(&cut), e), Decision::NotConverged(3, 12));
        assert_eq!(
            Decision::NotConverged(3, 12).text(e),
            "**inconclusive (not converged: 3 of 12 runs still improving)**"
        );
        assert!(
            Decision::Inconclusive(0.09)
                .text(e)
                .contains("MDE 9.0 points")
        );
    }
}
