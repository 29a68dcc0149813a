//! Training: [`TrainingConfig`] (with its [`LossConfig`]) and the [`Trainer`] loop, with
//! crash-safe checkpoints, a CSV history and a PNG learning curve.

mod checkpoint;
mod config;
mod curve;
mod layer_lr;
mod loss;
mod parallel;
mod schedule;
mod trainer;

pub use crate::history::{EpochRecord, read_csv};
pub use config::{OptimizerConfig, TrainingConfig};
pub use curve::plot_learning_curve;
pub use layer_lr::LayerLearningRates;
pub use loss::{LossConfig, all_pairs_loss, episode_loss, pair_loss};
pub use schedule::LrSchedule;
pub use trainer::{Trainer, TrainingOutcome, checkpoint_path, epoch_weights};
