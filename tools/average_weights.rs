//! Averages checkpoints of one run into one network (stochastic weight averaging over the
//! epochs kept with `omniglot_20way --train --keep-epochs`).
//!
//! ```text
//! cargo run --release --example average_weights -- --out runs/mean.bpk \
//!     runs/long/training/epoch-04{0,1,2,3,4}.bpk
//! cargo run --release --example generalization_gap -- --weights runs/mean.bpk
//! ```
//!
//! Every weight and batch-norm running statistic is the mean of the checkpoints'
//! ([`siamese::Siamese::average`]); with `--batch-norm-batches N` the running statistics
//! are then recomputed on N grouped training batches, drawn as `omniglot_20way --train`
//! draws them ([`siamese::Siamese::refresh_batch_norm`]). Choose which epochs to average
//! on the validation alphabets, as with any other setting.

use std::path::PathBuf;

use burn::data::dataloader::batcher::Batcher;
use clap::Parser;
use siamese::data::{
    DistortionConfig, GroupBatcher, GroupDatasetConfig, GroupedBatchConfig, Omniglot,
};
use siamese::{Result, Siamese};

#[path = "../examples/common/mod.rs"]
mod common;

#[derive(Parser, Debug)]
#[command(about = "The mean of several checkpoints of one network")]
struct Args {
    /// Checkpoints to average (each a .bpk with its .json beside it), at least one.
    #[arg(required = true)]
    weights: Vec<PathBuf>,
    /// Where to write the mean (a .bpk; its .json is written beside it).
    #[arg(long)]
    out: PathBuf,
    /// Recompute the batch-norm running statistics on this many training batches (32
    /// characters × 2 drawings from images_background, with Koch's distortions); 0 keeps
    /// the mean of the checkpoints' statistics.
    #[arg(long, default_value_t = 0)]
    batch_norm_batches: usize,
    /// Draw those batches upright (as a run trained with `--upright`), not in quarter turns.
    #[arg(long)]
    upright: bool,
    /// Draw those batches mirrored too (as a run trained with `--mirrors`).
    #[arg(long)]
    mirrors: bool,
    /// The Omniglot folder, for `--batch-norm-batches`. Default: $OMNIGLOT_DIR, then the
    /// download cache.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    let device = siamese::device::default_device()?;
    let models = (args.weights.iter())
        .map(|path| Siamese::load(path, &device))
        .collect::<Result<Vec<_>>>()?;
    let mut mean = Siamese::average(&models)?;
    if args.batch_norm_batches > 0 {
        eprintln!("loading images_background ...");
        let background = Omniglot::find(args.data.as_deref())?.background()?;
        let batch = GroupedBatchConfig::new()
            .with_quarter_turns((!args.upright).then_some(true))
            .with_mirrors(args.mirrors.then_some(true));
        let groups = GroupDatasetConfig::new(batch)
            .with_batches_per_epoch(args.batch_norm_batches)
            .with_distortion(Some(DistortionConfig::koch()))
            .with_seed(args.seed)
            .init(background)?;
        let batcher = GroupBatcher::new(mean.input_shape()[0])?;
        let batches =
            (0..args.batch_norm_batches).map(|i| batcher.batch(groups.batch(0, i), &device).images);
        mean = mean.refresh_batch_norm(batches)?;
    }
    mean.save(&args.out)?;
    println!(
        "wrote the mean of {} checkpoints to {}{}",
        models.len(),
        args.out.display(),
        match args.batch_norm_batches {
            0 => String::new(),
            n => format!(", batch norm recomputed on {n} batches"),
        }
    );
    Ok(())
}
