//! The scalar type the kernels are generic over.
//!
//! `f32` is the production type; `f64` exists so that finite-difference gradient
//! checks can run the *same* kernel code with differences far below f32 round-off.
//! For `f32` the transcendental functions are branch-free polynomial approximations
//! (relative error < 2e-7 for `exp`) that the compiler vectorises inside the fused
//! pointwise loops; for `f64` they are the standard library's.

use crate::simd::{lane_totals_f32, pairwise_total, LANES};
use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar usable by every kernel.
pub trait Real:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    /// Natural logarithm (standard library; not used in the fused loops).
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;

    /// σ(x) = 1 / (1 + e^{−x})
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    /// tanh(x), from one exponential of a non-positive argument (never overflows).
    fn tanh(self) -> Self;

    /// Σ of each of `K` arrays of 16 lane partial sums, added pairwise: lanes (l, l+8), then
    /// (l, l+4), (l, l+2), (0, 1) — the same order, so the same bits, on every CPU.
    #[inline(always)]
    fn lane_totals<const K: usize>(lanes: &[[Self; LANES]; K]) -> [Self; K] {
        std::array::from_fn(|k| pairwise_total(&lanes[k]))
    }

    /// max(x, 0)
    #[inline(always)]
    fn relu(self) -> Self {
        self.max(Self::ZERO)
    }

    /// softplus(x) = ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^{−|x|}) (no overflow).
    #[inline(always)]
    fn softplus(self) -> Self {
        let a = if self < Self::ZERO { -self } else { self };
        self.relu() + (Self::ONE + (-a).exp()).ln()
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        f64::min(self, other)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        if self < other {
            self
        } else {
            other
        }
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
    #[inline(always)]
    fn lane_totals<const K: usize>(lanes: &[[Self; LANES]; K]) -> [Self; K] {
        lane_totals_f32(lanes)
    }
    /// σ(x) = ½ + ½·tanh(x/2): the rational tanh is cheaper than e^x and a division.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        0.5 + 0.5 * tanh_f32(0.5 * self)
    }
    /// max(x, 0) + ln(1 + u), u = e^{−|x|} ∈ (0, 1], from [`exp_f32`] and [`ln_1p_unit_f32`]:
    /// branch-free, so that it vectorises (libm's `logf` is a call per value).
    #[inline(always)]
    fn softplus(self) -> Self {
        let a = if self < 0.0 { -self } else { self };
        self.relu() + ln_1p_unit_f32(exp_f32(-a))
    }
}

/// `f` of each value, in place, inside [`crate::vectorized`]: the loop the `*_in_place`
/// activations share.
#[inline(always)]
fn map_in_place<T: Real>(values: &mut [T], f: impl Fn(T) -> T) {
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for v in values.iter_mut() {
                *v = f(*v);
            }
        },
    );
}

/// softplus of each value, in place, on the CPU's widest vector path (as [`sigmoid_in_place`]).
pub fn softplus_in_place<T: Real>(values: &mut [T]) {
    map_in_place(values, T::softplus);
}

/// σ of each value, in place, on the CPU's widest vector path (see [`Real::sigmoid`]:
/// outside the kernels' vectorised loops its fused multiply-adds would be library calls).
pub fn sigmoid_in_place<T: Real>(values: &mut [T]) {
    map_in_place(values, T::sigmoid);
}

/// `Σ_i a_i b_i` in `LANES` interleaved partial sums added pairwise, so that the loop
/// vectorises without reassociating (the same bits on every CPU); the tail past the last
/// whole group of lanes is added in order after them. Call it inside [`crate::vectorized`]
/// (or a kernel's vectorised loop) to get the CPU's widest vectors.
#[inline(always)]
pub fn lane_dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let full = n / LANES * LANES;
    let mut lanes = [T::ZERO; LANES];
    for (x, y) in a[..full].chunks_exact(LANES).zip(b[..full].chunks_exact(LANES)) {
        for l in 0..LANES {
            lanes[l] += x[l] * y[l];
        }
    }
    let mut total = pairwise_total(&lanes);
    for (&x, &y) in a[full..n].iter().zip(&b[full..n]) {
        total += x * y;
    }
    total
}

/// tanh of each value, in place, on the CPU's widest vector path (as [`sigmoid_in_place`]).
pub fn tanh_in_place<T: Real>(values: &mut [T]) {
    map_in_place(values, T::tanh);
}

/// tanh(x) for f32 as a [13/6] rational function of x on [−8, 8] (beyond it tanh
/// is ±1 in f32), without branches so that it vectorises; the coefficients are Eigen's
/// `generic_fast_tanh_float` (used by TensorFlow). The polynomials use `mul_add`, which
/// rounds once on every path (an FMA instruction in the kernels' AVX2 and AVX-512 loops,
/// libm's `fmaf` elsewhere), so results are the same bits on every CPU.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const CLAMP: f32 = 7.998_811_7;
    let x = if x < -CLAMP { -CLAMP } else { x };
    let x = if x > CLAMP { CLAMP } else { x };
    let x2 = x * x;
    let mut p = -2.760_768_5e-16_f32;
    p = p.mul_add(x2, 2.000_188e-13);
    p = p.mul_add(x2, -8.604_672e-11);
    p = p.mul_add(x2, 5.122_297e-8);
    p = p.mul_add(x2, 1.485_722_4e-5);
    p = p.mul_add(x2, 6.372_619_4e-4);
    p = p.mul_add(x2, 4.893_524_6e-3);
    let mut q = 1.198_258_4e-6_f32;
    q = q.mul_add(x2, 1.185_347_1e-4);
    q = q.mul_add(x2, 2.268_434_6e-3);
    q = q.mul_add(x2, 4.893_525e-3);
    x * p / q
}

/// ln(1 + u) for u ∈ [0, 1], without branches: with s = u / (2 + u) ∈ [0, ⅓],
/// ln(1 + u) = ln((1 + s)/(1 − s)) = 2·atanh(s) = 2s·Σₖ s²ᵏ/(2k + 1), the series cut after
/// s¹⁴ (the rest is below 6·10⁻⁹ of the sum, as s² ≤ 1/9) and summed by Horner's rule in
/// `mul_add`s (one rounding each on every CPU, as [`tanh_f32`]).
#[inline(always)]
pub fn ln_1p_unit_f32(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let z = s * s;
    let mut p = 1.0 / 15.0_f32;
    p = p.mul_add(z, 1.0 / 13.0);
    p = p.mul_add(z, 1.0 / 11.0);
    p = p.mul_add(z, 1.0 / 9.0);
    p = p.mul_add(z, 1.0 / 7.0);
    p = p.mul_add(z, 1.0 / 5.0);
    p = p.mul_add(z, 1.0 / 3.0);
    p = p.mul_add(z, 1.0);
    2.0 * s * p
}

/// e^x for f32 without branches, written so that it vectorises: x = n·ln2 + r with n
/// the nearest integer (rounded by adding 1.5·2²³, whose low mantissa bits then hold n)
/// and |r| ≤ ln2/2, e^r by a degree-6 polynomial (Cephes coefficients), 2^n assembled
/// in the exponent bits. Inputs are clamped to [−87.3, 88.7] (results stay normal).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.7 { 88.7 } else { x };
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_6e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let bits = shifted.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23;
    er * f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std_to_two_ulp_scale() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }

    #[test]
    fn vectorised_activations_equal_the_scalar_ones_bit_for_bit() {
        let x: Vec<f32> = (0..4099).map(|i| (i as f32 - 2049.0) * 0.0071).collect();
        let mut vectorised = x.clone();
        sigmoid_in_place(&mut vectorised);
        for (&x, &v) in x.iter().zip(&vectorised) {
            assert_eq!(v.to_bits(), Real::sigmoid(x).to_bits(), "σ({x})");
        }
    }

    #[test]
    fn fast_softplus_matches_f64_and_vectorises_to_the_same_bits() {
        let x: Vec<f32> = (0..40_001).map(|i| (i as f32 - 20_000.0) * 0.0041).collect();
        let mut worst = 0.0f64;
        for &x in &x {
            let want = f64::from(x).max(0.0) + (-f64::from(x).abs()).exp().ln_1p();
            worst = worst.max((f64::from(Real::softplus(x)) - want).abs() / want);
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        let mut u = 0.0f32;
        while u <= 1.0 {
            let want = f64::from(u).ln_1p();
            assert!((f64::from(ln_1p_unit_f32(u)) - want).abs() <= 2.5e-7 * want, "ln(1 + {u})");
            u += 1.0 / 4096.0;
        }
        let mut vectorised = x.clone();
        softplus_in_place(&mut vectorised);
        assert!(x.iter().zip(&vectorised).all(|(&x, &v)| v.to_bits() == Real::softplus(x).to_bits()));
        assert!((0.0..1e-37).contains(&Real::softplus(-200.0f32)));
        assert_eq!(Real::softplus(200.0f32), 200.0);
    }

    #[test]
    fn fast_tanh_and_sigmoid_match_std() {
        let mut worst = 0.0f64;
        let mut x = -20.0f32;
        while x < 20.0 {
            let t = Real::tanh(x) as f64;
            let s = Real::sigmoid(x) as f64;
            worst = worst.max((t - (x as f64).tanh()).abs());
            worst = worst.max((s - 1.0 / (1.0 + (-(x as f64)).exp())).abs());
            x += 0.00731;
        }
        // the rational tanh (and σ through it) stays within about 3 ulp of 1
        assert!(worst < 4e-7, "worst absolute error {worst}");
        assert!((-20..=20).all(|i| Real::tanh(7.5f32 + i as f32 * 0.025).abs() <= 1.0));
        assert_eq!(Real::tanh(100.0f32), 1.0);
        assert_eq!(Real::tanh(-100.0f32), -1.0);
        assert!(Real::sigmoid(-200.0f32) < 1e-37);
    }
}
