//! Faults put on purpose into real data ([`inject_faults`]: spikes, stuck sensors,
//! drifts, [`FaultKind`]) and how well each detector finds them: by the ranks it gives the
//! values changed ([`Detection`]) and by the faults it finds, and how soon
//! ([`EventDetection`]).

use std::collections::HashSet;
use std::ops::Range;

use super::{episodes, median_steps, Detector, ScoredValue, JOIN};
use crate::data::PreparedSeries;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// [`inject_faults`] into `series` among the observed values of `signals` at the steps of
/// `scored`, then each detector's [`Detections`] of the faults among the values `score`
/// scores on the faulty copy, flagging above `threshold`.
pub(super) fn detect_faults(
    series: &PreparedSeries,
    (scored, signals): (&[Range<usize>], &[usize]),
    (faults, seed): (Faults, u64),
    threshold: f32,
    score: impl Fn(&PreparedSeries) -> Result<Vec<ScoredValue>>,
) -> Result<Detections> {
    let (faulty, events) = inject_faults(series, scored, signals, faults, seed)?;
    let values = score(&faulty)?;
    let labels = injected_labels(&values, &events, signals);
    let mut detections = Detections::of(&values, &labels, signals.len(), threshold)?;
    detections.events =
        Detector::ALL.map(|d| (d, EventDetection::of(&values, &events, signals, d, threshold))).to_vec();
    detections.events_at_false_alarm_rate =
        Detector::ALL.map(|d| (d, EventDetection::at_false_alarm_rate(&values, &events, signals, d, 0.001))).to_vec();
    let entity_of = |step: usize| faulty.entity_index(step);
    detections.alarms =
        Detector::ALL.map(|d| (d, AlarmCount::of(&values, &events, signals, (d, threshold), entity_of))).to_vec();
    Ok(detections)
}

/// A kind of fault [`inject_faults`] puts into real data, sized in training standard
/// deviations (SDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// One value moved up or down by the size.
    Spike,
    /// A sensor frozen for `steps` steps: from a value on, the observed values of the next
    /// `steps − 1` steps read it — chosen where the truth moves at least the size away from
    /// it meanwhile (a frozen reading of a steady signal is no fault).
    Stuck { steps: usize },
    /// An offset growing linearly, up or down, to the size over `steps` steps: a sensor
    /// drifting out of calibration.
    Drift { steps: usize },
}

impl FaultKind {
    /// Its name, as `recur detect --fault` takes it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Spike => "spike",
            FaultKind::Stuck { .. } => "stuck",
            FaultKind::Drift { .. } => "drift",
        }
    }

    /// The steps one fault spans.
    pub fn steps(self) -> usize {
        match self {
            FaultKind::Spike => 1,
            FaultKind::Stuck { steps } | FaultKind::Drift { steps } => steps,
        }
    }
}

/// Faults to inject: of `kind`, `size` training SDs, in about a fraction `rate` of the
/// observed values (a lasting fault counting each value it changes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    pub kind: FaultKind,
    pub rate: f64,
    pub size: f32,
}

/// One fault injected: its signal, the steps it spans, and those whose value it changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultEvent {
    pub signal: usize,
    pub steps: Range<usize>,
    pub changed: Vec<usize>,
}

/// A copy of `series` with [`Faults`] in the observed values of `signals` (indices) at the
/// steps of `part`, chosen from `seed`, each value changed in its standardised units (in
/// original units through the fitted scaler, so that both views agree; lifted to a signal's
/// floor); the faults, in (step, signal) order. Spikes: round(rate × those values) of
/// them. Lasting faults: within a range of `part`, one signal's faults never overlapping,
/// round(rate × those values / steps) of them or as many as fit.
///
/// # Errors
/// A rate outside (0, 1), a size that is not positive and finite, a lasting fault of fewer
/// than 2 steps, no signal, no observed value to change.
pub fn inject_faults(
    series: &PreparedSeries,
    part: &[Range<usize>],
    signals: &[usize],
    faults: Faults,
    seed: u64,
) -> Result<(PreparedSeries, Vec<FaultEvent>)> {
    let Faults { kind, rate, size } = faults;
    if !(rate > 0.0 && rate < 1.0) {
        return Err(Error::invalid("fault rate", format!("{rate}: a fraction of the values, above 0 and below 1")));
    }
    if !(size > 0.0 && size.is_finite()) {
        return Err(Error::invalid("fault size", format!("{size}: a positive number of standard deviations")));
    }
    let steps = kind.steps();
    if kind != FaultKind::Spike && steps < 2 {
        return Err(Error::invalid("fault length", format!("{steps} steps: a lasting fault spans at least 2")));
    }
    let c = series.grid.channels();
    let observed = |k: usize, j: usize| series.grid.observed[k * c + j];
    // a fault's first step, its range's end
    let mut candidates: Vec<(usize, usize, usize)> = part
        .iter()
        .flat_map(|r| r.clone().map(move |k| (k, r.end)))
        .filter(|&(k, end)| k + steps <= end)
        .flat_map(|(k, end)| signals.iter().map(move |&j| (k, j, end)))
        .filter(|&(k, j, _)| observed(k, j))
        .collect();
    if candidates.is_empty() && steps > 1 {
        let longest = part.iter().map(|r| r.len()).max().unwrap_or(0);
        return Err(Error::invalid(
            "faults",
            format!("a fault of {steps} steps fits in no range of the part scored (the longest has {longest} steps)"),
        ));
    }
    let count = (rate * candidates.len() as f64 / steps as f64).round() as usize;
    if signals.is_empty() || count == 0 {
        return Err(Error::invalid(
            "faults",
            format!("{} observed values of {} signals: none to change at rate {rate}", candidates.len(), signals.len()),
        ));
    }
    let mut rng = Rng::new(seed);
    rng.shuffle(&mut candidates);
    let mut faulted = series.clone();
    let mut set = |k: usize, j: usize, original: f32| {
        faulted.original[k * c + j] = original;
        faulted.grid.values[k * c + j] = series.scaler.apply(j, original);
    };
    let z = |k: usize, j: usize| series.grid.values[k * c + j];
    let moved = |k: usize, j: usize, by: f32| series.scaler.invert(j, z(k, j) + by);
    let mut events = Vec::with_capacity(count);
    if kind == FaultKind::Spike {
        candidates.truncate(count);
        candidates.sort_unstable();
        for &(k, j, _) in &candidates {
            let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            set(k, j, moved(k, j, sign * size));
            events.push(FaultEvent { signal: j, steps: k..k + 1, changed: vec![k] });
        }
        return Ok((faulted, events));
    }
    let mut taken = vec![false; series.grid.values.len()];
    for (k, j, _) in candidates {
        if events.len() == count {
            break;
        }
        let window = k..k + steps;
        if window.clone().any(|n| taken[n * c + j]) {
            continue;
        }
        let changed: Vec<(usize, f32)> = match kind {
            FaultKind::Stuck { .. } => {
                let moved = window.clone().skip(1).filter(|&n| observed(n, j)).map(|n| (z(n, j) - z(k, j)).abs());
                if moved.fold(0.0f32, f32::max) < size {
                    continue;
                }
                // the frozen reading itself, not its round trip through the scaler
                let frozen = series.original[k * c + j];
                window.clone().skip(1).filter(|&n| observed(n, j) && z(n, j) != z(k, j)).map(|n| (n, frozen)).collect()
            }
            _ => {
                let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                let offset = |n: usize| sign * size * (n - k + 1) as f32 / steps as f32;
                window.clone().filter(|&n| observed(n, j)).map(|n| (n, moved(n, j, offset(n)))).collect()
            }
        };
        for n in window.clone() {
            taken[n * c + j] = true;
        }
        for &(n, v) in &changed {
            set(n, j, v);
        }
        events.push(FaultEvent { signal: j, steps: window, changed: changed.iter().map(|&(n, _)| n).collect() });
    }
    if events.is_empty() {
        return Err(Error::invalid("faults", format!("no place for a {} fault of {steps} steps", kind.name())));
    }
    events.sort_unstable_by_key(|e| (e.steps.start, e.signal));
    Ok((faulted, events))
}

/// Whether each of `scored` holds a value a fault of `events` changed, its target the
/// signal `index[target]`.
pub(super) fn injected_labels(scored: &[ScoredValue], events: &[FaultEvent], index: &[usize]) -> Vec<bool> {
    let changed: HashSet<(usize, usize)> =
        events.iter().flat_map(|e| e.changed.iter().map(|&k| (k, e.signal))).collect();
    scored.iter().map(|v| changed.contains(&(v.step, index[v.target]))).collect()
}

/// Each detector's [`Detection`] of the faults `faults` labels among `scored`: pooled over
/// every target, and for each of `targets` targets alone (None where a target has no fault
/// or nothing else), flagging above `threshold`.
pub struct Detections {
    pub pooled: Vec<(Detector, Detection)>,
    /// `[target][detector]`, detectors in [`Detector::ALL`]'s order.
    pub per_target: Vec<Vec<Option<Detection>>>,
    /// Each detector's [`EventDetection`] of the faults (empty where not known), flagging
    /// above the threshold, and above the score of its 1 in 1,000 values outside the faults.
    pub events: Vec<(Detector, EventDetection)>,
    pub events_at_false_alarm_rate: Vec<(Detector, EventDetection)>,
    /// Each detector's alarms above the threshold, and those on a fault (empty where not
    /// known).
    pub alarms: Vec<(Detector, AlarmCount)>,
}

impl Detections {
    /// # Errors
    /// As [`Detection::of`] for the pooled values.
    pub fn of(scored: &[ScoredValue], faults: &[bool], targets: usize, threshold: f32) -> Result<Detections> {
        let detect = |d: Detector, keep: &dyn Fn(&ScoredValue) -> bool| {
            let (scores, labels): (Vec<f32>, Vec<bool>) =
                scored.iter().zip(faults).filter(|(v, _)| keep(v)).map(|(v, &f)| (d.of(v), f)).unzip();
            Detection::of(&scores, &labels, threshold)
        };
        let pooled = Detector::ALL.iter().map(|&d| Ok((d, detect(d, &|_| true)?))).collect::<Result<_>>()?;
        let per_target =
            (0..targets).map(|t| Detector::ALL.iter().map(|&d| detect(d, &|v| v.target == t).ok()).collect()).collect();
        Ok(Detections {
            pooled,
            per_target,
            events: Vec::new(),
            events_at_false_alarm_rate: Vec::new(),
            alarms: Vec::new(),
        })
    }
}

/// How well a detector's scores find the faults among values labelled fault or not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// The chance that a fault outscores a value left alone (ties count half): ROC AUC.
    pub auc: f64,
    /// The mean, over the faults, of the precision among the values scoring at least as
    /// much as each (ties resolved as a threshold would: together).
    pub average_precision: f64,
    /// Values scoring above the threshold, and faults among them.
    pub flagged: usize,
    pub flagged_faults: usize,
    /// Faults, and values in all.
    pub faults: usize,
    pub values: usize,
}

impl Detection {
    /// Of `scores` with `faults` labels, flagging those above `threshold`.
    ///
    /// # Errors
    /// Scores and labels of different lengths, a NaN score, no fault or no value left
    /// alone (nothing to rank).
    pub fn of(scores: &[f32], faults: &[bool], threshold: f32) -> Result<Detection> {
        if scores.len() != faults.len() {
            return Err(Error::invalid("detection", format!("{} scores for {} labels", scores.len(), faults.len())));
        }
        if scores.iter().any(|s| s.is_nan()) {
            return Err(Error::invalid("detection", "a NaN score"));
        }
        let positives = faults.iter().filter(|&&f| f).count();
        let negatives = faults.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(Error::invalid(
                "detection",
                format!("{positives} faults and {negatives} values left alone: both are needed"),
            ));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        // walk down the scores a tie at a time: the faults below each tie and the AP sum
        let (mut above_pos, mut above_neg, mut auc, mut ap) = (0usize, 0usize, 0.0f64, 0.0f64);
        let mut i = 0;
        while i < order.len() {
            let tie = scores[order[i]];
            let end = i + order[i..].iter().take_while(|&&o| scores[o] == tie).count();
            let pos = order[i..end].iter().filter(|&&o| faults[o]).count();
            let neg = (end - i) - pos;
            // each fault of the tie outscores the values left alone below it, ties half
            auc += pos as f64 * ((negatives - above_neg - neg) as f64 + 0.5 * neg as f64);
            above_pos += pos;
            above_neg += neg;
            ap += pos as f64 * above_pos as f64 / (above_pos + above_neg) as f64;
            i = end;
        }
        let flagged: Vec<bool> = scores.iter().map(|&s| s > threshold).collect();
        Ok(Detection {
            auc: auc / (positives as f64 * negatives as f64),
            average_precision: ap / positives as f64,
            flagged: flagged.iter().filter(|&&f| f).count(),
            flagged_faults: flagged.iter().zip(faults).filter(|(&f, &l)| f && l).count(),
            faults: positives,
            values: faults.len(),
        })
    }

    /// Faults among the values flagged (1 with none flagged).
    pub fn precision(&self) -> f64 {
        match self.flagged {
            0 => 1.0,
            n => self.flagged_faults as f64 / n as f64,
        }
    }

    /// Faults flagged, of all.
    pub fn recall(&self) -> f64 {
        self.flagged_faults as f64 / self.faults as f64
    }
}

/// Every (step, signal) within a fault of `events`.
pub(super) fn fault_steps(events: &[FaultEvent]) -> HashSet<(usize, usize)> {
    events.iter().flat_map(|e| e.steps.clone().map(|k| (k, e.signal))).collect()
}

/// A detector's alarms: its flags joined into [`episodes`] ([`JOIN`] steps), and those on a
/// fault (with a step within a fault of their signal). Whoever answers alarms weighs a
/// detector by the share of them that lead to a fault, not by its flags.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AlarmCount {
    pub episodes: usize,
    pub on_faults: usize,
}

impl AlarmCount {
    /// Of `d`'s scores of `scored` above `threshold` (its targets the signals `index[target]`,
    /// of the entities `entity_of` a step), for `events`.
    pub fn of(
        scored: &[ScoredValue],
        events: &[FaultEvent],
        index: &[usize],
        (d, threshold): (Detector, f32),
        entity_of: impl Fn(usize) -> usize,
    ) -> AlarmCount {
        // the detector's score where `episodes` reads the model's, nothing for the flatline rule
        let as_alarms: Vec<ScoredValue> =
            scored.iter().map(|v| ScoredValue { surprise: d.of(v), flatline: 0.0, ..*v }).collect();
        let found = episodes(&as_alarms, threshold, JOIN, entity_of);
        let within = fault_steps(events);
        let on_faults = found.iter().filter(|e| (e.first..=e.last).any(|k| within.contains(&(k, index[e.target]))));
        AlarmCount { episodes: found.len(), on_faults: on_faults.count() }
    }

    /// The share of the alarms on a fault.
    pub fn precision(&self) -> f64 {
        self.on_faults as f64 / self.episodes.max(1) as f64
    }
}

/// How soon a detector finds each fault (of any length) and what it flags besides.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDetection {
    pub events: usize,
    /// For each fault found (a value of its signal within its steps scored above the
    /// threshold), the steps from its first step to that value's.
    pub delays: Vec<usize>,
    /// Values outside every fault's steps (of its signal), and those of them flagged.
    pub clean: usize,
    pub clean_flagged: usize,
}

impl EventDetection {
    /// Of `d`'s scores of `scored` (its targets the signals `index[target]`) for `events`,
    /// flagging above `threshold`.
    pub fn of(scored: &[ScoredValue], events: &[FaultEvent], index: &[usize], d: Detector, threshold: f32) -> Self {
        let within = fault_steps(events);
        let flagged: HashSet<(usize, usize)> =
            scored.iter().filter(|v| d.of(v) > threshold).map(|v| (v.step, index[v.target])).collect();
        let clean = scored.iter().filter(|v| !within.contains(&(v.step, index[v.target])));
        let (clean, clean_flagged) = clean.fold((0, 0), |(n, f), v| (n + 1, f + usize::from(d.of(v) > threshold)));
        let delays = events
            .iter()
            .filter_map(|e| e.steps.clone().find(|&k| flagged.contains(&(k, e.signal))).map(|k| k - e.steps.start))
            .collect();
        EventDetection { events: events.len(), delays, clean, clean_flagged }
    }

    /// Of `d`'s scores as [`EventDetection::of`], flagging above the score that a fraction
    /// `rate` of the values outside the faults exceed: each detector at the same false-alarm
    /// rate, whatever its scale.
    pub fn at_false_alarm_rate(
        scored: &[ScoredValue],
        events: &[FaultEvent],
        index: &[usize],
        d: Detector,
        rate: f64,
    ) -> Self {
        let within = fault_steps(events);
        let mut clean: Vec<f32> =
            scored.iter().filter(|v| !within.contains(&(v.step, index[v.target]))).map(|v| d.of(v)).collect();
        let threshold = match clean.len() {
            0 => f32::INFINITY,
            n => *clean.select_nth_unstable_by(((1.0 - rate) * n as f64) as usize % n, f32::total_cmp).1,
        };
        Self::of(scored, events, index, d, threshold)
    }

    /// The faults found, of all.
    pub fn found(&self) -> f64 {
        self.delays.len() as f64 / self.events.max(1) as f64
    }

    /// The median steps to a fault's first flag, among those found.
    pub fn median_delay(&self) -> Option<f64> {
        median_steps(self.delays.clone())
    }

    /// The values outside the faults flagged, per 1,000.
    pub fn false_alarms_per_1000(&self) -> f64 {
        1000.0 * self.clean_flagged as f64 / self.clean.max(1) as f64
    }
}
