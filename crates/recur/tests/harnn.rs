//! HARNN: a central-difference check in f64 of every parameter's gradient through the
//! whole model and loss (embeddings, BiLSTM, TCA, CPM, CDM, HPL, the hierarchy
//! penalty, variational dropout with fixed masks), padding invariance, and the decision rule. Synthetic token batches: these
//! tests check the mathematics, not a result on data (that is `text_dbpedia.rs`).

use recur::text::{
    decide, harnn_loss, harnn_loss_in_batch, Harnn, HarnnConfig, TextClassifier, TokenBatch, Vocabulary,
};
use recur::Rng;

const LEVELS: [usize; 3] = [2, 3, 4];
/// (child, parent) positions in a row of 9: level-2 classes 2,3,4 under 0,1,1; level-3
/// classes 5..8 under 2,3,3,4.
const EDGES: [(usize, usize); 7] = [(2, 0), (3, 1), (4, 1), (5, 2), (6, 3), (7, 3), (8, 4)];
const BETA: f64 = 0.4;
const PENALTY: f64 = 2.0;

fn config() -> HarnnConfig {
    HarnnConfig {
        vocab_size: 9,
        embedding_size: 3,
        hidden_size: 3,
        attention_size: 4,
        fc_size: 5,
        levels: LEVELS.to_vec(),
        beta: BETA,
        // Fixed masks (one seed) in the gradient check; inference ignores them.
        input_dropout: 0.3,
        state_dropout: 0.3,
    }
}

struct Problem {
    tokens: Vec<u32>,
    lengths: Vec<usize>,
    steps: usize,
    batch: usize,
    targets: Vec<f64>,
}

impl Problem {
    fn batch(&self) -> TokenBatch<'_> {
        TokenBatch { tokens: &self.tokens, lengths: &self.lengths, steps: self.steps, batch: self.batch }
    }
}

fn problem() -> Problem {
    let (steps, lengths) = (5, vec![5, 3, 1]);
    let batch = lengths.len();
    let mut rng = Rng::new(11);
    let tokens =
        (0..steps * batch).map(|i| if i / batch < lengths[i % batch] { 1 + rng.below(8) as u32 } else { 0 }).collect();
    // Paths 0→2→5, 1→3→7, 1→4→8.
    let paths = [[0, 2, 5], [1, 3, 7], [1, 4, 8]];
    let mut targets = vec![0.0; batch * 9];
    for (b, path) in paths.iter().enumerate() {
        for &j in path {
            targets[b * 9 + j] = 1.0;
        }
    }
    Problem { tokens, lengths, steps, batch, targets }
}

fn loss(model: &Harnn<f64>, p: &Problem) -> f64 {
    let (out, _) = model.forward_train(&p.batch(), 0).unwrap();
    harnn_loss(&out, &p.targets, &LEVELS, &EDGES, BETA, PENALTY).unwrap().total
}

#[test]
fn every_parameter_gradient_matches_central_differences() {
    let mut model = Harnn::<f64>::new(config(), 3).unwrap();
    let p = problem();
    let (out, mut cache) = model.forward_train(&p.batch(), 0).unwrap();
    let l = harnn_loss(&out, &p.targets, &LEVELS, &EDGES, BETA, PENALTY).unwrap();
    assert!(l.violation > 0.0, "the penalty must be active for the check to cover it");
    let mut grads = model.zeros_like();
    model.backward(&mut cache, &l.d_local_logits, &l.d_global_logits, &mut grads).unwrap();
    let analytic: Vec<(String, Vec<f64>)> = grads.named_mut().into_iter().map(|(n, t)| (n, t.data.clone())).collect();
    let names: Vec<String> = analytic.iter().map(|(n, _)| n.clone()).collect();
    let eps = 1e-6;
    let (mut checked, mut worst) = (0usize, (0.0f64, String::new()));
    for (k, name) in names.iter().enumerate() {
        let len = analytic[k].1.len();
        for i in 0..len {
            let set = |model: &mut Harnn<f64>, delta: f64| {
                let mut params = model.named_mut();
                params[k].1.data[i] += delta;
            };
            set(&mut model, eps);
            let up = loss(&model, &p);
            set(&mut model, -2.0 * eps);
            let down = loss(&model, &p);
            set(&mut model, eps);
            let numeric = (up - down) / (2.0 * eps);
            let a = analytic[k].1[i];
            // Round-off in a loss of ~10 differenced at ε = 1e-6 is ~1e-9.
            let err = (numeric - a).abs() / (1e-8 + 1e-6 * numeric.abs());
            if err > worst.0 {
                worst = (err, format!("{name}[{i}]: analytic {a:e}, numeric {numeric:e}"));
            }
            checked += 1;
        }
    }
    println!("checked {checked} parameters; worst error {:.2} of the tolerance at {}", worst.0, worst.1);
    assert_eq!(model.num_parameters(), checked, "num_parameters counts what named_mut lists");
    assert!(worst.0 < 1.0, "gradient mismatch (|a − n| > 1e-8 + 1e-6·|n|): {}", worst.1);
    // The padding token never reaches the model.
    assert!(analytic[0].1[..3].iter().all(|&g| g == 0.0), "embedding row 0 (padding) got a gradient");
    // The check reached every kind of parameter with a non-zero gradient.
    for (name, g) in &analytic {
        assert!(g.iter().any(|&v| v != 0.0), "{name} has an all-zero gradient");
    }
}

/// The documents `docs` of `p` as a batch of their own, padded to the longest of them.
fn shard(p: &Problem, docs: &[usize]) -> Problem {
    let lengths: Vec<usize> = docs.iter().map(|&b| p.lengths[b]).collect();
    let steps = lengths.iter().copied().max().unwrap_or(0);
    let tokens = (0..steps).flat_map(|t| docs.iter().map(move |&b| p.tokens[t * p.batch + b])).collect();
    let targets = docs.iter().flat_map(|&b| p.targets[b * 9..(b + 1) * 9].iter().copied()).collect();
    Problem { tokens, lengths, steps, batch: docs.len(), targets }
}

/// What the text task's data-parallel step relies on: a batch dealt into shards, each
/// shard's loss taken as part of the whole batch (`harnn_loss_in_batch`), gives the
/// batch's loss and gradients as sums over the shards. Without dropout, whose masks
/// depend on a document's place in its batch.
#[test]
fn shards_of_a_batch_add_up_to_its_loss_and_gradients() {
    let model = Harnn::<f64>::new(HarnnConfig { input_dropout: 0.0, state_dropout: 0.0, ..config() }, 3).unwrap();
    let p = problem();
    let gradients = |p: &Problem, batch_documents: usize| {
        let (out, mut cache) = model.forward_train(&p.batch(), 0).unwrap();
        let l = harnn_loss_in_batch(&out, &p.targets, &LEVELS, &EDGES, BETA, PENALTY, batch_documents).unwrap();
        let mut grads = model.zeros_like();
        model.backward(&mut cache, &l.d_local_logits, &l.d_global_logits, &mut grads).unwrap();
        let flat: Vec<f64> = grads.named_mut().into_iter().flat_map(|(_, t)| t.data.clone()).collect();
        (l.total, l.violation, flat)
    };
    let (total, violation, whole) = gradients(&p, p.batch);
    let (even, odd) = (gradients(&shard(&p, &[0, 2]), p.batch), gradients(&shard(&p, &[1]), p.batch));
    assert!((even.0 + odd.0 - total).abs() < 1e-12 * total.abs(), "loss {} + {} vs {total}", even.0, odd.0);
    assert!((even.1 + odd.1 - violation).abs() < 1e-12 * (1.0 + violation));
    assert!(violation > 0.0, "the penalty is part of the check");
    let scale = whole.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    for (i, ((a, b), w)) in even.2.iter().zip(&odd.2).zip(&whole).enumerate() {
        assert!((a + b - w).abs() <= 1e-12 * scale, "gradient {i}: {a} + {b} vs {w}");
    }
    // A shard larger than its batch is refused.
    let (out, _) = model.forward_train(&p.batch(), 0).unwrap();
    let err = harnn_loss_in_batch(&out, &p.targets, &LEVELS, &EDGES, BETA, PENALTY, 2).unwrap_err().to_string();
    assert!(err.contains("batch_documents"), "{err}");
}

#[test]
fn padding_and_batch_company_never_change_a_document_score() {
    let model = Harnn::<f32>::new(config(), 8).unwrap();
    let p = problem();
    let together = model.forward(&p.batch()).unwrap();
    let total: usize = LEVELS.iter().sum();
    for b in 0..p.batch {
        let len = p.lengths[b];
        // Alone, padded to 9 steps with arbitrary indices past its length.
        let steps = 9;
        let tokens: Vec<u32> =
            (0..steps).map(|t| if t < len { p.tokens[t * p.batch + b] } else { 7 - (t % 3) as u32 }).collect();
        let alone = model.forward(&TokenBatch { tokens: &tokens, lengths: &[len], steps, batch: 1 }).unwrap();
        for (j, (&a, &t)) in alone.scores.iter().zip(&together.scores[b * total..(b + 1) * total]).enumerate() {
            assert!((a - t).abs() <= 1e-6, "document {b}, class {j}: {a} alone, {t} in the batch");
        }
        for (h, attention) in alone.word_attention.iter().enumerate() {
            assert!(attention[len..].iter().all(|&w| w == 0.0), "level {h} attends to padding");
            let sum: f32 = attention.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "level {h}'s word attention sums to {sum}");
        }
    }
}

#[test]
fn decisions_threshold_at_one_half_and_fall_back_to_the_best_class() {
    let scores = [0.7f32, 0.6, 0.2, 0.1, 0.3, 0.4, 0.45, 0.1, 0.2];
    let chosen = decide(&scores, &LEVELS, 0.5);
    let expected = [true, true, false, false, true, false, true, false, false];
    assert_eq!(chosen, expected);
}

#[test]
fn bad_batches_are_refused_with_the_reason() {
    let model = Harnn::<f32>::new(config(), 1).unwrap();
    let tokens = [1u32, 2, 9, 3];
    let err = model.forward(&TokenBatch { tokens: &tokens, lengths: &[2, 2], steps: 2, batch: 2 }).unwrap_err();
    assert!(err.to_string().contains("word index 9 at step 1 of document 0"), "{err}");
    let err = model.forward(&TokenBatch { tokens: &tokens[..2], lengths: &[3, 1], steps: 2, batch: 1 }).unwrap_err();
    assert!(err.to_string().contains("lengths"), "{err}");
    let err = model.forward(&TokenBatch { tokens: &tokens, lengths: &[0, 1], steps: 2, batch: 2 }).unwrap_err();
    assert!(err.to_string().contains("document 0 has length 0"), "{err}");
}

fn classifier() -> TextClassifier {
    let vocabulary = Vocabulary::build(["alpha beta gamma delta", "epsilon zeta eta", "theta"], 1, 7);
    assert_eq!(vocabulary.len(), 9);
    TextClassifier {
        model: Harnn::<f32>::new(config(), 4).unwrap(),
        vocabulary,
        level_names: vec!["l1".into(), "l2".into(), "l3".into()],
        classes: vec![
            vec!["A".into(), "B".into()],
            vec!["A1".into(), "B1".into(), "B2".into()],
            vec!["A1x".into(), "B1x".into(), "B1y".into(), "B2x".into()],
        ],
        max_tokens: 6,
        threshold: 0.5,
    }
}

/// An empty folder for a test's files, removed when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("recur-harnn-{name}-")).tempdir().unwrap()
}

#[test]
fn a_saved_classifier_loads_back_and_scores_the_same() {
    let original = classifier();
    let scratch = temp_dir("roundtrip");
    let dir = scratch.path();
    original.save(dir).unwrap();
    let loaded = TextClassifier::load(dir).unwrap();
    let texts = ["alpha beta, gamma!", "", "theta theta unknown words here and more"];
    assert_eq!(loaded.scores(&texts).unwrap(), original.scores(&texts).unwrap());
    let classes = loaded.classify(&texts).unwrap();
    assert_eq!(classes.len(), 3);
    for doc in &classes {
        assert_eq!(doc.len(), 3);
        assert!(doc.iter().all(|level| !level.is_empty()), "every level gets a class: {doc:?}");
    }
}

#[test]
fn a_damaged_run_folder_is_refused_with_the_file_and_tensor() {
    let scratch = temp_dir("damaged");
    let dir = scratch.path();
    let original = classifier();
    original.save(dir).unwrap();
    let vocab = std::fs::read_to_string(dir.join("vocabulary.txt")).unwrap();
    std::fs::write(dir.join("vocabulary.txt"), vocab.lines().take(5).collect::<Vec<_>>().join("\n")).unwrap();
    let err = TextClassifier::load(dir).unwrap_err().to_string();
    assert!(err.contains("vocabulary.txt") && err.contains("5 lines, expected 9"), "{err}");
    // A model file without one tensor.
    let mut broken = classifier();
    broken.save(dir).unwrap();
    let file = recur::io::TensorFile::read(dir.join("model.safetensors")).unwrap();
    let tensors: Vec<(String, recur::Tensor<f32>)> = file
        .tensors
        .keys()
        .filter(|n| n.as_str() != "levels.1.category_embedding")
        .map(|n| (n.clone(), file.f32(n).unwrap()))
        .collect();
    recur::io::write_f32(dir.join("model.safetensors"), &tensors, file.metadata.clone()).unwrap();
    let err = TextClassifier::load(dir).unwrap_err().to_string();
    assert!(err.contains("levels.1.category_embedding") && err.contains("[3, 4]"), "{err}");
    broken.model.levels[0].fc.bias.data[2] = f32::NAN;
    broken.save(dir).unwrap();
    let err = TextClassifier::load(dir).unwrap_err().to_string();
    assert!(err.contains("levels.0.fc.bias") && err.contains("non-finite"), "{err}");
}

/// Random shapes, lengths, indices and gradient sizes — many of them wrong — through
/// every HARNN entry point: each call returns a value or an error, never panics.
#[test]
fn no_entry_point_panics_on_random_input() {
    let model = Harnn::<f32>::new(config(), 2).unwrap();
    let mut rng = Rng::new(17);
    let total: usize = LEVELS.iter().sum();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..400 {
        let (steps, batch) = (rng.below(5), rng.below(4));
        let mut tokens: Vec<u32> = (0..steps * batch).map(|_| rng.below(9) as u32).collect();
        let mut lengths: Vec<usize> = (0..batch).map(|_| 1 + rng.below(steps.max(1))).collect();
        // Half the trials break one thing.
        match rng.below(10) {
            0 => tokens.push(1),
            1 => drop(tokens.pop()),
            2 if !tokens.is_empty() => tokens[0] = 9 + rng.below(3) as u32,
            3 => lengths.push(1),
            4 if !lengths.is_empty() => lengths[0] = [0, steps + 1][rng.below(2)],
            _ => {}
        }
        let input = TokenBatch { tokens: &tokens, lengths: &lengths, steps, batch };
        match model.forward_train(&input, 1) {
            Err(_) => refused += 1,
            Ok((out, mut cache)) => {
                ok += 1;
                let width = if rng.below(4) == 0 { total + 1 } else { total };
                let targets = vec![1.0f32; batch * width];
                let edges = if rng.below(4) == 0 { vec![(total, 0)] } else { EDGES.to_vec() };
                let _ = harnn_loss_in_batch(&out, &targets, &LEVELS, &edges, BETA, PENALTY, rng.below(2 * batch + 1));
                if let Ok(loss) = harnn_loss(&out, &targets, &LEVELS, &edges, BETA, PENALTY) {
                    let mut grads = model.zeros_like();
                    let mut local = loss.d_local_logits.clone();
                    if rng.below(3) == 0 {
                        local[rng.below(3)].pop();
                    }
                    let _ = model.backward(&mut cache, &local, &loss.d_global_logits, &mut grads);
                }
                let _ = decide(&out.scores, &LEVELS, 0.5);
            }
        }
        let _ = model.forward(&input);
    }
    assert!(ok > 20 && refused > 20, "{ok} accepted, {refused} refused: the trials must reach both");
}
