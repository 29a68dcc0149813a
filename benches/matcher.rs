//! The [`Matcher`] as a downstream crate uses it: the time to register a gallery, to
//! classify one query, and to classify 100 queries, against galleries of 20 to 100,000
//! classes, with the shipped compact network on the flex device.
//!
//! ```text
//! cargo bench --bench matcher
//! SIAMESE_BENCH_CLASSES=20,10000 cargo bench --bench matcher
//! ```
//!
//! A gallery of more than 20 classes is random embeddings (registered with
//! [`Matcher::add_embeddings`]: the scores cost the same whatever the values); the 20-class
//! one is 20 generated pictures. A query is one picture, prepared and embedded as the
//! matcher does, then scored against every shot. `SIAMESE_BENCH_SHOTS=5` gives every class
//! five shots. Before the timings the bench prints each gallery's memory (its embeddings:
//! shots × 384 × 4 bytes).

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use image::{GrayImage, Luma};
use rand::{RngExt, SeedableRng};
use siamese::matcher::Matcher;

/// A picture of a slanted bar at `k`, ink on paper, as a user's query would be.
fn picture(k: u32) -> GrayImage {
    GrayImage::from_fn(105, 105, |x, y| {
        let on = (x + k * y / 7) % 105 < 12 && (20..85).contains(&y);
        Luma([if on { 0 } else { 255 }])
    })
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect(name))
                .collect()
        })
        .unwrap_or_else(|| default.to_vec())
}

/// `shots` random rows for each of `classes` classes, and their labels.
fn random_gallery(classes: usize, shots: usize, dim: usize) -> (Vec<String>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let labels = (0..classes)
        .flat_map(|c| (0..shots).map(move |_| format!("class {c}")))
        .collect();
    // The compact network's embeddings are sigmoids: values in (0, 1).
    let rows = (0..classes * shots * dim)
        .map(|_| rng.random::<f32>())
        .collect();
    (labels, rows)
}

fn bench(c: &mut Criterion) {
    let device = siamese::device::by_name("flex").expect("the flex backend");
    let empty = Matcher::new(siamese::pretrained::compact(&device).expect("shipped weights"));
    let dim = empty.model().embedding_size();
    let shots = env_list("SIAMESE_BENCH_SHOTS", &[1])[0];
    let queries: Vec<GrayImage> = (0..100).map(|k| picture(k % 13 + 1)).collect();

    for classes in env_list("SIAMESE_BENCH_CLASSES", &[20, 1_000, 10_000, 100_000]) {
        let (labels, rows) = random_gallery(classes, shots, dim);
        let mut matcher = empty.clone();
        if classes <= 20 {
            for shot in 0..shots as u32 {
                matcher
                    .add_many(
                        (0..classes as u32).map(|k| (format!("class {k}"), picture(k + shot))),
                    )
                    .expect("generated pictures");
            }
        } else {
            matcher
                .add_embeddings(labels.iter().cloned(), rows.clone())
                .expect("rows of the network's width");
        }
        println!(
            "gallery of {classes} classes × {shots} shots: {:.1} MiB of embeddings",
            (classes * shots * dim * 4) as f64 / (1 << 20) as f64
        );
        let mut group = c.benchmark_group(format!("matcher/{classes} classes"));
        group.sampling_mode(SamplingMode::Flat);
        if classes >= 10_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements((classes * shots) as u64));
        group.bench_function("add the gallery's embeddings", |b| {
            b.iter_batched(
                || (empty.clone(), labels.clone(), rows.clone()),
                |(mut m, l, r)| m.add_embeddings(l, r).unwrap(),
                BatchSize::LargeInput,
            )
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function("classify one query", |b| {
            b.iter(|| matcher.classify(&queries[0]).unwrap())
        });
        group.throughput(Throughput::Elements(queries.len() as u64));
        group.bench_function("classify 100 queries", |b| {
            b.iter(|| matcher.classify_batch(&queries).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
