//! Prints the data module's figures: time and peak memory to load the background set from
//! its zip, and the pairs per second that `PairDataset` + `PairBatcher` deliver with
//! distortions on (batch 128, flex device), for inputs of 105 and 52 pixels.
//!
//! ```text
//! cargo run --release --example data_figures
//! ```

use std::path::PathBuf;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use clap::Parser;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use siamese::data::{
    DistortionConfig, ImageSet, Omniglot, PairBatcher, PairDatasetConfig, Part, to_input,
};

#[path = "../examples/common/mod.rs"]
mod common;

#[derive(Parser, Debug)]
#[command(about = "Load time, peak memory and pair throughput of the Omniglot data module")]
struct Args {
    /// The Omniglot folder (the official zips or their extracted folders). Default:
    /// $OMNIGLOT_DIR, then the download cache (`omniglot_20way --download` fills it).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Batches to time for each measurement.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Data loader workers for the second throughput figure.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// A field of /proc/self/status in MB (VmHWM: peak resident memory), if there is one.
fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> siamese::Result<()> {
    let args = Args::parse();
    let omniglot = Omniglot::find(args.data.as_deref())?;
    let zip = omniglot.locate(Part::Background)?;
    println!("cores (rayon threads): {}", rayon::current_num_threads());
    println!(
        "peak memory before loading: {:.1} MB",
        status_mb("VmHWM:").unwrap_or(f64::NAN)
    );

    let start = Instant::now();
    let background = omniglot.load(Part::Background)?;
    let load_s = start.elapsed().as_secs_f64();
    println!("loaded {background} from {}", zip.display());
    println!("load time: {load_s:.2} s (goal ≤ 3 s)");
    println!(
        "peak memory (VmHWM) after loading: {:.1} MB (goal ≤ 300 MB); resident now: {:.1} MB",
        status_mb("VmHWM:").unwrap_or(f64::NAN),
        status_mb("VmRSS:").unwrap_or(f64::NAN)
    );

    breakdown(&background);
    let device = siamese::device::by_name("flex")?;
    let pairs_total = args.batches * args.batch_size;
    for size in [105, 52] {
        let dataset = PairDatasetConfig::training()
            .with_pairs_per_epoch(pairs_total)
            .with_seed(1)
            .init(background.clone())?;
        let batcher = PairBatcher::new(size)?;

        // One thread: get + batch in a loop.
        let start = Instant::now();
        for b in 0..args.batches {
            let items = (b * args.batch_size..(b + 1) * args.batch_size)
                .map(|i| dataset.get(i).expect("pairs come from memory"))
                .collect();
            let batch = batcher.batch(items, &device);
            assert_eq!(batch.left.dims(), [args.batch_size, 1, size, size]);
        }
        let one = pairs_total as f64 / start.elapsed().as_secs_f64();

        // Burn's data loader with worker threads.
        let loader = DataLoaderBuilder::new(batcher)
            .batch_size(args.batch_size)
            .num_workers(args.workers)
            .set_device(device.clone())
            .build(dataset.clone());
        let start = Instant::now();
        let mut seen = 0;
        for batch in loader.iter() {
            seen += batch.expect("pairs come from memory").targets.dims()[0];
        }
        let many = seen as f64 / start.elapsed().as_secs_f64();
        assert_eq!(seen, pairs_total);

        println!(
            "input {size}×{size}, distortions on, batch {}: {one:.0} pairs/s from a plain loop, \
             {many:.0} pairs/s with a {}-worker DataLoader",
            args.batch_size, args.workers
        );
    }
    println!(
        "peak memory (VmHWM) at the end: {:.1} MB",
        status_mb("VmHWM:").unwrap_or(f64::NAN)
    );
    Ok(())
}

/// Microseconds per image of each step of a pair, one thread.
fn breakdown(set: &ImageSet) {
    let n = 2000.min(set.len());
    let per_image = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    let images: Vec<_> = (0..n).map(|i| set.image(i * (set.len() / n))).collect();
    let unpack = per_image(start);
    let distortion = DistortionConfig::koch();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let start = Instant::now();
    let warped: Vec<_> = images
        .iter()
        .map(|image| distortion.distort(image, &mut rng))
        .collect();
    let distort = per_image(start);
    let mut resize = [0.0; 2];
    for (time, size) in resize.iter_mut().zip([105, 52]) {
        let start = Instant::now();
        let values: usize = warped.iter().map(|image| to_input(image, size).len()).sum();
        *time = per_image(start);
        assert_eq!(values, n * size * size);
    }
    println!(
        "per image: unpack {unpack:.0} µs, distort (imageproc warp, bilinear) {distort:.0} µs, \
         to_input 105 {:.0} µs, to_input 52 {:.0} µs",
        resize[0], resize[1]
    );
}
