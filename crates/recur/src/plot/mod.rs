//! Charts as PNG files, without a plotting framework: a small raster, a bitmap font
//! rendered once from DejaVu Sans Mono (`tools/make_font.py`, licence in `FONT-LICENSE`),
//! PNG encoding by the `png` crate.

pub mod canvas;
pub mod chart;

pub use canvas::Canvas;
pub use chart::{Band, BarChart, LineChart, Series, Style, TimelineChart};
