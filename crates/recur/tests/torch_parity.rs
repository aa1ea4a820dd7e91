//! PyTorch parity: every `*.safetensors` fixture in `RECUR_TORCH_FIXTURES` (default: the
//! copy in `tests/fixtures/pytorch`) is rebuilt from its metadata and compared tensor by
//! tensor: outputs, final states and every gradient (|a − b| ≤ 1e-5 + 1e-4·|b|), plus the
//! AdamW and gradient-clipping fixtures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use recur::io::TensorFile;
use recur::optim::{clip_grad_norm, AdamW, AdamWConfig, ParamSlot};
use recur::rnn::{CellKind, InitialState, Rnn, RnnConfig, SequenceBatch};
use recur::Tensor;

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

fn fixture_dir() -> PathBuf {
    std::env::var_os("RECUR_TORCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch"))
}

/// Returns a description of the worst element if any is outside tolerance.
fn compare(what: &str, got: &[f32], want: &Tensor<f32>) -> Option<String> {
    if got.len() != want.data.len() {
        return Some(format!("{what}: {} values, torch has {} (shape {:?})", got.len(), want.data.len(), want.shape));
    }
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &b)) in got.iter().zip(&want.data).enumerate() {
        let excess = (a as f64 - b as f64).abs() - (ATOL + RTOL * (b as f64).abs());
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    worst.map(|(i, _)| format!("{what}[{i}]: recur {} vs torch {}", got[i], want.data[i]))
}

fn check_rnn(file: &TensorFile) -> Vec<String> {
    let mode: String = file.meta("mode").unwrap();
    let config = RnnConfig {
        cell: CellKind::from_torch_mode(&mode).unwrap(),
        input_size: file.meta("input_size").unwrap(),
        hidden_size: file.meta("hidden_size").unwrap(),
        num_layers: file.meta("num_layers").unwrap(),
        bidirectional: file.meta("bidirectional").unwrap(),
        ..RnnConfig::default()
    };
    let (steps, batch): (usize, usize) = (file.meta("seq_len").unwrap(), file.meta("batch").unwrap());
    let mut rnn = Rnn::<f32>::new(config.clone(), 0).unwrap();
    let is_param = |n: &str| n.starts_with("weight_") || n.starts_with("bias_");
    let params: BTreeMap<String, Tensor<f32>> =
        file.tensors.keys().filter(|n| is_param(n)).map(|n| (n.clone(), file.f32(n).unwrap())).collect();
    rnn.load_state_dict(&params).unwrap();

    let x = file.f32("input").unwrap();
    let h0 = file.f32("h0").unwrap();
    let c0 = config.cell.has_cell_state().then(|| file.f32("c0").unwrap());
    let lengths: Option<Vec<usize>> = file
        .tensors
        .contains_key("lengths")
        .then(|| file.i64("lengths").unwrap().into_iter().map(|l| l as usize).collect());
    let input = SequenceBatch { x: &x.data, steps, batch, lengths: lengths.as_deref() };
    let state = InitialState { h0: Some(&h0.data), c0: c0.as_ref().map(|c| &c.data[..]) };
    let (out, mut cache) = rnn.forward_train(&input, &state, 0).unwrap();

    // Inference (no cache) must give the same numbers as training forward.
    let mut failures = Vec::new();
    if rnn.forward(&input, &state).unwrap() != out {
        failures.push("inference forward differs from training forward".to_string());
    }
    let mut check = |what: &str, got: &[f32]| {
        if let Some(f) = compare(what, got, &file.f32(what).unwrap()) {
            failures.push(f);
        }
    };
    check("output", &out.output);
    check("h_n", &out.h_n);
    if config.cell.has_cell_state() {
        check("c_n", &out.c_n);
    }

    let probe = file.f32("probe").unwrap();
    let probe_h = file.f32("probe_h").unwrap();
    let probe_c = config.cell.has_cell_state().then(|| file.f32("probe_c").unwrap());
    let mut grads = rnn.zero_grads();
    let d = rnn
        .backward(
            &input,
            &mut cache,
            &probe.data,
            Some(&probe_h.data),
            probe_c.as_ref().map(|p| &p.data[..]),
            &mut grads,
        )
        .unwrap();
    check("grad.input", &d.d_x);
    check("grad.h0", &d.d_h0);
    if config.cell.has_cell_state() {
        check("grad.c0", &d.d_c0);
    }
    for (i, g) in grads.iter().enumerate() {
        g.for_each(|field, t| check(&format!("grad.{}", rnn.param_name(i, field)), &t.data));
    }
    failures
}

fn check_adamw(file: &TensorFile) -> Vec<String> {
    let config = AdamWConfig {
        lr: file.meta("lr").unwrap(),
        beta1: file.meta("beta1").unwrap(),
        beta2: file.meta("beta2").unwrap(),
        eps: file.meta("eps").unwrap(),
        weight_decay: file.meta("weight_decay").unwrap(),
    };
    let steps: usize = file.meta("steps").unwrap();
    let mut param = file.f32("param0").unwrap().data;
    let mut opt = AdamW::new(config);
    let mut failures = Vec::new();
    for k in 1..=steps {
        let grad = file.f32(&format!("grad.step{k}")).unwrap().data;
        opt.step(config.lr, &mut [ParamSlot { value: &mut param, grad: &grad, decay: true }]);
        let name = format!("param.step{k}");
        failures.extend(compare(&name, &param, &file.f32(&name).unwrap()));
    }
    failures
}

fn check_clip(file: &TensorFile) -> Vec<String> {
    let max_norm: f64 = file.meta("max_norm").unwrap();
    let n = file.tensors.keys().filter(|k| k.starts_with('g')).count();
    let mut grads: Vec<Vec<f32>> = (0..n).map(|i| file.f32(&format!("g{i}")).unwrap().data).collect();
    let mut views: Vec<&mut [f32]> = grads.iter_mut().map(|g| &mut g[..]).collect();
    let total = clip_grad_norm(&mut views, max_norm) as f32;
    let mut failures: Vec<String> =
        compare("total_norm", &[total], &file.f32("total_norm").unwrap()).into_iter().collect();
    for (i, g) in grads.iter().enumerate() {
        let name = format!("clipped.g{i}");
        failures.extend(compare(&name, g, &file.f32(&name).unwrap()));
    }
    failures
}

#[test]
fn torch_parity_every_fixture_matches() {
    let dir = fixture_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read fixture folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.safetensors fixture in {}", dir.display());
    let mut failures = Vec::new();
    let mut counts = BTreeMap::<String, usize>::new();
    for path in &files {
        let file = TensorFile::read(path).unwrap();
        let kind: String = file.meta("kind").unwrap();
        let found = match kind.as_str() {
            "rnn" => check_rnn(&file),
            "adamw" => check_adamw(&file),
            "clip" => check_clip(&file),
            other => panic!("{}: unknown fixture kind {other}", path.display()),
        };
        *counts.entry(kind).or_default() += 1;
        failures.extend(found.into_iter().map(|f| format!("{}: {f}", path.file_name().unwrap().to_string_lossy())));
    }
    println!("torch parity: checked {} fixtures from {} ({counts:?})", files.len(), dir.display());
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn parameter_counts_equal_pytorch_for_every_fixture() {
    let dir = fixture_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "safetensors") {
            continue;
        }
        let file = TensorFile::read(&path).unwrap();
        if file.meta::<String>("kind").unwrap() != "rnn" {
            continue;
        }
        let torch: usize = file
            .tensors
            .iter()
            .filter(|(n, _)| n.starts_with("weight_") || n.starts_with("bias_"))
            .map(|(_, t)| t.shape.iter().product::<usize>())
            .sum();
        let config = RnnConfig {
            cell: CellKind::from_torch_mode(&file.meta::<String>("mode").unwrap()).unwrap(),
            input_size: file.meta("input_size").unwrap(),
            hidden_size: file.meta("hidden_size").unwrap(),
            num_layers: file.meta("num_layers").unwrap(),
            bidirectional: file.meta("bidirectional").unwrap(),
            ..RnnConfig::default()
        };
        let ours = Rnn::<f32>::new(config, 0).unwrap().num_parameters();
        assert_eq!(ours, torch, "{}", path.display());
        checked += 1;
    }
    assert!(checked > 0);
    println!("parameter counts equal PyTorch's for {checked} fixtures");
}
