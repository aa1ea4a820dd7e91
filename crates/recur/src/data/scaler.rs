//! Per-signal standardisation fitted on the training part ([`Standardizer`]: z-scores,
//! ln(1 + x) where asked, floors, the outlier screen's limits) and what a run keeps of it
//! to serve from its folder alone ([`FittedScaler`], `scaler.json`).

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::grid::GridSeries;
use super::prepare::PreparedSeries;
use crate::error::{Error, Result};

/// Per-signal map to zero mean and unit variance, fitted on observed training entries:
/// z = (y − μ) / s with y = x, or y = ln(1 + x) for the signals in `log1p` (non-negative
/// signals whose changes scale with their level: concentrations, flows, counts), and
/// back x = y, or eʸ − 1. A band z ± 2σ maps back to [x(z − 2σ), x(z + 2σ)]: symmetric
/// without the logarithm, skewed and above −1 with it.
///
/// A signal with a floor f (`data.floor`: values that cannot fall below it, as
/// concentrations cannot below 0) has every model output lifted to it where it falls
/// below — forecasts, reconstructions, band edges, the inputs a closed loop feeds back:
/// x̂ ↦ max(x̂, f). For a truth t ≥ f the projection never moves x̂ away from t, never
/// drops t out of a band and never widens one, so no error and no interval score grows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// μ of y.
    pub mean: Vec<f32>,
    /// s of y.
    pub std: Vec<f32>,
    /// Per signal: y = ln(1 + x). Empty: none.
    #[serde(default)]
    pub log1p: Vec<bool>,
    /// Per signal: the standard deviation of x itself on the training part (`std` where y = x).
    /// Errors are scored in x / this, so that scores compare with and without `log1p`.
    /// Empty: `std`.
    #[serde(default)]
    pub score_std: Vec<f32>,
    /// Per signal: the floor f in original units, if it has one. Empty: none.
    #[serde(default)]
    pub floor: Vec<Option<f32>>,
    /// Per signal, the outlier screen fitted on the training part (`data.outlier_mads`), if
    /// the signal has one: (its training median m, the reach k·spread); a value x with
    /// |x − m| > reach was treated as missing in training, and is so in a stream. Empty: none.
    #[serde(default)]
    pub screen: Vec<Option<(f64, f64)>>,
}

/// `v` lifted to `floor`: max(v, floor), but NaN stays NaN (a diverged model is not hidden).
#[inline]
fn lifted<F: PartialOrd>(v: F, floor: F) -> F {
    if v < floor {
        floor
    } else {
        v
    }
}

/// Mean and standard deviation of a sample (f64, two passes).
pub(super) fn moments(values: impl Iterator<Item = f64> + Clone) -> (f64, f64, usize) {
    let n = values.clone().count();
    let m = values.clone().sum::<f64>() / n.max(1) as f64;
    let var = values.map(|v| (v - m) * (v - m)).sum::<f64>() / n.max(1) as f64;
    (m, var.sqrt(), n)
}

impl Standardizer {
    /// `log1p`: per signal, whether y = ln(1 + x) (empty: none).
    ///
    /// # Errors
    /// A signal with no observation, or a constant one, in the fitted rows (named); a
    /// value at or below −1 of a signal with `log1p`.
    pub fn fit(grid: &GridSeries, rows: &[Range<usize>], log1p: &[bool]) -> Result<Self> {
        let c = grid.channels();
        let log1p = if log1p.contains(&true) { log1p.to_vec() } else { Vec::new() };
        let (mut mean, mut std, mut score_std) = (Vec::with_capacity(c), Vec::with_capacity(c), Vec::with_capacity(c));
        for j in 0..c {
            let observed = rows
                .iter()
                .flat_map(|r| r.clone())
                .filter(|&n| grid.observed[n * c + j])
                .map(|n| grid.values[n * c + j]);
            let (m, s, count) = moments(observed.clone().map(f64::from));
            if count == 0 {
                return Err(Error::invalid(
                    format!("signal `{}`", grid.signals[j]),
                    "it is never observed in the training part",
                ));
            }
            if s < 1e-12 * m.abs().max(1.0) {
                return Err(Error::invalid(
                    format!("signal `{}`", grid.signals[j]),
                    format!("it is constant ({m}) in the training part; drop it"),
                ));
            }
            score_std.push(s as f32);
            let (m, s) = match log1p.get(j) {
                Some(true) => {
                    if let Some(v) = observed.clone().find(|&v| v <= -1.0) {
                        return Err(Error::invalid(
                            format!("signal `{}`", grid.signals[j]),
                            format!("{v} in the training part: log1p needs values above -1"),
                        ));
                    }
                    let (m, s, _) = moments(observed.map(|v| f64::from(v).ln_1p()));
                    (m, s)
                }
                _ => (m, s),
            };
            mean.push(m as f32);
            std.push(s as f32);
        }
        if log1p.is_empty() {
            score_std.clear();
        }
        Ok(Standardizer { mean, std, log1p, score_std, floor: Vec::new(), screen: Vec::new() })
    }

    /// The standardisation of the signals `signals` (indices) alone, in that order: what
    /// scores and maps back a forecast of those signals only.
    pub fn select(&self, signals: &[usize]) -> Standardizer {
        fn pick<T: Clone>(per_signal: &[T], signals: &[usize]) -> Vec<T> {
            match per_signal.is_empty() {
                true => Vec::new(),
                false => signals.iter().map(|&j| per_signal[j].clone()).collect(),
            }
        }
        Standardizer {
            mean: pick(&self.mean, signals),
            std: pick(&self.std, signals),
            log1p: pick(&self.log1p, signals),
            score_std: pick(&self.score_std, signals),
            floor: pick(&self.floor, signals),
            screen: pick(&self.screen, signals),
        }
    }

    /// Whether signal `signal` is standardised after ln(1 + x).
    #[inline]
    pub fn is_log1p(&self, signal: usize) -> bool {
        self.log1p.get(signal).copied().unwrap_or(false)
    }

    /// Whether the outlier screen fitted in training takes `v` out as missing for `signal`.
    #[inline]
    pub fn screens_out(&self, signal: usize, v: f32) -> bool {
        self.screen.get(signal).copied().flatten().is_some_and(|(median, reach)| (f64::from(v) - median).abs() > reach)
    }

    /// Whether `v` can be standardised for `signal` (above −1 with `log1p`).
    pub fn accepts(&self, signal: usize, v: f32) -> bool {
        v.is_finite() && (!self.is_log1p(signal) || v > -1.0)
    }

    pub fn apply(&self, signal: usize, v: f32) -> f32 {
        let y = if self.is_log1p(signal) { v.ln_1p() } else { v };
        (y - self.mean[signal]) / self.std[signal]
    }

    /// A row of every signal's value, standardised ([`Standardizer::apply`] of each).
    pub fn apply_row(&self, row: &[f32]) -> Vec<f32> {
        row.iter().enumerate().map(|(j, &v)| self.apply(j, v)).collect()
    }

    /// x of a standardised value, lifted to the signal's floor.
    pub fn invert(&self, signal: usize, z: f32) -> f32 {
        let y = z * self.std[signal] + self.mean[signal];
        let x = if self.is_log1p(signal) { y.exp_m1() } else { y };
        match self.floor_of(signal) {
            Some(f) => lifted(x, f),
            None => x,
        }
    }

    /// The floor of `signal` in original units, if it has one.
    #[inline]
    pub fn floor_of(&self, signal: usize) -> Option<f32> {
        self.floor.get(signal).copied().flatten()
    }

    /// Whether any signal has a floor.
    pub fn has_floor(&self) -> bool {
        self.floor.iter().any(Option::is_some)
    }

    /// A standardised model output lifted to the signal's floor (z itself without one).
    #[inline]
    pub fn lift(&self, signal: usize, z: f32) -> f32 {
        match self.floor_of(signal) {
            Some(f) => lifted(z, self.apply(signal, f)),
            None => z,
        }
    }

    /// The band z ± 2σ (standardised) in original units: (low, high).
    pub fn band(&self, signal: usize, z: f32, sigma: f32) -> (f32, f32) {
        (self.invert(signal, z - 2.0 * sigma), self.invert(signal, z + 2.0 * sigma))
    }

    /// The error of a standardised prediction `p` of `t`, scored: (in units of
    /// [`Standardizer::score_std`], in original units). Without `log1p` these are p − t
    /// and (p − t)·s; with it, the difference of the values mapped back; p lifted to the
    /// floor first.
    #[inline]
    pub fn error(&self, signal: usize, p: f32, t: f32) -> (f64, f64) {
        let p = self.lift(signal, p);
        let e = f64::from(p - t);
        if !self.is_log1p(signal) {
            return (e, e * f64::from(self.std[signal]));
        }
        let (m, s) = (f64::from(self.mean[signal]), f64::from(self.std[signal]));
        let original = (f64::from(p) * s + m).exp_m1() - (f64::from(t) * s + m).exp_m1();
        (original / self.score_unit(signal), original)
    }

    /// [`Standardizer::score_std`] of `signal` (its `std` where none is given).
    fn score_unit(&self, signal: usize) -> f64 {
        f64::from(self.score_std.get(signal).copied().unwrap_or(self.std[signal]))
    }

    /// The band [low, high] (standardised; its edges lifted to the floor) against the truth
    /// `t`, in the units of [`Standardizer::error`]: (its width, how far `t` lies outside
    /// it; 0 inside).
    pub fn band_miss(&self, signal: usize, low: f64, high: f64, t: f32) -> (f64, f64) {
        let (low, high) = self.lift_band(signal, low, high);
        let t = f64::from(t);
        if !self.is_log1p(signal) {
            return (high - low, (low - t).max(0.0) + (t - high).max(0.0));
        }
        let (m, s, unit) = (f64::from(self.mean[signal]), f64::from(self.std[signal]), self.score_unit(signal));
        let x = |z: f64| (z * s + m).exp_m1() / unit;
        let (low, high, t) = (x(low), x(high), x(t));
        (high - low, (low - t).max(0.0) + (t - high).max(0.0))
    }

    /// A standardised band's edges lifted to the signal's floor (as they are without one).
    pub fn lift_band(&self, signal: usize, low: f64, high: f64) -> (f64, f64) {
        match self.floor_of(signal) {
            Some(f) => {
                let z = f64::from(self.apply(signal, f));
                (lifted(low, z), lifted(high, z))
            }
            None => (low, high),
        }
    }

    /// Whether the standardised band [low, high], its edges lifted to the floor, holds `t`.
    pub fn holds(&self, signal: usize, low: f64, high: f64, t: f32) -> bool {
        let (low, high) = self.lift_band(signal, low, high);
        let t = f64::from(t);
        low <= t && t <= high
    }
}

/// The file in a run folder that holds its [`FittedScaler`].
pub const SCALER_FILE: &str = "scaler.json";

/// What a run's model reads its inputs through, fitted on the training part: the signals
/// in the model's order, the grid step, and the [`Standardizer`]. Kept in the run folder
/// ([`SCALER_FILE`]) so that a causal model streams where its training data is not (an
/// edge box: the run folder alone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedScaler {
    pub signals: Vec<String>,
    pub bin_seconds: i64,
    pub scaler: Standardizer,
    /// The calendar inputs the model reads after the signals (none in folders written
    /// before they existed).
    #[serde(default, skip_serializing_if = "Calendar::is_empty")]
    pub calendar: Calendar,
}

impl FittedScaler {
    /// The signals, grid step and standardisation of prepared data.
    pub fn of(data: &PreparedSeries) -> Self {
        FittedScaler {
            signals: data.grid.signals.clone(),
            bin_seconds: data.grid.bin_seconds,
            scaler: data.scaler.clone(),
            calendar: data.calendar.clone(),
        }
    }

    /// The one kept in run folder `dir`, if it has one (folders written before it was kept
    /// have not: their data must be read again).
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or whose per-signal lists do not have one entry
    /// per signal, or whose means or spreads are not finite (spreads positive): named.
    pub fn load_from_run(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(SCALER_FILE);
        let Some(fitted) = crate::io::read_json_if_present::<FittedScaler>(&path)? else { return Ok(None) };
        let bad = |why: String| Error::Format { path: path.clone(), why };
        let (c, s) = (fitted.signals.len(), &fitted.scaler);
        let lengths = [("mean", s.mean.len()), ("std", s.std.len())].into_iter().chain(
            [
                ("log1p", s.log1p.len()),
                ("score_std", s.score_std.len()),
                ("floor", s.floor.len()),
                ("screen", s.screen.len()),
            ]
            .into_iter()
            .filter(|&(_, n)| n > 0),
        );
        for (name, n) in lengths {
            if n != c {
                return Err(bad(format!("scaler.{name} has {n} entries for {c} signals")));
            }
        }
        if let Some(j) = (0..c).find(|&j| !(s.mean[j].is_finite() && s.std[j].is_finite() && s.std[j] > 0.0)) {
            return Err(bad(format!(
                "signal `{}`: mean {} and std {}; a finite mean and a positive std are needed",
                fitted.signals[j], s.mean[j], s.std[j]
            )));
        }
        if fitted.bin_seconds <= 0 {
            return Err(bad(format!("bin_seconds {}; it must be positive", fitted.bin_seconds)));
        }
        Ok(Some(fitted))
    }

    /// How `other` differs from it, the first difference in words, as "this → other" (`None`:
    /// the same, the standardisation's numbers within 1e-6 relative, what a JSON round trip
    /// keeps).
    pub fn difference(&self, other: &FittedScaler) -> Option<String> {
        if self.signals != other.signals {
            return Some(format!("signals {} → {}", self.signals.join(", "), other.signals.join(", ")));
        }
        if self.bin_seconds != other.bin_seconds {
            return Some(format!("grid step {} s → {} s", self.bin_seconds, other.bin_seconds));
        }
        if self.calendar != other.calendar {
            let names = |c: &Calendar| {
                let local = c.time_zone.as_ref().map_or(format!("UTC{:+} s", c.utc_offset_seconds), |z| z.name.clone());
                format!("[{}] at {local}", c.input_names().join(", "))
            };
            return Some(format!("calendar inputs {} → {}", names(&self.calendar), names(&other.calendar)));
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) || a == b;
        let (a, b) = (&self.scaler, &other.scaler);
        for (j, signal) in self.signals.iter().enumerate() {
            let (m, s) = (f64::from(a.mean[j]), f64::from(a.std[j]));
            let (om, os) = (f64::from(b.mean[j]), f64::from(b.std[j]));
            if !(close(m, om) && close(s, os)) {
                return Some(format!(
                    "signal `{signal}`: mean {} → {}, standard deviation {} → {} on the training part",
                    a.mean[j], b.mean[j], a.std[j], b.std[j]
                ));
            }
        }
        let screens = |s: &Standardizer| s.screen.iter().flatten().flat_map(|&(m, r)| [m, r]).collect::<Vec<_>>();
        let same_rest = a.log1p == b.log1p
            && a.floor == b.floor
            && a.score_std.len() == b.score_std.len()
            && a.score_std.iter().zip(&b.score_std).all(|(&x, &y)| close(f64::from(x), f64::from(y)))
            && a.screen.iter().map(Option::is_some).eq(b.screen.iter().map(Option::is_some))
            && screens(a).iter().zip(screens(b)).all(|(&x, y)| close(x, y));
        (!same_rest).then(|| "another log1p, floor or outlier screen of a signal".to_string())
    }

    /// Writes it into run folder `dir`, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_to_run(&self, dir: &Path) -> Result<()> {
        crate::io::write_json_atomically(&dir.join(SCALER_FILE), self, "scaler")
    }
}
