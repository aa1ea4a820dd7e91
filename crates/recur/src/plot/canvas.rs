//! An RGB raster with lines, rectangles and text, saved as PNG.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomically;

/// Glyph atlas: printable ASCII 32..=126, 8×16 bytes of coverage each (tools/make_font.py).
const FONT: &[u8] = include_bytes!("font.bin");
pub const GLYPH_W: usize = 8;
pub const GLYPH_H: usize = 16;

pub type Rgb = [u8; 3];

/// The coverage bitmap of `ch` (`?` outside printable ASCII), `[GLYPH_H, GLYPH_W]`.
/// `text` in the font's ASCII: the symbols labels use spelled out (`±2σ` as `+-2sd`, `→`
/// as `->`), anything else outside ASCII as `?`.
fn in_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '±' => out.push_str("+-"),
            'σ' => out.push_str("sd"),
            '−' | '–' | '—' => out.push('-'),
            '→' => out.push_str("->"),
            '←' => out.push_str("<-"),
            '×' => out.push('x'),
            '≥' => out.push_str(">="),
            '≤' => out.push_str("<="),
            'λ' => out.push_str("lambda"),
            '²' => out.push('2'),
            'α' => out.push_str("alpha"),
            c => out.push(c),
        }
    }
    out
}

/// How wide `text` is drawn, in pixels.
pub fn text_width(text: &str) -> f64 {
    (in_ascii(text).chars().count() * GLYPH_W) as f64
}

fn glyph(ch: char) -> &'static [u8] {
    let code = if (' '..='~').contains(&ch) { ch as usize - 32 } else { '?' as usize - 32 };
    &FONT[code * GLYPH_W * GLYPH_H..(code + 1) * GLYPH_W * GLYPH_H]
}

/// An RGB image, origin top-left.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Canvas { width, height, pixels: background.repeat(width * height) }
    }

    /// The colour of pixel (x, y).
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let at = (y * self.width + x) * 3;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    /// Blends `color` into pixel (x, y) with coverage `alpha` in [0, 1].
    pub fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let at = (y as usize * self.width + x as usize) * 3;
        for (k, &c) in color.iter().enumerate() {
            let old = self.pixels[at + k] as f64;
            self.pixels[at + k] = (old + (c as f64 - old) * alpha.clamp(0.0, 1.0)).round() as u8;
        }
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.blend(x, y, color, 1.0);
            }
        }
    }

    /// A line of the given width, drawn as overlapping discs along its length.
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, width: f64) {
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = (len * 2.0).ceil().max(1.0) as usize;
        let r = width / 2.0;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (cx, cy) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            self.disc(cx, cy, r, color);
        }
    }

    /// A line drawn as dashes of length `dash` separated by gaps of the same length.
    #[allow(clippy::too_many_arguments)]
    pub fn dashed_line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, width: f64, dash: f64) {
        let len = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let pieces = (len / dash).ceil().max(1.0) as usize;
        for k in (0..pieces).step_by(2) {
            let (t0, t1) = (k as f64 / pieces as f64, ((k + 1) as f64 / pieces as f64).min(1.0));
            self.line(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0, x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1, color, width);
        }
    }

    /// A filled, anti-aliased disc.
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, color: Rgb) {
        let reach = (r + 1.0).ceil() as i64;
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let (x, y) = (cx.round() as i64 + dx, cy.round() as i64 + dy);
                let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                let coverage = (r + 0.5 - d).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    self.blend(x, y, color, coverage);
                }
            }
        }
    }

    /// Text with its top-left corner at (x, y), in ASCII: `±2σ` drawn as `+-2sd`, `→` as
    /// `->`, other symbols outside ASCII as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, color: Rgb) {
        for (i, ch) in in_ascii(text).chars().enumerate() {
            let glyph = glyph(ch);
            for gy in 0..GLYPH_H {
                for gx in 0..GLYPH_W {
                    let a = glyph[gy * GLYPH_W + gx];
                    if a > 0 {
                        self.blend(x + (i * GLYPH_W + gx) as i64, y + gy as i64, color, a as f64 / 255.0);
                    }
                }
            }
        }
    }

    /// Text rotated a quarter turn counter-clockwise (for a y-axis label), its
    /// bottom-left corner at (x, y).
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, color: Rgb) {
        for (i, ch) in in_ascii(text).chars().enumerate() {
            let glyph = glyph(ch);
            for gy in 0..GLYPH_H {
                for gx in 0..GLYPH_W {
                    let a = glyph[gy * GLYPH_W + gx];
                    if a > 0 {
                        self.blend(x + gy as i64, y - (i * GLYPH_W + gx) as i64, color, a as f64 / 255.0);
                    }
                }
            }
        }
    }

    /// Saves as an 8-bit RGB PNG, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let format = |e: png::EncodingError| Error::Format { path: path.to_path_buf(), why: e.to_string() };
            let mut writer = encoder.write_header().map_err(format)?;
            writer.write_image_data(&self.pixels).map_err(format)?;
        }
        write_atomically(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_drawn_in_ascii_and_measured_as_drawn() {
        assert_eq!(in_ascii("GRU, 24 h direct, ±2σ → λ"), "GRU, 24 h direct, +-2sd -> lambda");
        assert_eq!(text_width("±2σ"), (5 * GLYPH_W) as f64);
        assert_eq!(in_ascii("ü"), "ü", "unknown symbols are left to the glyph table's `?`");
    }
}
