//! Jordan's network with teacher forcing (the context is the ground truth ȳ_{t−1}),
//! checked by central differences in f64, in both directions, with lengths and layer norm.

use recur_kernels::jordan::{JordanCache, JordanGrads, JordanWeights};
use recur_kernels::{Activation, Dims, Jordan, OutputActivation, SequenceOptions};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

#[test]
fn jordan_teacher_forced_and_free_running_gradients_match_central_differences() {
    let (steps, batch, input, hidden, output) = (6, 3, 2, 5, 3);
    let dims = Dims { steps, batch, input, hidden };
    let lengths = [6usize, 3, 5];
    for (teacher_forced, reverse, normalized) in
        [(true, false, false), (true, true, true), (false, false, true), (false, true, false)]
    {
        let jordan = Jordan { hidden_activation: Activation::Tanh, output_activation: OutputActivation::Tanh, output };
        let mut rng = Lcg(42);
        let mut params = [
            rng.vec(hidden * input),
            rng.vec(hidden * output),
            rng.vec(hidden),
            rng.vec(output * hidden),
            rng.vec(output),
            rng.vec(hidden).iter().map(|v| 1.0 + 0.3 * v).collect(),
        ];
        let x = rng.vec(steps * batch * input);
        let y0 = rng.vec(batch * output);
        let teacher = rng.vec(steps * batch * output);
        let probe = rng.vec(steps * batch * output);
        let probe_n = rng.vec(batch * output);
        let options = SequenceOptions { reverse, lengths: Some(&lengths), ..SequenceOptions::default() };
        let loss = |p: &[Vec<f64>; 6], x: &[f64], y0: &[f64]| {
            let w = JordanWeights {
                w_ih: &p[0],
                w_ch: &p[1],
                b_h: &p[2],
                w_hy: &p[3],
                b_y: &p[4],
                norm: normalized.then_some(&p[5][..]),
            };
            let out = jordan.forward(dims, x, y0, teacher_forced.then_some(&teacher[..]), &w, &options, None);
            out.output.iter().zip(&probe).map(|(a, b)| a * b).sum::<f64>()
                + out.y_n.iter().zip(&probe_n).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut cache = JordanCache::default();
        let w = JordanWeights {
            w_ih: &params[0],
            w_ch: &params[1],
            b_h: &params[2],
            w_hy: &params[3],
            b_y: &params[4],
            norm: normalized.then_some(&params[5][..]),
        };
        jordan.forward(dims, &x, &y0, teacher_forced.then_some(&teacher[..]), &w, &options, Some(&mut cache));
        let mut g: [Vec<f64>; 6] = params.clone().map(|p| vec![0.0; p.len()]);
        let (mut d_x, mut d_y0) = (vec![0.0; x.len()], vec![0.0; y0.len()]);
        {
            let [g0, g1, g2, g3, g4, g5] = &mut g;
            let grads = JordanGrads {
                w_ih: g0,
                w_ch: g1,
                b_h: g2,
                w_hy: g3,
                b_y: g4,
                norm: if normalized { g5 } else { &mut [] },
            };
            jordan.backward(
                dims,
                &x,
                teacher_forced,
                &w,
                &options,
                &cache,
                &probe,
                &[],
                &probe_n,
                &mut d_x,
                &mut d_y0,
                grads,
            );
        }
        let eps = 1e-6;
        let mut worst = 0.0f64;
        for k in 0..6 {
            if k == 5 && !normalized {
                continue;
            }
            for i in 0..params[k].len() {
                params[k][i] += eps;
                let up = loss(&params, &x, &y0);
                params[k][i] -= 2.0 * eps;
                let down = loss(&params, &x, &y0);
                params[k][i] += eps;
                worst = worst.max((g[k][i] - (up - down) / (2.0 * eps)).abs());
            }
        }
        for i in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[i] += eps;
            b[i] -= eps;
            worst = worst.max((d_x[i] - (loss(&params, &a, &y0) - loss(&params, &b, &y0)) / (2.0 * eps)).abs());
        }
        for i in 0..y0.len() {
            let (mut a, mut b) = (y0.clone(), y0.clone());
            a[i] += eps;
            b[i] -= eps;
            worst = worst.max((d_y0[i] - (loss(&params, &x, &a) - loss(&params, &x, &b)) / (2.0 * eps)).abs());
        }
        assert!(
            worst < 1e-6,
            "teacher={teacher_forced} reverse={reverse} ln={normalized}: worst gradient error {worst}"
        );
    }
}
