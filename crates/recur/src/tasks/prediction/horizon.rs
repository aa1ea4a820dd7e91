//! Forecasts hours ahead, scored: each step ahead of a direct or closed-loop forecast
//! against persistence and seasonal persistence ([`HorizonScores`]), errors by hour,
//! weekday or month ([`TimeGroup`]), bands calibrated per step ahead, and the forecast
//! after each entity's end.

use std::ops::Range;

use super::{Forecast, LastObserved, PredictionTask};
use crate::data::{Clock, PreparedSeries};
use crate::error::{Error, Result};
use crate::model::SequenceModel;
use crate::rng::Rng;
use crate::tasks::calibration::{band_score, BandCalibration};
use crate::tasks::metrics::{ErrorAccumulator, Metrics, BAND_ALPHA};

/// A horizon of at least one step.
pub(super) fn check_horizon(horizon: usize) -> Result<()> {
    if horizon == 0 {
        return Err(Error::invalid("horizon", "forecasts reach at least one step ahead"));
    }
    Ok(())
}

/// How [`PredictionStream::step_ahead`] reaches `horizon` steps ahead with a model that
/// forecasts `direct` steps from each state, in words.
///
/// [`PredictionStream::step_ahead`]: super::PredictionStream::step_ahead
pub fn horizon_method(direct: usize, horizon: usize) -> String {
    match direct {
        s if horizon <= s => format!("direct: the model's own {s} forecasts from each streamed state"),
        1 => "closed loop: streamed, then fed its own forecasts".to_string(),
        s => format!("direct for {s} steps from each streamed state, then closed loop (fed its own forecasts)"),
    }
}

/// A grouping of forecasts by the local time of the step they forecast (UTC plus the
/// data's calendar offset, [`crate::data::Calendar`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeGroup {
    /// 24 groups, 00 to 23.
    HourOfDay,
    /// 7 groups, Monday to Sunday.
    Weekday,
    /// 12 groups, January to December.
    Month,
}

impl TimeGroup {
    pub const ALL: [TimeGroup; 3] = [TimeGroup::HourOfDay, TimeGroup::Weekday, TimeGroup::Month];

    /// Its name: `hour`, `weekday`, `month` (`recur eval --by`, its tables and files).
    pub fn name(self) -> &'static str {
        match self {
            TimeGroup::HourOfDay => "hour",
            TimeGroup::Weekday => "weekday",
            TimeGroup::Month => "month",
        }
    }

    /// The grouping of that [`TimeGroup::name`].
    pub fn named(name: &str) -> Option<TimeGroup> {
        TimeGroup::ALL.into_iter().find(|g| g.name() == name)
    }

    /// The groups' names, in order.
    pub fn labels(self) -> Vec<String> {
        match self {
            TimeGroup::HourOfDay => (0..24).map(|h| format!("{h:02}")).collect(),
            TimeGroup::Weekday => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(String::from).to_vec(),
            TimeGroup::Month => ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// The group of local time `seconds` (since 1970-01-01).
    fn of(self, seconds: i64) -> usize {
        match self {
            TimeGroup::HourOfDay => crate::data::calendar::hour_of_day(seconds),
            TimeGroup::Weekday => crate::data::calendar::weekday(seconds),
            TimeGroup::Month => crate::data::calendar::month(seconds),
        }
    }

    /// The group of grid step k of `series`, by its local time (the data's calendar's:
    /// UTC plus its offset, or in its time zone).
    ///
    /// # Errors
    /// Data whose times are elapsed since each entity's start (no time of day).
    pub fn of_steps(self, series: &PreparedSeries) -> Result<impl Fn(usize) -> usize + '_> {
        if series.grid.clock != Clock::Calendar {
            return Err(Error::invalid(
                "errors by time",
                format!("the data's times are {}: they have no time of day", series.grid.clock.description()),
            ));
        }
        Ok(move |k| self.of(series.calendar.local(series.step_time(k))))
    }
}

/// Errors by the local time of the step scored (a prediction's forecast one step ahead,
/// [`PredictionTask::evaluate_by_time`]; a reconstruction's hidden value,
/// [`crate::tasks::ReconstructionTask::evaluate_by_time`]): per group (index as
/// [`TimeGroup::labels`]), the model's and its task's first baseline's (`baseline`:
/// persistence, or linear interpolation).
pub struct ErrorsByTime {
    pub group: TimeGroup,
    pub model: Vec<Metrics>,
    pub baseline_name: String,
    pub baseline: Vec<Metrics>,
}

/// Forecasts scored 1..=horizon steps ahead (see
/// [`PredictionTask::evaluate_horizon`]); index h − 1 holds h steps ahead.
pub struct HorizonScores {
    /// The model's forecasts from the origin (direct, then fed its own forecasts).
    pub model: Vec<Metrics>,
    /// Persistence: each signal's last observation at the origin (within the window's
    /// reach; the training mean if none), the same forecast for every step ahead.
    pub persistence: Vec<Metrics>,
    /// Seasonal persistence, when the grid divides a day into whole steps (`period` of
    /// them): step k forecast by step k − m·period, the latest such step at or before the
    /// origin, where observed (persistence's forecast where not).
    pub seasonal: Option<(usize, Vec<Metrics>)>,
}

impl PredictionTask<'_> {
    /// Metrics of a causal `model` forecasting 1..=`horizon` steps ahead. The model runs
    /// as deployed, over each entity from its first step with its state carried; from
    /// every origin n whose next step [`PredictionTask::evaluate`] scores in `part`, its
    /// forecasts of the steps after n ([`PredictionStream::step_ahead`]: direct for the S
    /// steps it forecasts, then in closed loop, fed its own forecasts) are scored against
    /// the truth there (targets inside the part only). One step ahead this is
    /// [`PredictionTask::evaluate_streamed`] and persistence is the windows' last
    /// observation carried forward.
    ///
    /// # Errors
    /// A zero horizon, a model that cannot stream, a part shorter than a window.
    ///
    /// [`PredictionStream::step_ahead`]: super::PredictionStream::step_ahead
    pub fn evaluate_horizon(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
    ) -> Result<HorizonScores> {
        self.evaluate_horizon_sampled(model, part, horizon, 0, 0)
    }

    /// [`PredictionTask::evaluate_horizon`], the steps past the direct ones with the band of
    /// `paths` sample paths ([`PredictionStream::step_forecast_sampled`], drawn from
    /// `seed`) where `paths` > 0: the same forecasts, and the band's coverage and interval
    /// score at every step ahead.
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate_horizon`]; paths for a model without σ.
    ///
    /// [`PredictionStream::step_forecast_sampled`]: super::PredictionStream::step_forecast_sampled
    pub fn evaluate_horizon_sampled(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<HorizonScores> {
        let (c, p, scaler) = (self.series.grid.channels(), self.targets.len(), &self.targets.scaler);
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut ours = vec![ErrorAccumulator::new(p); horizon];
        let (mut persistence, mut seasonal) = (ours.clone(), ours.clone());
        let day = 86_400 / self.series.grid.bin_seconds.max(1);
        let period = (86_400 % self.series.grid.bin_seconds.max(1) == 0 && day >= 2).then_some(day as usize);
        let standardised = |row: &[f32]| scaler.apply_row(row);
        let sampling = (horizon, paths, seed);
        self.forecasts_from_origins(model, part, sampling, self.calibration.as_ref(), |n, entity, ahead, carried| {
            for (h, forecast) in (1..=ahead.values.len() / p).zip(ahead.values.chunks_exact(p)) {
                let k = n + h;
                let (truth, mask) = self.truth_at(k);
                let ours_z = standardised(forecast);
                let row = (h - 1) * p..h * p;
                // a floor lifts the forecast in `values`, so its band is read from its edges
                let sigma = ahead.sigma_standardised.get(row.clone()).filter(|_| !scaler.has_floor());
                match (sigma, ahead.low.get(row.clone())) {
                    (Some(s), _) => ours[h - 1].add_with_sigma(&ours_z, &truth, &mask, s, scaler),
                    (None, Some(low)) => {
                        let (low, high) = (standardised(low), standardised(&ahead.high[row]));
                        ours[h - 1].add_with_band(&ours_z, &truth, &mask, &low, &high, scaler)
                    }
                    (None, None) => ours[h - 1].add(&ours_z, &truth, &mask, scaler),
                }
                persistence[h - 1].add(carried, &truth, &mask, scaler);
                if let Some(p) = period {
                    // k − m·p ≤ n for the smallest m ≥ 1: ⌈h / p⌉ periods back
                    let back = k.checked_sub(h.div_ceil(p) * p).filter(|&b| b >= entity.start);
                    let same_time: Vec<f32> = (self.targets.index.iter().enumerate())
                        .map(|(i, &j)| match back.filter(|&b| observed[b * c + j]) {
                            Some(b) => values[b * c + j],
                            None => carried[i],
                        })
                        .collect();
                    seasonal[h - 1].add(&same_time, &truth, &mask, scaler);
                }
            }
            Ok(())
        })?;
        let finish = |acc: &[ErrorAccumulator]| acc.iter().map(ErrorAccumulator::finish).collect();
        Ok(HorizonScores {
            model: finish(&ours),
            persistence: finish(&persistence),
            seasonal: period.map(|p| (p, finish(&seasonal))),
        })
    }

    /// A causal `model`'s forecasts one step ahead over `part`, as deployed (streamed, as
    /// [`PredictionTask::evaluate_horizon`] runs it; its bands scaled by the task's
    /// calibration), and persistence's, scored by the local time of the step forecast: when
    /// in the day or the week a model errs (a shift change, the morning rush). The groups
    /// pool to [`PredictionTask::evaluate_horizon`]'s one step ahead.
    ///
    /// # Errors
    /// Data whose times are elapsed since each entity's start (no time of day); as
    /// [`PredictionTask::evaluate_horizon`].
    pub fn evaluate_by_time(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        group: TimeGroup,
    ) -> Result<ErrorsByTime> {
        let group_of = group.of_steps(self.series)?;
        let (p, scaler) = (self.targets.len(), &self.targets.scaler);
        let groups = group.labels().len();
        let (mut ours, mut persistence) =
            (vec![ErrorAccumulator::new(p); groups], vec![ErrorAccumulator::new(p); groups]);
        self.forecasts_from_origins(model, part, (1, 0, 0), self.calibration.as_ref(), |n, _, ahead, carried| {
            let k = n + 1;
            let g = group_of(k);
            let (truth, mask) = self.truth_at(k);
            ours[g].add(&scaler.apply_row(&ahead.values[..p]), &truth, &mask, scaler);
            persistence[g].add(carried, &truth, &mask, scaler);
            Ok(())
        })?;
        let finish = |acc: &[ErrorAccumulator]| acc.iter().map(ErrorAccumulator::finish).collect();
        Ok(ErrorsByTime {
            group,
            model: finish(&ours),
            baseline_name: "persistence".into(),
            baseline: finish(&persistence),
        })
    }

    /// Grid step `k`'s standardised values of the targets and their mask (1 where
    /// observed): what a forecast of the step is scored against.
    pub(in crate::tasks) fn truth_at(&self, k: usize) -> (Vec<f32>, Vec<f32>) {
        let (c, grid) = (self.series.grid.channels(), &self.series.grid);
        let at = self.targets.index.iter().map(|&j| k * c + j);
        (at.clone().map(|i| grid.values[i]).collect(), at.map(|i| grid.observed[i] as u8 as f32).collect())
    }

    /// Split-conformal factors for the bands of a causal `model` with a band, 1..=`horizon`
    /// steps ahead (past the direct steps from `paths` sample paths, drawn from `seed`),
    /// fitted on `part` — one the model did not train on, the validation part — as
    /// [`PredictionTask::evaluate_horizon_sampled`] forecasts it (see
    /// [`crate::tasks::calibration`]); this task's own calibration is not applied to them.
    ///
    /// # Errors
    /// As [`PredictionTask::evaluate_horizon_sampled`]; a model without a band; a horizon
    /// past the direct steps without paths; a step and signal never scored.
    pub fn calibrate_bands(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<BandCalibration> {
        if !model.config().head.has_positive_branch() {
            return Err(Error::invalid("band calibration", "the model has no band (task.uncertainty)"));
        }
        let direct = self.steps_ahead_of(model)?;
        if horizon > direct && paths == 0 {
            return Err(Error::invalid(
                "band calibration",
                format!("{horizon} steps ahead: past the model's {direct} direct steps a band needs sample paths"),
            ));
        }
        let (c, p, scaler) = (self.series.grid.channels(), self.targets.len(), &self.targets.scaler);
        let (values, observed) = (&self.series.grid.values, &self.series.grid.observed);
        let mut scores = vec![Vec::new(); horizon * p];
        self.forecasts_from_origins(model, part, (horizon, paths, seed), None, |n, _, ahead, _| {
            for (i, ((&x, &low), &high)) in ahead.values.iter().zip(&ahead.low).zip(&ahead.high).enumerate() {
                let (k, t) = (n + 1 + i / p, i % p);
                let j = self.targets.index[t];
                if observed[k * c + j] {
                    let z = |v: f32| scaler.apply(t, v);
                    scores[i].push(band_score(z(x), z(low), z(high), values[k * c + j]));
                }
            }
            Ok(())
        })?;
        BandCalibration::fit(self.targets.names.clone(), scores, BAND_ALPHA, paths)
    }

    /// Runs `model` as deployed over each range of `part` (its entity from the first step,
    /// the state carried; its bands scaled by `calibration`) and hands every origin n whose
    /// next step it scores — with the range of its entity, its forecast of the next
    /// min(`horizon` ≥ 1, steps left in the range) steps
    /// ([`PredictionStream::step_forecast_with_paths`] with `paths`, drawn from `seed`) and
    /// each target's last observation within the window, standardised — to `visit`.
    ///
    /// [`PredictionStream::step_forecast_with_paths`]: super::PredictionStream::step_forecast_with_paths
    fn forecasts_from_origins(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        (horizon, paths, seed): (usize, usize, u64),
        calibration: Option<&BandCalibration>,
        mut visit: impl FnMut(usize, &Range<usize>, &Forecast, &[f32]) -> Result<()>,
    ) -> Result<()> {
        check_horizon(horizon)?;
        let mut rng = Rng::new(seed);
        self.series.window_starts(part, self.window, 1, "evaluated")?;
        let (c, reach) = (self.series.grid.channels(), self.window - 1);
        for r in part.iter().filter(|r| r.len() >= self.window) {
            let mut live = self.stream_with(model, calibration)?;
            let mut last = LastObserved::new(c, reach);
            let entity = self.series.entity_of(r.start);
            live.at(self.series.step_time(entity.start));
            for n in entity.start..r.end - 1 {
                let seen = self.series.original_step(n);
                last.see_step(self.series, n);
                if n + 1 < r.start + reach {
                    live.step(&seen)?;
                    continue;
                }
                let steps_ahead = horizon.min(r.end - 1 - n);
                let ahead = live.step_forecast_with_paths(&seen, steps_ahead, paths, &mut rng)?;
                let carried: Vec<f32> = self.targets.index.iter().map(|&j| last.within(j, n).unwrap_or(0.0)).collect();
                visit(n, &entity, &ahead, &carried)?;
            }
        }
        Ok(())
    }

    /// Forecasts of the `horizon` steps after the end of each entity, in original units:
    /// (entity, its forecast). A causal `model` runs over the whole entity with its state
    /// carried, then forecasts as [`PredictionStream::step_forecast`] does. One step ahead,
    /// for a task trained on streams, this is [`PredictionTask::forecast`].
    ///
    /// # Errors
    /// A zero horizon, a model that cannot stream.
    ///
    /// [`PredictionStream::step_forecast`]: super::PredictionStream::step_forecast
    pub fn forecast_ahead(&self, model: &SequenceModel<f32>, horizon: usize) -> Result<Vec<(String, Forecast)>> {
        self.forecast_ahead_sampled(model, horizon, 0, 0)
    }

    /// [`PredictionTask::forecast_ahead`], with the band of `paths` sample paths past the
    /// direct steps where `paths` > 0 ([`PredictionStream::step_forecast_sampled`], drawn
    /// from `seed`).
    ///
    /// # Errors
    /// As [`PredictionTask::forecast_ahead`]; paths for a model without σ.
    ///
    /// [`PredictionStream::step_forecast_sampled`]: super::PredictionStream::step_forecast_sampled
    pub fn forecast_ahead_sampled(
        &self,
        model: &SequenceModel<f32>,
        horizon: usize,
        paths: usize,
        seed: u64,
    ) -> Result<Vec<(String, Forecast)>> {
        check_horizon(horizon)?;
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for (name, steps) in &self.series.entities {
            let mut live = self.stream(model)?;
            let Some(last) = steps.clone().last() else { continue };
            live.at(self.series.step_time(steps.start));
            for n in steps.start..last {
                live.step(&self.series.original_step(n))?;
            }
            let step = self.series.original_step(last);
            out.push((name.clone(), live.step_forecast_with_paths(&step, horizon, paths, &mut rng)?));
        }
        Ok(out)
    }
}
