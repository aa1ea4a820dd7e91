//! `recur`: recurrent neural networks for time series and text.
//!
//! The layers run on [`recur_kernels`], fused CPU kernels with hand-derived backward
//! through time; this crate validates every input (shapes, lengths, finiteness) before
//! they reach a kernel, so its public functions return [`Error`]s instead of panicking.
//! Weights use PyTorch's names and layout (`weight_ih_l0`, `bias_hh_l1_reverse`; LSTM
//! gates i,f,g,o, GRU r,z,n) so that a `state_dict` saved as safetensors moves both ways.
//!
//! # Serving a trained run
//!
//! What `recur stream --flag S --state FILE` does, from a program: [`serve::Fleet`] takes a
//! raw feed's lines (any layout the run was trained on; each entity on its own grid) and
//! keeps every entity's state across restarts (its example is the command's whole loop).
//! Beneath it, per entity: the run folder alone ([`serve::ServedRun`]), a stream of its
//! task ([`tasks::LiveStream`]), its alarms ([`tasks::anomaly::Watch`]), and both states:
//!
//! ```no_run
//! use recur::serve::ServedRun;
//! use recur::tasks::anomaly::JOIN;
//!
//! # fn main() -> recur::Result<()> {
//! let run = ServedRun::open("runs/band")?;
//! let mut live = run.stream()?;
//! let mut watch = run.watch(&live, 4.0, JOIN)?;
//! // one grid step: every signal in `scaler.json`'s order, original units, None where missing
//! let mut values = vec![Some(1.0); live.signals().len()];
//! let flagged = watch.screen(&live, &mut values)?; // values it withholds become None
//! let answer = live.step(&values)?; // the next step's forecast, or this one filled
//! watch.expect(&answer);
//! for t in &flagged.new_alarms {
//!     println!("alarm: {}", watch.targets()[*t]);
//! }
//! let saved = (live.state(), watch.state()); // serde: to go on after a restart
//! live.restore(&saved.0)?;
//! watch.restore(&saved.1)?;
//! # Ok(())
//! # }
//! ```

pub mod benchmark;
pub mod classic;
pub mod data;
pub mod error;
pub mod experiments;
pub mod heads;
pub mod io;
pub mod losses;
pub mod model;
pub mod optim;
pub mod plot;
pub mod report;
pub mod rng;
pub mod rnn;
pub mod run;
pub mod serve;
pub mod tasks;
pub mod tensor;
pub mod text;
pub mod train;

pub use error::{Error, Result};

/// Keeps freed large buffers in the process instead of returning them to the OS after
/// every step (glibc's default trims and re-faults tens of MB per training step; measured
/// up to 27 % of a bidirectional step). A process-wide choice, so the *application* calls
/// it once at start (the `recur` binary and the benchmarks do); a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only adjusts allocator thresholds; called before any threads start.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 30);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
pub use recur_kernels as kernels;
pub use rng::Rng;
pub use tensor::Tensor;
