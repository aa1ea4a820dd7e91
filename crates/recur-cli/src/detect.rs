//! `recur detect`: the values a causal run finds surprising — against its forecast, or its
//! reconstruction with the value hidden — and, with faults injected on purpose, how well
//! it finds them against detectors without a model.

use std::ops::Range;
use std::path::{Path, PathBuf};

use recur::data::PreparedSeries;
use recur::model::SequenceModel;
use recur::report::{
    alarm_threshold_table, anomalies_csv, anomaly_entity_table, anomaly_table, detection_signal_table, detection_table,
    episode_table, episodes_csv, fault_event_table, save_anomaly_chart, save_episode_chart, save_fleet_episode_chart,
};
use recur::run::TaskKind;
use recur::tasks::anomaly::{
    episodes, Detections, Episode, FaultKind, Faults, KeptAlarms, ScoredValue, Screening, ALARMS_FILE, JOIN,
};
use recur::tasks::{BandCalibration, PredictionTask, ReconstructionTask};

use crate::args::Args;
use crate::run_folder::{files_read, open_run_on_data, output_beside_run, refuse_writing_over_data, run_calibration};

const USAGE: &str = "usage: recur detect --run DIR [--data FILE,...] [--threshold S] [--alarm-rate R|none] [--guard true|false] [--signal NAME] [--join STEPS] [--out FILE.csv] \
                     [--inject SIZE [--fault spike|stuck|drift] [--length L] [--rate R] [--seed N]] (a causal prediction or reconstruction run folder)";

/// `--join STEPS`: a signal's flags at most STEPS apart are one episode (default [`JOIN`]).
pub(crate) fn join_steps(args: &Args, known: &[&str]) -> Result<usize, String> {
    match args.get("join", known, JOIN)? {
        0 => Err("--join 0: flags at most STEPS apart are one episode; 1 joins consecutive steps only".into()),
        join => Ok(join),
    }
}

/// A run's detector: a prediction run's forecasts, or a causal reconstruction run's
/// reconstructions of each value with it hidden.
enum Detecting<'a> {
    Prediction(PredictionTask<'a>),
    Reconstruction(ReconstructionTask<'a>),
}

impl Detecting<'_> {
    fn targets(&self) -> Vec<String> {
        match self {
            Detecting::Prediction(task) => task.targets().names().to_vec(),
            Detecting::Reconstruction(task) => task.series.grid.signals.clone(),
        }
    }

    /// What each value is scored against, in words.
    fn expected(&self) -> &'static str {
        match self {
            Detecting::Prediction(_) => "the forecast made the step before",
            Detecting::Reconstruction(_) => "the reconstruction with it hidden",
        }
    }

    fn surprises(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        screening: &Screening,
    ) -> recur::Result<Vec<ScoredValue>> {
        match self {
            Detecting::Prediction(task) => task.surprises(model, part, screening),
            Detecting::Reconstruction(task) => task.surprises(model, part, screening),
        }
    }

    fn detect_faults(
        &self,
        model: &SequenceModel<f32>,
        part: &[Range<usize>],
        injection: (Faults, u64),
        flags: (f32, &Screening),
    ) -> recur::Result<Detections> {
        match self {
            Detecting::Prediction(task) => task.detect_faults(model, part, injection, flags),
            Detecting::Reconstruction(task) => task.detect_faults(model, part, injection, flags),
        }
    }

    /// What a stream of the run needs to flag as this task scores (fitted on the
    /// validation part at `rate` above `threshold`).
    fn alarms_to_keep(&self, model: &SequenceModel<f32>, (rate, threshold): (f64, f32)) -> recur::Result<KeptAlarms> {
        match self {
            Detecting::Prediction(task) => task.alarms_to_keep(model, rate, threshold),
            Detecting::Reconstruction(task) => task.alarms_to_keep(model, rate, threshold),
        }
    }

    /// The task with the run's band calibration (if any).
    fn calibrated(self, calibration: Option<BandCalibration>) -> Self {
        match self {
            Detecting::Prediction(task) => Detecting::Prediction(task.with_calibration(calibration)),
            Detecting::Reconstruction(task) => Detecting::Reconstruction(task.with_calibration(calibration)),
        }
    }
}

/// `--fault`'s kind (default: spike), lasting `--length` steps (default 24).
fn fault_kind(args: &Args, known: &[&str]) -> Result<FaultKind, String> {
    let steps = args.get("length", known, 24usize)?;
    if steps < 2 {
        return Err(format!("--length {steps}: a lasting fault spans at least 2 steps"));
    }
    match args.get("fault", known, "spike".to_string())?.as_str() {
        "spike" => Ok(FaultKind::Spike),
        "stuck" => Ok(FaultKind::Stuck { steps }),
        "drift" => Ok(FaultKind::Drift { steps }),
        other => Err(format!("--fault {other}: one of spike, stuck, drift")),
    }
}

/// `--alarm-rate`'s value: none given, `none`, or a fraction of the values.
fn alarm_rate(args: &Args, known: &[&str]) -> Result<Option<Option<f64>>, String> {
    match args.get("alarm-rate", known, String::new())?.as_str() {
        "" => Ok(None),
        "none" => Ok(Some(None)),
        rate => rate
            .parse::<f64>()
            .map(|r| Some(Some(r)))
            .map_err(|_| format!("--alarm-rate {rate}: a fraction of the values (0.005: one in 200), or `none`")),
    }
}

pub fn detect(args: &Args) -> Result<(), String> {
    let known = [
        "run",
        "data",
        "threshold",
        "out",
        "inject",
        "fault",
        "length",
        "rate",
        "seed",
        "guard",
        "signal",
        "alarm-rate",
        "join",
    ];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    let threshold = args.get("threshold", &known, 4.0f32)?;
    if !(threshold > 0.0 && threshold.is_finite()) {
        return Err(format!("--threshold {threshold}: a positive surprise, in σ"));
    }
    let join = join_steps(args, &known)?;
    let size = args.get("inject", &known, 0.0f32)?;
    let rate = args.get("rate", &known, 0.01f64)?;
    let seed = args.get("seed", &known, 1u64)?;
    let guard = args.get("guard", &known, true)?;
    let (config, model, data) = open_run_on_data(&dir, None, args, &known)?;
    let detecting = match config.task.kind {
        TaskKind::Prediction => PredictionTask::from_config(&data, &config.prediction()).map(Detecting::Prediction),
        TaskKind::Reconstruction => {
            ReconstructionTask::new(&data, config.reconstruction()).map(Detecting::Reconstruction)
        }
    }
    .map_err(|e| e.to_string())?;
    let targets = detecting.targets();
    // the calibration read once: the band the model scores with, and the one kept alarms
    // must have been fitted under
    let calibration = run_calibration(&dir, &targets)?;
    let factors = calibration.as_ref().map_or(Vec::new(), |c| c.scale.clone());
    let detecting = detecting.calibrated(calibration);
    let signal = match args.get("signal", &known, String::new())? {
        name if name.is_empty() => None,
        name => Some(targets.iter().position(|t| *t == name).ok_or_else(|| {
            format!("--signal {name}: not one of the signals the run scores ({})", targets.join(", "))
        })?),
    };
    let at_run = |e: recur::Error| format!("{}: {e}", dir.display());
    let rate_given = alarm_rate(args, &known)?;
    let kept = match rate_given {
        None => KeptAlarms::load_from_run(&dir, &targets, &factors).map_err(|e| e.to_string())?,
        Some(None) => None,
        Some(Some(rate)) => {
            let kept = detecting
                .alarms_to_keep(&model, (rate, threshold))
                .map_err(|e| format!("--alarm-rate: {}", at_run(e)))?;
            println!(
                "alarm thresholds: each detector's score above which {} % of the validation part's values of each \
                 signal lie (its scores scaled so that it reads {threshold}):",
                100.0 * rate
            );
            print!("{}", alarm_threshold_table(&kept.scales, &targets));
            kept.save_to_run(&dir).map_err(|e| e.to_string())?;
            println!(
                "kept in {}: `recur stream --flag` and `recur detect` on this run scale by them (--alarm-rate none: \
                 not)\n",
                dir.join(ALARMS_FILE).display()
            );
            Some(kept)
        }
    };
    let screening = match &kept {
        Some(kept) => kept.screening(guard.then_some(threshold)),
        None => Screening { guard: guard.then_some(threshold), ..Screening::default() },
    };
    if let (Some(kept), None) = (&kept, rate_given) {
        println!(
            "scores scaled by {} (each signal's alarm rate {} % above {} on the validation part; --alarm-rate none: \
             in σ)",
            dir.join(ALARMS_FILE).display(),
            100.0 * kept.scales.rate,
            kept.scales.threshold
        );
    }
    if size != 0.0 {
        let kind = fault_kind(args, &known)?;
        let faults = Faults { kind, rate, size };
        let detections = detecting
            .detect_faults(&model, &data.test, (faults, seed), (threshold, &screening))
            .map_err(|e| format!("--inject: {}", at_run(e)))?;
        let (changed, values) = (detections.pooled[0].1.faults, detections.pooled[0].1.values);
        let what = match kind {
            FaultKind::Spike => format!("{changed} spikes of ±{size} training SDs"),
            FaultKind::Stuck { steps } => format!(
                "{} stuck sensors (a value read for {steps} steps while the truth moves ≥ {size} training SDs \
                 away; {changed} values changed)",
                detections.events[0].1.events
            ),
            FaultKind::Drift { steps } => format!(
                "{} drifts (an offset growing to ±{size} training SDs over {steps} steps; {changed} values changed)",
                detections.events[0].1.events
            ),
        };
        let share = match kind {
            FaultKind::Spike => format!("{} %", 100.0 * rate),
            _ => format!("{:.2} % (asked: {} %)", 100.0 * changed as f64 / values as f64, 100.0 * rate),
        };
        println!(
            "{what} (seed {seed}) in {share} of the {values} test values scored ({}); how each detector ranks the \
             values changed against those left alone (the model: against {}; a value scored above {threshold} \
             withheld from what the detector reads next{}):",
            targets.join(", "),
            detecting.expected(),
            if guard { "" } else { ": not, --guard false" }
        );
        print!("{}", detection_table(&detections, threshold));
        if kind != FaultKind::Spike {
            println!("\neach fault found: a value of its signal within its steps above {threshold}:");
            print!("{}", fault_event_table(&detections, threshold));
        }
        println!("\nby signal, each detector's average precision (ROC AUC) on its values alone:");
        print!("{}", detection_signal_table(&detections, &targets));
        return Ok(());
    }
    let scored = detecting.surprises(&model, &data.test, &screening).map_err(at_run)?;
    println!(
        "{} observed test values, each against {} (s: its distance from it in σ of the band; flagged above \
         {threshold}):",
        scored.len(),
        detecting.expected()
    );
    print!("{}", anomaly_table(&scored, &data, &targets, threshold));
    if data.entities.len() > 1 {
        const SHOWN: usize = 10;
        println!("\nby entity, the largest share of values flagged first (at most {SHOWN}; every flag in the CSV):");
        print!("{}", anomaly_entity_table(&scored, &data, &targets, threshold, SHOWN));
    }
    let found = episodes(&scored, threshold, join, |step| data.entity_index(step));
    println!(
        "\n{} values flagged in {} episodes (a signal's flags at most {join} steps apart: one episode; --join):",
        found.iter().map(|e| e.flagged).sum::<usize>(),
        found.len()
    );
    print!("{}", episode_table(&found, &data, &targets));
    let (csv, episodes_file) = match args.get("out", &known, String::new())? {
        out if !out.is_empty() => {
            let csv = PathBuf::from(out);
            let stem = csv.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
            let episodes_file = csv.with_file_name(format!("{stem}_episodes.csv"));
            (csv, episodes_file)
        }
        _ => (
            output_beside_run(&dir, args, &known, "anomalies", "csv")?,
            output_beside_run(&dir, args, &known, "episodes", "csv")?,
        ),
    };
    let read = files_read(&config, args, &known)?;
    refuse_writing_over_data(&csv, &read)?;
    refuse_writing_over_data(&episodes_file, &read)?;
    let plot = write_anomalies(&scored, &data, (&targets, signal), (threshold, detecting.expected()), &csv)?;
    let timelines = write_episodes(&found, &data, &targets, &episodes_file)?;
    let charts: Vec<String> = std::iter::once(&plot).chain(&timelines).map(|p| p.display().to_string()).collect();
    println!("wrote {}, {} and the charts {}", csv.display(), episodes_file.display(), charts.join(", "));
    Ok(())
}

/// `episodes` of the test part of `data` into `file` ([`episodes_csv`]) and onto a timeline
/// beside it, as PNG ([`save_episode_chart`]), and where several entities have some, onto
/// one of the entities beside that (`STEM_by_entity.png`, [`save_fleet_episode_chart`]):
/// the charts' paths.
pub(crate) fn write_episodes(
    episodes: &[Episode],
    data: &PreparedSeries,
    targets: &[String],
    file: &Path,
) -> Result<Vec<PathBuf>, String> {
    recur::io::write_atomically(file, episodes_csv(episodes, data, targets).as_bytes()).map_err(|e| e.to_string())?;
    let timeline = file.with_extension("png");
    save_episode_chart(episodes, data, &data.test, targets, &timeline).map_err(|e| e.to_string())?;
    let stem = file.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let fleet = file.with_file_name(format!("{stem}_by_entity.png"));
    match save_fleet_episode_chart(episodes, data, &data.test, &fleet).map_err(|e| e.to_string())? {
        true => Ok(vec![timeline, fleet]),
        false => Ok(vec![timeline]),
    }
}

/// The values scored above `threshold` into `csv` ([`anomalies_csv`]) and the most
/// surprising value's days (of target `signal`, or of any) beside it, as PNG, against the
/// values `expected` names ([`save_anomaly_chart`]): the chart's path.
pub(crate) fn write_anomalies(
    scored: &[ScoredValue],
    data: &PreparedSeries,
    (targets, signal): (&[String], Option<usize>),
    (threshold, expected): (f32, &str),
    csv: &Path,
) -> Result<PathBuf, String> {
    recur::io::write_atomically(csv, anomalies_csv(scored, data, targets, threshold).as_bytes())
        .map_err(|e| e.to_string())?;
    let plot = csv.with_extension("png");
    save_anomaly_chart(scored, data, (targets, signal), (threshold, expected), &plot).map_err(|e| e.to_string())?;
    Ok(plot)
}
