//! Line charts (linear or log y), bar charts with error bars and timelines, rendered to PNG.

use std::path::Path;

use super::canvas::{text_width, Canvas, Rgb, GLYPH_H, GLYPH_W};
use crate::error::Result;

/// Colour-blind-safe palette (Okabe–Ito).
pub const PALETTE: [Rgb; 7] =
    [[0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [0, 0, 0]];
const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Line,
    /// For bounds and references.
    Dashed,
    /// Markers only.
    Points,
}

/// One series of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

/// A shaded band `(x, low, high)`, e.g. an uncertainty interval.
#[derive(Clone, Debug)]
pub struct Band {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// A chart of lines, markers and bands.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
}

/// Round tick positions covering [lo, hi].
fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-300);
    let raw = span / count as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= count as f64).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..).map(|i| first + i as f64 * step).take_while(|v| *v <= hi + step * 1e-9).collect()
}

/// Labels of the tick positions [`ticks`] gives, each exact at the step between them (so
/// no two alike): fixed-point with the decimals the step needs (0.025 apart: `2.525`), or,
/// where the largest is below 0.01 or from 10,000 up, scientific with the mantissa digits
/// it needs (`2.5e-3`, `1.25e4`).
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let largest = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ if largest > 0.0 => 10f64.powf(largest.log10().floor() - 2.0),
        _ => 1.0,
    };
    let scientific = largest >= 1e4 || (largest > 0.0 && largest < 1e-2);
    ticks
        .iter()
        .map(|&t| {
            if t.abs() < step * 1e-6 {
                "0".into()
            } else if scientific {
                let digits = decimals_of(step / 10f64.powf(t.abs().log10().floor()));
                let text = format!("{t:.digits$e}");
                match text.split_once('e') {
                    Some((mantissa, exponent)) if mantissa.contains('.') => {
                        format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
                    }
                    _ => text,
                }
            } else {
                format!("{t:.digits$}", digits = decimals_of(step))
            }
        })
        .collect()
}

/// Decimals that write every multiple of `step` exactly: 0.025 → 3, 0.5 → 1, 20 → 0.
fn decimals_of(step: f64) -> usize {
    (0..12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(12)
}

struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

fn frame(canvas: &mut Canvas, title: &str, x_label: &str, y_label: &str) -> Frame {
    let (w, h) = (canvas.width as f64, canvas.height as f64);
    let f = Frame { left: 80.0, right: w - 20.0, top: 40.0, bottom: h - 55.0 };
    canvas.text(((w - text_width(title)) / 2.0) as i64, 12, title, INK);
    canvas.text(((f.left + f.right - text_width(x_label)) / 2.0) as i64, (h - 22.0) as i64, x_label, INK);
    canvas.text_vertical(8, ((f.top + f.bottom + text_width(y_label)) / 2.0) as i64, y_label, INK);
    f
}

impl LineChart {
    /// Renders to a `width × height` PNG at `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path, width: usize, height: usize) -> Result<()> {
        let mut c = Canvas::new(width, height, [255, 255, 255]);
        let f = frame(&mut c, &self.title, &self.x_label, &self.y_label);
        let ty = |y: f64| if self.log_y { y.max(1e-300).log10() } else { y };
        // the bands' edges count too: a band drawn is seen whole
        let edges = self.bands.iter().flat_map(|b| b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .chain(edges)
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let (mut x0, mut x1) =
            pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (mut y0, mut y1) = pts
            .iter()
            .filter(|p| !self.log_y || p.1 > 0.0)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(ty(p.1)), b.max(ty(p.1))));
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pad = 0.05 * (y1 - y0);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let px = |x: f64| f.left + (x - x0) / (x1 - x0) * (f.right - f.left);
        let py = |y: f64| f.bottom - (ty(y) - y0) / (y1 - y0) * (f.bottom - f.top);
        // grid and tick labels
        let y_ticks: Vec<f64> = if self.log_y {
            let (lo, hi) = (y0.ceil() as i64, y1.floor() as i64);
            let every = ((hi - lo) / 10 + 1).max(1) as usize;
            (lo..=hi).step_by(every).map(|e| 10f64.powi(e as i32)).collect()
        } else {
            ticks(y0, y1, 6)
        };
        let y_labels = match self.log_y {
            true => y_ticks.iter().map(|t| format!("1e{}", t.log10().round() as i64)).collect(),
            false => tick_labels(&y_ticks),
        };
        for (&t, label) in y_ticks.iter().zip(y_labels) {
            let y = py(t);
            c.line(f.left, y, f.right, y, GRID, 1.0);
            c.text((f.left - 6.0 - text_width(&label)) as i64, (y - GLYPH_H as f64 / 2.0) as i64 - 2, &label, INK);
        }
        let x_ticks = ticks(x0, x1, 8);
        for (&t, label) in x_ticks.iter().zip(tick_labels(&x_ticks)) {
            let x = px(t);
            c.line(x, f.top, x, f.bottom, GRID, 1.0);
            c.text((x - text_width(&label) / 2.0) as i64, f.bottom as i64 + 4, &label, INK);
        }
        c.line(f.left, f.bottom, f.right, f.bottom, INK, 1.0);
        c.line(f.left, f.top, f.left, f.bottom, INK, 1.0);
        const BAND: Rgb = [190, 210, 235];
        for band in &self.bands {
            for w in band.points.windows(2) {
                let (x0, x1) = (px(w[0].0), px(w[1].0));
                let steps = (x1 - x0).abs().ceil().max(1.0) as usize;
                for k in 0..=steps {
                    let u = k as f64 / steps as f64;
                    let lo = w[0].1 + (w[1].1 - w[0].1) * u;
                    let hi = w[0].2 + (w[1].2 - w[0].2) * u;
                    let x = x0 + (x1 - x0) * u;
                    c.line(x, py(lo).min(f.bottom), x, py(hi).max(f.top), BAND, 1.0);
                }
            }
        }
        let names: Vec<(&str, Option<Rgb>, Style)> = self
            .bands
            .iter()
            .map(|b| (b.name.as_str(), None, Style::Line))
            .chain(
                self.series
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.name.as_str(), Some(PALETTE[i % PALETTE.len()]), s.style)),
            )
            .collect();
        let legend_width = names.iter().map(|n| text_width(n.0) as usize).max().unwrap_or(0) + 40;
        let legend_height = names.len() * (GLYPH_H + 4) + 8;
        // the corner whose legend box covers the fewest plotted points (top right on a tie)
        let (box_w, box_h) = (legend_width as f64 + 8.0, legend_height as f64);
        let corners = [
            (f.right - 14.0 - legend_width as f64, f.top + 2.0),
            (f.left + 8.0, f.top + 2.0),
            (f.right - 14.0 - legend_width as f64, f.bottom - 4.0 - box_h),
            (f.left + 8.0, f.bottom - 4.0 - box_h),
        ];
        let in_pixels = |points: &mut dyn Iterator<Item = (f64, f64)>| -> Vec<(f64, f64)> {
            points
                .filter(|p| p.0.is_finite() && p.1.is_finite() && (!self.log_y || p.1 > 0.0))
                .map(|(x, y)| (px(x), py(y)))
                .collect()
        };
        let mut plotted: Vec<(f64, f64)> = Vec::new();
        for s in &self.series {
            let points = in_pixels(&mut s.points.iter().copied());
            plotted.extend(&points);
            if s.style != Style::Points {
                // the lines between the points, every 4 pixels
                for w in points.windows(2) {
                    let n = ((w[1].0 - w[0].0).hypot(w[1].1 - w[0].1) / 4.0).ceil() as usize;
                    plotted.extend((1..n).map(|k| {
                        let u = k as f64 / n as f64;
                        (w[0].0 + u * (w[1].0 - w[0].0), w[0].1 + u * (w[1].1 - w[0].1))
                    }));
                }
            }
        }
        for b in &self.bands {
            plotted.extend(in_pixels(&mut b.points.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])));
        }
        let (x, y) = least_covered(&corners, (box_w, box_h), &plotted);
        let (lx0, ly0) = (x as i64, y as i64);
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let visible: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && (!self.log_y || p.1 > 0.0))
                .collect();
            match s.style {
                Style::Points => visible.iter().for_each(|p| c.disc(px(p.0), py(p.1), 3.0, color)),
                Style::Line | Style::Dashed => {
                    for w in visible.windows(2) {
                        let (a, b) = ((px(w[0].0), py(w[0].1)), (px(w[1].0), py(w[1].1)));
                        if s.style == Style::Dashed {
                            c.dashed_line(a.0, a.1, b.0, b.1, color, 2.0, 8.0);
                        } else {
                            c.line(a.0, a.1, b.0, b.1, color, 2.0);
                        }
                    }
                    if visible.len() == 1 {
                        c.disc(px(visible[0].0), py(visible[0].1), 3.0, color);
                    }
                }
            }
        }
        // legend, on a white box over the lines
        c.fill_rect(lx0, ly0, lx0 + legend_width as i64 + 8, ly0 + legend_height as i64, [255, 255, 255]);
        for (i, &(name, color, style)) in names.iter().enumerate() {
            let ly = ly0 + 6 + i as i64 * (GLYPH_H as i64 + 4);
            let y = ly as f64 + GLYPH_H as f64 / 2.0;
            match (color, style) {
                (None, _) => c.fill_rect(lx0 + 6, y as i64 - 5, lx0 + 30, y as i64 + 5, BAND),
                (Some(color), Style::Dashed) => {
                    c.dashed_line(lx0 as f64 + 6.0, y, lx0 as f64 + 30.0, y, color, 2.5, 6.0)
                }
                (Some(color), Style::Points) => c.disc(lx0 as f64 + 18.0, y, 3.0, color),
                (Some(color), Style::Line) => c.line(lx0 as f64 + 6.0, y, lx0 as f64 + 30.0, y, color, 2.5),
            }
            c.text(lx0 + 38, ly, name, INK);
        }
        c.save_png(path)
    }
}

/// Of the top-left `corners` of a `size` box, the one whose box holds the fewest of the
/// `plotted` pixels (the first on a tie).
fn least_covered(corners: &[(f64, f64)], (w, h): (f64, f64), plotted: &[(f64, f64)]) -> (f64, f64) {
    let covered =
        |&(x, y): &(f64, f64)| plotted.iter().filter(|p| p.0 >= x && p.0 <= x + w && p.1 >= y && p.1 <= y + h).count();
    corners.iter().copied().min_by_key(covered).unwrap_or((0.0, 0.0))
}

/// `text` broken at spaces into lines of at most `width` characters (longer words cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(&word);
            }
            _ => lines.push(word),
        }
    }
    lines
}

/// Bars with optional ± error whiskers.
#[derive(Clone, Debug, Default)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// (label, value, error)
    pub bars: Vec<(String, f64, f64)>,
    /// Bars come in groups of this many (one per method in each group): the colours
    /// repeat with the group. 0 or 1: a colour per bar.
    pub group: usize,
    /// The axis ends here (`None`: above the tallest bar): a bar reaching past it is drawn
    /// to the top with its value written in it, so that one diverging value does not
    /// flatten the rest.
    pub y_max: Option<f64>,
}

impl BarChart {
    /// Renders to a `width × height` PNG at `path`; labels are written under the bars.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path, width: usize, height: usize) -> Result<()> {
        self.render(width, height).save_png(path)
    }

    fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height, [255, 255, 255]);
        let f = frame(&mut c, &self.title, "", &self.y_label);
        let tallest = self.bars.iter().map(|b| b.1 + b.2.max(0.0)).fold(0.0f64, f64::max).max(1e-12) * 1.08;
        let top = self.y_max.map_or(tallest, |m| m.min(tallest));
        let py = |y: f64| f.bottom - y.clamp(0.0, top) / top * (f.bottom - f.top);
        let y_ticks = ticks(0.0, top, 6);
        for (&t, label) in y_ticks.iter().zip(tick_labels(&y_ticks)) {
            let y = py(t);
            c.line(f.left, y, f.right, y, GRID, 1.0);
            c.text((f.left - 6.0 - text_width(&label)) as i64, (y - GLYPH_H as f64 / 2.0) as i64 - 2, &label, INK);
        }
        let n = self.bars.len().max(1) as f64;
        let slot = (f.right - f.left) / n;
        for (i, (label, value, err)) in self.bars.iter().enumerate() {
            let x = f.left + slot * (i as f64 + 0.5);
            let color = PALETTE[i % if self.group > 1 { self.group } else { PALETTE.len() }];
            c.fill_rect((x - slot * 0.35) as i64, py(*value) as i64, (x + slot * 0.35) as i64, f.bottom as i64, color);
            if *value > top {
                let text = tick_labels(&[*value])[0].clone();
                let (x0, y0) = ((x - text_width(&text) / 2.0) as i64, f.top as i64 + 4);
                c.fill_rect(
                    x0 - 3,
                    y0 - 2,
                    x0 + text_width(&text) as i64 + 3,
                    y0 + GLYPH_H as i64 + 2,
                    [255, 255, 255],
                );
                c.text(x0, y0, &text, INK);
            } else if *err > 0.0 {
                // a whisker past an end of the axis stops there, without its cap
                c.line(x, py(value - err), x, py(value + err), INK, 1.5);
                for end in [value + err, value - err].into_iter().filter(|e| (0.0..=top).contains(e)) {
                    c.line(x - 6.0, py(end), x + 6.0, py(end), INK, 1.5);
                }
            }
            for (k, line) in wrap(label, (slot / GLYPH_W as f64) as usize).iter().take(3).enumerate() {
                let y = f.bottom as i64 + 4 + k as i64 * GLYPH_H as i64;
                c.text((x - text_width(line) / 2.0) as i64, y, line, INK);
            }
        }
        c.line(f.left, f.bottom, f.right, f.bottom, INK, 1.0);
        c.line(f.left, f.top, f.left, f.bottom, INK, 1.0);
        c
    }
}

/// Stretches of x on labelled lanes, coloured by kind (a Gantt chart): alarm episodes
/// per signal over time.
#[derive(Clone, Debug, Default)]
pub struct TimelineChart {
    pub title: String,
    pub x_label: String,
    /// The x axis's ends.
    pub x_range: (f64, f64),
    /// The lanes, top to bottom.
    pub lanes: Vec<String>,
    /// The kinds of stretch, in the legend's order and colours.
    pub kinds: Vec<String>,
    /// (lane, kind, from, to) in x; each drawn at least 2 pixels wide, so that a stretch of
    /// one step shows on a long axis.
    pub spans: Vec<(usize, usize, f64, f64)>,
}

impl TimelineChart {
    /// Renders to a `width × height` PNG at `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path, width: usize, height: usize) -> Result<()> {
        self.render(width, height).save_png(path)
    }

    fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height, [255, 255, 255]);
        let (w, h) = (width as f64, height as f64);
        let label_width = self.lanes.iter().map(|l| text_width(l)).fold(0.0, f64::max);
        let legend_height = (GLYPH_H + 6) as f64;
        let f = Frame { left: label_width + 16.0, right: w - 20.0, top: 40.0 + legend_height, bottom: h - 55.0 };
        c.text(((w - text_width(&self.title)) / 2.0) as i64, 12, &self.title, INK);
        c.text(((f.left + f.right - text_width(&self.x_label)) / 2.0) as i64, (h - 22.0) as i64, &self.x_label, INK);
        // the legend, in one row above the lanes
        let mut x = f.left;
        for (k, kind) in self.kinds.iter().enumerate() {
            let y = 36;
            c.fill_rect(x as i64, y + 3, x as i64 + 18, y + GLYPH_H as i64 - 3, PALETTE[k % PALETTE.len()]);
            c.text(x as i64 + 24, y, kind, INK);
            x += 24.0 + text_width(kind) + 24.0;
        }
        let (x0, x1) = match self.x_range {
            (a, b) if b > a => (a, b),
            (a, _) => (a, a + 1.0),
        };
        let px = |x: f64| f.left + (x - x0) / (x1 - x0) * (f.right - f.left);
        let lane = (f.bottom - f.top) / self.lanes.len().max(1) as f64;
        for (i, name) in self.lanes.iter().enumerate() {
            let y = f.top + lane * i as f64;
            if i % 2 == 1 {
                c.fill_rect(f.left as i64 + 1, y as i64, f.right as i64, (y + lane) as i64, [246, 246, 246]);
            }
            let text_y = (y + (lane - GLYPH_H as f64) / 2.0) as i64;
            c.text((f.left - 8.0 - text_width(name)) as i64, text_y, name, INK);
        }
        let x_ticks = ticks(x0, x1, 8);
        for (&t, label) in x_ticks.iter().zip(tick_labels(&x_ticks)) {
            let x = px(t);
            c.line(x, f.top, x, f.bottom, GRID, 1.0);
            c.text((x - text_width(&label) / 2.0) as i64, f.bottom as i64 + 4, &label, INK);
        }
        for &(i, kind, from, to) in &self.spans {
            let (a, b) = (px(from.max(x0)), px(to.min(x1)));
            let b = b.max(a + 2.0);
            let y = f.top + lane * i as f64;
            let margin = (0.2 * lane).min(6.0);
            let color = PALETTE[kind % PALETTE.len()];
            c.fill_rect(a as i64, (y + margin) as i64, b as i64, (y + lane - margin) as i64, color);
        }
        c.line(f.left, f.bottom, f.right, f.bottom, INK, 1.0);
        c.line(f.left, f.top, f.left, f.bottom, INK, 1.0);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_distinct_and_read_back_as_their_ticks() {
        // the first: a bar chart of MSEs near 3e-3, whose labels read 3e-3, 2e-3, 2e-3, 1e-3
        let ranges = [
            (0.0, 0.0029),
            (2.473, 2.738),
            (0.0, 12_500.0),
            (-1.0, 1.0),
            (0.01, 0.02),
            (1e-6, 3.1e-6),
            (0.0, 167.0),
            (-0.35, 2.2),
            (9_000.0, 41_000.0),
        ];
        for (lo, hi) in ranges {
            let t = ticks(lo, hi, 6);
            let labels = tick_labels(&t);
            let step = t[1] - t[0];
            for (tick, label) in t.iter().zip(&labels) {
                let read: f64 = label.parse().unwrap();
                assert!((read - tick).abs() <= 1e-6 * step, "{lo}..{hi}: {label} for {tick}");
            }
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique, labels, "{lo}..{hi}");
        }
        assert_eq!(tick_labels(&ticks(0.0, 0.0029, 6)), ["0", "5e-4", "1e-3", "1.5e-3", "2e-3", "2.5e-3"]);
        assert_eq!(tick_labels(&ticks(2.473, 2.738, 6))[..2], ["2.50".to_string(), "2.55".to_string()]);
        assert_eq!(tick_labels(&ticks(0.0, 167.0, 8))[..3], ["0".to_string(), "25".to_string(), "50".to_string()]);
        assert_eq!(tick_labels(&[2.5]), ["2.50"]);
    }

    #[test]
    fn the_legend_goes_where_it_hides_the_fewest_points() {
        let corners = [(100.0, 0.0), (0.0, 0.0), (100.0, 100.0), (0.0, 100.0)];
        // a line through the top right and the bottom left: the top left is free
        let line: Vec<(f64, f64)> = (0..=150).map(|i| (150.0 - i as f64, i as f64)).collect();
        assert_eq!(least_covered(&corners, (50.0, 50.0), &line), (0.0, 0.0));
        // nothing plotted: the first corner (top right)
        assert_eq!(least_covered(&corners, (50.0, 50.0), &[]), (100.0, 0.0));
        // points everywhere but the bottom right
        let cloud: Vec<(f64, f64)> = (0..150)
            .flat_map(|x| (0..150).map(move |y| (x as f64, y as f64)))
            .filter(|p| p.0 < 100.0 || p.1 < 100.0)
            .collect();
        assert_eq!(least_covered(&corners, (50.0, 50.0), &cloud), (100.0, 100.0));
    }

    #[test]
    fn charts_render_to_png_files() {
        let scratch = tempfile::Builder::new().prefix("recur-chart-").tempdir().unwrap();
        let dir = scratch.path();
        let line = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_y: true,
            series: vec![Series {
                name: "a".into(),
                points: vec![(0.0, 1.0), (1.0, 1e-3), (2.0, 0.0)],
                style: Style::Dashed,
            }],
            bands: vec![Band { name: "b".into(), points: vec![(0.0, 0.5, 2.0), (2.0, 1e-4, 1e-2)] }],
        };
        line.save(&dir.join("line.png"), 320, 200).unwrap();
        let bars = BarChart {
            title: "b".into(),
            y_label: "v".into(),
            bars: vec![("x".into(), 1.0, 0.2), ("y".into(), 2.0, 0.0)],
            group: 0,
            y_max: None,
        };
        bars.save(&dir.join("bars.png"), 320, 200).unwrap();
        // a bar past the axis's end is drawn to the top
        BarChart { y_max: Some(1.5), ..bars }.save(&dir.join("bars.png"), 320, 200).unwrap();
        let timeline = TimelineChart {
            title: "t".into(),
            x_label: "days".into(),
            x_range: (0.0, 10.0),
            lanes: vec!["a".into(), "b".into()],
            kinds: vec!["k".into()],
            spans: vec![(0, 0, 1.0, 2.0), (1, 0, 3.0, 3.0)],
        };
        timeline.save(&dir.join("timeline.png"), 320, 200).unwrap();
        for f in ["line.png", "bars.png", "timeline.png"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
    }

    #[test]
    fn a_timeline_draws_each_span_on_its_lane_in_its_kinds_colour_and_a_single_step_visible() {
        // two lanes on a 0..100 axis: lane 0 from 10 to 30 in kind 0, lane 1 a point at 50
        // in kind 1; the frame spans x 16+8·1..300 (labels 1 glyph wide), lanes 62..145
        let chart = TimelineChart {
            x_range: (0.0, 100.0),
            lanes: vec!["a".into(), "b".into()],
            kinds: vec![String::new(), String::new()],
            spans: vec![(0, 0, 10.0, 30.0), (1, 1, 50.0, 50.0)],
            ..TimelineChart::default()
        };
        let c = chart.render(320, 200);
        let (left, right, top, bottom) = (24.0, 300.0, 40.0 + 22.0, 145.0);
        let px = |x: f64| (left + x / 100.0 * (right - left)) as usize;
        let lane_middle = |i: usize| (top + (bottom - top) * (i as f64 + 0.5) / 2.0) as usize;
        assert_eq!(c.pixel(px(20.0), lane_middle(0)), PALETTE[0]);
        assert_eq!(c.pixel(px(50.0), lane_middle(1)), PALETTE[1]);
        assert_ne!(c.pixel(px(20.0), lane_middle(1)), PALETTE[0], "nothing on the other lane");
        assert_ne!(c.pixel(px(40.0), lane_middle(0)), PALETTE[0], "the span ends at 30");
    }

    /// A spread wider than its mean (a streamed score that diverged in one seed) drew its
    /// whisker through the axis into the labels (docs/img/compressor-reconstruction.png).
    #[test]
    fn a_whisker_stops_at_the_axis() {
        let bars = BarChart { bars: vec![(String::new(), 1.0, 3.0)], ..BarChart::default() };
        let (width, height) = (200, 200);
        let c = bars.render(width, height);
        // the frame's bottom is 55 pixels above the image's; the bar's centre column
        let (bottom, x) = (height - 55, (80 + width - 20) / 2);
        let inked = |y: usize| (x - 8..=x + 8).any(|x| c.pixel(x, y) != [255, 255, 255]);
        assert!((bottom - 90..bottom).all(inked), "the bar and its whisker are drawn");
        assert!(!(bottom + 2..height).any(inked), "nothing under the axis");
    }
}
