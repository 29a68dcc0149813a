//! Scoring the 400 official 20-way one-shot trials (Lake's 20 runs, `all_runs.zip`): the
//! embed-once evaluator ([`SiameseScorer`]: 800 encoder passes, then the head's all-pairs
//! form) against Koch-style pairwise scoring ([`PairwiseScorer`]: 8,000 pair forwards,
//! 16,000 encoder passes). The embed-once path should approach a 20× speed-up.
//!
//! ```text
//! cargo bench --bench episode
//! SIAMESE_BENCH_RUNS=4 cargo bench --bench episode
//! ```
//!
//! Criterion reports trials per second. After each network and device, the bench prints
//! the speed-up: the median pairwise time over the median embed-once time (the first,
//! warm-up run of each left out).
//!
//! Defaults: the `compact` network on the flex device. The pairwise pass of `koch` takes
//! minutes on a CPU (eight minutes on a 2-core one), ten times over for criterion's
//! samples: ask for it with `SIAMESE_BENCH_PRESETS=compact,koch`. `SIAMESE_BENCH_RUNS=N`
//! scores only the first `N` runs (20 trials each), `SIAMESE_BENCH_DEVICES` picks the
//! devices (see `benches/common/mod.rs`). The runs are the copy built into the crate
//! ([`LakeRuns::official`]): no data folder is needed.

mod common;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use siamese::device::BackendKind;
use siamese::eval::{
    Episode, Evaluation, Evaluator, EvaluatorConfig, LakeRuns, PairwiseScorer, Scorer,
    SiameseScorer,
};

/// Runs of `scorer` over `episodes`: every evaluation's seconds, and the last evaluation.
#[derive(Default)]
struct Record {
    seconds: Vec<f64>,
    last: Option<Evaluation>,
}

impl Record {
    /// Median seconds, the first (warm-up) run left out when there are others.
    fn median(&self) -> f64 {
        let skip = usize::from(self.seconds.len() > 1);
        common::median(&mut self.seconds[skip..].to_vec())
    }
}

/// Evaluates `iters` times, recording each run; returns the total time.
fn timed<S: Scorer>(
    iters: u64,
    evaluator: &Evaluator,
    scorer: &S,
    episodes: &[Episode],
    record: &RefCell<Record>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let evaluation = evaluator
            .evaluate(scorer, episodes)
            .expect("the official runs evaluate");
        let elapsed = start.elapsed();
        total += elapsed;
        let mut record = record.borrow_mut();
        record.seconds.push(elapsed.as_secs_f64());
        record.last = Some(evaluation);
    }
    total
}

fn episodes(c: &mut Criterion) {
    let runs = LakeRuns::official().expect("the built-in official runs load");
    let n_runs = std::env::var("SIAMESE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(usize::MAX)
        .min(runs.episodes().len());
    let episodes = &runs.episodes()[..n_runs];
    let trials: usize = episodes.iter().map(Episode::n_queries).sum();
    let evaluator = EvaluatorConfig::new()
        .with_progress(false)
        .init()
        .expect("a valid evaluator");

    let presets = common::presets(&["compact"]);
    for (backend, device) in common::devices(&[BackendKind::Flex]) {
        for (preset, config) in &presets {
            let model = config.init(&device);
            let embed_once = SiameseScorer::new(&model);
            let pairwise = PairwiseScorer::new(&model);
            let fast = RefCell::new(Record::default());
            let slow = RefCell::new(Record::default());

            let mut group = c.benchmark_group(format!("episode/{preset}/{backend}"));
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(1))
                .measurement_time(Duration::from_secs(5))
                .throughput(Throughput::Elements(trials as u64));
            group.bench_function("embed_once", |b| {
                b.iter_custom(|iters| timed(iters, &evaluator, &embed_once, episodes, &fast))
            });
            group.bench_function("pairwise", |b| {
                b.iter_custom(|iters| timed(iters, &evaluator, &pairwise, episodes, &slow))
            });
            group.finish();

            let (fast, slow) = (fast.into_inner(), slow.into_inner());
            if let (Some(a), Some(b)) = (&fast.last, &slow.last) {
                let agree = a
                    .predictions()
                    .iter()
                    .zip(b.predictions())
                    .filter(|(x, y)| **x == *y)
                    .count();
                println!(
                    "episode/{preset}/{backend}: {trials} trials, embed once {:.3} s, pairwise \
                     {:.3} s (medians): speed-up {:.1}x; {agree} of {trials} predictions agree",
                    fast.median(),
                    slow.median(),
                    slow.median() / fast.median()
                );
            }
        }
    }
}

criterion_group! {
    name = benches;
    // No plots: this crate enables plotters' `ab_glyph` text backend (for its learning
    // curves), which has no font registered for criterion's charts and panics.
    config = Criterion::default().without_plots();
    targets = episodes
}
criterion_main!(benches);
