//! Every detector and signal on one scale ([`AlarmScales`]: scores scaled so that a
//! fraction of the validation part's values lie above the threshold), what a run keeps of
//! it for later scoring and for streams ([`KeptAlarms`], `alarms.json`), and how a scoring
//! pass guards and scales ([`Screening`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Detector, FlatlineRule, ScoredValue};
use crate::error::{Error, Result};
use crate::io::{read_json_if_present, write_json_atomically};

/// How [`PredictionTask::surprises`] and [`ReconstructionTask::surprises`] score and guard:
/// withholding above `guard` (none: never), each detector's scores of each target times
/// its alarm scale (none: as defined), a prediction model without a band banded by
/// ±2·`sigma` per target (standardised; empty: measured on the validation part), and the
/// flatline rule in units of `equal_runs` per target (empty: measured on the training part,
/// or on data the run has not seen, on the part scored).
///
/// [`PredictionTask::surprises`]: crate::tasks::PredictionTask::surprises
/// [`ReconstructionTask::surprises`]: crate::tasks::ReconstructionTask::surprises
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Screening {
    pub guard: Option<f32>,
    pub scales: Option<AlarmScales>,
    pub sigma: Vec<f32>,
    pub equal_runs: Vec<f32>,
}

impl Screening {
    /// Detector `d`'s factor per target (empty: 1).
    pub(super) fn scale(&self, d: Detector) -> Vec<f32> {
        self.scales.as_ref().map_or(Vec::new(), |s| s.of(d).to_vec())
    }
}

/// Per target, each detector's factor on its scores that puts a fraction `rate` of the
/// values of a part it was not trained on (the validation part, scored unguarded) above
/// `threshold`: `threshold` over the scores' (1 − rate) quantile there. Scaled so, every
/// signal and every detector raises alarms at the same rate on that part, and one
/// threshold serves them all; pooled rankings compare like with like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmScales {
    pub rate: f64,
    pub threshold: f32,
    /// `[detector][target]`, detectors in [`Detector::ALL`]'s order.
    pub factors: Vec<Vec<f32>>,
}

impl AlarmScales {
    /// From `scored` (values of `targets` targets, unguarded, unscaled).
    ///
    /// # Errors
    /// A rate outside (0, 1), a threshold that is not positive.
    pub fn fit(scored: &[ScoredValue], targets: usize, rate: f64, threshold: f32) -> Result<AlarmScales> {
        if !(rate > 0.0 && rate < 1.0) {
            return Err(Error::invalid("alarm rate", format!("{rate}: a fraction of the values, above 0 and below 1")));
        }
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(Error::invalid("alarm threshold", format!("{threshold}: a positive score")));
        }
        let factor = |d: Detector, t: usize| {
            let mut scores: Vec<f32> = scored.iter().filter(|v| v.target == t).map(|v| d.of(v)).collect();
            if scores.is_empty() {
                return 1.0;
            }
            let at = (((1.0 - rate) * scores.len() as f64) as usize).min(scores.len() - 1);
            let q = *scores.select_nth_unstable_by(at, f32::total_cmp).1;
            if q > 0.0 && q.is_finite() {
                threshold / q
            } else {
                1.0
            }
        };
        let factors = Detector::ALL.iter().map(|&d| (0..targets).map(|t| factor(d, t)).collect()).collect();
        Ok(AlarmScales { rate, threshold, factors })
    }

    /// Detector `d`'s factor per target.
    pub fn of(&self, d: Detector) -> &[f32] {
        &self.factors[Detector::ALL.iter().position(|&x| x == d).unwrap_or_default()]
    }

    /// The score, as the detector defines it, above which `d` flags target `t`'s values.
    pub fn raw_threshold(&self, d: Detector, t: usize) -> f32 {
        self.threshold / self.of(d)[t]
    }
}

/// The file of a run folder that keeps [`KeptAlarms`].
pub const ALARMS_FILE: &str = "alarms.json";

/// What scoring a run's values takes from its validation part, kept in its run folder
/// ([`ALARMS_FILE`], written by `recur detect --alarm-rate`) so that `recur stream --flag`
/// flags as `recur detect` does, from the run folder alone, and `recur detect` on data the
/// run has not seen (no validation part there) as on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptAlarms {
    /// The targets scored, in order.
    pub signals: Vec<String>,
    pub scales: AlarmScales,
    /// A prediction model without a band: the RMS of its one-step errors per target on the
    /// validation part (standardised), its band ±2·sigma; empty for a model with one.
    pub sigma: Vec<f32>,
    /// The factors of the band calibration the scales were fitted under (empty: none): a
    /// calibration since then changes the model's scores, and the scales no longer fit them.
    pub calibration: Vec<f32>,
    /// Each target's training runs of equal readings, their 95 % quantile
    /// ([`equal_run_quantiles`]): the flatline rule live (empty: not).
    ///
    /// [`equal_run_quantiles`]: super::equal_run_quantiles
    #[serde(default)]
    pub equal_runs: Vec<f32>,
}

impl KeptAlarms {
    /// The screening of a detector guarded at `guard` (none: never) with these scales.
    pub fn screening(&self, guard: Option<f32>) -> Screening {
        Screening {
            guard,
            scales: Some(self.scales.clone()),
            sigma: self.sigma.clone(),
            equal_runs: self.equal_runs.clone(),
        }
    }

    /// The flatline rule live with these run quantiles and scales (none without the
    /// quantiles), a gap of at most `reach` steps not breaking a run.
    pub fn flatline_rule(&self, reach: usize) -> Option<FlatlineRule> {
        (!self.equal_runs.is_empty())
            .then(|| FlatlineRule::new(self.equal_runs.clone(), self.scales.of(Detector::Flatline).to_vec(), reach))
    }

    /// Those kept in run folder `dir`, if any, for the run's `signals` scored under the
    /// band calibration factors `calibration` (empty: none).
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or holds factors that are not positive numbers,
    /// or was fitted for other signals or under another calibration (each named, with the
    /// file and how to fit them anew).
    pub fn load_from_run(dir: &Path, signals: &[String], calibration: &[f32]) -> Result<Option<KeptAlarms>> {
        let path = dir.join(ALARMS_FILE);
        let Some(kept) = read_json_if_present::<KeptAlarms>(&path)? else { return Ok(None) };
        let refit = format!("`recur detect --run {} --alarm-rate RATE` fits them anew", dir.display());
        let bad = |why: String| Error::Format { path: path.clone(), why: format!("{why}; {refit}") };
        if kept.signals != signals {
            return Err(bad(format!("fitted for the signals {:?}; the run scores {signals:?}", kept.signals)));
        }
        let p = signals.len();
        let (rate, threshold) = (kept.scales.rate, kept.scales.threshold);
        if !(rate > 0.0 && rate < 1.0 && threshold > 0.0 && threshold.is_finite()) {
            return Err(bad(format!("rate {rate} and threshold {threshold}: a rate in (0, 1), a positive threshold")));
        }
        let positive = |v: &[f32]| v.iter().all(|x| x.is_finite() && *x > 0.0);
        let factors = &kept.scales.factors;
        if factors.len() != Detector::ALL.len() || factors.iter().any(|f| f.len() != p || !positive(f)) {
            return Err(bad(format!(
                "factors: {} detectors × {p} signals of positive numbers expected",
                Detector::ALL.len()
            )));
        }
        if !(kept.sigma.is_empty() || (kept.sigma.len() == p && positive(&kept.sigma))) {
            return Err(bad(format!("sigma: none, or {p} positive numbers expected")));
        }
        if !(kept.equal_runs.is_empty() || (kept.equal_runs.len() == p && positive(&kept.equal_runs))) {
            return Err(bad(format!("equal_runs: none, or {p} positive numbers expected")));
        }
        if kept.calibration != calibration {
            let since = match (kept.calibration.is_empty(), calibration.is_empty()) {
                (true, _) => "fitted on the band before it was calibrated",
                (false, true) => "fitted on a calibrated band; the run has no calibration now",
                (false, false) => "fitted under another band calibration than the run has now",
            };
            return Err(bad(since.to_string()));
        }
        Ok(Some(kept))
    }

    /// Writes them into run folder `dir`, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_to_run(&self, dir: &Path) -> Result<()> {
        write_json_atomically(&dir.join(ALARMS_FILE), self, "alarm scales")
    }
}
