//! Time-series data: ingestion (CSV, Parquet), inspection, grid alignment with masks, splits, standardisation, windows.

pub mod calendar;
pub mod grid;
pub mod inspect;
pub mod long;
pub mod missing;
pub mod prepare;
pub mod scaler;
pub mod series;
mod table;
pub mod wide;
pub mod zone;

pub use calendar::{Calendar, CalendarCycle};
pub use grid::{align_to_grid, Aggregation, GridSeries, LiveGrid, LiveGridState};
pub use inspect::{Inspection, Layout, SignalMissingness};
pub use long::{parse_long_time_naive, read_long, LongColumns, LongOptions};
pub use missing::{is_missing, Cell, CellReader, MissingValues};
pub use prepare::{Part, PreparedSeries, SignalShift, SplitBy, SplitFractions};
pub use scaler::{FittedScaler, Standardizer, SCALER_FILE};
pub use series::{Clock, TimeSeries};
pub(crate) use table::Table;
pub use table::{csv_delimiter, csv_fields, csv_fields_separated, csv_header, csv_quoted, without_byte_order_mark};
pub use wide::{not_a_time, one_hot_of, one_hot_signal, one_hot_value, read_wide, EpochUnit, TimeColumns, WideOptions};
pub use zone::TimeZone;
