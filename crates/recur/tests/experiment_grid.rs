//! An interrupted grid, run again, finishes only the missing runs and gives the same
//! table as an uninterrupted one (a tiny grid on the bundled Beijing station); a variant
//! may read a signal as ln(1 + x) or give it a floor, and change the data in no other way;
//! variants must score the same signals (`task.targets`) and reach the grid's horizon.

use std::path::{Path, PathBuf};

use recur::experiments::{collect_results, run_grid, table, GridConfig};

const GRID: &str = r#"
name = "tiny"
seeds = [1, 2]
parallel = 2

[base.data]
files = ["../../data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv"]
drop = ["No", "wd", "station"]

[base.task]
kind = "prediction"
window = 12

[base.model]
hidden_size = 8

[base.train]
epochs = 2
max_batches_per_epoch = 4

[[variants]]
name = "GRU"
model = { cell = "gru_reset_after" }

[[variants]]
name = "GRU, PM2.5 as ln(1 + x)"
model = { cell = "gru_reset_after" }
data = { log1p = ["PM2.5"] }

[[variants]]
name = "GRU, PM2.5 floored at 0"
model = { cell = "gru_reset_after" }
data = { floor = { "PM2.5" = 0.0 } }

[[variants]]
name = "BiLSTM gate"
model = { cell = "lstm", bidirectional = true, coupling = "decoupled", fusion = "gated" }

[lecture]
"GRU" = [0.59, 0.33]
"#;

fn grid(dir: &Path) -> (GridConfig, PathBuf) {
    let path = dir.join("grid.toml");
    std::fs::write(&path, GRID).unwrap();
    (GridConfig::load(&path).unwrap(), path)
}

#[test]
fn an_interrupted_grid_finishes_only_the_missing_runs_and_gives_the_same_table() {
    let scratch = tempfile::Builder::new().prefix("recur-grid-").tempdir().unwrap();
    let root = scratch.path();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (g, path) = grid(root);

    let whole = root.join("whole");
    assert_eq!(run_grid(&g, &path, &whole, (0, 1), &base).unwrap(), 8);
    // "interrupted": only half of the runs done (one shard of two)
    let resumed = root.join("resumed");
    assert_eq!(run_grid(&g, &path, &resumed, (0, 2), &base).unwrap(), 4);
    assert_eq!(run_grid(&g, &path, &resumed, (0, 1), &base).unwrap(), 4, "only the missing runs");
    assert_eq!(run_grid(&g, &path, &resumed, (0, 1), &base).unwrap(), 0, "nothing left");

    let t1 = table(&collect_results(&[whole.join("tiny")]).unwrap(), &g.lecture);
    let t2 = table(&collect_results(&[resumed.join("tiny")]).unwrap(), &g.lecture);
    let key = |t: &[recur::experiments::TableRow]| {
        t.iter().map(|r| (r.variant.clone(), r.mean, r.std, r.seeds)).collect::<Vec<_>>()
    };
    assert_eq!(key(&t1), key(&t2));
    assert_eq!(t1.len(), 4);
    // the logged variant ran on its own preparation of the data: scored in PM2.5's own
    // units, last observation carried forward scores as on the plain data
    let results = collect_results(&[whole.join("tiny")]).unwrap();
    let locf = |variant: &str| results.iter().find(|r| r.variant == variant).unwrap().baselines[0].clone();
    let (plain, logged) = (locf("GRU"), locf("GRU, PM2.5 as ln(1 + x)"));
    assert_eq!(plain.0, "last observation carried forward");
    assert!((plain.1 - logged.1).abs() < 1e-3, "{plain:?} {logged:?}");
    // the floored variant too: the carried observations are never below the floor
    assert_eq!(locf("GRU, PM2.5 floored at 0"), plain);
    let mean = |variant: &str| t1.iter().find(|r| r.variant == variant).unwrap().mean;
    assert_ne!(mean("GRU"), mean("GRU, PM2.5 as ln(1 + x)"));
    assert!(t1.iter().all(|r| r.seeds == 2));
    assert_eq!(t1.iter().find(|r| r.variant == "GRU").unwrap().lecture, Some((0.59, 0.33)));
}

#[test]
fn a_variant_that_cannot_run_or_compare_is_named_when_the_grid_is_read() {
    let scratch = tempfile::Builder::new().prefix("recur-grid-bad-").tempdir().unwrap();
    let root = scratch.path();
    let path = root.join("grid.toml");
    std::fs::write(&path, GRID.replace("cell = \"lstm\"", "cel = \"lstm\"")).unwrap();
    let err = GridConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("variant `BiLSTM gate`") && err.contains("unknown field `cel`"), "{err}");
    std::fs::write(&path, GRID.replace("data = { log1p = [\"PM2.5\"] }", "data = { files = [\"other.csv\"] }"))
        .unwrap();
    let err = GridConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("changes `data.files`")
            && err.contains(
                "may change data.log1p, data.floor, data.calendar, data.calendar_utc_offset_hours, data.time_zone only"
            ),
        "{err}"
    );
    // a variant scoring PM2.5 alone against variants scoring every signal: not one table
    let targeted =
        GRID.replace("model = { cell = \"lstm\",", "task = { targets = [\"PM2.5\"] }\nmodel = { cell = \"lstm\",");
    std::fs::write(&path, &targeted).unwrap();
    let err = GridConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("variants `GRU` and `BiLSTM gate` score other signals") && err.contains("[\"PM2.5\"]"),
        "{err}"
    );
    // every variant PM2.5 alone, one step ahead: no horizon of 3 (no closed loop)
    let all = GRID
        .replace("window = 12", "window = 12\ntargets = [\"PM2.5\"]")
        .replace("parallel = 2", "parallel = 2\nhorizon = 3");
    std::fs::write(&path, &all).unwrap();
    let err = GridConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("variant `GRU` forecasts task.targets alone 1 step(s) ahead")
            && err.contains("task.steps_ahead = 3"),
        "{err}"
    );
    std::fs::write(&path, all.replace("targets = [\"PM2.5\"]", "targets = [\"PM2.5\"]\nsteps_ahead = 3")).unwrap();
    GridConfig::load(&path).unwrap();
}

/// A grid scored on one signal (`signal = "PM2.5"`): a GRU forecasting every signal and one
/// forecasting PM2.5 alone in one table, each scored on PM2.5 only — their persistence
/// baselines the very same number, the task's PM2.5 persistence; a variant not forecasting
/// the signal is refused when the grid is read.
#[test]
fn a_grid_scored_on_one_signal_ranks_models_of_every_signal_and_of_that_one() {
    let scratch = tempfile::Builder::new().prefix("recur-grid-signal-").tempdir().unwrap();
    let root = scratch.path();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = GRID
        .replace("name = \"tiny\"", "name = \"tiny-pm\"\nsignal = \"PM2.5\"")
        .replace("seeds = [1, 2]", "seeds = [1]");
    let (head, _) = text.split_once("[[variants]]").unwrap();
    let grid_text = format!(
        "{head}[[variants]]\nname = \"GRU\"\n\n[[variants]]\nname = \"GRU, PM2.5 alone\"\ntask = {{ targets = [\"PM2.5\"] }}\n"
    );
    let path = root.join("grid.toml");
    std::fs::write(&path, &grid_text).unwrap();
    let g = GridConfig::load(&path).unwrap();
    assert_eq!(run_grid(&g, &path, root, (0, 1), &base).unwrap(), 2);
    let results = collect_results(&[root.join("tiny-pm")]).unwrap();
    let locf = |variant: &str| results.iter().find(|r| r.variant == variant).unwrap().baselines[0].clone();
    assert_eq!(locf("GRU"), locf("GRU, PM2.5 alone"));
    let (_, config) = g.variant(1, &path).unwrap();
    let data = recur::run::load_data(&config.data, &base).unwrap();
    let task = recur::tasks::PredictionTask::from_config(&data, &config.prediction()).unwrap();
    let pm25 = task.baselines(&data.test).unwrap()[0].1.micro_mse;
    assert_eq!(locf("GRU").1, pm25, "PM2.5's persistence");
    // the model forecasting every signal is scored on PM2.5 alone too: its run's PM2.5 entry
    let gru = results.iter().find(|r| r.variant == "GRU").unwrap();
    let (_, mut every) = g.variant(0, &path).unwrap();
    every.train.seed = 1;
    let outcome = recur::run::run(&every, &data, None, false).unwrap();
    let pm = data.grid.signals.iter().position(|s| s == "PM2.5").unwrap();
    assert_eq!(gru.micro_mse, outcome.scores[0].metrics.per_signal_mse[pm]);
    assert_ne!(gru.micro_mse, outcome.scores[0].metrics.micro_mse);

    std::fs::write(&path, grid_text.replace("targets = [\"PM2.5\"]", "targets = [\"PM10\"]")).unwrap();
    let err = GridConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("variant `GRU, PM2.5 alone` forecasts [\"PM10\"] (task.targets), not the grid's signal `PM2.5`"),
        "{err}"
    );
}
