//! One-shot evaluation: episodes, the official runs, the evaluator and baselines.
//!
//! - An [`Episode`] is N classes with K support images each, and queries with their true
//!   classes. Three sources make them, all reproducible: [`LakeRuns`] reads the 20
//!   official runs of `all_runs.zip`, [`KochProtocolConfig`] draws Koch's 20-way trials
//!   between two drawers, and [`RandomEpisodesConfig`] draws N-way K-shot episodes.
//! - A [`Scorer`] embeds images and scores queries against supports: the network
//!   ([`SiameseScorer`], and [`PairwiseScorer`], Koch's slower reference) and the baselines
//!   ([`PixelNearestNeighbour`], [`ModifiedHausdorff`]) all implement it.
//! - The [`Evaluator`] runs a scorer over episodes: each distinct image is embedded once,
//!   a class's K scores are aggregated ([`Aggregation`]), the best class is predicted, and
//!   the [`Evaluation`] reports the accuracy with its Wilson 95% [`Interval`].
//!
//! ```no_run
//! use siamese::eval::{EvaluatorConfig, LakeRuns, ModifiedHausdorff, PixelNearestNeighbour};
//!
//! let runs = LakeRuns::open("../shared/omniglot/all_runs.zip")?;
//! let evaluator = EvaluatorConfig::new().init()?;
//! println!("{}", evaluator.evaluate(&PixelNearestNeighbour, runs.episodes())?);
//! println!("{}", evaluator.evaluate(&ModifiedHausdorff, runs.episodes())?);
//! # Ok::<(), siamese::Error>(())
//! ```

mod aggregation;
mod episodes;
mod evaluator;
mod scorers;
mod sheet;
mod wilson;

pub use aggregation::Aggregation;
pub use episodes::{Episode, EpisodeScope, KochProtocolConfig, LakeRuns, RandomEpisodesConfig};
pub use evaluator::{EpisodeOutcome, Evaluation, Evaluator, EvaluatorConfig};
pub use scorers::{
    InkPoints, ModifiedHausdorff, PairwiseScorer, PixelNearestNeighbour, Scorer, SiameseScorer,
};
pub use sheet::{EpisodeSheet, EpisodeSheetConfig};
pub use wilson::{Interval, Z_95};
