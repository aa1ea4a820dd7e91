//! What a data file holds before any modelling: its layout, entities, sampling intervals
//! and missingness per signal, both in its rows and on a regular grid. `recur inspect`
//! prints this; the counts are kept (not only fractions) so that files pool exactly.

use std::path::Path;

use super::grid::{align_to_grid, Aggregation};
use super::long::{long_series, LongColumns};
use super::series::TimeSeries;
use super::table::Table;
use super::wide::{is_missing, wide_series, WideOptions};
use crate::error::Result;

/// How a file is laid out, as [`Inspection::read`] recognised it.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// One column per signal; the categorical (non-numeric) columns are named.
    Wide { categorical: Vec<String> },
    /// One observation per row.
    Long(LongColumns),
}

/// Missingness of one signal (a categorical column counts once, not per category).
#[derive(Clone, Debug, PartialEq)]
pub struct SignalMissingness {
    pub name: String,
    /// Rows (distinct timestamps of an entity) without a value of this signal.
    pub missing_rows: usize,
    pub rows: usize,
    /// Grid slots without any value of this signal.
    pub empty_slots: usize,
    pub slots: usize,
}

impl SignalMissingness {
    pub fn missing_in_rows(&self) -> f64 {
        self.missing_rows as f64 / self.rows.max(1) as f64
    }

    pub fn empty_on_grid(&self) -> f64 {
        self.empty_slots as f64 / self.slots.max(1) as f64
    }
}

/// A summary of one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub layout: Layout,
    /// One for a wide file; entity values (stations, patients) for a long one.
    pub entities: usize,
    /// Distinct timestamps, summed over entities.
    pub rows: usize,
    /// Median and largest step between consecutive timestamps of an entity, in seconds.
    pub median_interval: i64,
    pub longest_gap: i64,
    /// The grid the `empty_slots` are counted on (each entity from its first to its last row).
    pub bin_seconds: i64,
    pub signals: Vec<SignalMissingness>,
}

impl Inspection {
    /// Reads a CSV or Parquet file and summarises it. A file with a `value` column and a
    /// `signal` or `parameter` column is long (time in `timestamp` or `time`; entity in
    /// `entity`, `record_id`, `id` or `station` where there is one); any other is wide, its
    /// non-numeric columns categorical. `bin_seconds`: the grid; `None` takes the median
    /// interval.
    ///
    /// # Errors
    /// Every ingestion error, named.
    pub fn read(path: impl AsRef<Path>, bin_seconds: Option<i64>) -> Result<Inspection> {
        let table = Table::read(path.as_ref())?;
        let layout = detect_layout(&table);
        let entities: Vec<TimeSeries> = match &layout {
            Layout::Long(columns) => long_series(&table, columns, &[], &[])?.into_iter().map(|(_, s)| s).collect(),
            Layout::Wide { categorical } => {
                vec![wide_series(&table, &WideOptions { categorical: categorical.clone(), ..Default::default() })?]
            }
        };
        let mut intervals: Vec<i64> =
            entities.iter().flat_map(|s| s.timestamps.windows(2).map(|w| w[1] - w[0])).collect();
        intervals.sort_unstable();
        let median_interval = intervals.get(intervals.len() / 2).copied().unwrap_or(0);
        let bin_seconds = bin_seconds.unwrap_or(median_interval).max(1);
        // one-hot columns `wd=N`, `wd=E`… are one signal `wd`
        let first = &entities[0];
        let mut groups: Vec<(String, usize)> = Vec::new();
        for (j, name) in first.signals.iter().enumerate() {
            let base = match &layout {
                Layout::Wide { categorical } => categorical
                    .iter()
                    .find(|c| name.strip_prefix(c.as_str()).is_some_and(|r| r.starts_with('=')))
                    .map_or(name.as_str(), String::as_str),
                Layout::Long(_) => name.as_str(),
            };
            if groups.last().is_none_or(|(g, _)| g != base) {
                groups.push((base.to_string(), j));
            }
        }
        let mut signals: Vec<SignalMissingness> = groups
            .iter()
            .map(|(name, _)| SignalMissingness {
                name: name.clone(),
                missing_rows: 0,
                rows: 0,
                empty_slots: 0,
                slots: 0,
            })
            .collect();
        for series in &entities {
            let grid = align_to_grid(series, bin_seconds, Aggregation::Mean)?;
            let c = series.channels();
            for (summary, &(_, j)) in signals.iter_mut().zip(&groups) {
                summary.rows += series.len();
                summary.missing_rows += (0..series.len()).filter(|&n| !series.observed[n * c + j]).count();
                summary.slots += grid.len();
                summary.empty_slots += (0..grid.len()).filter(|&n| !grid.observed[n * c + j]).count();
            }
        }
        Ok(Inspection {
            layout,
            entities: entities.len(),
            rows: entities.iter().map(TimeSeries::len).sum(),
            median_interval,
            longest_gap: intervals.last().copied().unwrap_or(0),
            bin_seconds,
            signals,
        })
    }

    /// Grid slots without a value, pooled over every signal and entity.
    pub fn empty_on_grid(&self) -> f64 {
        let empty: usize = self.signals.iter().map(|s| s.empty_slots).sum();
        empty as f64 / self.signals.iter().map(|s| s.slots).sum::<usize>().max(1) as f64
    }

    /// The missingness of a signal, by name.
    pub fn signal(&self, name: &str) -> Option<&SignalMissingness> {
        self.signals.iter().find(|s| s.name == name)
    }
}

fn detect_layout(table: &Table) -> Layout {
    let pick = |names: &[&str]| names.iter().find_map(|n| table.column(n)).map(|i| table.names[i].clone());
    if let (Some(time), Some(signal), Some(value)) =
        (pick(&["timestamp", "time"]), pick(&["signal", "parameter"]), pick(&["value"]))
    {
        let entity = pick(&["entity", "record_id", "id", "station"]).unwrap_or_default();
        return Layout::Long(LongColumns { time, signal, value, entity });
    }
    let time_like = ["timestamp", "time", "date", "year", "month", "day", "hour", "minute", "__index_level_0__"];
    let categorical = table
        .names
        .iter()
        .enumerate()
        .filter(|(i, name)| {
            !name.is_empty()
                && !time_like.iter().any(|t| name.eq_ignore_ascii_case(t))
                && table.rows().any(|(_, f)| {
                    let cell = f[*i].trim();
                    !is_missing(cell) && cell.parse::<f64>().is_err()
                })
        })
        .map(|(_, name)| name.clone())
        .collect();
    Layout::Wide { categorical }
}
