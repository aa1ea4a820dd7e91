//! Runtime CPU dispatch for the fused pointwise loops.
//!
//! The pointwise work of a step (gate activations, state updates, layer norm) is
//! written as plain loops over `H`. [`vectorized`] runs such a loop inside a function
//! compiled for AVX2+FMA when the CPU has them, so the compiler emits 8-wide code
//! without building the whole crate for one CPU. No `mul_add` is used in the loops,
//! so both paths give bit-identical results.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Runs `f`, compiled with AVX2 enabled when the CPU supports it.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if has_avx2_fma() {
            // SAFETY: the CPU supports the enabled features (checked at run time).
            return unsafe { run_avx2(f) };
        }
    }
    f()
}
