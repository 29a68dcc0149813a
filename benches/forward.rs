//! Forward throughput of the `koch` and `compact` networks on every compiled backend:
//! embeddings per second (`Siamese::embed`) and pair forwards per second
//! (`Siamese::forward`) at batch 1, 20 and 128.
//!
//! ```text
//! cargo bench --features ndarray,wgpu --bench forward
//! SIAMESE_BENCH_DEVICES=flex SIAMESE_BENCH_PRESETS=compact cargo bench --bench forward
//! cargo bench --bench forward -- embed/koch/flex     # criterion's own filter
//! ```
//!
//! Criterion reports elements per second: images for `embed`, pairs for `forward`. Every
//! iteration gets fresh random inputs (made before the clock starts), and the result is
//! read back and the device synced inside the timed region, so asynchronous backends
//! (wgpu) are timed honestly. The Koch network at batch 128 does not fit a wgpu device
//! that caps buffers at 128 MiB (software Vulkan): that case is skipped with the reason.
//! See `benches/common/mod.rs` for the environment variables.

mod common;

use std::time::Duration;

use burn::module::Module;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use siamese::device::BackendKind;

/// Batch sizes measured: one image, one 20-way episode, a large batch.
const BATCHES: [usize; 3] = [1, 20, 128];

fn forward(c: &mut Criterion) {
    let presets = common::presets(&["koch", "compact"]);
    for (backend, device) in common::devices(&BackendKind::compiled()) {
        for (preset, config) in &presets {
            let model = config.init(&device).valid();
            let s = config.encoder.input_size;
            for mode in ["embed", "forward"] {
                let mut group = c.benchmark_group(format!("{mode}/{preset}/{backend}"));
                // A Koch batch of 128 takes seconds: few, flat samples keep the bench short.
                group
                    .sampling_mode(SamplingMode::Flat)
                    .sample_size(10)
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(3));
                for batch in BATCHES {
                    let images = if mode == "embed" { batch } else { 2 * batch };
                    if let Some(reason) = common::does_not_fit(backend, &config.encoder, images) {
                        eprintln!("skipping {mode}/{preset}/{backend}/{batch}: {reason}");
                        continue;
                    }
                    group.throughput(Throughput::Elements(batch as u64));
                    group.bench_function(BenchmarkId::from_parameter(batch), |b| {
                        b.iter_custom(|iters| match mode {
                            "embed" => common::time_runs(
                                iters,
                                &device,
                                || common::images(batch, s, &device),
                                |x| model.embed(x).into_data(),
                            ),
                            _ => common::time_runs(
                                iters,
                                &device,
                                || {
                                    (
                                        common::images(batch, s, &device),
                                        common::images(batch, s, &device),
                                    )
                                },
                                |(x, y)| model.forward(x, y).into_data(),
                            ),
                        })
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    // No plots: this crate enables plotters' `ab_glyph` text backend (for its learning
    // curves), which has no font registered for criterion's charts and panics.
    config = Criterion::default().without_plots();
    targets = forward
}
criterion_main!(benches);
