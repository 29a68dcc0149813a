//! What the benches share: which devices and networks to measure (from environment
//! variables), fresh random inputs, and the check that keeps a wgpu device from being
//! asked for a buffer larger than it can hold.
//!
//! - `SIAMESE_BENCH_DEVICES=flex,ndarray` restricts the backends (default: the bench's own).
//! - `SIAMESE_BENCH_PRESETS=compact` restricts the networks (`koch`, `compact`).
//! - `SIAMESE_BENCH_WGPU_BUFFER_LIMIT=<bytes>` raises the largest buffer assumed on wgpu
//!   (default 128 MiB, WebGPU's default limit and software Vulkan's cap).

// Each bench uses its own part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use burn::prelude::*;
use burn::tensor::Distribution;
use siamese::device::BackendKind;
use siamese::{EncoderConfig, SiameseConfig};

/// How a measuring tool prints its figures.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Format {
    /// A table (or sentences) for people.
    Table,
    /// `RESULT key=value ...` lines for scripts (`benches/reference/compare.py`).
    Lines,
}

/// Default largest buffer on a wgpu device: 128 MiB: WebGPU's default
/// `max_storage_buffer_binding_size`, and software Vulkan's (lavapipe's) cap.
pub const WGPU_BUFFER_LIMIT: usize = 128 << 20;

/// Reads a comma-separated list from the environment variable `var`, or `None` when unset.
fn list(var: &str) -> Option<Vec<String>> {
    let value = std::env::var(var).ok()?;
    Some(
        value
            .split(',')
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// The devices to measure: `SIAMESE_BENCH_DEVICES` when set, else `default`. A backend
/// that is unknown, not compiled in, or has no device here is skipped with the reason.
pub fn devices(default: &[BackendKind]) -> Vec<(BackendKind, Device)> {
    let backends: Vec<BackendKind> = match list("SIAMESE_BENCH_DEVICES") {
        Some(names) => names
            .iter()
            .filter_map(|name| match name.parse() {
                Ok(backend) => Some(backend),
                Err(e) => {
                    eprintln!("skipping device {name:?}: {e}");
                    None
                }
            })
            .collect(),
        None => default.to_vec(),
    };
    backends
        .into_iter()
        .filter_map(|backend| match backend.device() {
            Ok(device) => Some((backend, device)),
            Err(e) => {
                eprintln!("skipping {backend}: {e}");
                None
            }
        })
        .collect()
}

/// The networks to measure: `SIAMESE_BENCH_PRESETS` when set, else `default`.
pub fn presets(default: &[&str]) -> Vec<(String, SiameseConfig)> {
    let names = list("SIAMESE_BENCH_PRESETS")
        .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
    names
        .into_iter()
        .filter_map(|name| match name.as_str() {
            "koch" => Some((name, SiameseConfig::koch())),
            "compact" => Some((name, SiameseConfig::compact())),
            _ => {
                eprintln!("skipping preset {name:?}: known presets are koch and compact");
                None
            }
        })
        .collect()
}

/// Elements of the largest activation one image makes in the encoder (a conv output).
pub fn largest_activation(config: &EncoderConfig) -> usize {
    let mut side = config.input_size;
    let mut largest = side * side;
    for block in &config.blocks {
        let conv = side + 2 * block.padding + 1 - block.kernel;
        largest = largest.max(conv * conv * block.channels);
        side = block.output_size(side).unwrap_or(0);
    }
    largest
}

/// Why `images` images at once cannot go through the encoder on `backend`, if they cannot.
///
/// Only wgpu has a buffer limit: the Koch network's first activation at batch 128 is
/// 302 MB, beyond the 128 MiB that software Vulkan (lavapipe) and WebGPU's default limits
/// allow in one buffer.
pub fn does_not_fit(backend: BackendKind, config: &EncoderConfig, images: usize) -> Option<String> {
    if backend != BackendKind::Wgpu {
        return None;
    }
    let limit = std::env::var("SIAMESE_BENCH_WGPU_BUFFER_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WGPU_BUFFER_LIMIT);
    let bytes = images * largest_activation(config) * std::mem::size_of::<f32>();
    (bytes > limit).then(|| {
        format!(
            "its largest activation for {images} images is {:.0} MB, over the {:.0} MiB buffer \
             limit (SIAMESE_BENCH_WGPU_BUFFER_LIMIT raises it)",
            bytes as f64 / 1e6,
            limit as f64 / f64::from(1 << 20)
        )
    })
}

/// Fresh uniform random images `[batch, 1, s, s]`.
pub fn images(batch: usize, s: usize, device: &Device) -> Tensor<4> {
    Tensor::random([batch, 1, s, s], Distribution::Default, device)
}

/// Times `iters` runs of `run` on inputs from `setup`: the inputs are made and the device
/// synced before the clock starts; `run` must read its result back (or sync) itself.
pub fn time_runs<I, O>(
    iters: u64,
    device: &Device,
    mut setup: impl FnMut() -> I,
    mut run: impl FnMut(I) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        device.sync().expect("device sync");
        let start = Instant::now();
        let output = run(input);
        device.sync().expect("device sync");
        total += start.elapsed();
        drop(std::hint::black_box(output));
    }
    total
}

/// The median of `values` (`NaN` when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
