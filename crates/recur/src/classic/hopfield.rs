//! Hopfield's associative memory (1982), and the modern continuous retrieval of
//! Ramsauer et al. (2020) for comparison.
//!
//! Binary units s ∈ {−1, +1}ᴺ; Hebbian storage of patterns ξ¹…ξᴾ:
//! W = Σ_μ ξ^μ ξ^μᵀ with a zero diagonal (the usual 1/N scale is dropped: it changes
//! neither the dynamics nor the sign of energy differences, and integer weights make the
//! energy exact). Update: s_i ← sign(Σ_j W_ij s_j), keeping s_i on a tie.
//! Energy: E(s) = −½ sᵀ W s, which asynchronous updates never increase.
//! Capacity: recall from corrupted probes breaks down near P ≈ 0.138·N.
//! Modern retrieval: ξ ← X softmax(β Xᵀ ξ), X = [ξ¹ … ξᴾ], exponential capacity.

use serde::Serialize;

use crate::rng::Rng;

/// A classical binary Hopfield network.
#[derive(Clone, Debug)]
pub struct Hopfield {
    n: usize,
    /// `[N, N]`, symmetric, zero diagonal.
    weights: Vec<i32>,
}

/// A random ±1 pattern.
pub fn random_pattern(n: usize, rng: &mut Rng) -> Vec<i8> {
    (0..n).map(|_| if rng.next_u64() & 1 == 1 { 1 } else { -1 }).collect()
}

/// `pattern` with `flips` distinct units (chosen at random) negated.
pub fn corrupt(pattern: &[i8], flips: usize, rng: &mut Rng) -> Vec<i8> {
    let mut idx: Vec<usize> = (0..pattern.len()).collect();
    rng.shuffle(&mut idx);
    let mut out = pattern.to_vec();
    for &i in &idx[..flips.min(pattern.len())] {
        out[i] = -out[i];
    }
    out
}

/// m = (1/N) Σ a_i b_i: 1 for identical states, −1 for opposite ones.
pub fn overlap(a: &[i8], b: &[i8]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as i64 * y as i64) as f64).sum::<f64>() / a.len() as f64
}

impl Hopfield {
    /// Hebbian storage: W = Σ_μ ξ^μ ξ^μᵀ, W_ii = 0.
    ///
    /// # Panics
    /// If the patterns differ in length.
    pub fn store(patterns: &[Vec<i8>]) -> Self {
        let n = patterns.first().map_or(0, Vec::len);
        let mut weights = vec![0i32; n * n];
        for p in patterns {
            assert_eq!(p.len(), n, "patterns must have the same length");
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        weights[i * n + j] += (p[i] * p[j]) as i32;
                    }
                }
            }
        }
        Hopfield { n, weights }
    }

    pub fn neurons(&self) -> usize {
        self.n
    }

    fn field(&self, s: &[i8], i: usize) -> i64 {
        self.weights[i * self.n..(i + 1) * self.n].iter().zip(s).map(|(&w, &x)| w as i64 * x as i64).sum()
    }

    /// E(s) = −½ sᵀ W s, exact.
    pub fn energy(&self, s: &[i8]) -> f64 {
        let twice: i64 = (0..self.n).map(|i| s[i] as i64 * self.field(s, i)).sum();
        -0.5 * twice as f64
    }

    /// One asynchronous update of unit `i`; returns whether it changed.
    fn update(&self, s: &mut [i8], i: usize) -> bool {
        let h = self.field(s, i);
        let new = if h > 0 {
            1
        } else if h < 0 {
            -1
        } else {
            s[i]
        };
        let changed = new != s[i];
        s[i] = new;
        changed
    }

    /// Asynchronous recall: sweeps over the units in a random order, updating one at a
    /// time, until a sweep changes nothing (a fixed point) or `max_sweeps`.
    pub fn recall_async(&self, probe: &[i8], max_sweeps: usize, rng: &mut Rng) -> Vec<i8> {
        self.recall_async_traced(probe, max_sweeps, rng, false).0
    }

    /// [`Hopfield::recall_async`], also returning E(s) recomputed from scratch after every
    /// single-unit update when `trace` (O(N²) each; for checking that E never increases).
    pub fn recall_async_traced(
        &self,
        probe: &[i8],
        max_sweeps: usize,
        rng: &mut Rng,
        trace: bool,
    ) -> (Vec<i8>, Vec<f64>) {
        let mut s = probe.to_vec();
        let mut energies = vec![self.energy(&s)];
        let mut order: Vec<usize> = (0..self.n).collect();
        for _ in 0..max_sweeps {
            rng.shuffle(&mut order);
            let mut changed = false;
            for &i in &order {
                changed |= self.update(&mut s, i);
                if trace {
                    energies.push(self.energy(&s));
                }
            }
            if !changed {
                break;
            }
        }
        (s, energies)
    }

    /// Synchronous recall: every unit updated at once from the previous state, until a
    /// fixed point, a 2-cycle (which synchronous dynamics can enter), or `max_steps`.
    pub fn recall_sync(&self, probe: &[i8], max_steps: usize) -> Vec<i8> {
        let mut prev2: Option<Vec<i8>> = None;
        let mut s = probe.to_vec();
        for _ in 0..max_steps {
            let next: Vec<i8> = (0..self.n)
                .map(|i| {
                    let h = self.field(&s, i);
                    if h > 0 {
                        1
                    } else if h < 0 {
                        -1
                    } else {
                        s[i]
                    }
                })
                .collect();
            if next == s || prev2.as_ref() == Some(&next) {
                return next;
            }
            prev2 = Some(std::mem::replace(&mut s, next));
        }
        s
    }

    /// Whether `s` is a fixed point of the update rule.
    pub fn is_fixed_point(&self, s: &[i8]) -> bool {
        (0..self.n).all(|i| {
            let h = self.field(s, i);
            h == 0 || (h > 0) == (s[i] > 0)
        })
    }
}

/// Modern Hopfield retrieval (Ramsauer et al. 2020): ξ ← X softmax(β Xᵀ ξ), iterated
/// `steps` times, then signed back to ±1.
pub fn modern_retrieve(patterns: &[Vec<i8>], probe: &[i8], beta: f64, steps: usize) -> Vec<i8> {
    let n = probe.len();
    let mut xi: Vec<f64> = probe.iter().map(|&v| v as f64).collect();
    for _ in 0..steps {
        let scores: Vec<f64> =
            patterns.iter().map(|p| beta * p.iter().zip(&xi).map(|(&a, &b)| a as f64 * b).sum::<f64>()).collect();
        let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
        let z: f64 = weights.iter().sum();
        xi = (0..n).map(|i| patterns.iter().zip(&weights).map(|(p, w)| p[i] as f64 * w / z).sum()).collect();
    }
    xi.iter().map(|&v| if v >= 0.0 { 1 } else { -1 }).collect()
}

/// One load of the capacity experiment.
#[derive(Clone, Debug, Serialize)]
pub struct CapacityPoint {
    /// α = P / N.
    pub load: f64,
    pub patterns: usize,
    /// Fraction of probes recalled to overlap ≥ 0.98 (asynchronous dynamics).
    pub recall_async: f64,
    /// The same with synchronous dynamics.
    pub recall_sync: f64,
    /// The same with modern (softmax) retrieval.
    pub recall_modern: f64,
    /// Fraction of stored patterns that are fixed points.
    pub fixed_points: f64,
}

/// Recall accuracy against patterns-per-neuron: for each load, `trials` networks of `n`
/// units store ⌈α·N⌉ random patterns; each pattern is probed with `noise`·N units flipped.
pub fn capacity_experiment(n: usize, loads: &[f64], trials: usize, noise: f64, seed: u64) -> Vec<CapacityPoint> {
    let mut rng = Rng::new(seed);
    loads
        .iter()
        .map(|&load| {
            let p = ((load * n as f64).round() as usize).max(1);
            let (mut ok_async, mut ok_sync, mut ok_modern, mut fixed, mut total) = (0, 0, 0, 0, 0);
            for _ in 0..trials {
                let patterns: Vec<Vec<i8>> = (0..p).map(|_| random_pattern(n, &mut rng)).collect();
                let net = Hopfield::store(&patterns);
                for pattern in &patterns {
                    let probe = corrupt(pattern, (noise * n as f64).round() as usize, &mut rng);
                    let s = net.recall_async(&probe, 50, &mut rng);
                    ok_async += (overlap(&s, pattern) >= 0.98) as usize;
                    ok_sync += (overlap(&net.recall_sync(&probe, 50), pattern) >= 0.98) as usize;
                    ok_modern += (overlap(&modern_retrieve(&patterns, &probe, 1.0 / (n as f64).sqrt(), 3), pattern)
                        >= 0.98) as usize;
                    fixed += net.is_fixed_point(pattern) as usize;
                    total += 1;
                }
            }
            let f = |k: usize| k as f64 / total as f64;
            CapacityPoint {
                load,
                patterns: p,
                recall_async: f(ok_async),
                recall_sync: f(ok_sync),
                recall_modern: f(ok_modern),
                fixed_points: f(fixed),
            }
        })
        .collect()
}
