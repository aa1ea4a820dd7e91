//! Long tables (CSV or Parquet): one observation per row, `timestamp,signal,value[,entity]` — the shape of
//! historian and Cognite-style exports, and of PhysioNet 2012 (`record_id,time,parameter,
//! value` with `HH:MM` since admission). Column names come from the options. Times are
//! `YYYY-MM-DD[ HH:MM[:SS]]`, integer seconds, or `H:MM` offsets (hours may exceed 24).
//! `NA`, `NaN` and empty values (Parquet nulls) are missing, and so are the marks of
//! [`MissingValues`]; several values of one signal
//! at one time of one entity are averaged. Every error names the file, the line (CSV) or
//! row (Parquet), and the column.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::missing::{is_missing, CellReader, MissingValues};
use super::series::{Clock, TimeSeries};
use super::table::Table;
use super::wide::{not_a_time, parse_timestamp_naive, EpochUnit};
use super::zone::TimeZone;
use crate::error::Result;

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

/// Time elapsed since an entity's start, `H:MM[:SS]` (hours may exceed 24), as seconds.
fn parse_elapsed(text: &str) -> Option<i64> {
    let mut parts = text.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next().unwrap_or("00"));
    let digits = |p: &str, len: Option<usize>| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && len.is_none_or(|n| p.len() == n)
    };
    if parts.next().is_some() || !digits(h, None) || !digits(m, Some(2)) || !digits(s, Some(2)) {
        return None;
    }
    let (h, m, s): (i64, i64, i64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    (m < 60 && s < 60).then(|| h * 3600 + m * 60 + s)
}

/// A long table's time cell as seconds and what they count from: time elapsed since the
/// entity's start, `H:MM[:SS]` (hours may exceed 24), or a timestamp as the wide reader
/// reads one (an integer count of `unit`, or ISO 8601 with an optional UTC offset); and
/// whether the time is naive (a date and clock time without a UTC offset; elapsed time
/// never is).
pub fn parse_long_time_naive(text: &str, unit: EpochUnit) -> Option<(i64, Clock, bool)> {
    match parse_elapsed(text) {
        Some(seconds) => Some((seconds, Clock::Elapsed, false)),
        None => parse_timestamp_naive(text, unit).map(|(seconds, naive)| (seconds, Clock::Calendar, naive)),
    }
}

/// How to read a long table.
#[derive(Clone, Debug, Default)]
pub struct LongOptions {
    pub columns: LongColumns,
    /// Signals to keep, in this order; empty: every signal seen (sorted) not in `drop`.
    pub signals: Vec<String>,
    pub drop: Vec<String>,
    /// Marks of "no value" beyond empty cells, `NA` and `NaN`.
    pub missing: MissingValues,
    /// What an integer time counts (a Parquet timestamp column keeps its own unit).
    pub time_unit: EpochUnit,
    /// The zone whose local times the file's naive times are ([`WideOptions::local_times`]);
    /// a time repeated when clocks go back is read in the order of each entity's rows of
    /// its signal.
    ///
    /// [`WideOptions::local_times`]: super::WideOptions::local_times
    pub local_times: Option<TimeZone>,
}

/// Reads a long CSV or Parquet file into one [`TimeSeries`] per entity (in order of
/// first appearance), all with the same signals (see [`LongOptions::signals`]). An entity
/// without any value of those signals is left out.
///
/// # Errors
/// A missing file or column, an unparseable time or value, a kept signal that never
/// occurs (named), no data row.
pub fn read_long(path: impl AsRef<Path>, options: &LongOptions) -> Result<Vec<(String, TimeSeries)>> {
    long_series(&Table::read(path.as_ref())?, options)
}

/// [`read_long`] on a table already read.
pub(crate) fn long_series(table: &Table, options: &LongOptions) -> Result<Vec<(String, TimeSeries)>> {
    let LongOptions { columns, signals: keep, drop, missing, time_unit, local_times } = options;
    let path = &table.path;
    let names = &table.names;
    let find = |wanted: &str| {
        table.column(wanted).ok_or_else(|| {
            table.header_error(None, format!("no column `{wanted}`; the columns are {}", names.join(", ")))
        })
    };
    let (ti, si, vi) = (find(&columns.time)?, find(&columns.signal)?, find(&columns.value)?);
    let unit = table.time_unit_of(ti, *time_unit);
    let ei = if columns.entity.is_empty() { None } else { Some(find(&columns.entity)?) };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();

    // signals and entities by index (names borrowed from the table), observations flat
    let mut signal_ids: HashMap<&str, u32> = HashMap::new();
    let mut signal_names: Vec<&str> = Vec::new();
    let mut entity_ids: HashMap<&str, u32> = HashMap::new();
    let mut entity_names: Vec<&str> = Vec::new();
    let mut kept_signal: Vec<bool> = Vec::new();
    let mut readers: Vec<CellReader> = Vec::new();
    let mut observations: Vec<(u32, i64, u32, f64)> = Vec::new();
    // cells that held a mark of "no value": by entity (its text) and signal id
    let mut marked: HashMap<(&str, u32), usize> = HashMap::new();
    let mut clock: Option<Clock> = None;
    // local times: each entity's signal's latest, in UTC (the repeated hour read in order)
    let mut last_local: HashMap<(u32, u32), i64> = HashMap::new();
    for (place, fields) in table.rows() {
        let signal = fields.get(si).trim();
        let id = *signal_ids.entry(signal).or_insert_with(|| {
            signal_names.push(signal);
            let wanted = !drop.iter().any(|d| d == signal) && (keep.is_empty() || keep.iter().any(|k| k == signal));
            kept_signal.push(wanted);
            readers.push(table.cell_reader(missing, signal));
            (signal_names.len() - 1) as u32
        });
        if !kept_signal[id as usize] {
            continue;
        }
        let raw = fields[vi].trim();
        let Some(value) =
            readers[id as usize].value::<f64>(raw).map_err(|why| table.error(place, Some(&names[vi]), why))?
        else {
            if !is_missing(raw) {
                *marked.entry((ei.map_or("", |i| fields.get(i).trim()), id)).or_default() += 1;
            }
            continue;
        };
        let cell = fields[ti].trim();
        let (time, cell_clock, naive) = parse_long_time_naive(cell, unit)
            .ok_or_else(|| table.error(place, Some(&names[ti]), not_a_time(cell, "time", unit)))?;
        match clock {
            None => clock = Some(cell_clock),
            Some(first) if first != cell_clock => {
                let why = format!(
                    "`{cell}` is {}, but the rows before hold {}",
                    cell_clock.description(),
                    first.description()
                );
                return Err(table.error(place, Some(&names[ti]), why));
            }
            Some(_) => {}
        }
        let entity = ei.map_or("", |i| fields.get(i).trim());
        let entity = *entity_ids.entry(entity).or_insert_with(|| {
            entity_names.push(entity);
            (entity_names.len() - 1) as u32
        });
        let time = match (local_times, naive) {
            (Some(zone), true) => {
                let last = last_local.get(&(entity, id)).copied();
                let utc = zone
                    .to_utc(time, last)
                    .map_err(|why| table.error(place, Some(&names[ti]), format!("`{cell}` {why}")))?;
                last_local.insert((entity, id), utc);
                utc
            }
            _ => time,
        };
        observations.push((entity, time, id, value));
    }
    if table.len() == 0 {
        return Err(table.error(table.first_row_place(), None, "no data rows".into()));
    }
    if let Some(missing) = keep.iter().find(|s| !signal_ids.contains_key(s.as_str())) {
        return Err(table.header_error(Some(&names[si]), format!("signal `{missing}` never occurs in the file")));
    }
    if observations.is_empty() {
        return Err(table.error(table.first_row_place(), None, "no value of the kept signals in any row".into()));
    }
    let signals: Vec<String> = if keep.is_empty() {
        let mut seen: Vec<&str> = observations.iter().map(|o| signal_names[o.2 as usize]).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().map(str::to_string).collect()
    } else {
        keep.to_vec()
    };
    let column: HashMap<&str, usize> = signals.iter().enumerate().map(|(j, s)| (s.as_str(), j)).collect();
    let column_of: Vec<usize> = signal_names.iter().map(|s| column.get(s).copied().unwrap_or(usize::MAX)).collect();
    // by entity, then time; several values of one signal at one time are averaged
    observations.sort_unstable_by_key(|&(e, t, s, _)| (e, t, s));
    let c = signals.len();
    let mut out: Vec<(String, TimeSeries)> = entity_names
        .iter()
        .map(|&e| {
            let name = if ei.is_some() { e.to_string() } else { stem.clone() };
            let empty = TimeSeries {
                signals: signals.clone(),
                timestamps: Vec::new(),
                values: Vec::new(),
                observed: Vec::new(),
                marked: vec![0; signals.len()],
                clock: clock.unwrap_or_default(),
            };
            (name, empty)
        })
        .collect();
    let mut sums = vec![(0.0f64, 0u32); c];
    for group in observations.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (entity, time) = (group[0].0 as usize, group[0].1);
        for &(_, _, s, v) in group {
            let slot = &mut sums[column_of[s as usize]];
            (slot.0, slot.1) = (slot.0 + v, slot.1 + 1);
        }
        let series = &mut out[entity].1;
        series.timestamps.push(time);
        for slot in &mut sums {
            series.values.push(if slot.1 > 0 { (slot.0 / f64::from(slot.1)) as f32 } else { 0.0 });
            series.observed.push(slot.1 > 0);
            *slot = (0.0, 0);
        }
    }
    // an entity left out (no value at all), or a signal never observed, takes its marks with it
    for ((entity, id), count) in marked {
        let j = column_of[id as usize];
        if let (Some(&e), true) = (entity_ids.get(entity), j < c) {
            out[e as usize].1.marked[j] += count;
        }
    }
    Ok(out)
}
