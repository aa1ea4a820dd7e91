//! `recur export` and `recur import`: a trained run to PyTorch, and a PyTorch model into a
//! run folder that `recur eval`, `predict`, `stream` and `reconstruct` use.

use std::path::{Path, PathBuf};

use recur::data::FittedScaler;
use recur::io::{import_state_dict, write_atomically};
use recur::report::score_table;
use recur::run::{evaluate, load_data, TaskKind};
use recur::tasks::Uncertainty;

use crate::args::Args;
use crate::run_folder::{load_config, open_run_for_serving};

/// The PyTorch module that rebuilds any exportable recur model (also `tools/recur_torch.py`).
const RECUR_TORCH: &str = include_str!("../../../tools/recur_torch.py");

pub fn export(args: &Args) -> Result<(), String> {
    let known = ["run", "out"];
    let dir = PathBuf::from(args.get("run", &known, String::new())?);
    if dir.as_os_str().is_empty() {
        return Err("usage: recur export --run DIR [--out DIR/pytorch]".into());
    }
    let out = PathBuf::from(args.get("out", &known, dir.join("pytorch").display().to_string())?);
    let recur::serve::ServedRun { config, model, fitted, .. } = open_run_for_serving(&dir)?;
    let encoder = &model.config().encoder;
    let torch_cell = encoder.cell.torch_mode().is_some();
    if !torch_cell || encoder.layer_norm || encoder.learn_initial_state {
        eprintln!(
            "note: {:?}{}{} has no torch.nn equivalent; recur_torch.load will refuse this model (its tensors are still PyTorch-named safetensors)",
            encoder.cell,
            if encoder.layer_norm { " with layer norm" } else { "" },
            if encoder.learn_initial_state { " with a learned initial state" } else { "" }
        );
    }
    let model_file = dir.join("model.safetensors");
    let bytes = std::fs::read(&model_file).map_err(|e| format!("{}: {e}", model_file.display()))?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    // the signals forecast: every one (C of them), or task.targets (P of the C read)
    let targets = config.scored_signals(&fitted.signals);
    let (p, of) = match targets.len() == fitted.signals.len() {
        true => ("C", String::new()),
        false => ("P", " of the P signals in targets (in that order)".to_string()),
    };
    let next = match config.task.steps_ahead {
        1 => format!("the next step's z{of}"),
        s => format!("the next {s} steps' z{of}, {s} blocks of {p} (block h - 1: step t + h)"),
    } + match config.task.uncertainty {
        Uncertainty::Gaussian => " and a precision λ for each (σ = 1/√λ, in z units)",
        _ => "",
    };
    let band = match config.task.uncertainty {
        Uncertainty::Quantile => format!(
            ". Its band: precision holds per step two distances for each value, in z units (its {p}·S distances below, \
             then its {p}·S above); the band runs from the forecast minus below (its 2.275 % quantile) to the forecast plus above \
             (its 97.725 % quantile)"
        ),
        _ => String::new(),
    };
    let log = match fitted.scaler.log1p.contains(&true) {
        true => ", y = ln(1 + value) for the signals marked in log1p, else y = value; back: value = exp(z * std + mean) - 1 for those (a band z ± 2σ maps back skewed)",
        false => ", y = value",
    };
    // a value the training's outlier screen would take out (data.outlier_mads) is missing
    let screened = match fitted.scaler.screen.iter().any(Option::is_some) {
        true => " (and where a value x lies outside its signal's screen [median, reach]: |x - median| > reach)",
        false => "",
    };
    let input = match (config.task.kind, config.task.residual) {
        (TaskKind::Prediction, residual) => format!(
            "per step [z * m, m] (2C values): z = (y - mean) / std{log}, m = 1 where observed, 0 where missing{screened} (z * m = 0). \
             Output at step t: {next}{}{band}",
            if residual {
                ", as a change from each forecast signal's last observation within the last window - 1 steps (0 if none): x = z_last + output, in every block"
            } else {
                ""
            }
        ),
        (TaskKind::Reconstruction, residual) => format!(
            "per step [z * m, m{}]: z = (y - mean) / std{log}, m = 1 where observed, 0 where missing{screened}. Output: every signal's z at every step{}, and a precision λ (σ = 1/√λ)",
            if residual { ", z_interp (each signal linearly interpolated between its observations)" } else { "" },
            if residual { " as a correction to z_interp" } else { "" }
        ),
    };
    let input = match fitted.calendar.is_empty() {
        true => input,
        false => format!("{input}. Inputs per step: the signals' above, {}", fitted.calendar.description()),
    };
    let calibration = recur::tasks::BandCalibration::load_from_run(&dir, &targets).map_err(|e| e.to_string())?;
    let band_scale = calibration.map(|c| c.scale.chunks(targets.len()).map(<[f32]>::to_vec).collect::<Vec<_>>());
    let after = "values mapped back below a signal's floor (null: none) are lifted to it, band edges too; with band_scale \
                 (recur calibrate), "
        .to_string()
        + match config.task.kind {
            TaskKind::Prediction => {
                "a band's reach from the forecast to each edge, in z, at h steps ahead is multiplied by \
                 band_scale[h - 1][forecast signal] first"
            }
            TaskKind::Reconstruction => {
                "a reconstructed value's σ (in z) is multiplied by band_scale[0][signal] first (one row: one factor per \
                 signal)"
            }
        };
    // per signal, the cells besides empty, NA and NaN that mean "no value" (data.missing_values)
    let missing = config.data.missing().map_err(|e| e.to_string())?;
    let missing_values: Vec<Vec<&String>> = fitted.signals.iter().map(|s| missing.marks_of(s).collect()).collect();
    let preprocessing = serde_json::json!({
        "task": config.task.kind,
        "signals": fitted.signals,
        "targets": targets,
        "mean": fitted.scaler.mean,
        "std": fitted.scaler.std,
        "log1p": (0..fitted.signals.len()).map(|j| fitted.scaler.is_log1p(j)).collect::<Vec<_>>(),
        "floor": (0..fitted.signals.len()).map(|j| fitted.scaler.floor_of(j)).collect::<Vec<_>>(),
        "screen": (0..fitted.signals.len()).map(|j| fitted.scaler.screen.get(j).copied().flatten()).collect::<Vec<_>>(),
        "missing_values": missing_values,
        "band_scale": band_scale,
        "after": after,
        "window": config.task.window,
        "residual": config.task.residual,
        "steps_ahead": config.task.steps_ahead,
        "uncertainty": config.task.uncertainty,
        "bin_seconds": fitted.bin_seconds,
        "calendar": fitted.calendar,
        "input": input,
    });
    let text = serde_json::to_string_pretty(&preprocessing).map_err(|e| e.to_string())?;
    for (name, content) in [
        ("model.safetensors", &bytes[..]),
        ("recur_torch.py", RECUR_TORCH.as_bytes()),
        ("preprocessing.json", text.as_bytes()),
    ] {
        write_atomically(&out.join(name), content).map_err(|e| e.to_string())?;
    }
    println!("wrote {}: model.safetensors, recur_torch.py, preprocessing.json", out.display());
    println!("in Python (torch and safetensors installed), from that folder:");
    println!("    from recur_torch import load");
    println!("    model = load(\"model.safetensors\")   # a torch.nn.Module");
    println!("    mean, precision = model(x, lengths)  # x: [T, B, D] as preprocessing.json says");
    Ok(())
}

pub fn import(args: &Args) -> Result<(), String> {
    let known = ["torch", "config", "rename", "out"];
    let torch: String = args.get("torch", &known, String::new())?;
    let config_path: String = args.get("config", &known, String::new())?;
    if torch.is_empty() || config_path.is_empty() {
        return Err(
            "usage: recur import --torch FILE.safetensors --config RUN.toml [--rename from=to,…] [--out DIR]".into()
        );
    }
    let renames = args
        .get("rename", &known, String::new())?
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|r| match r.split_once('=') {
            Some((from, to)) => Ok((from.trim().to_string(), to.trim().to_string())),
            None => Err(format!("--rename: `{r}` is not from=to")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = load_config(Path::new(&config_path))?;
    let stem =
        Path::new(&torch).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "import".into());
    let out = PathBuf::from(args.get("out", &known, format!("runs/{stem}"))?);
    let data = load_data(&config.data, Path::new(".")).map_err(|e| e.to_string())?;
    let mut model = import_state_dict(Path::new(&torch), config.model_config(data.grid.channels()), &renames)
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    write_atomically(&out.join("run.toml"), config.to_toml().as_bytes()).map_err(|e| e.to_string())?;
    model.save(out.join("model.safetensors"), Default::default()).map_err(|e| e.to_string())?;
    FittedScaler::of(&data).save_to_run(&out).map_err(|e| e.to_string())?;
    println!(
        "imported {} parameters from {torch} into {}: run.toml, model.safetensors, scaler.json",
        model.num_parameters(),
        out.display()
    );
    let scores = evaluate(&config, &data, &model).map_err(|e| e.to_string())?;
    print!("{}", score_table(&scores));
    Ok(())
}
