//! Time-series data: ingestion, grid alignment with masks, splits, standardisation, windows.

pub mod grid;
pub mod long_csv;
pub mod prepare;
pub mod series;
pub mod wide_csv;

pub use grid::{align_to_grid, Aggregation, GridSeries};
pub use long_csv::{read_long_csv, LongColumns};
pub use prepare::{PreparedSeries, SplitBy, SplitFractions, Standardizer};
pub use series::TimeSeries;
pub use wide_csv::{read_wide_csv, WideCsvOptions};
