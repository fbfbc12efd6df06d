//! The accuracy chart, written as `accuracy.svg` and `accuracy.png`: with several budgets, test
//! accuracy against rationales per question, one line per strategy with 95 % CI bands; with one
//! budget (a single `select.per_question`), one bar per strategy (mean over seeds) with 95 % CI
//! whiskers and each seed's accuracy as a dot. And `tokens.svg` / `tokens.png`: test accuracy
//! against training tokens, one point per (strategy, k) with 95 % CI bars, a panel per task —
//! the axis of the paper's efficiency claim (with `train.epochs`, fewer rationales train on
//! fewer tokens).

use super::Stored;
use super::stats::mean_ci;
use crate::error::{Error, IoContext, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // Bitmap text needs a font; DejaVu Sans is embedded so PNGs render anywhere.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// (strategy → [(k, mean, ci)]) of the stored runs.
pub fn series(stored: &Stored) -> BTreeMap<String, Vec<(f64, f64, f64)>> {
    let mut by: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
    for r in &stored.runs {
        by.entry(r.strategy.clone())
            .or_default()
            .entry(r.per_question)
            .or_default()
            .push(r.accuracy);
    }
    by.into_iter()
        .map(|(s, ks)| {
            let pts = ks
                .into_iter()
                .map(|(k, accs)| {
                    let (m, c) = mean_ci(&accs);
                    (k as f64, m, if c.is_nan() { 0.0 } else { c })
                })
                .collect();
            (s, pts)
        })
        .collect()
}

/// Writes `accuracy.svg` and `accuracy.png` into `dir`.
pub fn accuracy(dir: &Path, stored: &Stored) -> Result<()> {
    let data = series(stored);
    write_svg_png(
        dir,
        "accuracy",
        (800, 520),
        |a| draw(a, stored, &data),
        |a| draw(a, stored, &data),
    )
}

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;

/// Draws one chart as `dir/name.svg` and `dir/name.png`, each through a temp file and a rename.
fn write_svg_png(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    svg_draw: impl FnOnce(Area<SVGBackend>) -> Result<(), String>,
    png_draw: impl FnOnce(Area<BitMapBackend>) -> Result<(), String>,
) -> Result<()> {
    register_font();
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    let (svg_tmp, png_tmp) = (super::tmp_path(&svg), super::tmp_path(&png));
    svg_draw(SVGBackend::new(&svg_tmp, size).into_drawing_area())
        .map_err(|e| Error::run(format!("{}: {e}", svg.display())))?;
    png_draw(BitMapBackend::new(&png_tmp, size).into_drawing_area())
        .map_err(|e| Error::run(format!("{}: {e}", png.display())))?;
    std::fs::rename(&svg_tmp, &svg).at(&svg)?;
    std::fs::rename(&png_tmp, &png).at(&png)
}

type Series = BTreeMap<String, Vec<(f64, f64, f64)>>;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    stored: &Stored,
    data: &Series,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let distinct_k: std::collections::BTreeSet<usize> =
        stored.runs.iter().map(|r| r.per_question).collect();
    if distinct_k.len() == 1 {
        return draw_bars(root, stored, *distinct_k.first().unwrap_or(&0));
    }
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let ks: Vec<f64> = data.values().flatten().map(|p| p.0).collect();
    let (xmin, xmax) = ks
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &k| (a.min(k), b.max(k)));
    let (xmin, xmax) = if xmin >= xmax {
        (xmin - 1.0, xmax + 1.0)
    } else {
        (xmin - 0.3, xmax + 0.3)
    };
    let ymax = data
        .values()
        .flatten()
        .map(|p| (p.1 + p.2) * 100.0)
        .fold(10.0, f64::max)
        .min(100.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: test accuracy vs rationales per question",
                stored.experiment
            ),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(xmin..xmax, 0.0..ymax.min(105.0))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("rationales per question (select.per_question)")
        .y_desc("test accuracy (%)")
        .x_labels(ks.len().clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (strategy, pts)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        // `all` ignores the budget: a flat line across the chart.
        let pts: Vec<(f64, f64, f64)> = if strategy == "all" {
            let (m, c) = (
                pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64,
                pts.iter().map(|p| p.2).fold(0.0, f64::max),
            );
            vec![(xmin, m, c), (xmax, m, c)]
        } else {
            pts.clone()
        };
        // 1. CI band.
        let mut band: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, 100.0 * (p.1 + p.2))).collect();
        band.extend(
            pts.iter()
                .rev()
                .map(|p| (p.0, 100.0 * (p.1 - p.2).max(0.0))),
        );
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.15).filled(),
            )))
            .map_err(|x| e(&x))?;
        // 2. Mean line with markers, in the legend.
        let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, 100.0 * p.1)).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(strategy.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        if strategy != "all" {
            chart
                .draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                )
                .map_err(|x| e(&x))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// One budget: a bar per strategy (mean), 95 % CI whiskers, a dot per seed.
fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    stored: &Stored,
    k: usize,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &stored.runs {
        by.entry(r.strategy.clone()).or_default().push(r.accuracy);
    }
    let bars: Vec<(String, Vec<f64>, f64, f64)> = by
        .into_iter()
        .map(|(s, accs)| {
            let (m, c) = mean_ci(&accs);
            (s, accs, m, c)
        })
        .collect();
    let n = bars.len().max(1) as i32;
    let seeds = bars.iter().map(|b| b.1.len()).max().unwrap_or(0);
    let ymax = bars
        .iter()
        .flat_map(|b| {
            let hi = if b.3.is_finite() { b.2 + b.3 } else { b.2 };
            b.1.iter().copied().chain([hi])
        })
        .filter(|x| x.is_finite())
        .map(|x| x * 100.0)
        .fold(10.0, f64::max)
        .min(100.0)
        * 1.15;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let whisker = if seeds > 1 {
        format!("whiskers: 95 % CI over {seeds} seeds")
    } else {
        "one seed: no CI".to_string()
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: test accuracy at k = {k} ({whisker}; dots: seeds)",
                stored.experiment
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // An i32 range's segments include its end: 0..n-1 gives one per strategy.
        .build_cartesian_2d((0..(n - 1).max(1)).into_segmented(), 0.0..ymax.min(110.0))
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_desc("strategy (select.strategy)")
        .y_desc("test accuracy (%)")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (_, accs, m, c)) in bars.iter().enumerate() {
        let i = i as i32;
        let color = Palette99::pick(i as usize).to_rgba();
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), 100.0 * m.max(0.0)),
            ],
            color.mix(0.55).filled(),
        );
        bar.set_margin(0, 0, 60, 60);
        chart.draw_series(std::iter::once(bar)).map_err(|x| e(&x))?;
        let top = if c.is_finite() {
            let (lo, hi) = (100.0 * (m - c).max(0.0), 100.0 * (m + c));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![
                        (SegmentValue::CenterOf(i), lo),
                        (SegmentValue::CenterOf(i), hi),
                    ],
                    BLACK.stroke_width(2),
                )))
                .map_err(|x| e(&x))?;
            for y in [lo, hi] {
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((SegmentValue::CenterOf(i), y))
                            + PathElement::new(vec![(-10, 0), (10, 0)], BLACK.stroke_width(2)),
                    ))
                    .map_err(|x| e(&x))?;
            }
            hi
        } else {
            100.0 * m
        };
        let n_acc = accs.len() as i32;
        chart
            .draw_series(accs.iter().enumerate().map(|(j, a)| {
                let dx = (j as i32 - (n_acc - 1) / 2) * 7 + 26;
                EmptyElement::at((SegmentValue::CenterOf(i), 100.0 * a))
                    + Circle::new((dx, 0), 3, BLACK.filled())
            }))
            .map_err(|x| e(&x))?;
        let label = if c.is_finite() {
            format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * c)
        } else {
            format!("{:.1}", 100.0 * m)
        };
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((SegmentValue::CenterOf(i), top))
                    + Text::new(label, (-30, -20), ("sans-serif", 14).into_font()),
            ))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// One point of the tokens chart: mean training tokens, mean accuracy, its CI half-width.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPoint {
    /// Strategy.
    pub strategy: String,
    /// Rationales per question.
    pub k: usize,
    /// Mean training tokens over seeds.
    pub tokens: f64,
    /// Mean test accuracy over seeds.
    pub mean: f64,
    /// 95 % CI half-width over seeds (0 with one seed).
    pub ci: f64,
}

/// task → points of the tokens chart.
pub fn token_points(stored: &Stored) -> BTreeMap<String, Vec<TokenPoint>> {
    let mut by: BTreeMap<(String, String, usize), Vec<(f64, f64)>> = BTreeMap::new();
    for r in &stored.runs {
        by.entry((r.task.clone(), r.strategy.clone(), r.per_question))
            .or_default()
            .push((r.training_tokens as f64, r.accuracy));
    }
    let mut out: BTreeMap<String, Vec<TokenPoint>> = BTreeMap::new();
    for ((task, strategy, k), v) in by {
        let accs: Vec<f64> = v.iter().map(|x| x.1).collect();
        let (mean, ci) = mean_ci(&accs);
        out.entry(task).or_default().push(TokenPoint {
            strategy,
            k,
            tokens: v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64,
            mean,
            ci: if ci.is_nan() { 0.0 } else { ci },
        });
    }
    out
}

/// Writes `tokens.svg` and `tokens.png` into `dir`.
pub fn tokens(dir: &Path, stored: &Stored) -> Result<()> {
    let data = token_points(stored);
    let w = 520 * data.len().clamp(1, 4) as u32;
    write_svg_png(
        dir,
        "tokens",
        (w, 480),
        |a| draw_tokens(a, stored, &data),
        |a| draw_tokens(a, stored, &data),
    )
}

fn draw_tokens<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    stored: &Stored,
    data: &BTreeMap<String, Vec<TokenPoint>>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let strategies: Vec<String> = {
        let mut s: Vec<String> = data
            .values()
            .flatten()
            .map(|p| p.strategy.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    let panels = root.split_evenly((1, data.len().max(1)));
    for (panel, (task, pts)) in panels.iter().zip(data) {
        let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
            (a.min(p.tokens), b.max(p.tokens))
        });
        let pad = ((xmax - xmin) * 0.08).max(xmax.abs() * 0.05).max(1.0);
        let ymax = pts
            .iter()
            .map(|p| 100.0 * (p.mean + p.ci))
            .filter(|x| x.is_finite())
            .fold(10.0, f64::max)
            .min(100.0)
            * 1.12;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{}: {task}, accuracy vs training tokens", stored.experiment),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d((xmin - pad)..(xmax + pad), 0.0..ymax.min(110.0))
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("training tokens (mean over seeds)")
            .y_desc("test accuracy (%), 95 % CI over seeds")
            .x_labels(5)
            .x_label_formatter(&|x| {
                if x.abs() >= 1e6 {
                    format!("{:.1}M", x / 1e6)
                } else {
                    format!("{:.0}k", x / 1e3)
                }
            })
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, strategy) in strategies.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mine: Vec<&TokenPoint> = pts.iter().filter(|p| &p.strategy == strategy).collect();
            if mine.is_empty() {
                continue;
            }
            // 1. CI bars.
            chart
                .draw_series(mine.iter().filter(|p| p.ci > 0.0).map(|p| {
                    PathElement::new(
                        vec![
                            (p.tokens, 100.0 * (p.mean - p.ci).max(0.0)),
                            (p.tokens, 100.0 * (p.mean + p.ci)),
                        ],
                        color.stroke_width(2),
                    )
                }))
                .map_err(|x| e(&x))?;
            // 2. Points, labelled with their k, in the legend.
            chart
                .draw_series(
                    mine.iter()
                        .map(|p| Circle::new((p.tokens, 100.0 * p.mean), 5, color.filled())),
                )
                .map_err(|x| e(&x))?
                .label(strategy.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
            chart
                .draw_series(mine.iter().map(|p| {
                    EmptyElement::at((p.tokens, 100.0 * p.mean))
                        + Text::new(
                            format!("k={}", p.k),
                            (7, -14),
                            ("sans-serif", 11).into_font(),
                        )
                }))
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_chart_has_a_point_per_strategy_and_k_with_mean_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = Vec::new();
        for (i, (s, k, tok, acc)) in [
            ("all", 6, 9000u64, 0.30),
            ("all", 6, 9002, 0.34),
            ("morsd", 6, 4000, 0.40),
            ("morsd", 6, 4002, 0.44),
            ("morsd", 2, 1500, 0.20),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = crate::report::test_row(s, k, i as u64, acc);
            r.training_tokens = tok;
            rows.push(r);
        }
        let st = Stored {
            experiment: "e".into(),
            runs: rows,
            ..Default::default()
        };
        let pts = &token_points(&st)["arithmetic"];
        assert_eq!(pts.len(), 3);
        let morsd6 = pts
            .iter()
            .find(|p| p.strategy == "morsd" && p.k == 6)
            .unwrap();
        assert_eq!(morsd6.tokens, 4001.0);
        assert!((morsd6.mean - 0.42).abs() < 1e-12);
        assert!(morsd6.ci > 0.0);
        tokens(dir.path(), &st).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("tokens.svg")).unwrap();
        assert!(
            svg.contains("arithmetic, accuracy vs training tokens"),
            "caption"
        );
        assert!(svg.contains("k=2") && svg.contains("k=6"), "point labels");
        assert!(dir.path().join("tokens.png").exists());
    }

    fn stored(rows: &[(&str, usize, f64)]) -> Stored {
        let runs = rows
            .iter()
            .enumerate()
            .map(|(i, (s, k, a))| crate::report::test_row(s, *k, i as u64, *a))
            .collect();
        Stored {
            experiment: "e".into(),
            spec: "s".into(),
            sweep_keys: vec![],
            runs,
            ..Default::default()
        }
    }

    #[test]
    fn one_budget_draws_bars_with_whiskers_and_several_draw_lines() {
        let dir = tempfile::tempdir().unwrap();
        let one = stored(&[
            ("random", 4, 0.30),
            ("random", 4, 0.34),
            ("morsd", 4, 0.28),
            ("morsd", 4, 0.36),
        ]);
        accuracy(dir.path(), &one).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
        assert!(svg.contains("test accuracy at k = 4 (whiskers: 95 % CI over 2 seeds"));
        assert!(
            ["morsd", "random"]
                .iter()
                .all(|n| svg.lines().any(|l| l.trim() == *n)),
            "strategy labels"
        );
        // Mean ± CI printed over each bar: random 32.0 ± 12.7·0.02·100.
        let (m, c) = mean_ci(&[0.30, 0.34]);
        assert!(svg.contains(&format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * c)));
        let several = stored(&[("random", 2, 0.30), ("random", 4, 0.34)]);
        accuracy(dir.path(), &several).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
        assert!(svg.contains("test accuracy vs rationales per question"));
    }
}
