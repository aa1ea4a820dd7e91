//! `recur export` and `recur import` end to end on a briefly trained prediction run on the
//! bundled Beijing station (real data). Export writes the model, the PyTorch module that
//! rebuilds it (`tools/recur_torch.py`, checked against PyTorch by `tools/check_export.py`
//! where torch is installed) and the preprocessing; import takes a state dict under a
//! user's module names (`rnn.`, `fc.`, no recur metadata: what `save_file(net.state_dict())`
//! writes) and gives a run that scores exactly as the original; mistakes are named.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use recur::io::{write_f32, TensorFile};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn recur(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recur")).args(args).current_dir(repo()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn write_config(dir: &std::path::Path, hidden: usize) -> PathBuf {
    let csv = repo().join("data/beijing/PRSA_Data_Aotizhongxin_20130301-20170228.csv");
    let path = dir.join(format!("run-h{hidden}.toml"));
    std::fs::write(
        &path,
        format!(
            "[data]\nfiles = [{:?}]\ndrop = [\"No\", \"wd\", \"station\"]\nmissing_values = [\"Bad\"]\n\
             missing_values_per_signal = {{ PM10 = [\"-1\"] }}\n[task]\nkind = \"prediction\"\nwindow = 12\n\
             [model]\nhidden_size = {hidden}\n[train]\nepochs = 1\nmax_batches_per_epoch = 3\nthreads = 1\n",
            csv.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// The score table of a command's output (the lines starting with `|`).
fn table(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with('|')).collect()
}

#[test]
fn a_run_exports_for_pytorch_and_a_pytorch_state_dict_imports_as_a_run() {
    let scratch = tempfile::Builder::new().prefix("recur-torch-cli-").tempdir().unwrap();
    let dir = scratch.path();
    let (config, run, exported) = (write_config(dir, 8), dir.join("run"), dir.join("exported"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (ok, _, err) = recur(&["train", "--config", &s(&config), "--out", &s(&run)]);
    assert!(ok, "{err}");

    let (ok, out, err) = recur(&["export", "--run", &s(&run), "--out", &s(&exported)]);
    assert!(ok, "{err}");
    assert!(out.contains("from recur_torch import load"), "{out}");
    assert_eq!(
        std::fs::read_to_string(exported.join("recur_torch.py")).unwrap(),
        std::fs::read_to_string(repo().join("tools/recur_torch.py")).unwrap()
    );
    assert_eq!(
        std::fs::read(exported.join("model.safetensors")).unwrap(),
        std::fs::read(run.join("model.safetensors")).unwrap()
    );
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("preprocessing.json")).unwrap()).unwrap();
    assert_eq!(pre["signals"].as_array().unwrap().len(), 11);
    assert_eq!(pre["signals"][0], "PM2.5");
    assert_eq!((pre["mean"].as_array().unwrap().len(), pre["std"].as_array().unwrap().len()), (11, 11));
    assert!(pre["std"].as_array().unwrap().iter().all(|v| v.as_f64().unwrap() > 0.0));
    assert!(pre["log1p"].as_array().unwrap().iter().all(|v| v == false), "no signal read as ln(1 + x)");
    assert!(pre["input"].as_str().unwrap().starts_with("per step [z * m, m]"));
    // no outlier screen configured (data.outlier_mads): none per signal, none in the input
    assert!(pre["screen"].as_array().unwrap().iter().all(serde_json::Value::is_null));
    assert!(!pre["input"].as_str().unwrap().contains("screen"));
    // the config's marks of "no value" (none occurs in this file), per signal
    assert_eq!(pre["missing_values"][0], serde_json::json!(["Bad"]));
    assert_eq!(pre["missing_values"][1], serde_json::json!(["Bad", "-1"]), "PM10's own mark too");

    // the model's tensors under a user's module names, without recur's config
    let file = TensorFile::read(exported.join("model.safetensors")).unwrap();
    let renamed: Vec<(String, recur::Tensor<f32>)> = file
        .tensors
        .keys()
        .map(|k| {
            let name = k.replace("forward.", "rnn.").replace("head.mean.", "fc.");
            (name, file.f32(k).unwrap())
        })
        .collect();
    let native = dir.join("native.safetensors");
    write_f32(&native, &renamed, HashMap::new()).unwrap();
    let imported = dir.join("imported");
    let import = |config: &PathBuf, rename: &str| {
        let (file, config, out) = (s(&native), s(config), s(&imported));
        recur(&["import", "--torch", &file, "--config", &config, "--rename", rename, "--out", &out])
    };
    let (ok, out, err) = import(&config, "rnn.=forward.,fc.=head.mean.");
    assert!(ok, "{err}");
    assert!(out.contains("imported 867 parameters"), "{out}");
    let (ok, original, err) = recur(&["eval", "--run", &s(&run)]);
    assert!(ok, "{err}");
    assert_eq!(table(&out), table(&original), "the imported run scores as the original");
    assert_eq!(table(&out).len(), 2 + 4, "model, streamed, two baselines");
    let (ok, again, err) = recur(&["eval", "--run", &s(&imported)]);
    assert!(ok, "{err}");
    assert_eq!(table(&again), table(&original));

    // mistakes, named: no renames, another model's shapes, two names made one, a bad rename
    let (ok, _, err) = import(&config, "");
    assert!(!ok && err.contains("native.safetensors") && err.contains("no tensor `forward.weight_ih_l0`"), "{err}");
    assert!(err.contains("the file holds fc.bias, fc.weight, rnn.bias_hh_l0"), "{err}");
    let wider = write_config(dir, 16);
    let (ok, _, err) = import(&wider, "rnn.=forward.,fc.=head.mean.");
    assert!(!ok && err.contains("`forward.weight_ih_l0`") && err.contains("[48, 22]"), "{err}");
    let (ok, _, err) = import(&config, "rnn.weight_ih=w,rnn.weight_hh=w");
    assert!(!ok && err.contains("two tensors are renamed to"), "{err}");
    let (ok, _, err) = import(&config, "rnn.");
    assert!(!ok && err.contains("`rnn.` is not from=to"), "{err}");
    // recur's own file carries its config: another config is refused as another model
    let (ok, _, err) = recur(&["import", "--torch", &s(&exported.join("model.safetensors")), "--config", &s(&wider)]);
    assert!(!ok && err.contains("it holds another model"), "{err}");
}
