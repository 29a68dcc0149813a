//! What limits one-shot accuracy: fitting the training alphabets, or carrying what was
//! learnt over to new ones?
//!
//! ```text
//! cargo run --release --example generalization_gap -- \
//!     --weights runs/long/training/best.bpk --weights weights/compact.bpk
//! ```
//!
//! For each network (the shipped compact one when no `--weights` is given) it runs Koch's
//! 20-way protocol on three sets of alphabets and prints one row:
//! - **background**: the training alphabets (those with at least 20 characters). Every
//!   drawing was seen in training, so this is how well the network fits what it learnt;
//! - **validation**: the 10 evaluation alphabets that the official runs do not use, which
//!   `omniglot_20way --train` picks its epoch with;
//! - **test**: the 10 alphabets of the official runs, and the official runs themselves.
//!
//! A network that is near 100% on background but far lower on the rest is limited by
//! generalisation (more distortions, more characters, regularisation); one that is low
//! on both is limited by fitting (capacity, training length, optimiser).

use std::path::PathBuf;

use burn::module::Module;
use clap::Parser;
use siamese::data::{
    DistortionConfig, EVALUATION_OTHER_ALPHABETS, EVALUATION_RUN_ALPHABETS, Omniglot,
};
use siamese::eval::{Evaluation, EvaluatorConfig, KochProtocolConfig, LakeRuns, SiameseScorer};
use siamese::{Result, Siamese};

#[path = "../examples/common/mod.rs"]
mod common;

#[derive(Parser, Debug)]
#[command(about = "One-shot accuracy on the training alphabets beside the held-out ones")]
struct Args {
    /// The Omniglot folder (the official zips or their extracted folders). Default:
    /// $OMNIGLOT_DIR, then the download cache (`omniglot_20way --download` fills it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Trained weights (a .bpk with its .json beside it); repeat to compare several.
    /// Default: the compact network shipped in the crate.
    #[arg(long)]
    weights: Vec<PathBuf>,
    /// Backend: flex, ndarray or wgpu (those compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Koch-protocol runs per alphabet (20 trials each).
    #[arg(long, default_value_t = 2)]
    runs_per_alphabet: usize,
    /// Test-time views: each embedding is the mean over the image and this many Koch
    /// distortions of it (seeded by --seed); repeat to compare several counts.
    #[arg(long, default_values_t = [0])]
    views: Vec<usize>,
    /// Skip the training alphabets (the slowest column) and print only the held-out ones.
    #[arg(long)]
    no_background: bool,
    /// Seed of the Koch-protocol trials and of the test-time views.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn cell(result: &Evaluation) -> String {
    format!("{:.1}% {}", 100.0 * result.accuracy(), result.interval())
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    let device = siamese::device::by_name(&args.device)?;
    let omniglot = Omniglot::find(args.data.as_deref())?;
    eprintln!("loading images_background and images_evaluation ...");
    let background = omniglot.background()?;
    let evaluation = omniglot.evaluation()?;
    let runs = LakeRuns::official()?;

    // Koch's protocol needs 20 characters per alphabet; 4 of the 30 background ones have fewer.
    let wide: Vec<&str> = background
        .group_names()
        .iter()
        .enumerate()
        .filter(|(a, _)| background.classes_of_group(*a).len() >= 20)
        .map(|(_, name)| name.as_str())
        .collect();
    let protocol = KochProtocolConfig::new()
        .with_runs_per_alphabet(args.runs_per_alphabet)
        .with_seed(args.seed);
    let sets = [
        protocol.episodes(&background, Some(&wide))?,
        protocol.episodes(&evaluation, Some(&EVALUATION_OTHER_ALPHABETS))?,
        protocol.episodes(&evaluation, Some(&EVALUATION_RUN_ALPHABETS))?,
    ];
    let trials = |set: &[siamese::eval::Episode]| set.iter().map(|e| e.n_queries()).sum();
    let counts: Vec<usize> = sets.iter().map(|s| trials(s)).collect();

    let evaluator = EvaluatorConfig::new().init()?;
    println!();
    println!(
        "20-way one-shot accuracy, Koch protocol seed {} (95% Wilson interval)",
        args.seed
    );
    println!();
    println!(
        "| network | background ({} alphabets, {} trials) | validation ({}) | test ({}) | official runs (400) |",
        wide.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    println!("|---|---|---|---|---|");
    let networks: Vec<Option<&PathBuf>> = if args.weights.is_empty() {
        vec![None]
    } else {
        args.weights.iter().map(Some).collect()
    };
    for weights in networks {
        let (model, name) = match weights {
            Some(path) => (Siamese::load(path, &device)?, path.display().to_string()),
            None => (
                siamese::pretrained::compact(&device)?,
                "compact (shipped)".to_string(),
            ),
        };
        let model = model.valid();
        for &views in &args.views {
            let scorer = SiameseScorer::new(&model)
                .with_views(DistortionConfig::koch().views(views, args.seed));
            let mut cells = Vec::new();
            for (i, set) in sets.iter().enumerate() {
                cells.push(if i == 0 && args.no_background {
                    "-".to_string()
                } else {
                    cell(&evaluator.evaluate(&scorer, set)?)
                });
            }
            cells.push(cell(&evaluator.evaluate(&scorer, runs.episodes())?));
            let label = match views {
                0 => name.clone(),
                n => format!("{name}, {n} views"),
            };
            println!("| {label} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
