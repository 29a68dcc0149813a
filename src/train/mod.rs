//! Training: [`TrainingConfig`] (with its [`LossConfig`]) and the [`Trainer`] loop, with crash-safe checkpoints, a
//! CSV history and a PNG learning curve.

mod checkpoint;
mod config;
mod history;
mod layer_lr;
mod loss;
mod parallel;
mod trainer;

pub use checkpoint::RunState;
pub use config::{OptimizerConfig, TrainingConfig};
pub use history::{EpochRecord, parse_csv, plot_learning_curve, read_csv, write_csv};
pub use layer_lr::LayerLearningRates;
pub use loss::{LossConfig, all_pairs_loss, episode_loss, pair_loss};
pub use trainer::{Trainer, TrainingOutcome, checkpoint_path, epoch_weights};
