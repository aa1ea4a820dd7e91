//! Long tables (CSV or Parquet): one observation per row, `timestamp,signal,value[,entity]` — the shape of
//! historian and Cognite-style exports, and of PhysioNet 2012 (`record_id,time,parameter,
//! value` with `HH:MM` since admission). Column names come from the options. Times are
//! `YYYY-MM-DD[ HH:MM[:SS]]`, integer seconds, or `H:MM` offsets (hours may exceed 24).
//! `NA`, `NaN` and empty values (Parquet nulls) are missing; several values of one signal
//! at one time of one entity are averaged. Every error names the file, the line (CSV) or
//! row (Parquet), and the column.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::series::TimeSeries;
use super::table::Table;
use super::wide::{is_missing, parse_timestamp};
use crate::error::Result;

/// Per entity: time → signal → (sum, count) of its values.
type Observations = HashMap<String, BTreeMap<i64, HashMap<String, (f64, u32)>>>;

/// Column names of a long table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongColumns {
    pub time: String,
    pub signal: String,
    pub value: String,
    /// Column naming the entity (station, patient…); empty: one entity per file.
    pub entity: String,
}

impl Default for LongColumns {
    fn default() -> Self {
        LongColumns { time: "timestamp".into(), signal: "signal".into(), value: "value".into(), entity: String::new() }
    }
}

/// `H:MM` (hours may exceed 24) as seconds, or any timestamp [`parse_timestamp`] reads.
fn parse_time(text: &str) -> Option<i64> {
    if let Some((h, m)) = text.split_once(':') {
        if !h.contains('-') && !h.contains(' ') && m.len() == 2 {
            if let (Ok(h), Ok(m)) = (h.parse::<i64>(), m.parse::<i64>()) {
                return Some(h * 3600 + m * 60);
            }
        }
    }
    parse_timestamp(text)
}

/// Reads a long CSV or Parquet file into one [`TimeSeries`] per entity (in order of
/// first appearance), all with the same signals: `keep` in its order, else every signal
/// seen (sorted) that is not in `drop`. An entity without any value of those signals is
/// left out.
///
/// # Errors
/// A missing file or column, an unparseable time or value, a signal in `keep` that never
/// occurs (named), no data row.
pub fn read_long(
    path: impl AsRef<Path>,
    columns: &LongColumns,
    keep: &[String],
    drop: &[String],
) -> Result<Vec<(String, TimeSeries)>> {
    long_series(&Table::read(path.as_ref())?, columns, keep, drop)
}

/// [`read_long`] on a table already read.
pub(crate) fn long_series(
    table: &Table,
    columns: &LongColumns,
    keep: &[String],
    drop: &[String],
) -> Result<Vec<(String, TimeSeries)>> {
    let path = &table.path;
    let names = &table.names;
    let find = |wanted: &str| {
        table.column(wanted).ok_or_else(|| {
            table.header_error(None, format!("no column `{wanted}`; the columns are {}", names.join(", ")))
        })
    };
    let (ti, si, vi) = (find(&columns.time)?, find(&columns.signal)?, find(&columns.value)?);
    let ei = if columns.entity.is_empty() { None } else { Some(find(&columns.entity)?) };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();

    let mut order: Vec<String> = Vec::new();
    let mut data: Observations = HashMap::new();
    let rows = table.rows.len();
    let mut in_file: BTreeMap<String, ()> = BTreeMap::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for (place, fields) in &table.rows {
        let place = *place;
        let signal = fields[si].trim();
        in_file.insert(signal.to_string(), ());
        if drop.iter().any(|d| d == signal) || (!keep.is_empty() && !keep.iter().any(|k| k == signal)) {
            continue;
        }
        let raw = fields[vi].trim();
        if is_missing(raw) {
            continue;
        }
        let value: f64 =
            raw.parse().map_err(|_| table.error(place, Some(&names[vi]), format!("`{raw}` is not a number")))?;
        if !value.is_finite() {
            return Err(table.error(place, Some(&names[vi]), format!("`{raw}` is not finite")));
        }
        let time = parse_time(fields[ti].trim())
            .ok_or_else(|| table.error(place, Some(&names[ti]), format!("`{}` is not a time", fields[ti].trim())))?;
        let entity = ei.map_or_else(|| stem.clone(), |i| fields[i].trim().to_string());
        if !data.contains_key(&entity) {
            order.push(entity.clone());
        }
        let cell =
            data.entry(entity).or_default().entry(time).or_default().entry(signal.to_string()).or_insert((0.0, 0));
        cell.0 += value;
        cell.1 += 1;
        seen.insert(signal.to_string(), ());
    }
    if rows == 0 {
        return Err(table.error(table.first_row_place(), None, "no data rows".into()));
    }
    if let Some(missing) = keep.iter().find(|s| !in_file.contains_key(*s)) {
        return Err(table.header_error(Some(&names[si]), format!("signal `{missing}` never occurs in the file")));
    }
    let signals: Vec<String> = if keep.is_empty() { seen.keys().cloned().collect() } else { keep.to_vec() };
    if order.is_empty() {
        return Err(table.error(table.first_row_place(), None, "no value of the kept signals in any row".into()));
    }
    let index: HashMap<&str, usize> = signals.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    Ok(order
        .into_iter()
        .map(|entity| {
            let times = &data[&entity];
            let c = signals.len();
            let mut series = TimeSeries {
                signals: signals.clone(),
                timestamps: times.keys().copied().collect(),
                values: vec![0.0; times.len() * c],
                observed: vec![false; times.len() * c],
            };
            for (row, obs) in times.values().enumerate() {
                for (name, (sum, count)) in obs {
                    let j = index[name.as_str()];
                    series.values[row * c + j] = (sum / *count as f64) as f32;
                    series.observed[row * c + j] = true;
                }
            }
            (entity, series)
        })
        .collect())
}
