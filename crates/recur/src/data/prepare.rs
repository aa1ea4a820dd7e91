//! From grids to model-ready windows: one or several entities (stations, ICU records…)
//! stacked in time, a split into training, validation and test parts — chronological
//! within each entity, or by whole entities — per-signal standardisation fitted on the
//! training part only ([`super::scaler`]), and sliding windows that never cross an entity
//! or a split.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::scaler::moments;
pub use super::scaler::{FittedScaler, Standardizer, SCALER_FILE};

use super::calendar::Calendar;
use super::grid::{bins_since_observed, GridSeries};
use super::series::Clock;
use super::wide::one_hot_of;
use crate::error::{Error, Result};

/// Fractions for training and validation (the rest is the test part).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitFractions {
    pub train: f64,
    pub validation: f64,
    /// With several entities: split each entity in time, or assign whole entities.
    pub by: SplitBy,
}

/// How several entities are split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Every entity contributes its first 60 % to training, and so on.
    #[default]
    Time,
    /// The first 60 % of the entities are training entities, and so on (e.g. patients).
    Entity,
}

impl Default for SplitFractions {
    /// The deck's 60 / 20 / 20.
    fn default() -> Self {
        SplitFractions { train: 0.6, validation: 0.2, by: SplitBy::Time }
    }
}

/// Standardised entities stacked in time (`values` standardised, 0 where missing), and
/// the steps of each part as ranges that never cross an entity.
#[derive(Clone, Debug)]
pub struct PreparedSeries {
    pub grid: GridSeries,
    /// `grid.values` before standardisation: each observed value in its signal's units as
    /// the grid holds it (after aggregation and the outlier screen), 0 where missing — what
    /// outputs give back for an observation, exactly, where `scaler.invert` of its
    /// standardised value would round.
    pub original: Vec<f32>,
    pub scaler: Standardizer,
    /// Each entity's name and steps in `grid`.
    pub entities: Vec<(String, Range<usize>)>,
    /// Each entity's first grid time (`grid.start` is the first entity's), in `grid.clock`'s
    /// seconds.
    pub entity_starts: Vec<i64>,
    pub train: Vec<Range<usize>>,
    pub validation: Vec<Range<usize>>,
    pub test: Vec<Range<usize>>,
    /// Per signal: observed values treated as missing by [`PreparedSeries::from_entities_screened`].
    pub screened: Vec<usize>,
    /// Per signal: cells read as gaps for holding a mark of "no value" (`data.missing_values`),
    /// summed over the files and entities ([`crate::data::TimeSeries::marked`]).
    pub marked: Vec<usize>,
    /// The calendar inputs a model of this data reads beside the signals (none by default;
    /// [`PreparedSeries::with_calendar`]).
    pub calendar: Calendar,
}

/// A part of a series (training, validation, test): one range of steps per entity.
pub type Part = Vec<Range<usize>>;

/// Per signal, whether it is in `names`.
///
/// # Errors
/// A name that is not a signal; an observed value at or below −1 of a named signal, with
/// its entity and time.
fn log1p_flags(signals: &[String], entities: &[(String, GridSeries)], names: &[String]) -> Result<Vec<bool>> {
    if let Some(unknown) = names.iter().find(|n| !signals.contains(n)) {
        return Err(unknown_signal("data.log1p", unknown, signals));
    }
    let flags: Vec<bool> = signals.iter().map(|s| names.contains(s)).collect();
    for (j, _) in flags.iter().enumerate().filter(|(_, &f)| f) {
        refuse_values(signals, entities, j, |v| v <= -1.0, "log1p (data.log1p) needs values above -1")?;
    }
    Ok(flags)
}

/// Per signal, its floor from `floors` (signal name → value), if named there.
///
/// # Errors
/// A name that is not a signal, a floor that is not a number, and an observed value below
/// its signal's floor, with its entity and time.
fn floor_values(
    signals: &[String],
    entities: &[(String, GridSeries)],
    floors: &BTreeMap<String, f64>,
) -> Result<Vec<Option<f32>>> {
    if let Some(unknown) = floors.keys().find(|n| !signals.contains(n)) {
        return Err(unknown_signal("data.floor", unknown, signals));
    }
    if floors.is_empty() {
        return Ok(Vec::new());
    }
    let mut values = Vec::with_capacity(signals.len());
    for (j, name) in signals.iter().enumerate() {
        let Some(&f) = floors.get(name) else {
            values.push(None);
            continue;
        };
        if !f.is_finite() {
            return Err(Error::invalid(format!("data.floor.`{name}`"), format!("{f}: a finite number is needed")));
        }
        let f = f as f32;
        refuse_values(signals, entities, j, |v| v < f, &format!("it lies below the signal's floor {f} (data.floor)"))?;
        values.push(Some(f));
    }
    Ok(values)
}

pub(crate) fn unknown_signal(key: &str, name: &str, signals: &[String]) -> Error {
    Error::invalid(key, format!("`{name}` is not a signal; the signals are {}", signals.join(", ")))
}

/// An error naming the first observed value of signal `j` for which `bad` holds, with its
/// entity and time; `Ok` if none.
fn refuse_values(
    signals: &[String],
    entities: &[(String, GridSeries)],
    j: usize,
    bad: impl Fn(f32) -> bool,
    why: &str,
) -> Result<()> {
    let c = signals.len();
    for (name, grid) in entities {
        if let Some(n) = (0..grid.len()).find(|&n| grid.observed[n * c + j] && bad(grid.values[n * c + j])) {
            let of = if name.is_empty() { String::new() } else { format!(" of `{name}`") };
            return Err(Error::invalid(
                format!("signal `{}`{of}", signals[j]),
                format!(
                    "{} at {}: {why}",
                    grid.values[n * c + j],
                    grid.clock.format(grid.start + n as i64 * grid.bin_seconds)
                ),
            ));
        }
    }
    Ok(())
}

/// The robust spread of a sample: 1.4826·MAD (median absolute deviation around the
/// median), which equals σ for normal data and ignores a minority of wild values.
/// Returns (median, spread); `None` for an empty sample.
pub fn robust_spread(values: &mut [f64]) -> Option<(f64, f64)> {
    let median = |v: &mut [f64]| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        }
    };
    if values.is_empty() {
        return None;
    }
    let m = median(values);
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, 1.4826 * median(&mut deviations)))
}

/// `grid` with its signals in the order of `signals` (see [`PreparedSeries::unseen`]).
///
/// # Errors
/// A signal of `signals` that `grid` lacks and that is no category of a `categorical` column.
fn in_signal_order(entity: &str, grid: GridSeries, signals: &[String], categorical: &[String]) -> Result<GridSeries> {
    let (had, n) = (grid.channels(), grid.len());
    let c = signals.len();
    let (mut values, mut observed) = (vec![0.0f32; n * c], vec![false; n * c]);
    for (j, signal) in signals.iter().enumerate() {
        if let Some(i) = grid.signals.iter().position(|s| s == signal) {
            for t in 0..n {
                (values[t * c + j], observed[t * c + j]) = (grid.values[t * had + i], grid.observed[t * had + i]);
            }
            continue;
        }
        let Some((column, _)) = one_hot_of(signal, categorical) else {
            let of = if entity.is_empty() { String::new() } else { format!(" of `{entity}`") };
            return Err(Error::invalid(
                format!("signal `{signal}`"),
                format!("the run reads it, but the data{of} has none; its signals are {}", grid.signals.join(", ")),
            ));
        };
        let siblings: Vec<usize> =
            (0..had).filter(|&i| one_hot_of(&grid.signals[i], categorical).is_some_and(|(c, _)| c == column)).collect();
        for t in 0..n {
            observed[t * c + j] = siblings.iter().any(|&i| grid.observed[t * had + i]);
        }
    }
    let delta = bins_since_observed(&observed, c);
    Ok(GridSeries { signals: signals.to_vec(), values, observed, delta, ..grid })
}

/// Entities stacked in time on one grid: the grid, each entity's name and steps in it,
/// and each entity's first grid time.
///
/// # Errors
/// No entity; entities whose signals, bin width or kind of time differ (named).
#[allow(clippy::type_complexity)]
fn stack_entities(entities: &[(String, GridSeries)]) -> Result<(GridSeries, Vec<(String, Range<usize>)>, Vec<i64>)> {
    let Some((_, first)) = entities.first() else {
        return Err(Error::invalid("data", "no entity"));
    };
    let (signals, bin, clock) = (first.signals.clone(), first.bin_seconds, first.clock);
    if let Some((name, g)) = entities.iter().find(|(_, g)| g.signals != signals || g.bin_seconds != bin) {
        return Err(Error::invalid(
            format!("entity `{name}`"),
            format!(
                "its signals {:?} or bin {} s differ from the first entity's {:?}, {} s",
                g.signals, g.bin_seconds, signals, bin
            ),
        ));
    }
    if let Some((name, g)) = entities.iter().find(|(_, g)| g.clock != clock) {
        let (its, first) = (g.clock.description(), clock.description());
        return Err(Error::invalid(
            format!("entity `{name}`"),
            format!("its times are not of the first entity's kind (one axis for all): {its}, against {first}"),
        ));
    }
    let entity_starts = entities.iter().map(|(_, g)| g.start).collect();
    let mut grid = GridSeries {
        signals,
        start: first.start,
        clock,
        bin_seconds: bin,
        values: Vec::new(),
        observed: Vec::new(),
        delta: Vec::new(),
    };
    let mut spans = Vec::new();
    for (name, g) in entities {
        let start = grid.len();
        grid.values.extend_from_slice(&g.values);
        grid.observed.extend_from_slice(&g.observed);
        grid.delta.extend_from_slice(&g.delta);
        spans.push((name.clone(), start..grid.len()));
    }
    Ok((grid, spans, entity_starts))
}

/// Treats as missing every observed value outside its signal's screen ([`Standardizer::screen`]:
/// |x − m| > reach), then recomputes δ within each entity's `spans`; per signal, how many.
fn apply_screen(grid: &mut GridSeries, spans: &[(String, Range<usize>)], screen: &[Option<(f64, f64)>]) -> Vec<usize> {
    let c = grid.channels();
    let mut screened = vec![0usize; c];
    for (j, &(median, reach)) in screen.iter().enumerate().filter_map(|(j, s)| Some((j, s.as_ref()?))) {
        for k in (j..grid.values.len()).step_by(c) {
            if grid.observed[k] && (f64::from(grid.values[k]) - median).abs() > reach {
                (grid.observed[k], grid.values[k]) = (false, 0.0);
                screened[j] += 1;
            }
        }
    }
    if screened.iter().any(|&n| n > 0) {
        for (_, r) in spans {
            let delta = bins_since_observed(&grid.observed[r.start * c..r.end * c], c);
            grid.delta[r.start * c..r.end * c].copy_from_slice(&delta);
        }
    }
    screened
}

/// Every observed value standardised by `scaler`, every missing one 0; returns the values
/// as they were ([`PreparedSeries::original`]).
fn standardise(grid: &mut GridSeries, scaler: &Standardizer) -> Vec<f32> {
    let c = grid.channels();
    let mut original = vec![0.0; grid.values.len()];
    for (k, v) in grid.values.iter_mut().enumerate() {
        if grid.observed[k] {
            original[k] = *v;
        }
        *v = if grid.observed[k] { scaler.apply(k % c, *v) } else { 0.0 };
    }
    original
}

impl PreparedSeries {
    /// One series (one entity).
    ///
    /// # Errors
    /// As [`PreparedSeries::from_entities`].
    pub fn new(grid: GridSeries, split: SplitFractions) -> Result<Self> {
        Self::from_entities(vec![(String::new(), grid)], split)
    }

    /// Several entities with the same signals and bin width, e.g. one file per station or
    /// one grid per patient.
    ///
    /// # Errors
    /// Fractions outside (0, 1) or summing past 1, entities whose signals or bins differ
    /// (named), too few entities to split by entity, or a signal that cannot be standardised.
    pub fn from_entities(entities: Vec<(String, GridSeries)>, split: SplitFractions) -> Result<Self> {
        Self::from_entities_screened(entities, split, 0.0, &[], &BTreeMap::new())
    }

    /// [`PreparedSeries::from_entities`], first treating as missing every observed value
    /// further than `limit` robust standard deviations ([`robust_spread`], per signal,
    /// fitted on the training part) from its signal's training median, in every part:
    /// sensor faults and unit errors that a squared error would otherwise be about. The
    /// counts are in `screened`; the mask and δ follow. `limit = 0` keeps every value; a
    /// signal whose training values are mostly equal (spread 0) is left as it is. The
    /// signals named in `log1p` are standardised after ln(1 + x), those in `floor` get
    /// their floor ([`Standardizer`]).
    ///
    /// # Errors
    /// As [`PreparedSeries::from_entities`], a negative or non-finite `limit`, an unknown
    /// signal in `log1p` or `floor`, a value at or below −1 of one in `log1p` and a value
    /// below its floor of one in `floor` (entity, signal and time named).
    pub fn from_entities_screened(
        entities: Vec<(String, GridSeries)>,
        split: SplitFractions,
        limit: f64,
        log1p: &[String],
        floor: &BTreeMap<String, f64>,
    ) -> Result<Self> {
        if !(limit.is_finite() && limit >= 0.0) {
            return Err(Error::invalid("outlier_mads", format!("{limit}: 0 (off) or a positive number is needed")));
        }
        if !(split.train > 0.0 && split.validation >= 0.0 && split.train + split.validation < 1.0) {
            return Err(Error::invalid("split", format!("{split:?}: train > 0 and train + validation < 1 are needed")));
        }
        let (mut grid, spans, entity_starts) = stack_entities(&entities)?;
        let log1p = log1p_flags(&grid.signals, &entities, log1p)?;
        let floor = floor_values(&grid.signals, &entities, floor)?;
        let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
        match split.by {
            SplitBy::Time => {
                for (_, r) in &spans {
                    let n = r.len();
                    let a = r.start + (n as f64 * split.train) as usize;
                    let b = r.start + (n as f64 * (split.train + split.validation)) as usize;
                    train.push(r.start..a);
                    validation.push(a..b);
                    test.push(b..r.end);
                }
            }
            SplitBy::Entity => {
                let n = spans.len();
                let a = (n as f64 * split.train).round() as usize;
                let b = (n as f64 * (split.train + split.validation)).round() as usize;
                if a == 0 || b == a || b >= n {
                    return Err(Error::invalid("split", format!("{n} entities are too few to split by entity")));
                }
                for (i, (_, r)) in spans.iter().enumerate() {
                    let part = if i < a {
                        &mut train
                    } else if i < b {
                        &mut validation
                    } else {
                        &mut test
                    };
                    part.push(r.clone());
                }
            }
        }
        let c = grid.channels();
        let mut screen = Vec::new();
        if limit > 0.0 {
            screen = (0..c)
                .map(|j| {
                    let mut sample: Vec<f64> = train
                        .iter()
                        .flat_map(|r| r.clone())
                        .filter(|&n| grid.observed[n * c + j])
                        .map(|n| f64::from(grid.values[n * c + j]))
                        .collect();
                    robust_spread(&mut sample)
                        .filter(|&(_, s)| s > 0.0)
                        .map(|(median, spread)| (median, limit * spread))
                })
                .collect();
        }
        let screened = apply_screen(&mut grid, &spans, &screen);
        let scaler = Standardizer { floor, screen, ..Standardizer::fit(&grid, &train, &log1p)? };
        let original = standardise(&mut grid, &scaler);
        let marked = vec![0; c];
        Ok(PreparedSeries {
            grid,
            original,
            scaler,
            entities: spans,
            entity_starts,
            train,
            validation,
            test,
            screened,
            marked,
            calendar: Calendar::default(),
        })
    }

    /// Data a trained run has not seen (another period, another machine), read as the run
    /// reads its own: each entity's signals put in the run's order (`fitted.signals`; a
    /// category of a `categorical` column that an entity never takes is 0 wherever the
    /// column holds a value, and a category the run never saw is none of its signals), its
    /// outliers screened and its values standardised by the run's fitted scaler, not
    /// refitted. Every step of every entity is in the test part; there is no training or
    /// validation part ([`PreparedSeries::is_unseen`]).
    ///
    /// # Errors
    /// An entity without a signal the run reads, on another grid step, or whose times are
    /// of another kind than the first's; a value at or below −1 of a signal standardised
    /// after ln(1 + x), or below its signal's floor (entity, signal and time named).
    pub fn unseen(entities: Vec<(String, GridSeries)>, fitted: &FittedScaler, categorical: &[String]) -> Result<Self> {
        let entities = entities
            .into_iter()
            .map(|(name, grid)| {
                if grid.bin_seconds != fitted.bin_seconds {
                    return Err(Error::invalid(
                        format!("entity `{name}`"),
                        format!("on a grid of {} s; the run's is {} s", grid.bin_seconds, fitted.bin_seconds),
                    ));
                }
                let grid = in_signal_order(&name, grid, &fitted.signals, categorical)?;
                Ok((name, grid))
            })
            .collect::<Result<Vec<_>>>()?;
        let (mut grid, spans, entity_starts) = stack_entities(&entities)?;
        let scaler = &fitted.scaler;
        for j in 0..grid.channels() {
            if scaler.is_log1p(j) {
                let why = "log1p (data.log1p) needs values above -1";
                refuse_values(&grid.signals, &entities, j, |v| v <= -1.0, why)?;
            }
            if let Some(f) = scaler.floor_of(j) {
                let why = format!("it lies below the signal's floor {f} (data.floor)");
                refuse_values(&grid.signals, &entities, j, |v| v < f, &why)?;
            }
        }
        let screened = apply_screen(&mut grid, &spans, &scaler.screen);
        let original = standardise(&mut grid, scaler);
        let c = grid.channels();
        PreparedSeries {
            grid,
            original,
            scaler: scaler.clone(),
            test: spans.iter().map(|(_, r)| r.clone()).collect(),
            entities: spans,
            entity_starts,
            train: Vec::new(),
            validation: Vec::new(),
            screened,
            marked: vec![0; c],
            calendar: Calendar::default(),
        }
        .with_calendar(fitted.calendar.clone())
    }

    /// The same data, its models reading `calendar`'s inputs beside the signals.
    ///
    /// # Errors
    /// Calendar inputs for data whose times are elapsed since each entity's start
    /// (PhysioNet's `47:30`), which have no time of day.
    pub fn with_calendar(mut self, calendar: Calendar) -> Result<Self> {
        if !calendar.is_empty() && self.grid.clock != Clock::Calendar {
            return Err(Error::invalid(
                "data.calendar",
                format!(
                    "the data's times are {}, not calendar times: they have no time of day, week or year",
                    self.grid.clock.description()
                ),
            ));
        }
        self.calendar = calendar;
        Ok(self)
    }

    /// The time of grid step `n` (its bin's start), in `grid.clock`'s seconds (past the
    /// last step: counted on from the last entity's start).
    pub fn step_time(&self, n: usize) -> i64 {
        let e = self.entity_index(n);
        let start = self.entities.get(e).map_or(0, |(_, r)| r.start);
        self.entity_starts.get(e).copied().unwrap_or(self.grid.start)
            + (n as i64 - start as i64) * self.grid.bin_seconds
    }

    /// The calendar inputs of grid step `n` into `out` (`[calendar.width()]`; nothing
    /// without calendar inputs).
    pub fn write_calendar(&self, n: usize, out: &mut [f32]) {
        if !self.calendar.is_empty() {
            self.calendar.write(self.step_time(n), out);
        }
    }

    /// The test part's ranges each cut in time at `fraction` of its length: the earlier
    /// pieces and the later ones. On data a run has not seen (all of it test part), the
    /// first stretch of every entity to fit something on — a new site's first weeks, to
    /// calibrate the run's bands there — and the rest to check it on.
    ///
    /// # Errors
    /// A fraction outside (0, 1).
    pub fn split_test_in_time(&self, fraction: f64) -> Result<(Part, Part)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::invalid(
                "fraction",
                format!("{fraction}: a share of each entity strictly between 0 and 1"),
            ));
        }
        Ok(self
            .test
            .iter()
            .map(|r| {
                let cut = r.start + (r.len() as f64 * fraction) as usize;
                (r.start..cut, cut..r.end)
            })
            .unzip())
    }

    /// Whether this is data a run was not trained on ([`PreparedSeries::unseen`]): all of it
    /// test part.
    pub fn is_unseen(&self) -> bool {
        self.train.is_empty() && self.validation.is_empty()
    }

    /// Grid step `n` as a live feed would give it: each signal's value in original units,
    /// `None` where missing (what [`crate::tasks::PredictionStream::step`] takes).
    pub fn original_step(&self, n: usize) -> Vec<Option<f32>> {
        let c = self.grid.channels();
        (0..c).map(|j| self.grid.observed[n * c + j].then_some(self.original[n * c + j])).collect()
    }

    /// The time of step `offset` of entity `entity` (counted from its first step; past its
    /// last for forecasts), as the readers take it back ([`crate::data::Clock::format`]; a
    /// local time where the data writes local times, [`Calendar::shown`]).
    pub fn time_label(&self, entity: usize, offset: usize) -> String {
        self.calendar.format(self.grid.clock, self.entity_starts[entity] + offset as i64 * self.grid.bin_seconds)
    }

    /// The name of the entity holding grid step `step` and the step's time, as
    /// [`PreparedSeries::time_label`] writes it.
    pub fn step_label(&self, step: usize) -> (&str, String) {
        let e = self.entity_index(step);
        let (name, steps) = &self.entities[e];
        (name, self.time_label(e, step - steps.start))
    }

    /// Each signal over `part` against the training part it was standardised on
    /// ([`SignalShift`]): on data a run has not seen, whether the run's model meets what it
    /// was fitted to.
    pub fn shift_from_training(&self, part: &[Range<usize>]) -> Vec<SignalShift> {
        let c = self.grid.channels();
        (0..c)
            .map(|j| {
                let steps = part.iter().flat_map(|r| r.clone());
                let z = steps
                    .clone()
                    .filter(|&n| self.grid.observed[n * c + j])
                    .map(|n| f64::from(self.grid.values[n * c + j]));
                let (mean, std, seen) = moments(z);
                let total = steps.count();
                SignalShift {
                    signal: self.grid.signals[j].clone(),
                    observed: if total > 0 { seen as f64 / total as f64 } else { 0.0 },
                    mean,
                    std,
                }
            })
            .collect()
    }

    /// The steps of the entity that holds `step` (empty past the last step).
    pub fn entity_of(&self, step: usize) -> Range<usize> {
        self.entities.iter().find(|(_, r)| r.contains(&step)).map_or(step..step, |(_, r)| r.clone())
    }

    /// The index in `entities` of the entity holding grid step `step` (the last one past
    /// the end of the grid).
    pub fn entity_index(&self, step: usize) -> usize {
        // the entities' steps follow one another: the last one starting at or before `step`
        self.entities.partition_point(|(_, r)| r.start <= step).saturating_sub(1)
    }

    /// Start indices of windows of `length` inside the segments of `part`, every `stride`
    /// steps within each segment.
    ///
    /// # Errors
    /// A window longer than every segment of the part.
    pub fn window_starts(&self, part: &[Range<usize>], length: usize, stride: usize, name: &str) -> Result<Vec<usize>> {
        let starts: Vec<usize> = part
            .iter()
            .filter(|r| length > 0 && r.len() >= length)
            .flat_map(|r| (r.start..=r.end - length).step_by(stride.max(1)))
            .collect();
        if starts.is_empty() {
            let longest = part.iter().map(|r| r.len()).max().unwrap_or(0);
            return Err(Error::invalid(
                "window length",
                format!("{length} steps, but the {name} part has only {longest} steps (in its longest entity)"),
            ));
        }
        Ok(starts)
    }
}

/// One signal over some steps, in the standard units of the training part (where its
/// values have mean 0 and standard deviation 1): the fraction of the steps it is observed
/// in, and the mean and standard deviation of its observed values there.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalShift {
    pub signal: String,
    pub observed: f64,
    pub mean: f64,
    pub std: f64,
}

impl SignalShift {
    /// Why a model fitted on the training part may not hold here, if so: the signal is never
    /// observed, or its mean lies more than one training standard deviation from the
    /// training mean, or its spread is under half or over twice the training one.
    pub fn concern(&self) -> Option<String> {
        if self.observed == 0.0 {
            return Some(format!("{} never observed", self.signal));
        }
        let mut why = Vec::new();
        if self.mean.abs() > 1.0 {
            why.push(format!("mean {:+.1} sd", self.mean));
        }
        if !(0.5..=2.0).contains(&self.std) {
            why.push(format!("spread {:.2}×", self.std));
        }
        (!why.is_empty()).then(|| format!("{} {}", self.signal, why.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic signal: a sine with one wild value (a unit error) in its test part and
    /// a second, ordinary signal.
    fn grid_with_spike() -> GridSeries {
        let n = 100;
        let mut values = Vec::new();
        for t in 0..n {
            let wave = (t as f32 * 0.3).sin();
            values.push(if t == 90 { 1000.0 } else { wave });
            values.push(t as f32);
        }
        let observed = vec![true; 2 * n];
        let delta = bins_since_observed(&observed, 2);
        GridSeries {
            signals: vec!["s".into(), "ramp".into()],
            start: 0,
            clock: Clock::Calendar,
            bin_seconds: 60,
            values,
            observed,
            delta,
        }
    }

    #[test]
    fn entities_on_different_clocks_are_refused_and_each_keeps_its_start() {
        let later = GridSeries { start: 86_400, ..grid_with_spike() };
        let data = PreparedSeries::from_entities(
            vec![("a".into(), grid_with_spike()), ("b".into(), later.clone())],
            SplitFractions::default(),
        )
        .unwrap();
        assert_eq!(data.entity_starts, [0, 86_400]);
        assert_eq!(
            (data.time_label(1, 0), data.time_label(1, 101)),
            ("1970-01-02 00:00:00".into(), "1970-01-02 01:41:00".into())
        );
        let elapsed = GridSeries { clock: Clock::Elapsed, ..later };
        let err = PreparedSeries::from_entities(
            vec![("a".into(), grid_with_spike()), ("b".into(), elapsed)],
            SplitFractions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("entity `b`")
                && err.ends_with(
                    "kind (one axis for all): a time elapsed since the entity's start (H:MM), against a calendar time"
                ),
            "{err}"
        );
    }

    #[test]
    fn values_far_outside_the_training_spread_become_missing_with_their_delta() {
        let kept = PreparedSeries::from_entities(vec![("e".into(), grid_with_spike())], SplitFractions::default());
        let kept = kept.unwrap();
        assert_eq!(kept.screened, [0, 0]);
        assert!(kept.grid.observed[90 * 2]);

        let screened = PreparedSeries::from_entities_screened(
            vec![("e".into(), grid_with_spike())],
            SplitFractions::default(),
            10.0,
            &[],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(screened.screened, [1, 0], "the spike only; the ramp stays whole");
        assert!(!screened.grid.observed[90 * 2] && screened.grid.values[90 * 2] == 0.0);
        assert_eq!(screened.grid.delta[90 * 2], 1.0);
        assert_eq!(screened.grid.delta[91 * 2], 0.0);
        let fitted = |s: &Standardizer| (s.mean.clone(), s.std.clone(), s.score_std.clone());
        assert_eq!(
            fitted(&screened.scaler),
            fitted(&kept.scaler),
            "fitted on the training part, where there was nothing to screen"
        );
        // the screen goes with the scaler, so that a stream takes out what training took out
        assert!(screened.scaler.screens_out(0, 1000.0) && !screened.scaler.screens_out(0, 0.9));
        assert!(kept.scaler.screen.is_empty() && !kept.scaler.screens_out(0, 1000.0));

        let err = PreparedSeries::from_entities_screened(
            vec![("e".into(), grid_with_spike())],
            SplitFractions::default(),
            -1.0,
            &[],
            &BTreeMap::new(),
        );
        assert!(err.unwrap_err().to_string().contains("outlier_mads"));
    }

    /// Synthetic: a skewed non-negative signal (a squared sine, scaled) and the ramp.
    fn skewed() -> GridSeries {
        let n = 100;
        let values: Vec<f32> = (0..n).flat_map(|t| [40.0 * (t as f32 * 0.2).sin().powi(2), t as f32 - 50.0]).collect();
        let observed = vec![true; 2 * n];
        let delta = bins_since_observed(&observed, 2);
        GridSeries {
            signals: vec!["pm".into(), "ramp".into()],
            start: 86_400,
            clock: Clock::Calendar,
            bin_seconds: 3600,
            values,
            observed,
            delta,
        }
    }

    #[test]
    fn log1p_signals_standardise_their_logarithm_and_map_bands_back_skewed_above_minus_one() {
        let plain = PreparedSeries::new(skewed(), SplitFractions::default()).unwrap().scaler;
        let prepared = PreparedSeries::from_entities_screened(
            vec![("e".into(), skewed())],
            SplitFractions::default(),
            0.0,
            &["pm".into()],
            &BTreeMap::new(),
        )
        .unwrap();
        let scaler = &prepared.scaler;
        assert_eq!((scaler.log1p.as_slice(), plain.log1p.is_empty()), (&[true, false][..], true));
        // the ramp is as without the transform; the score unit is pm's own spread
        assert_eq!((scaler.mean[1], scaler.std[1]), (plain.mean[1], plain.std[1]));
        assert_eq!(scaler.score_std[0], plain.std[0]);
        // training z of pm: zero mean, unit variance of ln(1 + x)
        let z: Vec<f64> = prepared.train[0].clone().map(|n| f64::from(prepared.grid.values[n * 2])).collect();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{mean} {var}");
        for x in [0.0f32, 0.5, 3.0, 39.0] {
            let back = scaler.invert(0, scaler.apply(0, x));
            assert!((back - x).abs() < 1e-5 * (1.0 + x), "{x} -> {back}");
            let z = scaler.apply(0, x);
            let (low, high) = scaler.band(0, z, 0.8);
            assert!(low > -1.0 && low < x && x < high && high - x > x - low, "skewed up: {low} {x} {high}");
            // the same band of the ramp is symmetric
            let (low, high) = scaler.band(1, 0.3, 0.8);
            let v = scaler.invert(1, 0.3);
            assert!(((high - v) - (v - low)).abs() < 1e-4, "{low} {v} {high}");
        }
        // errors scored in x: the difference mapped back, over pm's own spread
        let (p, t) = (scaler.apply(0, 9.0), scaler.apply(0, 4.0));
        let (e, e_orig) = scaler.error(0, p, t);
        assert!((e_orig - 5.0).abs() < 1e-4 && (e - 5.0 / f64::from(plain.std[0])).abs() < 1e-5, "{e} {e_orig}");
        assert_eq!(plain.error(1, 0.5, 0.25), (0.25, 0.25 * f64::from(plain.std[1])));
        // the band against a truth: width, and the distance outside
        let (width, miss) = plain.band_miss(1, -1.0, 1.0, 3.0);
        assert_eq!((width, miss), (2.0, 2.0));
        let (width, miss) = scaler.band_miss(0, f64::from(p) - 1.0, f64::from(p) + 1.0, p);
        let (low, high) = scaler.band(0, p, 0.5);
        let unit = f64::from(plain.std[0]);
        assert!((width - f64::from(high - low) / unit).abs() < 1e-5 && miss == 0.0, "{width}");
        assert!(scaler.accepts(0, -0.5) && !scaler.accepts(0, -1.0) && scaler.accepts(1, -7.0));
    }

    #[test]
    fn log1p_refuses_unknown_signals_and_values_at_or_below_minus_one_by_entity_and_time() {
        let prepare = |grid: GridSeries, names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            PreparedSeries::from_entities_screened(
                vec![("station".into(), grid)],
                SplitFractions::default(),
                0.0,
                &names,
                &BTreeMap::new(),
            )
        };
        let err = prepare(skewed(), &["PM25"]).unwrap_err().to_string();
        assert!(
            err.contains("data.log1p") && err.contains("`PM25` is not a signal") && err.contains("pm, ramp"),
            "{err}"
        );
        // the ramp reaches -50 at its start (1970-01-02 00:00), in the training part
        let err = prepare(skewed(), &["ramp"]).unwrap_err().to_string();
        assert!(err.contains("signal `ramp` of `station`") && err.contains("-50 at 1970-01-02 00:00:00"), "{err}");
        // a bad value in the test part is found too
        let mut grid = skewed();
        grid.values[95 * 2] = -3.0;
        let err = prepare(grid, &["pm"]).unwrap_err().to_string();
        assert!(err.contains("-3 at 1970-01-05 23:00:00") && err.contains("above -1"), "{err}");
    }

    #[test]
    fn a_floor_lifts_outputs_to_it_and_never_raises_an_error_nor_drops_a_truth_out_of_its_band() {
        // synthetic: pm ≥ 0 (floor 0, read plain, then read as ln(1 + x)); the ramp unfloored
        let floors = BTreeMap::from([("pm".to_string(), 0.0)]);
        for log1p in [vec![], vec!["pm".to_string()]] {
            let prepare = |floors: &BTreeMap<String, f64>| {
                PreparedSeries::from_entities_screened(
                    vec![("e".into(), skewed())],
                    SplitFractions::default(),
                    0.0,
                    &log1p,
                    floors,
                )
                .unwrap()
                .scaler
            };
            let (free, floored) = (prepare(&BTreeMap::new()), prepare(&floors));
            assert_eq!((floored.floor_of(0), floored.floor_of(1), free.floor_of(0)), (Some(0.0), None, None));
            let z0 = floored.apply(0, 0.0);
            // below the floor: 0 exactly in original units, the floor's z standardised
            assert_eq!(
                (floored.invert(0, z0 - 1.5), floored.lift(0, z0 - 1.5), floored.lift(0, z0 + 0.5)),
                (0.0, z0, z0 + 0.5)
            );
            assert_eq!((floored.invert(1, -9.0), floored.lift(1, -9.0)), (free.invert(1, -9.0), -9.0));
            assert!(floored.invert(0, f32::NAN).is_nan() && floored.lift(0, f32::NAN).is_nan(), "not hidden");
            let (low, high) = floored.band(0, z0 - 0.1, 0.5);
            assert!(low == 0.0 && high > 0.0, "{low} {high}");
            let mut rng = crate::Rng::new(5);
            for _ in 0..2000 {
                let t = floored.apply(0, [0.0, 0.01, 3.0 * rng.uniform_in(0.0, 1.0) as f32][rng.below(3)]);
                let p = z0 + 2.0 * rng.normal() as f32;
                let (low, high) = (f64::from(p) - rng.uniform_in(0.0, 2.0), f64::from(p) + rng.uniform_in(0.0, 2.0));
                let (e, e_orig) = floored.error(0, p, t);
                let (e_free, e_orig_free) = free.error(0, p, t);
                assert!(e.abs() <= e_free.abs() + 1e-6 && e_orig.abs() <= e_orig_free.abs() + 1e-4, "{p} {t}");
                let ((width, miss), (width_free, miss_free)) =
                    (floored.band_miss(0, low, high, t), free.band_miss(0, low, high, t));
                assert!(width <= width_free + 1e-9 && miss <= miss_free + 1e-9, "{low} {high} {t}");
                assert!(floored.holds(0, low, high, t) || !free.holds(0, low, high, t));
                // a band wholly below the floor becomes the floor itself, which holds a truth there
                assert!(floored.holds(0, f64::from(z0) - 2.0, f64::from(z0) - 1.0, z0));
            }
        }
    }

    #[test]
    fn a_floor_refuses_unknown_signals_non_numbers_and_values_below_it_by_entity_and_time() {
        let prepare = |floor: &[(&str, f64)]| {
            let floor = floor.iter().map(|&(n, f)| (n.to_string(), f)).collect();
            PreparedSeries::from_entities_screened(
                vec![("station".into(), skewed())],
                SplitFractions::default(),
                0.0,
                &[],
                &floor,
            )
        };
        let err = prepare(&[("PM25", 0.0)]).unwrap_err().to_string();
        assert!(
            err.contains("data.floor") && err.contains("`PM25` is not a signal") && err.contains("pm, ramp"),
            "{err}"
        );
        let err = prepare(&[("pm", f64::NAN)]).unwrap_err().to_string();
        assert!(err.contains("data.floor.`pm`") && err.contains("finite"), "{err}");
        // the ramp starts at -50 (1970-01-02 00:00), below a floor of -10
        let err = prepare(&[("ramp", -10.0)]).unwrap_err().to_string();
        assert!(
            err.contains("signal `ramp` of `station`")
                && err.contains("-50 at 1970-01-02 00:00:00")
                && err.contains("floor -10"),
            "{err}"
        );
        assert!(prepare(&[("ramp", -50.0), ("pm", 0.0)]).is_ok(), "a floor the data reaches");
    }

    #[test]
    fn robust_spread_is_sigma_for_normal_data_and_ignores_a_wild_minority() {
        let mut rng = crate::Rng::new(3);
        let mut sample: Vec<f64> = (0..20_000).map(|_| 5.0 + 2.0 * rng.normal()).collect();
        let (median, spread) = robust_spread(&mut sample.clone()).unwrap();
        assert!((median - 5.0).abs() < 0.05 && (spread - 2.0).abs() < 0.05, "{median} {spread}");
        sample.extend(std::iter::repeat_n(1e6, 200));
        let (median, spread) = robust_spread(&mut sample).unwrap();
        assert!((median - 5.0).abs() < 0.1 && (spread - 2.0).abs() < 0.1, "1 % wild values: {median} {spread}");
    }

    /// Synthetic: a run that read `flow` and the one-hot `state=off`, `state=on` meets a
    /// file whose columns come in another order and whose `state` takes only `on` and a
    /// category it never saw (`service`).
    #[test]
    fn unseen_entities_take_the_runs_signals_by_name_with_categories_it_never_takes_at_zero() {
        let signals: Vec<String> = ["flow", "state=off", "state=on"].map(String::from).to_vec();
        let fitted = FittedScaler {
            signals: signals.clone(),
            bin_seconds: 60,
            scaler: Standardizer {
                mean: vec![10.0, 0.5, 0.5],
                std: vec![2.0, 0.5, 0.5],
                log1p: Vec::new(),
                score_std: Vec::new(),
                floor: Vec::new(),
                screen: vec![Some((10.0, 8.0)), None, None],
            },
            calendar: Calendar::default(),
        };
        // steps: on; service; state missing; on with a flow of 30 (outside the screen)
        let nan = f32::NAN;
        let (values, observed) = (
            vec![1.0, 0.0, 12.0, 0.0, 1.0, 8.0, nan, nan, 9.0, 1.0, 0.0, 30.0],
            vec![true, true, true, true, true, true, false, false, true, true, true, true],
        );
        let grid = GridSeries {
            signals: ["state=on", "state=service", "flow"].map(String::from).to_vec(),
            start: 0,
            clock: Clock::Calendar,
            bin_seconds: 60,
            delta: bins_since_observed(&observed, 3),
            values,
            observed,
        };
        let categorical = ["state".to_string()];
        let data = PreparedSeries::unseen(vec![("pump".into(), grid.clone())], &fitted, &categorical).unwrap();
        assert!(data.is_unseen());
        assert_eq!((data.test.as_slice(), data.grid.signals.clone()), (std::slice::from_ref(&(0..4)), signals));
        let observed_rows: Vec<&[bool]> = data.grid.observed.chunks(3).collect();
        assert_eq!(observed_rows, [[true, true, true], [true, true, true], [true, false, false], [false, true, true]]);
        let originals: Vec<Vec<Option<f32>>> = (0..4).map(|n| data.original_step(n)).collect();
        assert_eq!(
            originals,
            [
                [Some(12.0), Some(0.0), Some(1.0)],
                [Some(8.0), Some(0.0), Some(0.0)],
                [Some(9.0), None, None],
                [None, Some(0.0), Some(1.0)],
            ]
        );
        assert_eq!(data.screened, [1, 0, 0]);
        assert_eq!(&data.grid.delta[9..12], [1.0, 0.0, 0.0], "δ follows the new mask");
        // a signal the run reads that is no category of a categorical column is named
        let err = PreparedSeries::unseen(vec![("pump".into(), grid.clone())], &fitted, &[]).unwrap_err().to_string();
        assert!(err.contains("`state=off`") && err.contains("pump"), "{err}");
        let minutes = GridSeries { bin_seconds: 600, ..grid };
        let err =
            PreparedSeries::unseen(vec![("pump".into(), minutes)], &fitted, &categorical).unwrap_err().to_string();
        assert!(err.contains("600 s; the run's is 60 s"), "{err}");
    }
}
