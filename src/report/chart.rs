//! The accuracy chart: test accuracy against rationales per question, one line per strategy,
//! with 95 % CI bands; written as `accuracy.svg` and `accuracy.png`.

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
