//! The one-shot figures of the baselines, and the evaluator's speed with the paper's network.
//!
//! ```text
//! cargo run --release --example eval_figures -- --seed 0
//! ```
//!
//! Prints the accuracy (with its Wilson 95% interval) of pixel nearest neighbour and of
//! Lake's modified Hausdorff distance on the 20 official runs (`all_runs.zip`) and on
//! Koch's protocol (400 trials on the 10 evaluation alphabets of the runs, drawn with
//! `--seed`), then the time the evaluator takes to score the 400 official trials with a
//! randomly initialised `koch` network on the flex CPU device (`--pairwise` also times
//! Koch's pair-by-pair scoring, which is many times slower).

use std::path::PathBuf;

use clap::Parser;
use siamese::SiameseConfig;
use siamese::data::{EVALUATION_RUN_ALPHABETS, Omniglot};
use siamese::device::BackendKind;
use siamese::eval::{
    Episode, Evaluation, EvaluatorConfig, KochProtocolConfig, LakeRuns, ModifiedHausdorff,
    PairwiseScorer, PixelNearestNeighbour, SiameseScorer,
};

#[path = "../examples/common/mod.rs"]
mod common;

#[derive(Parser, Debug)]
struct Args {
    /// The Omniglot folder (the official zips or their extracted folders). Default:
    /// $OMNIGLOT_DIR, then the download cache (`omniglot_20way --download` fills it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of Koch's protocol draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per batch for the network.
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Also time pairwise scoring (each query-support pair through the whole network).
    #[arg(long)]
    pairwise: bool,
}

fn row(label: &str, result: &Evaluation) {
    println!(
        "  {:<26} {:>5.1}%  {}  error {:>4.1}%  ({} trials, {:.2} s)",
        label,
        100.0 * result.accuracy(),
        result.interval(),
        100.0 * (1.0 - result.accuracy()),
        result.total(),
        result.elapsed.as_secs_f64()
    );
}

fn baselines(title: &str, episodes: &[Episode]) -> siamese::Result<()> {
    let evaluator = EvaluatorConfig::new().init()?;
    println!("{title}");
    row(
        "pixel nearest neighbour",
        &evaluator.evaluate(&PixelNearestNeighbour, episodes)?,
    );
    row(
        "modified Hausdorff",
        &evaluator.evaluate(&ModifiedHausdorff, episodes)?,
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> siamese::Result<()> {
    let args = Args::parse();

    let runs = LakeRuns::official()?;
    baselines(
        "Official runs (20 runs of 20-way one-shot, all_runs.zip):",
        runs.episodes(),
    )?;

    let evaluation = Omniglot::find(args.data.as_deref())?.evaluation()?;
    let koch = KochProtocolConfig::new()
        .with_seed(args.seed)
        .episodes(&evaluation, Some(&EVALUATION_RUN_ALPHABETS))?;
    baselines(
        &format!(
            "Koch's protocol (2 runs x 10 run alphabets x 20 trials, 20-way, seed {}):",
            args.seed
        ),
        &koch,
    )?;

    let device = BackendKind::Flex.device()?;
    let model = SiameseConfig::koch().init(&device);
    println!("Randomly initialised koch network on flex, official runs:");
    let evaluator = EvaluatorConfig::new()
        .with_batch_size(args.batch_size)
        .init()?;
    let distinct: usize = runs
        .episodes()
        .iter()
        .map(|e| e.n_queries() + e.n_way())
        .sum();
    let result = evaluator.evaluate(&SiameseScorer::new(&model), runs.episodes())?;
    row("embed once (all pairs)", &result);
    println!(
        "    {} images embedded: {:.1} ms an image, {:.2} ms a trial",
        distinct,
        1e3 * result.elapsed.as_secs_f64() / distinct as f64,
        1e3 * result.elapsed.as_secs_f64() / result.total() as f64
    );
    if args.pairwise {
        let scorer = PairwiseScorer::new(&model).with_batch_size(args.batch_size / 2)?;
        let slow = evaluator.evaluate(&scorer, runs.episodes())?;
        row("pairwise (Koch)", &slow);
        let agree = slow
            .predictions()
            .iter()
            .zip(result.predictions())
            .filter(|(a, b)| **a == *b)
            .count();
        println!(
            "    speed-up {:.1}x; {agree} of {} predictions agree",
            slow.elapsed.as_secs_f64() / result.elapsed.as_secs_f64(),
            slow.total()
        );
    }
    Ok(())
}
