//! The accuracy chart, written as `accuracy.svg` and `accuracy.png`: with several budgets, test
//! accuracy against rationales per question, one line per strategy with 95 % CI bands; with one
//! budget (a single `select.per_question`), one bar per strategy (mean over seeds) with 95 % CI
//! whiskers and each seed's accuracy as a dot.

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
    register_font();
    let data = series(stored);
    let svg = dir.join("accuracy.svg");
    let png = dir.join("accuracy.png");
    let (svg_tmp, png_tmp) = (super::tmp_path(&svg), super::tmp_path(&png));
    draw(
        SVGBackend::new(&svg_tmp, (800, 520)).into_drawing_area(),
        stored,
        &data,
    )
    .map_err(|e| Error::run(format!("{}: {e}", svg.display())))?;
    draw(
        BitMapBackend::new(&png_tmp, (800, 520)).into_drawing_area(),
        stored,
        &data,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

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
