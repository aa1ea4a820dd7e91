//! The lecture's comparison slide (parameters, speed of LSTM, GRU, BiLSTM, BiGRU),
//! measured on this machine instead of asserted. Also what the benchmark times.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::heads::Linear;
use crate::losses::masked_mse;
use crate::model::{Coupling, FusionKind, HeadKind, HeadSteps, ModelConfig, SequenceModel};
use crate::optim::clip_grad_norm;
use crate::optim::ParamSlot;
use crate::optim::{AdamW, AdamWConfig};
use crate::rng::Rng;
use crate::rnn::CellParams;
use crate::rnn::{InitialState, InputGradient, Rnn, RnnCache, RnnConfig, SequenceBatch};
use crate::train::{model_gradients, model_slots};

/// Median seconds per call of `f` after two warm-up calls, over at least `min_reps` calls
/// and about `budget` seconds.
pub fn median_seconds(budget: f64, min_reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    f()?;
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < min_reps || (start.elapsed().as_secs_f64() < budget && samples.len() < 10_000) {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64());
    }
    Ok(median(samples))
}

/// The middle value (the upper of the two middle ones of an even count; NaN when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median seconds per call of `a` and of `b`, called alternately (after two warm-up calls
/// each) over at least `min_reps` pairs and about `budget` seconds: both see the same
/// machine state, so their ratio is steadier than that of two separate measurements.
pub fn paired_median_seconds(
    budget: f64,
    min_reps: usize,
    mut a: impl FnMut() -> Result<()>,
    mut b: impl FnMut() -> Result<()>,
) -> Result<(f64, f64)> {
    let mut samples = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut pairs = 0;
    while pairs < min_reps + 2 || (start.elapsed().as_secs_f64() < budget && pairs < 10_000) {
        for (f, out) in [(&mut a as &mut dyn FnMut() -> Result<()>, &mut samples.0), (&mut b, &mut samples.1)] {
            let t = Instant::now();
            f()?;
            if pairs >= 2 {
                out.push(t.elapsed().as_secs_f64());
            }
        }
        pairs += 1;
    }
    Ok((median(samples.0), median(samples.1)))
}

/// Medians of `a` and of `b` over `blocks` pairs of adjacent blocks, `a`'s then `b`'s, each
/// [`median_seconds`] over about `budget / (2·blocks)` seconds (at least `min_reps` calls,
/// after its own warm-up): each block runs one configuration in its steady state, and each
/// pair sees about the same machine state, so the ratio of a pair is steadier on a shared
/// machine than that of two measurements taken apart.
pub fn alternating_block_medians(
    budget: f64,
    blocks: usize,
    min_reps: usize,
    mut a: impl FnMut() -> Result<()>,
    mut b: impl FnMut() -> Result<()>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let per_block = budget / (2 * blocks.max(1)) as f64;
    let mut medians = (Vec::new(), Vec::new());
    for _ in 0..blocks.max(1) {
        medians.0.push(median_seconds(per_block, min_reps, &mut a)?);
        medians.1.push(median_seconds(per_block, min_reps, &mut b)?);
    }
    Ok(medians)
}

/// The optimizer's view of a bare encoder and a linear head with their gradients.
fn encoder_and_head_slots<'a>(
    encoder: &'a mut Rnn<f32>,
    head: &'a mut Linear<f32>,
    encoder_grads: &'a [CellParams<f32>],
    head_grads: &'a Linear<f32>,
) -> Vec<ParamSlot<'a>> {
    let mut out = Vec::new();
    for (cell, g) in encoder.cells_mut().iter_mut().zip(encoder_grads) {
        for ((name, t), (_, gt)) in cell.named_mut().zip(g.named()) {
            out.push(ParamSlot { value: &mut t.data, grad: &gt.data, decay: CellParams::<f32>::decays(name) });
        }
    }
    out.push(ParamSlot { value: &mut head.weight.data, grad: &head_grads.weight.data, decay: true });
    out.push(ParamSlot { value: &mut head.bias.data, grad: &head_grads.bias.data, decay: false });
    out
}

/// Shape of a timed batch: `B` sequences of `T` steps.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BatchShape {
    pub batch: usize,
    pub steps: usize,
}

/// Seconds per training step: forward keeping the cache, a linear head (width D) on the
/// last step, MSE, backward through head and encoder, one AdamW update.
///
/// # Errors
/// An invalid config.
pub fn time_training_step(config: &RnnConfig, shape: BatchShape, threads: usize, budget: f64) -> Result<f64> {
    median_seconds(budget, 5, training_step(config, shape, threads)?)
}

/// What a timed step runs: the encoder on `threads` threads, a linear head from its output
/// to D values, a batch of standard-normal inputs `[T, B, D]`, and the generator that drew
/// them (for whatever else the step draws).
struct TimedSetup {
    rnn: Rnn<f32>,
    head: Linear<f32>,
    x: Vec<f32>,
    rng: Rng,
}

impl TimedSetup {
    fn new(config: &RnnConfig, shape: BatchShape, threads: usize) -> Result<Self> {
        let mut rnn = Rnn::<f32>::new(config.clone(), 1)?;
        rnn.set_threads(threads);
        let mut rng = Rng::new(2);
        let head = Linear::<f32>::new(config.output_size(), config.input_size, &mut rng);
        let x: Vec<f32> = (0..shape.steps * shape.batch * config.input_size).map(|_| rng.normal() as f32).collect();
        Ok(TimedSetup { rnn, head, x, rng })
    }
}

/// The step [`time_training_step`] times.
pub(crate) fn training_step(
    config: &RnnConfig,
    shape: BatchShape,
    threads: usize,
) -> Result<impl FnMut() -> Result<()>> {
    let (b, t, d) = (shape.batch, shape.steps, config.input_size);
    let width = config.output_size();
    let TimedSetup { mut rnn, mut head, x, mut rng } = TimedSetup::new(config, shape, threads)?;
    let target: Vec<f32> = (0..b * d).map(|_| rng.normal() as f32).collect();
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut cache = RnnCache::default();
    let mut seed = 0;
    Ok(move || {
        seed += 1;
        let input = SequenceBatch { x: &x, steps: t, batch: b, lengths: None };
        let out = rnn.forward_train_reusing(&input, &InitialState::default(), seed, &mut cache)?;
        let last = &out.output[(t - 1) * b * width..];
        let y = head.forward(last)?;
        let scale = 2.0 / y.len() as f32;
        let dy: Vec<f32> = y.iter().zip(&target).map(|(a, b)| scale * (a - b)).collect();
        let mut head_grads = head.zeros_like();
        let d_last = head.backward(last, &dy, &mut head_grads)?;
        let mut d_output = vec![0.0f32; out.output.len()];
        d_output[(t - 1) * b * width..].copy_from_slice(&d_last);
        let mut grads = rnn.zero_grads();
        rnn.backward_with(&input, &mut cache, &d_output, None, None, &mut grads, InputGradient::Skip)?;
        opt.step(1e-3, &mut encoder_and_head_slots(&mut rnn, &mut head, &grads, &head_grads));
        Ok(())
    })
}

/// Seconds per training step of the same work through the full stack the tasks use, as
/// the trainer runs it: a [`SequenceModel`] (encoder, linear head on the last step as in
/// prediction), masked MSE, the model's backward into a reused gradient buffer,
/// global-norm clipping and AdamW over its named parameters.
///
/// # Errors
/// An invalid config.
pub fn time_model_training_step(config: &RnnConfig, shape: BatchShape, threads: usize, budget: f64) -> Result<f64> {
    median_seconds(budget, 5, model_training_step(config, shape, threads)?)
}

/// Seconds per training step on the bare kernel and through the model stack
/// ([`time_training_step`], [`time_model_training_step`]), measured alternately.
///
/// # Errors
/// An invalid config.
pub fn time_model_overhead(config: &RnnConfig, shape: BatchShape, threads: usize, budget: f64) -> Result<(f64, f64)> {
    paired_median_seconds(
        budget,
        5,
        training_step(config, shape, threads)?,
        model_training_step(config, shape, threads)?,
    )
}

/// The step [`time_model_training_step`] times.
fn model_training_step(config: &RnnConfig, shape: BatchShape, threads: usize) -> Result<impl FnMut() -> Result<()>> {
    let (b, t, d) = (shape.batch, shape.steps, config.input_size);
    let model_config = ModelConfig {
        encoder: config.clone(),
        coupling: Coupling::Coupled,
        twin_weight: 0.0,
        fusion: FusionKind::Concat,
        head: HeadKind::Linear,
        outputs: d,
        precisions: 1,
        detach_precision: false,
    };
    let mut model = SequenceModel::<f32>::new(model_config, 1)?;
    model.set_threads(threads);
    let mut rng = Rng::new(2);
    let x: Vec<f32> = (0..t * b * d).map(|_| rng.normal() as f32).collect();
    let target: Vec<f32> = (0..b * d).map(|_| rng.normal() as f32).collect();
    let mask = vec![1.0f32; b * d];
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut seed = 0;
    let mut recycled = None;
    let mut grads = model.zeros_like();
    Ok(move || {
        seed += 1;
        let input = SequenceBatch { x: &x, steps: t, batch: b, lengths: None };
        let (out, mut cache) = model.forward_train_at(&input, seed, recycled.take(), HeadSteps::Last)?;
        let (_, d_mean) = masked_mse(&out.student.mean, &target, &mask);
        for (_, g) in grads.named_mut() {
            g.data.fill(0.0);
        }
        model.backward_with(&mut cache, (&d_mean, &[]), None, &mut grads, InputGradient::Skip)?;
        recycled = Some(cache);
        clip_grad_norm(&mut model_gradients(&mut grads), 1.0);
        opt.step(1e-3, &mut model_slots(&mut model, &mut grads));
        Ok(())
    })
}

/// Seconds per inference call (no dropout, no cache) plus the linear head.
///
/// # Errors
/// An invalid config.
pub fn time_inference(config: &RnnConfig, shape: BatchShape, threads: usize, budget: f64) -> Result<f64> {
    median_seconds(budget, 5, inference_step(config, shape, threads)?)
}

/// The call [`time_inference`] times.
pub(crate) fn inference_step(
    config: &RnnConfig,
    shape: BatchShape,
    threads: usize,
) -> Result<impl FnMut() -> Result<()>> {
    let (b, t) = (shape.batch, shape.steps);
    let width = config.output_size();
    let TimedSetup { rnn, head, x, .. } = TimedSetup::new(config, shape, threads)?;
    Ok(move || {
        let out = rnn.forward(&SequenceBatch { x: &x, steps: t, batch: b, lengths: None }, &InitialState::default())?;
        std::hint::black_box(head.forward(&out.output[(t - 1) * b * width..])?);
        Ok(())
    })
}

/// Seconds per streamed step for `batch` streams (blocks of 100 steps are timed).
///
/// # Errors
/// A bidirectional config (not causal).
pub fn time_streaming_step(config: &RnnConfig, batch: usize, budget: f64) -> Result<f64> {
    let rnn = Rnn::<f32>::new(config.clone(), 1)?;
    let mut stream = rnn.stream(batch, &InitialState::default())?;
    let x: Vec<f32> = (0..batch * config.input_size).map(|i| (i as f32 * 0.1).sin()).collect();
    Ok(median_seconds(budget, 20, || {
        for _ in 0..100 {
            std::hint::black_box(stream.step(&x)?);
        }
        Ok(())
    })? / 100.0)
}

/// One row of the comparison.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonRow {
    pub name: String,
    pub parameters: usize,
    pub train_ms: f64,
    pub inference_ms: f64,
    /// Its training step's time over the reference's, the two timed alternately on the
    /// same machine state ([`paired_median_seconds`]; 1 for the reference itself).
    pub train_vs_reference: f64,
    /// Its inference's time over the reference's, timed alike.
    pub inference_vs_reference: f64,
}

/// Parameters and speed of `(name, config)` pairs on the same batch shape, each timed
/// alternately with `configs[reference]` (whose own times are the medians over those
/// pairings), so that the ratios hold on a machine whose speed drifts.
///
/// # Errors
/// An invalid config, or `reference` out of range.
pub fn compare(
    configs: &[(String, RnnConfig)],
    reference: usize,
    shape: BatchShape,
    threads: usize,
    budget: f64,
) -> Result<Vec<ComparisonRow>> {
    let Some((_, reference_config)) = configs.get(reference) else {
        return Err(crate::error::Error::invalid("reference", format!("{reference} of {} configs", configs.len())));
    };
    let mut rows = Vec::new();
    let (mut reference_train, mut reference_inference) = (Vec::new(), Vec::new());
    for (i, (name, config)) in configs.iter().enumerate() {
        let parameters = Rnn::<f32>::new(config.clone(), 0)?.num_parameters();
        if i == reference {
            rows.push(ComparisonRow {
                name: name.clone(),
                parameters,
                train_ms: 0.0,
                inference_ms: 0.0,
                train_vs_reference: 1.0,
                inference_vs_reference: 1.0,
            });
            continue;
        }
        let (train, reference_t) = paired_median_seconds(
            budget,
            5,
            training_step(config, shape, threads)?,
            training_step(reference_config, shape, threads)?,
        )?;
        let (inference, reference_i) = paired_median_seconds(
            budget,
            5,
            inference_step(config, shape, threads)?,
            inference_step(reference_config, shape, threads)?,
        )?;
        reference_train.push(reference_t);
        reference_inference.push(reference_i);
        rows.push(ComparisonRow {
            name: name.clone(),
            parameters,
            train_ms: 1e3 * train,
            inference_ms: 1e3 * inference,
            train_vs_reference: train / reference_t,
            inference_vs_reference: inference / reference_i,
        });
    }
    rows[reference].train_ms = 1e3 * median(reference_train);
    rows[reference].inference_ms = 1e3 * median(reference_inference);
    Ok(rows)
}

/// One row of the lecture's comparison slide against a measurement: what the slide says,
/// what was measured, and whether it holds here.
#[derive(Clone, Debug, PartialEq)]
pub struct SlideClaim {
    pub claim: &'static str,
    pub measured: String,
    pub holds: &'static str,
}

/// The slide's six rows against `rows` measured by [`compare`] in the order Elman, LSTM,
/// GRU, BiLSTM, BiGRU with the LSTM as reference. Parameter ratios hold within 10 % of the
/// slide's; "faster" needs a time ratio below 0.95 (0.95–1.05 is "within 5 %"), "slower"
/// one above 1.05.
///
/// # Errors
/// Other than five rows.
pub fn slide_claims(rows: &[ComparisonRow]) -> Result<Vec<SlideClaim>> {
    if rows.len() != 5 {
        return Err(crate::error::Error::invalid("rows", format!("{}: Elman, LSTM, GRU, BiLSTM, BiGRU", rows.len())));
    }
    let parameters = |a: usize, b: usize| rows[a].parameters as f64 / rows[b].parameters as f64;
    let faster = |x: f64| match x {
        x if x < 0.95 => "yes",
        x if x > 1.05 => "no",
        _ => "no (within 5 %)",
    };
    let about = |x: f64, want: f64| if (x / want - 1.0).abs() < 0.1 { "yes" } else { "no" };
    let (gru, bilstm) = (rows[2].train_vs_reference, rows[3].train_vs_reference);
    let bigru_vs_bilstm = rows[4].train_vs_reference / bilstm;
    Ok(vec![
        SlideClaim {
            claim: "GRU: ~25 % fewer parameters than LSTM",
            measured: format!("{:.0} % fewer", 100.0 * (1.0 - parameters(2, 1))),
            holds: about(parameters(2, 1), 0.75),
        },
        SlideClaim {
            claim: "BiLSTM: ~2x the LSTM's parameters",
            measured: format!("{:.2}x", parameters(3, 1)),
            holds: about(parameters(3, 1), 2.0),
        },
        SlideClaim {
            claim: "BiGRU: ~2x the GRU's parameters",
            measured: format!("{:.2}x", parameters(4, 2)),
            holds: about(parameters(4, 2), 2.0),
        },
        SlideClaim {
            claim: "GRU trains faster than LSTM",
            measured: format!("{gru:.2}x the LSTM's time"),
            holds: faster(gru),
        },
        SlideClaim {
            claim: "BiLSTM trains slower (two passes)",
            measured: format!("{bilstm:.2}x the LSTM's time"),
            holds: if bilstm > 1.05 { "yes" } else { "no" },
        },
        SlideClaim {
            claim: "BiGRU trains faster than BiLSTM",
            measured: format!("{bigru_vs_bilstm:.2}x the BiLSTM's time"),
            holds: faster(bigru_vs_bilstm),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, parameters: usize, train_vs_reference: f64) -> ComparisonRow {
        ComparisonRow {
            name: name.into(),
            parameters,
            train_ms: 0.0,
            inference_ms: 0.0,
            train_vs_reference,
            inference_vs_reference: 1.0,
        }
    }

    #[test]
    fn the_slides_claims_are_read_from_the_measured_ratios() {
        // this machine's `recur compare` (D = 12, H = 64): parameters exact, times rounded
        let rows = [
            row("Elman", 4992, 0.3),
            row("LSTM", 19968, 1.0),
            row("GRU", 14976, 0.77),
            row("BiLSTM", 39936, 2.06),
            row("BiGRU", 29952, 1.57),
        ];
        let claims = slide_claims(&rows).unwrap();
        let holds: Vec<&str> = claims.iter().map(|c| c.holds).collect();
        assert_eq!(holds, ["yes"; 6]);
        assert_eq!(claims[0].measured, "25 % fewer");
        assert_eq!(claims[5].measured, "0.76x the BiLSTM's time");
        // a GRU as slow as the LSTM, within 5 %, and a BiLSTM no slower: the slide fails
        let mut slow = rows.clone();
        slow[2].train_vs_reference = 1.03;
        slow[3].train_vs_reference = 1.0;
        let holds: Vec<&str> = slide_claims(&slow).unwrap().iter().map(|c| c.holds).collect();
        assert_eq!(holds[3..5], ["no (within 5 %)", "no"]);
        assert!(slide_claims(&rows[..4]).is_err());
    }
}
