//! The configuration files in `configs/` and the grids in `configs/grids/` parse (every
//! variant, its data files present), the reference holds exactly the defaults, and
//! mistakes are errors that name the key, line and column.

use std::path::{Path, PathBuf};

use recur::experiments::GridConfig;
use recur::run::{load_toml, RunConfig, TaskKind};
use recur::text::TextTaskConfig;

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn the_reference_config_is_exactly_the_defaults() {
    assert_eq!(RunConfig::load(configs().join("reference.toml")).unwrap(), RunConfig::default());
    // the optional [task.stream] table, uncommented, gives its own defaults
    let text = std::fs::read_to_string(configs().join("reference.toml")).unwrap();
    let block: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# [task.stream]") || l.starts_with("# k") || l.starts_with("# steps"))
        .collect();
    assert_eq!(block.len(), 4, "{block:?}");
    let uncommented: String = block.iter().map(|l| format!("{}\n", &l[2..])).collect();
    let config = RunConfig::from_toml(&uncommented, Path::new("stream.toml")).unwrap();
    assert_eq!(config.task.stream, Some(recur::tasks::StreamTraining::default()));
}

#[test]
fn the_text_reference_config_is_exactly_the_defaults() {
    let config: TextTaskConfig = load_toml(&configs().join("text-reference.toml")).unwrap();
    assert_eq!(config, TextTaskConfig::default());
    let err = recur::run::parse_toml::<TextTaskConfig>("epochz = 3\n", Path::new("t.toml")).unwrap_err().to_string();
    assert!(err.contains("line 1, column 1") && err.contains("unknown field `epochz`"), "{err}");
}

#[test]
fn every_bundled_config_parses() {
    for entry in std::fs::read_dir(configs()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "toml") && !name.contains("grid") && !name.starts_with("text") {
            RunConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(
        RunConfig::load(configs().join("beijing-reconstruction.toml")).unwrap().task.kind,
        TaskKind::Reconstruction
    );
}

#[test]
fn every_bundled_grid_parses_and_finds_its_data() {
    let mut grids = 0;
    for entry in std::fs::read_dir(configs().join("grids")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let grid = GridConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let (_, config) = grid.variant(0, &path).unwrap();
            for file in &config.data.files {
                let data = path.parent().unwrap().join(file);
                assert!(data.exists(), "{}: {} is missing", path.display(), data.display());
            }
            grids += 1;
        }
    }
    assert!(grids >= 10, "{grids} grids");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_place() {
    let err = RunConfig::from_toml("[model]\nhiden_size = 3\n", Path::new("run.toml")).unwrap_err().to_string();
    assert!(
        err.starts_with("run.toml: ") && err.contains("line 2, column 1") && err.contains("unknown field `hiden_size`"),
        "{err}"
    );
    let err = RunConfig::from_toml("[model]\ncell = \"lstmm\"\n", Path::new("run.toml")).unwrap_err().to_string();
    assert!(err.contains("unknown variant `lstmm`") && err.contains("line 2"), "{err}");
    let err = RunConfig::from_toml("[train]\nepochs = -1\n", Path::new("run.toml")).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}
