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
//! ([`siamese::Siamese::average`]). Choose which epochs to average on the validation
//! alphabets, as with any other setting.

use std::path::PathBuf;

use clap::Parser;
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
    Siamese::average(&models)?.save(&args.out)?;
    println!(
        "wrote the mean of {} checkpoints to {}",
        models.len(),
        args.out.display()
    );
    Ok(())
}
