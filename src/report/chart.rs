//! The accuracy chart, written as `accuracy.svg` and `accuracy.png`: with several budgets, test
//! accuracy against rationales per question, one line per strategy with 95 % CI bands; with one
//! budget (a single `select.per_question`), one bar per strategy (mean over seeds) with 95 % CI
//! whiskers and each seed's accuracy as a dot. And `tokens.svg` / `tokens.png`: test accuracy
//! against training tokens, one point per (strategy, k) with 95 % CI bars, a panel per task —
//! the axis of the paper's efficiency claim (with `train.epochs`, fewer rationales train on
//! fewer tokens). And `curves.svg` / `curves.png`: the learning curves, validation accuracy (top)
//! and training loss (bottom) against training tokens, one line per run ([`curve_lines`]) with
//! its chosen checkpoint as a filled circle, dashed over a pale track where the run was still
//! improving when training ended; not written when no run recorded a curve (older folders).
//! Every chart colours a strategy alike: `Palette99` at its rank among the folder's strategies.

use super::Stored;
use super::stats::mean_ci;
use crate::error::{Error, IoContext, Result};
use plotters::coord::types::RangedCoordf64;
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
            .x_label_formatter(&|x| token_label(*x))
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

/// A token count as an axis label: `1.2M`, `35k`, or the count itself under a thousand.
fn token_label(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x.abs() >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Strategy → its colour in every chart: `Palette99` at the strategy's rank among the folder's
/// strategies (sorted), as [`accuracy`] and [`tokens`] pick them.
fn strategy_colours(stored: &Stored) -> BTreeMap<String, RGBAColor> {
    let names: std::collections::BTreeSet<&str> =
        stored.runs.iter().map(|r| r.strategy.as_str()).collect();
    names
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), Palette99::pick(i).to_rgba()))
        .collect()
}

/// One run's learning curves as `curves.svg` draws them, x in training tokens
/// ([`super::RunRow::tokens_at`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CurveLine {
    /// The run's label.
    pub label: String,
    /// Its strategy (which picks the colour).
    pub strategy: String,
    /// (training tokens, validation accuracy in %) at every validation with a finite accuracy.
    pub val: Vec<(f64, f64)>,
    /// (training tokens, mean training loss since the previous validation), finite losses only.
    pub loss: Vec<(f64, f64)>,
    /// The chosen checkpoint (`best_step`) on the validation line, when that step was validated.
    pub best: Option<(f64, f64)>,
    /// Still improving when training ended ([`super::RunRow::still_improving`]; unknown is
    /// drawn as not).
    pub still_improving: bool,
}

/// The lines of the curves chart: one per run that recorded a validation curve, in `runs.json`
/// order; runs without one (older folders) are left out.
pub fn curve_lines(stored: &Stored) -> Vec<CurveLine> {
    stored
        .runs
        .iter()
        .filter(|r| !r.val_curve.is_empty())
        .map(|r| {
            let finite = |v: &[(u64, f64)], scale: f64| -> Vec<(f64, f64)> {
                v.iter()
                    .filter(|p| p.1.is_finite())
                    .map(|&(step, y)| (r.tokens_at(step), scale * y))
                    .collect()
            };
            let best = r
                .val_curve
                .iter()
                .rev()
                .find(|p| p.0 == r.best_step && p.1.is_finite())
                .map(|&(step, acc)| (r.tokens_at(step), 100.0 * acc));
            CurveLine {
                label: r.label.clone(),
                strategy: r.strategy.clone(),
                val: finite(&r.val_curve, 100.0),
                loss: finite(&r.loss_curve, 1.0),
                best,
                still_improving: r.still_improving() == Some(true),
            }
        })
        .collect()
}

/// Writes `curves.svg` and `curves.png` into `dir`; with no curve to draw, writes nothing and
/// removes a stale pair.
pub fn curves(dir: &Path, stored: &Stored) -> Result<()> {
    let lines = curve_lines(stored);
    if lines.is_empty() {
        for name in ["curves.svg", "curves.png"] {
            let path = dir.join(name);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(path, e));
            }
        }
        return Ok(());
    }
    let colours = strategy_colours(stored);
    write_svg_png(
        dir,
        "curves",
        (900, 800),
        |a| draw_curves(a, stored, &lines, &colours),
        |a| draw_curves(a, stored, &lines, &colours),
    )
}

type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One run's line in a panel: a single polyline of stroke width 2 (the SVG's only ones of that
/// width, so a reader counts runs by them); a run still improving gets it pale, with dashes of
/// width 3 over it. `legend` labels the strategy (a colour swatch).
fn run_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    pts: &[(f64, f64)],
    color: RGBAColor,
    dashed: bool,
    legend: Option<&str>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let track = if dashed { color.mix(0.3) } else { color };
    let drawn = chart
        .draw_series(LineSeries::new(pts.to_vec(), track.stroke_width(2)))
        .map_err(|x| e(&x))?;
    if let Some(name) = legend {
        drawn
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
    }
    if dashed {
        chart
            .draw_series(DashedLineSeries::new(
                pts.to_vec(),
                8,
                5,
                color.stroke_width(3),
            ))
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

/// One panel of the curves chart: `caption` above, training tokens `0..xmax` across (the same
/// axis for both panels), `y` up, labelled `y_desc`, with its mesh drawn.
fn curve_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    xmax: f64,
    y: std::ops::Range<f64>,
    y_desc: &str,
) -> Result<Chart2d<'a, DB>, String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax, y)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("training tokens (at each run's mean tokens per step)")
        .y_desc(y_desc)
        .x_labels(6)
        .x_label_formatter(&|x| token_label(*x))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(chart)
}

fn draw_curves<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    stored: &Stored,
    lines: &[CurveLine],
    colours: &BTreeMap<String, RGBAColor>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: &dyn std::fmt::Display| x.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let xmax = lines
        .iter()
        .flat_map(|l| l.val.iter().chain(&l.loss))
        .map(|p| p.0)
        .fold(0.0, f64::max);
    let xmax = if xmax > 0.0 { xmax * 1.03 } else { 1.0 };
    let vmax = lines
        .iter()
        .flat_map(|l| &l.val)
        .map(|p| p.1)
        .fold(10.0, f64::max)
        .min(100.0)
        * 1.1;
    // The loss axis spans the losses drawn (from 0 it would flatten their differences).
    let (lmin, lmax) = lines
        .iter()
        .flat_map(|l| &l.loss)
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lmin, lmax) = if lmin > lmax {
        (0.0, 1.0)
    } else {
        let pad = ((lmax - lmin) * 0.08).max(lmax.abs() * 0.02).max(1e-3);
        ((lmin - pad).max(0.0), lmax + pad)
    };
    let dashed_note = if lines.iter().any(|l| l.still_improving) {
        "; dashed: still improving when training ended"
    } else {
        ""
    };
    let panels = root.split_evenly((2, 1));
    let (top, bottom) = match panels.as_slice() {
        [t, b] => (t, b),
        _ => return Err("the curves chart needs two panels".into()),
    };

    // 1. Validation accuracy, with the chosen checkpoints and the strategies' legend.
    let mut chart = curve_panel(
        top,
        &format!(
            "{}: validation accuracy (dot: chosen checkpoint{dashed_note})",
            stored.experiment
        ),
        xmax,
        0.0..vmax,
        "validation accuracy (%)",
    )?;
    let mut in_legend = std::collections::BTreeSet::new();
    for l in lines {
        let color = colours
            .get(&l.strategy)
            .copied()
            .unwrap_or_else(|| BLACK.to_rgba());
        let legend = in_legend
            .insert(l.strategy.as_str())
            .then_some(l.strategy.as_str());
        run_line(&mut chart, &l.val, color, l.still_improving, legend)?;
        if let Some(p) = l.best {
            chart
                .draw_series([
                    Circle::new(p, 5, color.filled()),
                    Circle::new(p, 5, BLACK.stroke_width(1)),
                ])
                .map_err(|x| e(&x))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;

    // 2. Training loss.
    let mut chart = curve_panel(
        bottom,
        "training loss (mean since the previous validation)",
        xmax,
        lmin..lmax,
        "training loss",
    )?;
    for l in lines.iter().filter(|l| !l.loss.is_empty()) {
        let color = colours
            .get(&l.strategy)
            .copied()
            .unwrap_or_else(|| BLACK.to_rgba());
        run_line(&mut chart, &l.loss, color, l.still_improving, None)?;
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

    /// Three runs with curves (the last still improving) and one from an older folder without.
    fn curve_stored() -> Stored {
        let mut runs = Vec::new();
        for (i, (s, best, converged)) in [
            ("random", 20u64, Some(true)),
            ("morsd", 30, Some(true)),
            ("morsd", 40, Some(false)),
        ]
        .into_iter()
        .enumerate()
        {
            runs.push(crate::report::RunRow {
                training_tokens: 4000,
                train_steps: Some(40),
                stopped_step: Some(40),
                best_step: best,
                converged,
                val_curve: vec![(10, 0.1), (20, 0.3), (30, 0.35), (40, 0.2 + 0.1 * i as f64)],
                loss_curve: vec![(10, 3.0), (20, 2.0), (30, 1.5), (40, 1.2)],
                ..crate::report::test_row(s, 4, i as u64, 0.3)
            });
        }
        runs.push(crate::report::test_row("random", 4, 9, 0.3));
        Stored {
            experiment: "e".into(),
            runs,
            ..Default::default()
        }
    }

    /// The rule a reader counts run lines by: `<polyline` elements of stroke width 2.
    fn run_polylines(svg: &str) -> usize {
        svg.split("<polyline")
            .skip(1)
            .filter(|t| t[..t.find('>').unwrap_or(t.len())].contains("stroke-width=\"2\""))
            .count()
    }

    #[test]
    fn curve_lines_are_one_per_run_with_a_curve_in_training_tokens() {
        let lines = curve_lines(&curve_stored());
        assert_eq!(lines.len(), 3, "the run without a curve is left out");
        let l = &lines[1];
        assert_eq!(l.strategy, "morsd");
        // 4000 tokens over 40 steps: 100 a step; accuracy in %.
        assert_eq!(l.val[0], (1000.0, 10.0));
        assert_eq!(l.loss[3], (4000.0, 1.2));
        assert_eq!(l.best, Some((3000.0, 35.0)));
        assert_eq!(
            lines.iter().map(|l| l.still_improving).collect::<Vec<_>>(),
            [false, false, true]
        );
    }

    #[test]
    fn curves_chart_draws_a_line_per_run_per_panel_and_skips_folders_without_curves() {
        let dir = tempfile::tempdir().unwrap();
        let st = curve_stored();
        curves(dir.path(), &st).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
        assert!(dir.path().join("curves.png").exists());
        assert_eq!(
            run_polylines(&svg),
            2 * 3,
            "one line per run in each of the two panels"
        );
        assert!(svg.contains("validation accuracy (dot: chosen checkpoint"));
        assert!(svg.contains("dashed: still improving when training ended"));
        assert!(svg.contains("training loss (mean since the previous validation)"));
        // The chosen checkpoints: a filled circle and its outline per run.
        assert_eq!(svg.matches("<circle").count(), 2 * 3);
        // Colours as the other charts pick them: morsd first, random second.
        let colour = |i: usize| {
            let (r, g, b) = Palette99::pick(i).rgb();
            format!("#{r:02X}{g:02X}{b:02X}")
        };
        assert!(svg.contains(&colour(0)) && svg.contains(&colour(1)));
        // No curve at all: no chart, no error, and a stale one is removed.
        let old = Stored {
            runs: vec![crate::report::test_row("random", 4, 0, 0.3)],
            ..st
        };
        curves(dir.path(), &old).unwrap();
        assert!(!dir.path().join("curves.svg").exists());
        assert!(!dir.path().join("curves.png").exists());
        curves(dir.path(), &old).unwrap();
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
