//! One-shot matching on your own images: ranks the classes of a gallery folder for each
//! query image.
//!
//! ```text
//! cargo run --release --example match_images -- --gallery DIR --query FILE_OR_DIR
//!     [--weights PATH | --shipped glyphs|pictures] [--top-k N] [--aggregation mean|max]
//!     [--device flex]
//! ```
//!
//! The gallery folder holds one subfolder per class, named by its label, with any number
//! of example images (any format the `image` crate reads, any size). The query is one image
//! or a folder of images. Every picture is prepared as the network says: the shipped
//! compact network (the default without `--weights`) reads ink on paper (dark strokes on
//! light or the reverse); the shipped picture network (`--shipped pictures`) and a network
//! trained by `train_folder` read colour pictures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use siamese::data::Preprocess;
use siamese::eval::Aggregation;
use siamese::matcher::{Matcher, image_files};
use siamese::{Result, Siamese};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Rank the classes of a gallery folder for query images (one-shot matching)")]
struct Args {
    /// Gallery folder: one subfolder of example images per class.
    #[arg(long)]
    gallery: PathBuf,
    /// A query image, or a folder of query images.
    #[arg(long)]
    query: PathBuf,
    /// Trained weights (a .bpk with its .json beside it). Default: a shipped network
    /// (--shipped).
    #[arg(long, conflicts_with = "shipped")]
    weights: Option<PathBuf>,
    /// The shipped network to use without --weights: glyphs (Omniglot's compact network,
    /// ink on paper) or pictures (colour pictures, trained on emoji).
    #[arg(long, value_enum, default_value_t = Shipped::Glyphs)]
    shipped: Shipped,
    /// Classes to print per query (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
    /// How the scores of a class's examples are combined.
    #[arg(long, value_enum, default_value_t = Combine::Mean)]
    aggregation: Combine,
    /// Backend: flex, ndarray or wgpu (those compiled in).
    #[arg(long, default_value = "flex")]
    device: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Shipped {
    /// `siamese::pretrained::compact`: handwritten characters, ink on paper.
    Glyphs,
    /// `siamese::pretrained::pictures`: colour pictures (icons, emoji) on white.
    Pictures,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Combine {
    /// Mean of the example scores (logits).
    Mean,
    /// Best example score.
    Max,
}

fn main() -> ExitCode {
    common::exit(run(&Args::parse()))
}

fn run(args: &Args) -> Result<()> {
    let device = siamese::device::by_name(&args.device)?;
    let (model, source) = match &args.weights {
        Some(path) => (Siamese::load(path, &device)?, path.display().to_string()),
        None => match args.shipped {
            Shipped::Glyphs => (
                siamese::pretrained::compact(&device)?,
                "the shipped compact network".to_string(),
            ),
            Shipped::Pictures => (
                siamese::pretrained::pictures(&device)?,
                "the shipped picture network".to_string(),
            ),
        },
    };
    let input = model.input_spec();
    println!(
        "{source} reads {} channel{} of {}×{} pixels, prepared as {}",
        input.channels(),
        if input.channels() == 1 { "" } else { "s" },
        input.side(),
        input.side(),
        match input.preprocess() {
            Preprocess::Ink => "ink on paper".to_string(),
            Preprocess::Picture { background } => format!("pictures on {background:?}"),
            other => format!("{other:?}"),
        }
    );
    let aggregation = match args.aggregation {
        Combine::Mean => Aggregation::Mean,
        Combine::Max => Aggregation::Max,
    };
    let mut matcher = Matcher::new(model).with_aggregation(aggregation);

    let started = Instant::now();
    let shots = matcher.add_folder(&args.gallery)?;
    println!(
        "gallery {}: {} classes, {shots} images, embedded in {:.2} s with {source}",
        args.gallery.display(),
        matcher.num_classes(),
        started.elapsed().as_secs_f64()
    );

    let queries = if args.query.is_dir() {
        image_files(&args.query)?
    } else {
        vec![args.query.clone()]
    };
    let started = Instant::now();
    let rankings = matcher.classify_batch(&queries)?;
    let elapsed = started.elapsed().as_secs_f64();
    for (query, ranking) in queries.iter().zip(&rankings) {
        println!();
        println!("{}", display_name(query, &args.query));
        for (rank, m) in ranking.iter().take(args.top_k as usize).enumerate() {
            println!("  {:>2}. {:.3}  {}", rank + 1, m.probability, m.label);
        }
    }
    println!();
    println!(
        "{} quer{} ranked in {elapsed:.2} s ({:.1} ms each)",
        queries.len(),
        if queries.len() == 1 { "y" } else { "ies" },
        1000.0 * elapsed / queries.len() as f64
    );
    Ok(())
}

/// The query's path relative to the query folder (or as given, for one file).
fn display_name(query: &Path, root: &Path) -> String {
    query
        .strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(query)
        .display()
        .to_string()
}
