//! Writes a PNG grid of sampled training pairs, to check the sampler by eye.
//!
//! Each row is one pair, twice: as drawn (left block) and with Koch's distortions (right
//! block). A green frame marks a same pair, a red frame a different pair. Images are shown
//! as Omniglot stores them: black ink on white.
//!
//! ```text
//! cargo run --release --example pair_grid -- --out pairs.png
//! ```

use std::path::PathBuf;

use clap::Parser;
use image::{GrayImage, Rgb, RgbImage};
use siamese::data::{NATIVE_SIZE, Omniglot, PairDatasetConfig, Part};

#[path = "../examples/common/mod.rs"]
mod common;

#[derive(Parser, Debug)]
#[command(about = "Writes a PNG grid of sampled Omniglot pairs, plain and distorted")]
struct Args {
    /// The Omniglot folder (the official zips or their extracted folders). Default:
    /// $OMNIGLOT_DIR, then the download cache (`omniglot_20way --download` fills it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The PNG to write.
    #[arg(long, default_value = "pair_grid.png")]
    out: PathBuf,
    /// Seed of the pair sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of pairs (rows).
    #[arg(long, default_value_t = 8)]
    pairs: usize,
    /// Draw different pairs from one alphabet.
    #[arg(long)]
    same_alphabet: bool,
    /// Which set: background or evaluation.
    #[arg(long, default_value = "background")]
    set: String,
}

const FRAME: u32 = 4;
const GAP: u32 = 16;
const SIDE: u32 = NATIVE_SIZE;

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> siamese::Result<()> {
    let args = Args::parse();
    let part = match args.set.as_str() {
        "background" => Part::Background,
        "evaluation" => Part::Evaluation,
        other => {
            return Err(siamese::Error::invalid(
                "set",
                format!("{other:?}: background or evaluation"),
            ));
        }
    };
    let images = Omniglot::find(args.data.as_deref())?.load(part)?;
    println!("{images}");
    let base = PairDatasetConfig::evaluation()
        .with_seed(args.seed)
        .with_pairs_per_epoch(args.pairs)
        .with_same_alphabet_negatives(args.same_alphabet);
    let plain = base.init(images.clone())?;
    let distorted = PairDatasetConfig::training()
        .with_seed(args.seed)
        .with_pairs_per_epoch(args.pairs)
        .with_same_alphabet_negatives(args.same_alphabet)
        .init(images.clone())?;

    // One block: frame, two images side by side, frame.
    let block_w = 2 * SIDE + 3 * FRAME;
    let block_h = SIDE + 2 * FRAME;
    let width = 2 * block_w + 3 * GAP;
    let height = args.pairs as u32 * (block_h + GAP) + GAP;
    let mut grid = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for row in 0..args.pairs {
        let y = GAP + row as u32 * (block_h + GAP);
        for (column, dataset) in [&plain, &distorted].into_iter().enumerate() {
            let pair = dataset.pair(0, row);
            let colour = if pair.indices.same {
                Rgb([0, 170, 0])
            } else {
                Rgb([220, 0, 0])
            };
            let x = GAP + column as u32 * (block_w + GAP);
            fill(&mut grid, x, y, block_w, block_h, colour);
            paste(&mut grid, &pair.left.to_luma8(), x + FRAME, y + FRAME);
            paste(
                &mut grid,
                &pair.right.to_luma8(),
                x + 2 * FRAME + SIDE,
                y + FRAME,
            );
            if column == 0 {
                let set = dataset.images();
                println!(
                    "row {row}: {:9} {} (drawer {}) vs {} (drawer {})",
                    if pair.indices.same {
                        "same"
                    } else {
                        "different"
                    },
                    set.class_name(set.class_of(pair.indices.left)),
                    set.instance_of(pair.indices.left),
                    set.class_name(set.class_of(pair.indices.right)),
                    set.instance_of(pair.indices.right),
                );
            }
        }
    }
    grid.save(&args.out).map_err(|e| siamese::Error::Image {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    println!(
        "wrote {} (left: as drawn; right: distorted; green frame: same, red: different)",
        args.out.display()
    );
    Ok(())
}

fn fill(grid: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    for dy in 0..h {
        for dx in 0..w {
            grid.put_pixel(x + dx, y + dy, colour);
        }
    }
}

/// Pastes an ink-high image as black ink on white.
fn paste(grid: &mut RgbImage, image: &GrayImage, x: u32, y: u32) {
    for (dx, dy, p) in image.enumerate_pixels() {
        let v = 255 - p.0[0];
        grid.put_pixel(x + dx, y + dy, Rgb([v, v, v]));
    }
}
