//! A trained run served live, from its folder alone — what `recur stream` runs.
//!
//! [`ServedRun`] opens the folder (config, model, the fitted standardisation, the bands'
//! calibration, the alarms kept). A [`Fleet`] serves it to a feed of raw rows: each read as
//! training read its data ([`FeedLayout`]: one column per signal, each row a grid step or
//! at its own time; or `time,signal,value[,entity]` rows), each entity's rows aligned onto
//! its own grid ([`FeedAligner`]), each complete step through the entity's own stream of
//! the run's task and its own alarm [`Watch`](crate::tasks::anomaly::Watch), and
//! everything they carry kept from one feed, or process, to the next ([`FleetState`]),
//! with the answers written so far where they go to a file ([`AnswerFile`]).

mod aligner;
mod answers;
mod feed;
mod fleet;
mod served;

pub use aligner::{AlignerState, FeedAligner, GridStep};
pub use answers::{AnswerFile, CutAnswers};
pub use feed::{FeedError, FeedLayout};
pub use fleet::{EntityState, FeedStep, Fleet, FleetState, ServedStep, WatchRule};
pub use served::ServedRun;
