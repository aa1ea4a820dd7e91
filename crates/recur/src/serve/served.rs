//! A trained run folder opened as a model is served from it.

use std::path::{Path, PathBuf};

use crate::data::FittedScaler;
use crate::error::{Error, Result};
use crate::model::SequenceModel;
use crate::run::{load_data, RunConfig, TaskKind};
use crate::tasks::anomaly::{KeptAlarms, Watch, ALARMS_FILE};
use crate::tasks::{BandCalibration, LiveStream};

/// A trained run folder as a model is served from it, without its data: `run.toml`,
/// `model.safetensors`, the signals and standardisation kept in `scaler.json`, and the
/// bands' calibration (`calibration.json`, `recur calibrate`) where it keeps one — what
/// `recur stream` opens, and a program serving the model needs (`examples/serve_run.rs`).
pub struct ServedRun {
    pub dir: PathBuf,
    pub config: RunConfig,
    pub model: SequenceModel<f32>,
    pub fitted: FittedScaler,
    pub calibration: Option<BandCalibration>,
    /// `model.safetensors`' [`fingerprint`](crate::io::fingerprint): what a saved live
    /// state names the model it was made with by.
    pub model_fingerprint: String,
}

impl ServedRun {
    /// The run in folder `dir`. A folder written before `scaler.json` was kept reads its
    /// training data again (its `data.files`, relative to the current folder) for them.
    ///
    /// # Errors
    /// A file missing or unreadable, named; a calibration kept for other signals.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ServedRun> {
        let dir = dir.into();
        let config = RunConfig::load(dir.join("run.toml"))?;
        let model_file = dir.join("model.safetensors");
        let bytes = std::fs::read(&model_file).map_err(|source| Error::Io { path: model_file.clone(), source })?;
        let model = SequenceModel::from_file(&crate::io::TensorFile::from_bytes(&model_file, &bytes)?)?;
        let model_fingerprint = crate::io::fingerprint(&bytes);
        let fitted = match FittedScaler::load_from_run(&dir)? {
            Some(fitted) => fitted,
            None => FittedScaler::of(&load_data(&config.data, Path::new("."))?),
        };
        let calibration = BandCalibration::load_from_run(&dir, &config.scored_signals(&fitted.signals))?;
        Ok(ServedRun { dir, config, model, fitted, calibration, model_fingerprint })
    }

    /// The signals its scores are per ([`RunConfig::scored_signals`]).
    pub fn scored_signals(&self) -> Vec<String> {
        self.config.scored_signals(&self.fitted.signals)
    }

    /// A fresh stream through its model, of its task, its bands calibrated where the
    /// folder keeps a calibration.
    ///
    /// # Errors
    /// A model that cannot stream (a coupled bidirectional one, a reconstruction reading
    /// the interpolation), or as [`PredictionStream::new`](crate::tasks::PredictionStream::new)
    /// and [`ReconstructionStream::new`](crate::tasks::ReconstructionStream::new).
    pub fn stream(&self) -> Result<LiveStream<'_>> {
        let calibration = self.calibration.clone();
        Ok(match self.config.task.kind {
            TaskKind::Prediction => LiveStream::Prediction(Box::new(crate::tasks::PredictionStream::new(
                &self.model,
                &self.fitted,
                &self.config.prediction(),
                calibration,
            )?)),
            TaskKind::Reconstruction => LiveStream::Reconstruction(Box::new(crate::tasks::ReconstructionStream::new(
                &self.model,
                &self.fitted,
                self.config.task.residual,
                calibration,
            )?)),
        })
    }

    /// The alarm scales (and what else `recur detect --alarm-rate` keeps) in the folder, if any.
    ///
    /// # Errors
    /// As [`KeptAlarms::load_from_run`].
    pub fn kept_alarms(&self) -> Result<Option<KeptAlarms>> {
        let factors = self.calibration.as_ref().map_or(Vec::new(), |c| c.scale.clone());
        KeptAlarms::load_from_run(&self.dir, &self.scored_signals(), &factors)
    }

    /// A [`Watch`] over `live` (a stream of this run), flagging above `threshold` and
    /// joining a signal's flags at most `join` steps apart into one alarm, with the alarm
    /// scales and flatline rule the folder keeps (as `recur stream --flag` watches).
    ///
    /// # Errors
    /// As [`ServedRun::kept_alarms`] and [`Watch::new`].
    pub fn watch(&self, live: &LiveStream, threshold: f32, join: usize) -> Result<Watch> {
        self.watch_kept(live, threshold, join, self.kept_alarms()?.as_ref())
    }

    /// [`ServedRun::watch`] with the alarms `kept` (read once for many watches); a model
    /// without a band and no validation errors kept to band it by is told how to keep them.
    pub(crate) fn watch_kept(
        &self,
        live: &LiveStream,
        threshold: f32,
        join: usize,
        kept: Option<&KeptAlarms>,
    ) -> Result<Watch> {
        Watch::new(live, threshold, join, kept, self.flatline_reach()).map_err(|e| match live {
            LiveStream::Prediction(s) if !s.has_band() && kept.is_none() => Error::invalid(
                "watch",
                format!(
                    "the model has no band (task.uncertainty) and the run keeps no validation errors to band it by: \
                     `recur detect --run {} --alarm-rate RATE` keeps them (in {ALARMS_FILE})",
                    self.dir.display()
                ),
            ),
            _ => e,
        })
    }

    /// How far back a last reading counts for the flatline rule's runs (and persistence):
    /// the window's `window − 1` steps, as the run's model reads.
    pub fn flatline_reach(&self) -> usize {
        self.config.task.window.saturating_sub(1)
    }
}
