//! Forward and training throughput of the `koch` and `compact` networks on each backend.
//!
//! ```text
//! cargo run --release --features ndarray --example throughput -- --devices flex,ndarray
//! cargo run --release --example throughput -- --mode train --batches 32,128
//! ```
//!
//! Inputs are fresh random images each iteration and the device is synced inside the timed
//! region, so asynchronous backends (wgpu) are timed honestly. Prints the median over
//! `--iters` runs after `--warmup` untimed ones. (The criterion benches measure the same
//! forward figures with statistics; this example exists to compare backends and modes
//! side by side in one table.)

use std::time::Instant;

use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::{Parser, ValueEnum};
use siamese::SiameseConfig;
use siamese::device::Backend;

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
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,20,128")]
    batches: Vec<usize>,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
}

fn main() -> siamese::Result<()> {
    let args = Args::parse();
    println!(
        "{:<8} {:<8} {:<8} {:>6} {:>12} {:>12}",
        "device", "preset", "mode", "batch", "median ms", "items/s"
    );
    for name in &args.devices {
        let backend: Backend = name.parse()?;
        if !backend.trains_well() && args.mode.contains(&Mode::Train) {
            eprintln!(
                "warning: training on {backend} is very slow (its conv backward is 100-300x its forward)"
            );
        }
        let device = backend.device()?;
        for &preset in &args.presets {
            let config = match preset {
                Preset::Koch => SiameseConfig::koch(),
                Preset::Compact => SiameseConfig::compact(),
            };
            for &mode in &args.mode {
                for &batch in &args.batches {
                    let ms = measure(&config, mode, batch, &device, &args);
                    println!(
                        "{:<8} {:<8} {:<8} {:>6} {:>12.1} {:>12.1}",
                        backend.name(),
                        format!("{preset:?}").to_lowercase(),
                        format!("{mode:?}").to_lowercase(),
                        batch,
                        ms,
                        batch as f64 / (ms / 1e3)
                    );
                }
            }
        }
    }
    Ok(())
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
