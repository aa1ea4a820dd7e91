//! Run folders as the commands open them: a trained run with its own data or files it has
//! not seen (`--data`), as served from the folder alone, its calibration; outputs beside it.

use std::path::{Path, PathBuf};

use recur::data::PreparedSeries;
use recur::model::SequenceModel;
use recur::run::{load_run_data, load_unseen_data, RunConfig, TaskKind};
use recur::serve::ServedRun;
use recur::tasks::calibration::CALIBRATION_FILE;
use recur::tasks::{BandCalibration, PredictionTask};

use crate::args::Args;

/// A bundled file: under the current folder, else the repository's.
pub fn bundled(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// A config with its data paths made absolute (relative ones are relative to the file).
pub(crate) fn load_config(path: &Path) -> Result<RunConfig, String> {
    let mut config = RunConfig::load(path).map_err(|e| e.to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    for f in &mut config.data.files {
        let p = base.join(&*f);
        *f = std::fs::canonicalize(&p).unwrap_or(p).display().to_string();
    }
    Ok(config)
}

/// A command's output `out` is none of the files it reads (`inputs`: what names each, and
/// its path): written over, a data file or a state would be lost.
pub(crate) fn refuse_writing_over(out: &Path, inputs: &[(&str, &Path)]) -> Result<(), String> {
    // a file not there yet is none of them
    let Ok(written) = std::fs::canonicalize(out) else { return Ok(()) };
    for (named_by, input) in inputs {
        if std::fs::canonicalize(input).is_ok_and(|path| path == written) {
            return Err(format!("{}: that is {named_by}; the output would be written over it", out.display()));
        }
    }
    Ok(())
}

/// The data files a command on a run reads: `--data`'s where given, else the run's own.
pub(crate) fn files_read(config: &RunConfig, args: &Args, known: &[&str]) -> Result<Vec<PathBuf>, String> {
    let given = data_files(args, known)?;
    Ok(if given.is_empty() { config.data.files.iter().map(PathBuf::from).collect() } else { given })
}

/// [`refuse_writing_over`] the data files `files` (as [`files_read`] gives them).
pub(crate) fn refuse_writing_over_data(out: &Path, files: &[PathBuf]) -> Result<(), String> {
    let inputs: Vec<(&str, &Path)> = files.iter().map(|f| ("a data file it reads", f.as_path())).collect();
    refuse_writing_over(out, &inputs)
}

/// A trained run folder: its resolved config (checked against `kind` when given), its
/// model and its data.
pub(crate) fn open_run(
    dir: &Path,
    kind: Option<TaskKind>,
) -> Result<(RunConfig, SequenceModel<f32>, PreparedSeries), String> {
    let (config, model) = open_run_model(dir, kind)?;
    let data = load_run_data(dir, &config).map_err(|e| format!("{e}\n(to use the run on other data: --data FILE)"))?;
    Ok((config, model, data))
}

/// The files `--data FILE,...` names (none without it).
pub(crate) fn data_files(args: &Args, known: &[&str]) -> Result<Vec<PathBuf>, String> {
    let files: String = args.get("data", known, String::new())?;
    Ok(files.split(',').filter(|f| !f.trim().is_empty()).map(PathBuf::from).collect())
}

/// Run folder `dir`'s file `NAME.EXT` for an output of the run's own data; on other data
/// (`--data`), beside it rather than over it: `NAME_STEM.EXT`, STEM the first file's name.
pub(crate) fn output_beside_run(
    dir: &Path,
    args: &Args,
    known: &[&str],
    name: &str,
    ext: &str,
) -> Result<PathBuf, String> {
    Ok(match data_files(args, known)?.first().and_then(|f| f.file_stem()) {
        Some(stem) => dir.join(format!("{name}_{}.{ext}", stem.to_string_lossy())),
        None => dir.join(format!("{name}.{ext}")),
    })
}

/// [`open_run`], or with `--data FILE,...` given: the run on those files instead of its
/// own data, read with its settings and fitted scaler, all of them its test part.
pub(crate) fn open_run_on_data(
    dir: &Path,
    kind: Option<TaskKind>,
    args: &Args,
    known: &[&str],
) -> Result<(RunConfig, SequenceModel<f32>, PreparedSeries), String> {
    let files = data_files(args, known)?;
    if files.is_empty() {
        return open_run(dir, kind);
    }
    let ServedRun { config, model, fitted, .. } = open_run_for_serving(dir)?;
    if let Some(k) = kind.filter(|&k| k != config.task.kind) {
        return Err(format!("{}: the run was trained for {:?}, not {k:?}", dir.display(), config.task.kind));
    }
    let data = load_unseen_data(&config.data, &files, &fitted).map_err(|e| e.to_string())?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    eprintln!(
        "data: {} ({} steps of {} s, {} entit{}; not seen in training: all of it scored, standardised as in training)",
        names.join(", "),
        data.grid.len(),
        data.grid.bin_seconds,
        data.entities.len(),
        if data.entities.len() == 1 { "y" } else { "ies" }
    );
    let concerns: Vec<String> = data.shift_from_training(&data.test).iter().filter_map(|s| s.concern()).collect();
    match concerns.is_empty() {
        true => eprintln!(
            "every signal as in training (observed; mean within ±1 training sd of the training mean, spread 0.5-2×)"
        ),
        false => eprintln!("unlike training (in training standard deviations): {}", concerns.join("; ")),
    }
    Ok((config, model, data))
}

/// A run folder's config and model.
fn open_run_model(dir: &Path, kind: Option<TaskKind>) -> Result<(RunConfig, SequenceModel<f32>), String> {
    let config = RunConfig::load(dir.join("run.toml")).map_err(|e| e.to_string())?;
    if let Some(k) = kind.filter(|&k| k != config.task.kind) {
        return Err(format!("{}: the run was trained for {:?}, not {k:?}", dir.display(), config.task.kind));
    }
    let model = SequenceModel::load(dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    Ok((config, model))
}

/// A run folder as a model is served from it ([`ServedRun`]), without its training data.
pub(crate) fn open_run_for_serving(dir: &Path) -> Result<ServedRun, String> {
    ServedRun::open(dir).map_err(|e| e.to_string())
}

/// The prediction task of a run folder, its bands scaled by the folder's calibration
/// (`recur calibrate`) where it has one.
pub(crate) fn calibrated_task<'a>(
    dir: &Path,
    config: &RunConfig,
    data: &'a PreparedSeries,
) -> Result<PredictionTask<'a>, String> {
    let task = PredictionTask::from_config(data, &config.prediction()).map_err(|e| e.to_string())?;
    let calibration = run_calibration(dir, task.targets().names())?;
    Ok(task.with_calibration(calibration))
}

/// The calibration of run folder `dir`, if it has one; says so on stderr when it does.
pub(crate) fn run_calibration(dir: &Path, signals: &[String]) -> Result<Option<BandCalibration>, String> {
    let calibration = BandCalibration::load_from_run(dir, signals).map_err(|e| e.to_string())?;
    tell_calibration(dir, calibration.as_ref());
    Ok(calibration)
}

/// Says on stderr that run folder `dir`'s bands are calibrated by `calibration`, if they are.
pub(crate) fn tell_calibration(dir: &Path, calibration: Option<&BandCalibration>) {
    if let Some(c) = calibration {
        let paths =
            if c.paths > 0 { format!(", past the direct steps from {} sample paths", c.paths) } else { String::new() };
        eprintln!(
            "bands calibrated on the validation part ({}: {} factor(s) per signal{paths})",
            dir.join(CALIBRATION_FILE).display(),
            c.steps()
        );
    }
}
