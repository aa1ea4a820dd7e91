//! BPTT and the vanishing gradient, measured. For L = vᵀ h_T, the lecture's argument
//! ∂h_{t+1}/∂h_t = D_{t+1} W_hh with |tanh'| ≤ 1 gives, for an Elman network,
//!
//! ‖∂L/∂h_t‖ ≤ ‖v‖ · ‖W_hh‖₂^{T−t}.
//!
//! [`state_gradient_norms`] measures ‖∂L/∂h_t‖ for every t exactly: it restarts the
//! encoder from (h_t, c_t) on the rest of the sequence and reads ∂L/∂h0 from the
//! (gradient-checked) backward pass — O(T²) steps, nothing approximated.
//!
//! [`look_back`] asks the same of a trained causal model on its own data: how strongly
//! its output at the last step, ŷ_T, depends on the state k steps back and on each input
//! k steps back — how far back the model reads, against the window it was trained on.

use recur_kernels::Real;

use crate::error::{Error, Result};
use crate::model::{Continuation, HeadSteps, SequenceModel};
use crate::rng::Rng;
use crate::rnn::{InitialState, InputGradient, Rnn, SequenceBatch};

/// ‖∂L/∂h_t‖ for t = 1..=T (index t−1), L = vᵀ h_T, for a one-layer unidirectional
/// encoder on one sequence `x: [T, 1, D]`, `probe` v: `[H]`.
///
/// # Errors
/// A multi-layer or bidirectional encoder, or shapes that disagree.
pub fn state_gradient_norms(rnn: &Rnn<f64>, x: &[f64], probe: &[f64]) -> Result<Vec<f64>> {
    let cfg = rnn.config();
    if cfg.num_layers != 1 || cfg.bidirectional {
        return Err(Error::invalid("encoder", "gradient norms are measured on one unidirectional layer"));
    }
    let d = cfg.input_size;
    let steps = x.len() / d;
    let h = cfg.hidden_size;
    crate::error::check_len("probe", probe, &[h])?;
    let mut norms = vec![0.0; steps];
    norms[steps - 1] = probe.iter().map(|v| v * v).sum::<f64>().sqrt();
    let has_c = cfg.cell.has_cell_state();
    for t in 1..steps {
        // (h_t, c_t) after the first t steps
        let prefix = rnn
            .forward(&SequenceBatch { x: &x[..t * d], steps: t, batch: 1, lengths: None }, &InitialState::default())?;
        let rest = &x[t * d..];
        let suffix = SequenceBatch { x: rest, steps: steps - t, batch: 1, lengths: None };
        let state = InitialState { h0: Some(&prefix.h_n), c0: has_c.then_some(&prefix.c_n[..]) };
        let (out, mut cache) = rnn.forward_train(&suffix, &state, 0)?;
        let mut grads = rnn.zero_grads();
        let zeros = vec![0.0; out.output.len()];
        let g = rnn.backward(&suffix, &mut cache, &zeros, Some(probe), None, &mut grads)?;
        norms[t - 1] = g.d_h0.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    Ok(norms)
}

/// The largest singular value of the row-major `rows × cols` matrix `m`, by power
/// iteration on MᵀM from a seeded random start.
pub fn spectral_norm(m: &[f64], rows: usize, cols: usize, iterations: usize) -> f64 {
    let mut rng = Rng::new(7);
    let mut v: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
    let mut sigma = 0.0;
    for _ in 0..iterations {
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
        v.iter_mut().for_each(|a| *a /= norm);
        let u: Vec<f64> = (0..rows).map(|i| (0..cols).map(|j| m[i * cols + j] * v[j]).sum()).collect();
        sigma = u.iter().map(|a| a * a).sum::<f64>().sqrt();
        v = (0..cols).map(|j| (0..rows).map(|i| m[i * cols + j] * u[i]).sum()).collect();
    }
    sigma
}

/// The gradients of L = Σ_b v_bᵀ ŷ_{T,b} (the model's output at the last step of each of
/// the B sequences, read along the probe v) that [`probe_gradients`] returns.
#[derive(Clone, Debug)]
pub struct ProbedGradients<T> {
    /// ∂L/∂x_t, `[T, B, D]`.
    pub d_x: Vec<T>,
    /// Index k − 1 for distance k = 1..=T: ∂L/∂h_{T−k}, `[L, B, H]`, where h_t is the
    /// state of every layer of the forward stack after t steps (h_0 the initial state),
    /// an LSTM's c_t and a fuser RNN's own state held fixed.
    pub d_state: Vec<Vec<T>>,
}

/// ∂L/∂x and ∂L/∂h_t for every t, L = Σ_b v_bᵀ ŷ_{T,b}, `probe` v: `[B, O]`, for a causal
/// model (unidirectional, or decoupled: its inference path) without its training noise
/// ([`SequenceModel::without_training_noise`]). ∂L/∂h_t restarts the model from h_t on
/// the steps after t and reads the state gradient of its (gradient-checked) backward:
/// O(T²) steps, exact.
///
/// # Errors
/// A model that reads the future, sequences of different lengths, or shapes that
/// disagree.
pub fn probe_gradients<T: Real>(
    model: &SequenceModel<T>,
    input: &SequenceBatch<'_, T>,
    probe: &[T],
) -> Result<ProbedGradients<T>> {
    if !model.is_causal() {
        return Err(Error::invalid("model", "its output reads the future (a coupled bidirectional encoder)"));
    }
    if input.lengths.is_some() {
        return Err(Error::invalid("lengths", "look-back is measured on whole sequences of one length"));
    }
    let (steps, batch) = (input.steps, input.batch);
    let outputs = model.config().outputs;
    crate::error::check_len("probe", probe, &[batch, outputs])?;
    let width = input.x.len() / (steps * batch).max(1);
    let model = model.without_training_noise();
    let zeros_like =
        |out: &crate::model::HeadOutput<T>| (vec![T::ZERO; out.mean.len()], vec![T::ZERO; out.precision.len()]);
    // the path inference runs only: a decoupled model's teacher plays no part in its output
    let (out, mut cache) = model.forward_train_inference_path(input, &Continuation::default(), 0, HeadSteps::Last)?;
    let d_precision = vec![T::ZERO; out.student.precision.len()];
    let mut grads = model.zeros_like();
    let d_x = model.backward_with(&mut cache, (probe, &d_precision), None, &mut grads, InputGradient::Compute)?;

    // after t steps: the forward stack's state, and a fuser RNN's (None: the initial ones)
    let (mut state, mut fuser) = (None, None);
    let mut d_state = vec![Vec::new(); steps];
    // restart t runs T − t steps
    let progress = crate::train::progress_bar((steps * (steps + 1) / 2) as u64, "state gradients (steps run)");
    for t in 0..steps {
        let from =
            Continuation { state: InitialState::carried(&state), ended: None, fuser: InitialState::carried(&fuser) };
        let rest = SequenceBatch { x: &input.x[t * batch * width..], steps: steps - t, batch, lengths: None };
        let (out, mut cache) = model.forward_train_inference_path(&rest, &from, 0, HeadSteps::All)?;
        let (mut d_mean, d_precision) = zeros_like(&out.student);
        d_mean[(steps - t - 1) * batch * outputs..].copy_from_slice(probe);
        let mut grads = model.zeros_like();
        let g = model.backward_to_state(&mut cache, (&d_mean, &d_precision), None, &mut grads, InputGradient::Skip)?;
        d_state[steps - t - 1] = g.d_h0;
        let step =
            SequenceBatch { x: &input.x[t * batch * width..(t + 1) * batch * width], steps: 1, batch, lengths: None };
        let (_, cache) = model.forward_train_inference_path(&step, &from, 0, HeadSteps::All)?;
        let owned = |(h, c): (&[T], &[T])| (!h.is_empty()).then(|| (h.to_vec(), c.to_vec()));
        (state, fuser) = (owned(cache.final_state()), owned(cache.fuser_final_state()));
        progress.inc((steps - t) as u64);
    }
    progress.finish_and_clear();
    Ok(ProbedGradients { d_x, d_state })
}

/// How far back a causal model's output at the last step reads, over B sequences of T
/// steps: root mean squares over the sequences of ‖∂ŷ_T/∂h_{T−k}‖_F and ‖∂ŷ_T/∂x_{T−k,j}‖
/// (Frobenius norms of the Jacobians of all O outputs), estimated without bias from one
/// Gaussian probe v ~ N(0, I_O) per sequence: E_v ‖Jᵀv‖² = ‖J‖_F².
#[derive(Clone, Debug, PartialEq)]
pub struct LookBack {
    pub steps: usize,
    pub sequences: usize,
    pub input_size: usize,
    /// Index k − 1 for distance k = 1..=T: the state after T − k steps (k = T: the
    /// initial state).
    pub state: Vec<f64>,
    /// `[T, D]`, row k for input x_{T−k} (k = 0: the last step read).
    pub inputs: Vec<f64>,
}

impl LookBack {
    /// The sensitivity to every input k steps back together, √(Σ_j inputs[k, j]²).
    pub fn all_inputs(&self, k: usize) -> f64 {
        let d = self.input_size;
        self.inputs[k * d..(k + 1) * d].iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    /// The fewest steps back K whose inputs x_{T−K+1} … x_T hold `share` of the summed
    /// squared input sensitivity Σ_k Σ_j inputs[k, j]² (T if none short of it does).
    pub fn steps_holding(&self, share: f64) -> usize {
        let per_step: Vec<f64> = (0..self.steps).map(|k| self.all_inputs(k).powi(2)).collect();
        let total: f64 = per_step.iter().sum();
        let mut held = 0.0;
        for (k, s) in per_step.iter().enumerate() {
            held += s;
            if held >= share * total {
                return k + 1;
            }
        }
        self.steps
    }

    /// The fewest steps back K from which on every input gradient, [`LookBack::all_inputs`]
    /// of k ≥ K, stays below `fraction` of the largest (T if the last does not).
    pub fn fades_below(&self, fraction: f64) -> usize {
        let all: Vec<f64> = (0..self.steps).map(|k| self.all_inputs(k)).collect();
        let limit = fraction * all.iter().copied().fold(0.0, f64::max);
        all.iter().rposition(|&v| v >= limit).map_or(0, |k| k + 1)
    }
}

/// [`LookBack`] of `model` on the sequences of `input` (`[T, B, D]`, one length), the
/// probes drawn from `seed`.
///
/// # Errors
/// As [`probe_gradients`].
pub fn look_back<T: Real>(model: &SequenceModel<T>, input: &SequenceBatch<'_, T>, seed: u64) -> Result<LookBack> {
    let (steps, batch) = (input.steps, input.batch);
    let mut rng = Rng::new(seed);
    let probe: Vec<T> = (0..batch * model.config().outputs).map(|_| T::from_f64(rng.normal())).collect();
    let g = probe_gradients(model, input, &probe)?;
    let width = g.d_x.len() / (steps * batch).max(1);
    let rms = |squares: f64| (squares / batch as f64).sqrt();
    let mut inputs = vec![0.0; steps * width];
    for k in 0..steps {
        for j in 0..width {
            let at = |b: usize| g.d_x[((steps - 1 - k) * batch + b) * width + j].to_f64();
            inputs[k * width + j] = rms((0..batch).map(|b| at(b).powi(2)).sum());
        }
    }
    let state = g.d_state.iter().map(|d| rms(d.iter().map(|v| v.to_f64().powi(2)).sum())).collect();
    Ok(LookBack { steps, sequences: batch, input_size: width, state, inputs })
}
