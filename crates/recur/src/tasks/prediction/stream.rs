//! A prediction model deployed on a live series ([`PredictionStream`]): one grid step in,
//! the next steps' forecasts out, state carried; closed loop past the direct steps, and
//! bands there from sample paths.

use super::band::{quantiles, Spread};
use super::{LastObserved, PredictionConfig, PredictionTask, Targets};
use crate::data::{FittedScaler, Standardizer};
use crate::error::{Error, Result};
use crate::model::{HeadKind, ModelStream, SequenceModel};
use crate::rng::Rng;
use crate::tasks::calibration::BandCalibration;
use crate::tasks::{LiveState, StepClock};

impl PredictionTask<'_> {
    /// A stream through `model` for one live series: each [`PredictionStream::step`]
    /// takes the newest grid step and forecasts the next, as the windows of training do
    /// (input `[z ⊙ m, m]`; with `residual`, the change from each signal's last
    /// observation in the last `window − 1` steps), but with the state carried from the
    /// first step instead of restarted for every window.
    ///
    /// # Errors
    /// A model that cannot stream (coupled bidirectional).
    pub fn stream<'m>(&self, model: &'m SequenceModel<f32>) -> Result<PredictionStream<'m>> {
        self.stream_with(model, self.calibration.as_ref())
    }

    /// [`PredictionTask::stream`] with its bands scaled by `calibration`.
    pub(super) fn stream_with<'m>(
        &self,
        model: &'m SequenceModel<f32>,
        calibration: Option<&BandCalibration>,
    ) -> Result<PredictionStream<'m>> {
        let fitted = FittedScaler::of(self.series);
        let task = PredictionConfig {
            window: self.window,
            residual: self.residual,
            targets: self.targets.names.clone(),
            ..PredictionConfig::default()
        };
        PredictionStream::new(model, &fitted, &task, calibration.cloned())
    }
}

/// Forecasts of the steps after one, in original units: `values: [H, P]` row by row (P:
/// the targets), and for the first of them that have one (`[h, P]`, h ≤ H; empty without a band) the band,
/// `low` and `high` in original units (±2σ, [`Standardizer::band`], or the 2.275 % and
/// 97.725 % quantiles; skewed for the signals read as ln(1 + x)), and, from a Gaussian
/// head, σ = 1/√λ̂ itself, standardised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forecast {
    pub values: Vec<f32>,
    pub low: Vec<f32>,
    pub high: Vec<f32>,
    pub sigma_standardised: Vec<f32>,
}

impl Forecast {
    /// From standardised forecasts `z: [H, P]` and the spread of their first rows (`scaler`:
    /// the targets').
    pub(super) fn from_standardised(z: &[f32], spread: &Spread, scaler: &Standardizer) -> Self {
        let c = scaler.mean.len();
        // the edges mapped back one by one: skewed for the signals read as ln(1 + x)
        let original = |v: &[f32]| v.iter().enumerate().map(|(i, &v)| scaler.invert(i % c, v)).collect();
        let (low, high) = spread.edges(z);
        let (values, low, high) = (original(z), original(&low), original(&high));
        let sigma_standardised = match spread {
            Spread::Sigma(sigma) => sigma.clone(),
            _ => Vec::new(),
        };
        Forecast { values, low, high, sigma_standardised }
    }

    /// Keeps the first `steps` rows of `c` values (and of the band).
    pub(super) fn truncate(&mut self, steps: usize, c: usize) {
        for v in [&mut self.values, &mut self.low, &mut self.high, &mut self.sigma_standardised] {
            v.truncate(steps * c);
        }
    }
}

/// One live series through a causal prediction model, one grid step at a time (see
/// [`PredictionTask::stream`]).
#[derive(Clone)]
pub struct PredictionStream<'m> {
    stream: ModelStream<'m, f32>,
    /// S: steps the model forecasts from each state.
    ahead: usize,
    /// Linear (no band), Gaussian (forecasts with σ) or quantile.
    head: HeadKind,
    scaler: Standardizer,
    signals: Vec<String>,
    /// The signals forecast, every one or some ([`Targets`]).
    targets: Targets,
    residual: bool,
    /// Each signal's last observation (standardised), counting `window − 1` steps on.
    last: LastObserved,
    steps: usize,
    x: Vec<f32>,
    calibration: Option<BandCalibration>,
    clock: StepClock,
}

/// S, the steps `model` forecasts from each state, for `c` targets.
///
/// # Errors
/// Outputs per step that are not a multiple of `c`.
pub(super) fn steps_ahead_for(model: &SequenceModel<f32>, c: usize) -> Result<usize> {
    let outputs = model.config().outputs;
    if outputs == 0 || c == 0 || !outputs.is_multiple_of(c) {
        return Err(Error::invalid(
            "model",
            format!(
                "{outputs} outputs per step are not a forecast of the {c} target signals one or more steps ahead \
                 (task.targets)"
            ),
        ));
    }
    Ok(outputs / c)
}

impl<'m> PredictionStream<'m> {
    /// A stream through a trained causal `model` without its data: the signals and
    /// standardisation it was trained with (`fitted`, kept in its run folder), its `task`'s
    /// `window` (≥ 2), `residual` and `targets` (the other settings are not read), and its
    /// bands' `calibration` if any — what [`PredictionTask::stream`] builds from the data,
    /// and what a program serving the model builds from the run folder alone
    /// ([`crate::run::RunConfig::prediction`] gives `task`).
    ///
    /// # Errors
    /// A window under 2 steps, targets that are not among the signals, a model whose
    /// outputs are not forecasts of the targets, a model that cannot stream (coupled
    /// bidirectional), a calibration for other signals.
    pub fn new(
        model: &'m SequenceModel<f32>,
        fitted: &FittedScaler,
        task: &PredictionConfig,
        calibration: Option<BandCalibration>,
    ) -> Result<Self> {
        let (c, window) = (fitted.signals.len(), task.window);
        if window < 2 {
            return Err(Error::invalid("window", "a prediction window needs at least 2 steps"));
        }
        let clock = StepClock::of(fitted);
        let inputs = 2 * c + clock.width();
        if model.config().encoder.input_size != inputs {
            return Err(Error::invalid(
                "model",
                format!(
                    "it reads {} inputs per step; {c} signals give 2 × {c} (values and mask){}",
                    model.config().encoder.input_size,
                    crate::tasks::calendar_clause(&fitted.calendar)
                ),
            ));
        }
        let targets = Targets::among(&fitted.signals, &fitted.scaler, &task.targets)?;
        BandCalibration::check_signals(calibration.as_ref(), &targets.names)?;
        Ok(PredictionStream {
            ahead: steps_ahead_for(model, targets.len())?,
            head: model.config().head,
            stream: model.stream(1)?,
            scaler: fitted.scaler.clone(),
            signals: fitted.signals.clone(),
            targets,
            residual: task.residual,
            last: LastObserved::new(c, window - 1),
            steps: 0,
            x: vec![0.0; inputs],
            calibration,
            clock,
        })
    }
}

impl PredictionStream<'_> {
    /// The signals, in the order [`PredictionStream::step`] takes them.
    pub fn signals(&self) -> &[String] {
        &self.signals
    }

    /// The signals forecast, in the order [`PredictionStream::step`] returns them: every
    /// signal, or the run's `task.targets` in the signals' order.
    pub fn targets(&self) -> &[String] {
        &self.targets.names
    }

    /// The standardisation of its signals.
    pub fn scaler(&self) -> &Standardizer {
        &self.scaler
    }

    /// What it carries from step to step: the model's states, the steps fed, each signal's
    /// last observation, the next step's time ([`PredictionStream::restore`] goes on from it).
    pub fn state(&self) -> LiveState {
        LiveState {
            model: self.stream.carried(),
            steps: self.steps,
            last: self.last.saved().to_vec(),
            next_time: self.clock.next,
        }
    }

    /// Goes on from `state` ([`PredictionStream::state`] of a stream of the same run).
    ///
    /// # Errors
    /// Another model's state (named), a non-finite value, last observations of another
    /// number of signals or at steps not yet fed. The stream is then as it was.
    pub fn restore(&mut self, state: &LiveState) -> Result<()> {
        let mut stream = self.stream.clone();
        stream.restore(&state.model)?;
        let mut last = self.last.clone();
        last.restore(&state.last, state.steps)?;
        (self.stream, self.last, self.steps, self.clock.next) = (stream, last, state.steps, state.next_time);
        Ok(())
    }

    /// Whether the model reads calendar inputs: then the stream needs the time of the
    /// step it is fed next ([`PredictionStream::at`]) before its first step.
    pub fn reads_calendar(&self) -> bool {
        !self.clock.calendar.is_empty()
    }

    /// The next step fed is at `time` (seconds since the Unix epoch, UTC: its bin's start);
    /// each step after it one grid step later, unless given again.
    pub fn at(&mut self, time: i64) {
        self.clock.at(time);
    }

    /// Feeds the values of one grid step (original units; `None` where missing) and
    /// returns the forecast of the targets at the next step, in original units.
    ///
    /// # Errors
    /// A step with the wrong number of signals or a non-finite value (named); a model that
    /// reads the calendar and no time given ([`PredictionStream::at`]).
    pub fn step(&mut self, values: &[Option<f32>]) -> Result<Vec<f32>> {
        let mut next = self.step_direct(values)?.values;
        next.truncate(self.targets.len());
        Ok(next)
    }

    /// S: the steps the model forecasts directly from each state.
    pub fn steps_ahead(&self) -> usize {
        self.ahead
    }

    /// Whether forecasts come with σ (a Gaussian head).
    pub fn has_sigma(&self) -> bool {
        self.head == HeadKind::Gaussian
    }

    /// The signals forecast, with their indices and standardisation.
    pub(in crate::tasks) fn target_set(&self) -> &Targets {
        &self.targets
    }

    /// Whether forecasts come with a band (a Gaussian or a quantile head).
    pub fn has_band(&self) -> bool {
        self.head.has_positive_branch()
    }

    /// [`PredictionStream::step`], returning all S steps the model forecasts directly,
    /// `[S, P]` row by row, with their band.
    fn step_direct(&mut self, values: &[Option<f32>]) -> Result<Forecast> {
        let (z, spread) = self.step_direct_standardised(values)?;
        Ok(Forecast::from_standardised(&z, &spread.calibrated(self.calibration.as_ref()), &self.targets.scaler))
    }

    /// [`PredictionStream::step_direct`], standardised: z `[S, P]` and its spread.
    pub(super) fn step_direct_standardised(&mut self, values: &[Option<f32>]) -> Result<(Vec<f32>, Spread)> {
        let c = self.signals.len();
        let z = crate::tasks::encode_step(values, &self.signals, &self.scaler, &mut self.x)?;
        self.clock.write_next(&mut self.x[2 * c..])?;
        for (j, z) in z.into_iter().enumerate() {
            if let Some(z) = z {
                self.last.see(j, z, self.steps);
            }
        }
        let out = self.stream.step(&self.x)?;
        let now = self.steps;
        self.steps += 1;
        let p = self.targets.len();
        let z: Vec<f32> = (0..self.ahead * p)
            .map(|i| {
                let base = match self.last.within(self.targets.index[i % p], now) {
                    Some(z) if self.residual => z,
                    _ => 0.0,
                };
                out.mean[i] + base
            })
            .collect();
        let spread = Spread::of(&out.precision, out.mean.len(), out.mean.len());
        Ok((z, spread))
    }

    /// Feeds one real step and returns the forecasts of the next `horizon` steps (at
    /// least one), `[horizon, P]` row by row, in original units. The first S come directly
    /// from the model; past them a copy of the stream runs in closed loop (each step fed
    /// the forecast of it made the step before, as the observed values of every signal;
    /// this stream's state moves by the one real step only), each fed step adding its
    /// furthest forecast. With S = 1 this is the plain closed loop.
    ///
    /// # Errors
    /// As [`PredictionStream::step`]; a horizon past the direct steps of a model that
    /// forecasts only some of the signals it reads (refused before the step is fed).
    pub fn step_ahead(&mut self, values: &[Option<f32>], horizon: usize) -> Result<Vec<f32>> {
        Ok(self.step_forecast(values, horizon)?.values)
    }

    /// [`PredictionStream::step_ahead`] with the band for the direct steps (a Gaussian or
    /// a quantile head): the closed loop's forecasts get none, its inputs being forecasts
    /// the model's band never learned to doubt ([`PredictionStream::step_forecast_sampled`] bands
    /// them by sampling).
    ///
    /// # Errors
    /// As [`PredictionStream::step`].
    pub fn step_forecast(&mut self, values: &[Option<f32>], horizon: usize) -> Result<Forecast> {
        self.check_reach(horizon)?;
        let direct = self.step_direct(values)?;
        self.closed_loop(direct, horizon)
    }

    /// Refuses a `horizon` the stream cannot reach: past the model's direct steps it runs
    /// in closed loop, which needs a forecast of every signal it reads.
    fn check_reach(&self, horizon: usize) -> Result<()> {
        if horizon > self.ahead && !self.targets.are_every_signal(self.signals.len()) {
            return Err(Error::invalid(
                "horizon",
                format!(
                    "{horizon} steps ahead: the model forecasts {} of the {} signals it reads (task.targets) \
                     {} steps ahead, and past them a closed loop would need the others; train it with \
                     task.steps_ahead = {horizon}",
                    self.targets.len(),
                    self.signals.len(),
                    self.ahead
                ),
            ));
        }
        Ok(())
    }

    /// `direct`, this stream's forecast of its next S steps, to `horizon` rows: cut, or
    /// continued in closed loop by a copy of the stream (see [`PredictionStream::step_ahead`]).
    fn closed_loop(&self, mut ahead: Forecast, horizon: usize) -> Result<Forecast> {
        // past the direct steps the targets are every signal (`check_reach`)
        let c = self.targets.len();
        let mut latest = ahead.values.clone();
        ahead.truncate(horizon.min(self.ahead), c);
        let mut roll = (horizon > self.ahead).then(|| self.clone());
        while ahead.values.len() < horizon * c {
            let fed: Vec<Option<f32>> = latest[..c].iter().map(|&v| Some(v)).collect();
            latest = roll.as_mut().expect("a copy past the direct forecasts").step_direct(&fed)?.values;
            ahead.values.extend_from_slice(&latest[(self.ahead - 1) * c..]);
        }
        Ok(ahead)
    }

    /// [`PredictionStream::step_forecast_sampled`] with `paths` sample paths, or without
    /// any (`paths` = 0) [`PredictionStream::step_forecast`].
    ///
    /// # Errors
    /// As theirs.
    pub fn step_forecast_with_paths(
        &mut self,
        values: &[Option<f32>],
        horizon: usize,
        paths: usize,
        rng: &mut Rng,
    ) -> Result<Forecast> {
        match paths {
            0 => self.step_forecast(values, horizon),
            _ => self.step_forecast_sampled(values, horizon, paths, rng),
        }
    }

    /// [`PredictionStream::step_forecast`] with a band past the direct steps too, sampled (a
    /// model with a band): `paths` copies of the stream's state run on in closed loop, each
    /// fed at every step a draw from the distribution of its own forecast of that step
    /// (z + σε for every signal, ε ~ N(0, 1) from `rng`) — ancestral sampling, as DeepAR
    /// (Salinas et al. 2020) — and each further step gets a draw from every path's furthest
    /// forecast; its band is their 2.275 % and 97.725 % quantiles, where ±2σ lies for a
    /// Gaussian (skewed where the fed errors compound unevenly). A quantile band's draws
    /// come from the split normal with its median at the forecast, σ = d⁻/2 below and
    /// σ = d⁺/2 above (z + (d/2)·ε, d the distance on ε's side), whose 2.275 % and 97.725 %
    /// quantiles are the band's own edges. The forecasts and the direct steps' bands are
    /// [`PredictionStream::step_forecast`]'s; `low`, `high` then cover every row.
    ///
    /// # Errors
    /// As [`PredictionStream::step`]; a model without a band, or no path, when the horizon
    /// reaches past the direct steps.
    pub fn step_forecast_sampled(
        &mut self,
        values: &[Option<f32>],
        horizon: usize,
        paths: usize,
        rng: &mut Rng,
    ) -> Result<Forecast> {
        self.check_reach(horizon)?;
        let banded = self.has_band();
        if horizon > self.ahead && (!banded || paths == 0) {
            return Err(Error::invalid(
                "sampled band",
                format!(
                    "{}: sample paths need a model with a band (task.uncertainty) and at least one path",
                    if banded { "no path" } else { "the model has no band" }
                ),
            ));
        }
        let (c, s) = (self.signals.len(), self.ahead);
        let (z, spread) = self.step_direct_standardised(values)?;
        let calibrated = spread.clone().calibrated(self.calibration.as_ref());
        let mut ahead = self.closed_loop(Forecast::from_standardised(&z, &calibrated, &self.scaler), horizon)?;
        let Some((down, up)) = spread.draw_scales() else { return Ok(ahead) };
        if horizon <= s {
            return Ok(ahead);
        }
        let mut stream = self.stream.replicated(paths);
        // every path's latest forecast, z, and the scales of its draws below and above: [paths, S·C]
        let (mut mean, mut down, mut up) = (z.repeat(paths), down.repeat(paths), up.repeat(paths));
        let draw = |mean: f32, down: f32, up: f32, e: f32| mean + (if e < 0.0 { down } else { up }) * e;
        let width = self.x.len();
        let (mut x, mut fed, mut draws) = (vec![0.0f32; paths * width], vec![0.0f32; paths * c], vec![0.0f32; paths]);
        let mut noise = vec![0.0f32; 2 * paths * c];
        for h in s..horizon {
            rng.fill_normal(&mut noise);
            let (feed_noise, draw_noise) = noise.split_at(paths * c);
            for k in 0..paths {
                for j in 0..c {
                    let i = k * s * c + j;
                    fed[k * c + j] = self.scaler.lift(j, draw(mean[i], down[i], up[i], feed_noise[k * c + j]));
                    (x[k * width + j], x[k * width + c + j]) = (fed[k * c + j], 1.0);
                }
                self.clock.write_ahead(h - s, &mut x[k * width + 2 * c..(k + 1) * width]);
            }
            let out = stream.step(&x)?;
            (down, up) = Spread::of(&out.precision, out.mean.len(), s * c).draw_scales().expect("a band");
            for (i, (m, &o)) in mean.iter_mut().zip(&out.mean).enumerate() {
                // every signal was observed at the fed step: each path's own draw is the base
                *m = o + if self.residual { fed[i / (s * c) * c + i % c] } else { 0.0 };
            }
            for j in 0..c {
                for (k, d) in draws.iter_mut().enumerate() {
                    let i = k * s * c + (s - 1) * c + j;
                    *d = draw(mean[i], down[i], up[i], draw_noise[k * c + j]);
                }
                let [mut low, mut high] = quantiles(&mut draws, [0.02275, 0.97725]);
                if let Some(calibration) = &self.calibration {
                    // around the forecast of the step, standardised
                    let (x, k) = (self.scaler.apply(j, ahead.values[h * c + j]), calibration.factor(h * c + j));
                    (low, high) = (x - k * (x - low), x + k * (high - x));
                }
                ahead.low.push(self.scaler.invert(j, low));
                ahead.high.push(self.scaler.invert(j, high));
            }
        }
        Ok(ahead)
    }
}
