//! Forward and training throughput of the `koch` and `compact` networks on each backend.
//!
//! ```text
//! cargo run --release --features ndarray --example throughput -- --devices flex,ndarray
//! cargo run --release --example throughput -- --mode train --batches 32,128
//! cargo run --release --example throughput -- --mode embed,forward,train \
//!     --batches 1,20,128 --train-batches 32,128 --threads 2 --format lines
//! ```
//!
//! Inputs are fresh random images each iteration and the device is synced inside the timed
//! region, so asynchronous backends (wgpu) are timed honestly. Prints the median over
//! `--iters` runs after `--warmup` untimed ones. (The criterion benches measure the same
//! forward figures with statistics; this example exists to compare backends and modes
//! side by side in one table.)
//!
//! `--format lines` prints one `RESULT key=value ...` line per figure, the format that
//! `benches/reference/torch_reference.py` also prints, so that `benches/reference/compare.py`
//! can put Burn and PyTorch side by side.

use std::time::Instant;

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::{Parser, ValueEnum};
use siamese::device::BackendKind;
use siamese::{EncoderConfig, SiameseConfig};

#[path = "../benches/common/mod.rs"]
mod bench;
#[path = "../examples/common/mod.rs"]
mod common;

use bench::{Format, WGPU_BUFFER_LIMIT, largest_activation};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Preset {
    Koch,
    Compact,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Mode {
    /// Embeddings per second (`Siamese::embed`).
    Embed,
    /// Pair forwards per second (`Siamese::forward`).
    Forward,
    /// SGD steps on pairs (forward, BCE loss, backward, update), pairs per second.
    Train,
}

#[derive(Parser, Debug)]
struct Args {
    /// Backends to measure (flex, ndarray, wgpu).
    #[arg(long, value_delimiter = ',', default_value = "flex")]
    devices: Vec<String>,
    /// Networks to measure.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "koch,compact"
    )]
    presets: Vec<Preset>,
    /// What to measure.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "embed")]
    mode: Vec<Mode>,
    /// Batch sizes (images for `embed`, pairs for `forward` and `train`).
    #[arg(long, value_delimiter = ',', default_value = "1,20,128")]
    batches: Vec<usize>,
    /// Batch sizes of the training step; `--batches` when not given.
    #[arg(long, value_delimiter = ',')]
    train_batches: Option<Vec<usize>>,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// CPU threads of the flex and ndarray backends (rayon's global pool); 0 keeps
    /// rayon's default (`RAYON_NUM_THREADS`, else one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> siamese::Result<()> {
    let args = Args::parse();
    if args.iters == 0 {
        return Err(siamese::Error::invalid("--iters", "must be at least 1"));
    }
    if args.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build_global()
            .map_err(|e| siamese::Error::invalid("--threads", e.to_string()))?;
    }
    let threads = rayon::current_num_threads();
    if args.format == Format::Table {
        println!(
            "{:<8} {:<8} {:<8} {:>6} {:>12} {:>12}",
            "device", "preset", "mode", "batch", "median ms", "items/s"
        );
    }
    for name in &args.devices {
        let backend: BackendKind = name.parse()?;
        let device = backend.device()?;
        for &preset in &args.presets {
            let preset_name = format!("{preset:?}").to_lowercase();
            let config = match preset {
                Preset::Koch => SiameseConfig::koch(),
                Preset::Compact => SiameseConfig::compact(),
            };
            if args.format == Format::Lines {
                println!(
                    "RESULT impl=flops source=burn preset={preset_name} gflop_per_image={:.4}",
                    forward_flops(&config.encoder) as f64 / 1e9
                );
            }
            for &mode in &args.mode {
                let mode_name = format!("{mode:?}").to_lowercase();
                let batches = match (mode, &args.train_batches) {
                    (Mode::Train, Some(batches)) => batches,
                    _ => &args.batches,
                };
                for &batch in batches {
                    let images = if mode == Mode::Embed {
                        batch
                    } else {
                        2 * batch
                    };
                    let largest = images * largest_activation(&config.encoder) * 4;
                    if backend == BackendKind::Wgpu && largest > WGPU_BUFFER_LIMIT {
                        eprintln!(
                            "skipping {backend} {preset_name} {mode_name} batch {batch}: its largest \
                             activation ({} MB) exceeds the {} MiB buffer limit",
                            largest / 1_000_000,
                            WGPU_BUFFER_LIMIT >> 20
                        );
                        continue;
                    }
                    let ms = measure(&config, mode, batch, &device, &args);
                    let per_second = batch as f64 / (ms / 1e3);
                    match args.format {
                        Format::Table => println!(
                            "{:<8} {:<8} {:<8} {:>6} {:>12.1} {:>12.1}",
                            backend.name(),
                            preset_name,
                            mode_name,
                            batch,
                            ms,
                            per_second
                        ),
                        Format::Lines => println!(
                            "RESULT impl=burn-{} preset={preset_name} mode={mode_name} \
                             batch={batch} threads={threads} median_ms={ms:.3} items_per_s={per_second:.3}",
                            backend.name()
                        ),
                    }
                }
            }
        }
    }
    Ok(())
}

/// Forward FLOPs of one image through the encoder: two per multiply-add of the
/// convolutions and the fully connected layer (activations, pooling and batch norm left out).
fn forward_flops(config: &EncoderConfig) -> usize {
    let mut side = config.input_size;
    let mut channels = 1;
    let mut macs = 0;
    for block in &config.blocks {
        let conv = side + 2 * block.padding + 1 - block.kernel;
        macs += conv * conv * block.channels * channels * block.kernel * block.kernel;
        channels = block.channels;
        side = block.output_size(side).unwrap_or(0);
    }
    if let Some(width) = config.embedding {
        macs += config.flattened_size() * width;
    }
    2 * macs
}

/// Median milliseconds of one iteration.
fn measure(config: &SiameseConfig, mode: Mode, batch: usize, device: &Device, args: &Args) -> f64 {
    let s = config.encoder.input_size;
    let images =
        |device: &Device| Tensor::<4>::random([batch, 1, s, s], Distribution::Default, device);
    let mut times = Vec::with_capacity(args.iters);
    match mode {
        Mode::Embed | Mode::Forward => {
            let model = config.init(device).valid();
            for i in 0..args.warmup + args.iters {
                let (a, b) = (images(device), images(device));
                device.sync().expect("device sync");
                let start = Instant::now();
                let out = match mode {
                    Mode::Embed => model.embed(a),
                    _ => model.forward(a, b),
                };
                let _ = out.into_data();
                device.sync().expect("device sync");
                if i >= args.warmup {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        Mode::Train => {
            let device = device.clone().autodiff();
            let mut model = config.init(&device);
            let mut optim = SgdConfig::new()
                .with_momentum(Some(
                    MomentumConfig::new().with_momentum(0.5).with_dampening(0.0),
                ))
                .init();
            let loss_fn = BinaryCrossEntropyLossConfig::new()
                .with_logits(true)
                .init(&device);
            for i in 0..args.warmup + args.iters {
                let (a, b) = (images(&device), images(&device));
                let targets = Tensor::<1, Int>::from_data(
                    TensorData::new(
                        (0..batch as i64).map(|j| j % 2).collect::<Vec<_>>(),
                        [batch],
                    ),
                    &device,
                );
                device.sync().expect("device sync");
                let start = Instant::now();
                let logits = model.forward(a, b).flatten(0, 1);
                let loss = loss_fn.forward(logits, targets);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(1e-3, model, grads);
                let _ = loss.into_data();
                device.sync().expect("device sync");
                if i >= args.warmup {
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
