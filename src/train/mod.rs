//! Training: [`TrainingConfig`] and the [`Trainer`] loop, with crash-safe checkpoints, a
//! CSV history and a PNG learning curve.

mod checkpoint;
mod config;
mod history;
mod layer_lr;
mod parallel;
mod trainer;

pub use checkpoint::RunState;
pub use config::{OptimizerConfig, TrainingConfig};
pub use history::{EpochRecord, parse_csv, plot_learning_curve, read_csv, write_csv};
pub use layer_lr::LayerLearningRates;
pub use trainer::{Trainer, TrainingOutcome, checkpoint_path};
