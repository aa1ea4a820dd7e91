//! Runtime CPU dispatch for the fused pointwise loops.
//!
//! The pointwise work of a step (gate activations, state updates, layer norm) is
//! written as plain loops over `H`. [`vectorized`] runs such a loop inside a function
//! compiled for AVX2+FMA when the CPU has them, so the compiler emits 8-wide code
//! without building the whole crate for one CPU (AVX-512 likewise, where present). Both
//! paths give bit-identical results: rustc never contracts `a * b + c`, and the `mul_add`
//! of the activations rounds once on every path.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Baseline,
    Avx2,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let avx512 = avx2 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
        match (avx512, avx2, std::env::var_os("RECUR_NO_AVX512").is_some()) {
            (true, _, false) => Level::Avx512,
            (_, true, _) => Level::Avx2,
            _ => Level::Baseline,
        }
    })
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
