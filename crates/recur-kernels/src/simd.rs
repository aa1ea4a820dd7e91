//! Runtime CPU dispatch for the fused pointwise loops.
//!
//! The pointwise work of a step (gate activations, state updates, layer norm) is
//! written as plain loops over `H`. [`vectorized`] runs such a loop inside a function
//! compiled for AVX2+FMA when the CPU has them, so the compiler emits 8-wide code
//! without building the whole crate for one CPU (AVX-512 likewise, where present). Both
//! paths give bit-identical results: rustc never contracts `a * b + c`, and the `mul_add`
//! of the activations rounds once on every path. The one place written with intrinsics
//! is the end of the lane reductions ([`lane_totals_f32`]), which the compiler did not
//! vectorise; it adds the same pairs as the portable [`pairwise_total`].

use std::ops::Add;
#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Level {
    Baseline = 1,
    Avx2 = 2,
    Avx512 = 3,
}

/// The detected [`Level`], 0 until the first call. A plain atomic load that inlines: the
/// lane totals ask for it inside the fused loops, where a call (as `OnceLock` compiled
/// to) spilled every accumulator register around it.
#[cfg(target_arch = "x86_64")]
static LEVEL: AtomicU8 = AtomicU8::new(0);

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => detect_level(),
    }
}

#[cfg(target_arch = "x86_64")]
#[cold]
#[inline(never)]
fn detect_level() -> Level {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let avx512 = avx2 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
    let level = match (avx512, avx2, std::env::var_os("RECUR_NO_AVX512").is_some()) {
        (true, _, false) => Level::Avx512,
        (_, true, _) => Level::Avx2,
        _ => Level::Baseline,
    };
    LEVEL.store(level as u8, Ordering::Relaxed);
    level
}

/// Partial sums of the pointwise reductions (layer norm's moments and their backward)
/// are kept in this many interleaved lanes: the loops vectorise without fast-math, and
/// the rounding is the same on every CPU.
pub const LANES: usize = 16;

/// Σ of the lanes, pairwise: (l, l+8), then (l, l+4), (l, l+2), (0, 1) — log₂(LANES)
/// dependent additions, not LANES. The reference order: [`lane_totals_f32`] adds the same
/// pairs.
#[inline(always)]
pub fn pairwise_total<T: Copy + Add<Output = T>>(lanes: &[T; LANES]) -> T {
    let l8: [T; 8] = std::array::from_fn(|l| lanes[l] + lanes[l + 8]);
    let l4: [T; 4] = std::array::from_fn(|l| l8[l] + l8[l + 4]);
    let l2: [T; 2] = std::array::from_fn(|l| l4[l] + l4[l + 2]);
    l2[0] + l2[1]
}

/// [`pairwise_total`] of each of `K` lane arrays, bit for bit, four arrays per
/// instruction with AVX-512 or AVX2: the compiler reduced each array on its own, with
/// its lanes moved through the stack two at a time (~19 % of the pointwise samples of an
/// LSTM layer-norm forward).
#[inline(always)]
pub fn lane_totals_f32<const K: usize>(lanes: &[[f32; LANES]; K]) -> [f32; K] {
    #[cfg(target_arch = "x86_64")]
    {
        let mut totals = [0.0; K];
        match level() {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            Level::Avx512 => unsafe { x86::lane_totals_avx512(lanes, &mut totals) },
            Level::Avx2 => unsafe { x86::lane_totals_avx2(lanes, &mut totals) },
            Level::Baseline => return std::array::from_fn(|k| pairwise_total(&lanes[k])),
        }
        totals
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::array::from_fn(|k| pairwise_total(&lanes[k]))
}

/// The four-at-a-time reductions. Each total is ((v_l + v_{l+8}) + (… l+4)) + … exactly as
/// in [`pairwise_total`]; the shuffles only decide which register lane holds which pair.
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// The four arrays from `first`, padded with zeros past the `K`.
    #[inline(always)]
    fn group<const K: usize>(lanes: &[[f32; LANES]; K], first: usize) -> [[f32; LANES]; 4] {
        std::array::from_fn(|j| if first + j < K { lanes[first + j] } else { [0.0; LANES] })
    }

    /// `totals[k]` = Σ `lanes[k]`, in 512-bit registers.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn lane_totals_avx512<const K: usize>(lanes: &[[f32; LANES]; K], totals: &mut [f32; K]) {
        for first in (0..K).step_by(4) {
            let g = group(lanes, first);
            let (a, b, c, d) = unsafe {
                (
                    _mm512_loadu_ps(g[0].as_ptr()),
                    _mm512_loadu_ps(g[1].as_ptr()),
                    _mm512_loadu_ps(g[2].as_ptr()),
                    _mm512_loadu_ps(g[3].as_ptr()),
                )
            };
            // (l, l+8): 256-bit halves of a and b side by side, then of c and d
            let ab = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b));
            let cd = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(c, d), _mm512_shuffle_f32x4::<0xEE>(c, d));
            // (l, l+4): one 128-bit block per array, in the order a, b, c, d
            let s4 = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(ab, cd), _mm512_shuffle_f32x4::<0xDD>(ab, cd));
            // (l, l+2), then (0, 1), within each block
            let s2 = _mm512_add_ps(s4, _mm512_shuffle_ps::<0xEE>(s4, s4));
            let s1 = _mm512_add_ps(s2, _mm512_movehdup_ps(s2));
            let mut out = [0.0f32; LANES];
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), s1) };
            for j in 0..4.min(K - first) {
                totals[first + j] = out[4 * j];
            }
        }
    }

    /// `totals[k]` = Σ `lanes[k]`, in 256-bit registers.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub unsafe fn lane_totals_avx2<const K: usize>(lanes: &[[f32; LANES]; K], totals: &mut [f32; K]) {
        for first in (0..K).step_by(4) {
            let g = group(lanes, first);
            // (l, l+8): the two halves of each array
            let [a, b, c, d] = [0, 1, 2, 3].map(|j| {
                let v = g[j].as_ptr();
                // SAFETY: `v` points at LANES = 16 values
                unsafe { _mm256_add_ps(_mm256_loadu_ps(v), _mm256_loadu_ps(v.add(8))) }
            });
            // (l, l+4): a and b in one register's 128-bit halves, c and d in another
            let ab = _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(a, b), _mm256_permute2f128_ps::<0x31>(a, b));
            let cd = _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(c, d), _mm256_permute2f128_ps::<0x31>(c, d));
            // (l, l+2): per half [ab₀+ab₂, ab₁+ab₃, cd₀+cd₂, cd₁+cd₃]; then (0, 1)
            let s2 = _mm256_add_ps(_mm256_shuffle_ps::<0x44>(ab, cd), _mm256_shuffle_ps::<0xEE>(ab, cd));
            let s1 = _mm256_add_ps(s2, _mm256_movehdup_ps(s2));
            let mut out = [0.0f32; 8];
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s1) };
            // lanes: a 0, c 2, b 4, d 6
            for (j, lane) in [0, 4, 2, 6].into_iter().enumerate().take(K - first) {
                totals[first + j] = out[lane];
            }
        }
    }
}

/// Runs `f`, compiled with AVX-512 or AVX2 enabled when the CPU supports them
/// (`RECUR_NO_AVX512=1` caps it at AVX2, for comparisons).
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match level() {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            Level::Avx512 => return unsafe { run_avx512(f) },
            Level::Avx2 => return unsafe { run_avx2(f) },
            Level::Baseline => {}
        }
    }
    f()
}

/// Asks the CPU to bring `v` into L1 ahead of its use, a cache line at a time. A hint
/// only: it never faults and changes no result.
#[inline(always)]
pub fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = v.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(v)).step_by(64) {
            // SAFETY: `offset` stays inside `v`; a prefetch reads nothing architecturally.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lane values of mixed sign and magnitude, so that a different order of the
    /// additions would round differently.
    fn lanes<const K: usize>(seed: u32) -> [[f32; LANES]; K] {
        std::array::from_fn(|k| {
            std::array::from_fn(|l| {
                let i = (seed as usize * 131 + k * 17 + l) as f32;
                (i * 0.731).sin() * 10f32.powi((l % 7) as i32 - 3)
            })
        })
    }

    fn check<const K: usize>() {
        for seed in 0..50 {
            let v = lanes::<K>(seed);
            let want: [u32; K] = std::array::from_fn(|k| pairwise_total(&v[k]).to_bits());
            assert_eq!(lane_totals_f32(&v).map(f32::to_bits), want, "K = {K}, seed {seed}");
            #[cfg(target_arch = "x86_64")]
            {
                let mut got = [0.0f32; K];
                if is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 checked above
                    unsafe { x86::lane_totals_avx2(&v, &mut got) };
                    assert_eq!(got.map(f32::to_bits), want, "AVX2, K = {K}, seed {seed}");
                }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: AVX-512F checked above
                    unsafe { x86::lane_totals_avx512(&v, &mut got) };
                    assert_eq!(got.map(f32::to_bits), want, "AVX-512, K = {K}, seed {seed}");
                }
            }
        }
    }

    #[test]
    fn lane_totals_add_the_same_pairs_as_the_pairwise_reference() {
        check::<1>();
        check::<2>();
        check::<3>();
        check::<4>();
        check::<5>();
        check::<8>();
        check::<9>();
    }
}
