//! The arithmetic of batch normalisation followed by ReLU on f32 NCHW slices.
//!
//! Per channel, over its `M = N·H·W` values, with the batch mean `μ`, the biased variance
//! `σ²`, `k = γ / √(σ² + ε)` and `s = β − μ·k`:
//! - forward: `y = max(0, x·k + s)`: two reading passes (mean, then variance) and one
//!   writing pass;
//! - backward: with `g = dy · [y > 0]` and `x̂ = (x − μ) / √(σ² + ε)`:
//!   `dβ = Σ g`, `dγ = Σ g·x̂` and `dx = k·(g − dβ/M − x̂·dγ/M)`: one reading pass and one
//!   writing pass. The mask `y > 0` is recomputed from `x`, by the forward's own
//!   expression, so the output need not be kept.
//!
//! Burn's batch norm followed by ReLU records about twenty element-wise operations for the
//! same result, two of them transposing copies of the whole activation.
//!
//! Each channel's sums run in a fixed order on one thread, so the results do not depend on
//! the number of threads (resumed training stays bit-identical).

use rayon::prelude::*;

use crate::model::lanes::{sum, sum2};

/// The layout of an NCHW activation as channel planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values of one channel of one image (height × width).
    pub plane: usize,
}

impl Planes {
    /// All values.
    pub fn len(&self) -> usize {
        self.n * self.c * self.plane
    }

    /// Values per channel, over all images.
    fn per_channel(&self) -> f64 {
        (self.n * self.plane) as f64
    }

    /// The planes of channel `ch`, one per image.
    fn channel<'a>(&self, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let Planes { c, plane, .. } = *self;
        (0..self.n).map(move |i| &x[(i * c + ch) * plane..][..plane])
    }

    /// Planes handed to one task of a writing pass: a few thousand values at least, so that
    /// small planes (6 × 6 at the end of the compact network) do not cost a task each.
    fn planes_per_task(&self) -> usize {
        4096usize.div_ceil(self.plane.max(1))
    }
}

/// The per-channel factors of a training forward pass, which its backward pass reuses.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    /// Batch mean `μ`.
    pub mean: Vec<f32>,
    /// Biased batch variance `σ²`.
    pub var: Vec<f32>,
    /// `1 / √(σ² + ε)`.
    pub inv_std: Vec<f32>,
    /// `k = γ / √(σ² + ε)`.
    pub scale: Vec<f32>,
    /// `s = β − μ·k`.
    pub shift: Vec<f32>,
}

/// `y = max(0, x·k + s)`: the one expression that both passes evaluate.
#[inline(always)]
fn activate(x: f32, scale: f32, shift: f32) -> f32 {
    (x * scale + shift).max(0.0)
}

/// `out_j = f(channel)(a_j, b_j)` over every plane, on all cores, without first zeroing
/// the output (a memset of the whole activation).
fn map_planes<G: Fn(f32, f32) -> f32>(
    p: Planes,
    [a, b]: [&[f32]; 2],
    f: impl Fn(usize) -> G + Sync,
) -> Vec<f32> {
    let len = p.len();
    assert!(
        a.len() == len && b.len() == len,
        "the operands do not match their planes"
    );
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(p.plane)
        .zip(a.par_chunks(p.plane))
        .zip(b.par_chunks(p.plane))
        .enumerate()
        .with_min_len(p.planes_per_task())
        .for_each(|(index, ((out, a), b))| {
            let g = f(index % p.c);
            for ((y, &a), &b) in out.iter_mut().zip(a).zip(b) {
                y.write(g(a, b));
            }
        });
    // SAFETY: `a` and `b` hold `len` values (asserted above), so the chunks above cover
    // all `len` places of `out`, and each was written.
    unsafe { out.set_len(len) };
    out
}

/// The training forward pass: `relu(batch_norm(x))` with the batch's own statistics, and
/// the factors its backward pass needs.
pub fn train_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    p: Planes,
) -> (Vec<f32>, Affine) {
    assert_eq!(x.len(), p.len(), "the activation does not match its planes");
    let count = p.per_channel();
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let total: f64 = p.channel(x, ch).map(|v| sum(v, |v| v) as f64).sum();
            let mean = (total / count) as f32;
            let squares: f64 = p
                .channel(x, ch)
                .map(|v| sum(v, |v| (v - mean) * (v - mean)) as f64)
                .sum();
            (mean, (squares / count) as f32)
        })
        .unzip();
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| 1.0 / (v as f64 + epsilon).sqrt() as f32)
        .collect();
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
    let shift: Vec<f32> = (0..p.c).map(|ch| beta[ch] - mean[ch] * scale[ch]).collect();
    let output = map_planes(p, [x, x], |ch| {
        let (k, s) = (scale[ch], shift[ch]);
        move |x, _| activate(x, k, s)
    });
    let affine = Affine {
        mean,
        var,
        inv_std,
        scale,
        shift,
    };
    (output, affine)
}

/// The backward pass of [`train_forward`]: `(dx, dγ, dβ)` from the output gradient `dy`.
pub fn train_backward(
    x: &[f32],
    dy: &[f32],
    affine: &Affine,
    p: Planes,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(
        x.len() == p.len() && dy.len() == p.len(),
        "the activation or its gradient does not match its planes"
    );
    let Affine {
        mean,
        inv_std,
        scale,
        shift,
        ..
    } = affine;
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..p.c)
        .into_par_iter()
        .map(|ch| {
            let (m, i, k, s) = (mean[ch], inv_std[ch], scale[ch], shift[ch]);
            let mut totals = [0f64; 2];
            for (x, dy) in p.channel(x, ch).zip(p.channel(dy, ch)) {
                let [g, gx] = sum2(x, dy, |x, dy| {
                    let g = if activate(x, k, s) > 0.0 { dy } else { 0.0 };
                    [g, g * ((x - m) * i)]
                });
                totals[0] += g as f64;
                totals[1] += gx as f64;
            }
            (totals[0] as f32, totals[1] as f32)
        })
        .unzip();
    let count = p.per_channel() as f32;
    let dx = map_planes(p, [x, dy], |ch| {
        let (m, i, k, s) = (mean[ch], inv_std[ch], scale[ch], shift[ch]);
        let (mean_g, mean_gx) = (dbeta[ch] / count, dgamma[ch] / count);
        move |x, dy| {
            let g = if activate(x, k, s) > 0.0 { dy } else { 0.0 };
            k * (g - mean_g - (x - m) * i * mean_gx)
        }
    });
    (dx, dgamma, dbeta)
}

/// `relu(batch_norm(x))` with given (running) statistics, in the order of Burn's own
/// `batch_norm`, `((x − μ) / √(σ² + ε))·γ + β`, so that inference gives the same values as
/// Burn's two operations.
pub fn inference(
    x: &[f32],
    [gamma, beta, mean, var]: [&[f32]; 4],
    epsilon: f64,
    p: Planes,
) -> Vec<f32> {
    assert_eq!(x.len(), p.len(), "the activation does not match its planes");
    let std: Vec<f32> = var.iter().map(|&v| (v + epsilon as f32).sqrt()).collect();
    map_planes(p, [x, x], |ch| {
        let (m, d, g, b) = (mean[ch], std[ch], gamma[ch], beta[ch]);
        move |x, _| (((x - m) / d) * g + b).max(0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook batch norm + ReLU in f64, channel by channel.
    fn reference(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        p: Planes,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0; p.len()];
        let (mut means, mut vars) = (vec![], vec![]);
        for ch in 0..p.c {
            let values: Vec<f64> = p.channel(x, ch).flatten().map(|&v| v as f64).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
            for i in 0..p.n {
                for j in 0..p.plane {
                    let at = (i * p.c + ch) * p.plane + j;
                    let normal = (x[at] as f64 - mean) / (var + eps).sqrt();
                    y[at] = (normal * gamma[ch] as f64 + beta[ch] as f64).max(0.0);
                }
            }
            means.push(mean);
            vars.push(var);
        }
        (y, means, vars)
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // A small deterministic spread with both signs, not all on one grid.
        (0..len)
            .map(|j| {
                let t = (j as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (t % 1000) as f32 / 250.0 - 1.7
            })
            .collect()
    }

    const SHAPES: [Planes; 3] = [
        Planes {
            n: 3,
            c: 2,
            plane: 5,
        },
        Planes {
            n: 4,
            c: 3,
            plane: 37,
        },
        Planes {
            n: 2,
            c: 5,
            plane: 1,
        },
    ];

    #[test]
    fn the_forward_pass_is_the_textbook_one() {
        for p in SHAPES {
            let x = values(p.len(), 1);
            let gamma: Vec<f32> = (0..p.c).map(|c| 0.5 + c as f32).collect();
            let beta: Vec<f32> = (0..p.c).map(|c| 0.3 - 0.2 * c as f32).collect();
            let (y, affine) = train_forward(&x, &gamma, &beta, 1e-5, p);
            let (expected, means, vars) = reference(&x, &gamma, &beta, 1e-5, p);
            for (got, want) in y.iter().zip(&expected) {
                assert!(
                    (*got as f64 - want).abs() < 1e-5,
                    "{p:?}: {got} against {want}"
                );
            }
            for ch in 0..p.c {
                assert!((affine.mean[ch] as f64 - means[ch]).abs() < 1e-6);
                assert!((affine.var[ch] as f64 - vars[ch]).abs() < 1e-5);
            }
            assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
        }
    }

    /// The gradients against central differences of `Σ probe · y` in f64.
    #[test]
    fn the_backward_pass_matches_finite_differences() {
        let p = Planes {
            n: 3,
            c: 2,
            plane: 7,
        };
        let x = values(p.len(), 3);
        let probe = values(p.len(), 11);
        let gamma = vec![1.3f32, 0.7];
        let beta = vec![0.1f32, -0.2];
        let eps = 1e-5;
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
            let (y, _, _) = reference(x, gamma, beta, eps, p);
            y.iter()
                .zip(&probe)
                .map(|(y, q)| y * *q as f64)
                .sum::<f64>()
        };
        let (_, affine) = train_forward(&x, &gamma, &beta, eps, p);
        let (dx, dgamma, dbeta) = train_backward(&x, &probe, &affine, p);
        let h = 1e-3;
        let numeric = |perturb: &dyn Fn(f32) -> f64| (perturb(h) - perturb(-h)) / (2.0 * h as f64);
        for j in 0..p.len() {
            let d = numeric(&|step| {
                let mut x = x.clone();
                x[j] += step;
                loss(&x, &gamma, &beta)
            });
            assert!(
                (dx[j] as f64 - d).abs() < 2e-2 * d.abs().max(1.0),
                "dx[{j}]: {} against {d}",
                dx[j]
            );
        }
        for ch in 0..p.c {
            let dg = numeric(&|step| {
                let mut gamma = gamma.clone();
                gamma[ch] += step;
                loss(&x, &gamma, &beta)
            });
            let db = numeric(&|step| {
                let mut beta = beta.clone();
                beta[ch] += step;
                loss(&x, &gamma, &beta)
            });
            assert!(
                (dgamma[ch] as f64 - dg).abs() < 1e-2 * dg.abs().max(1.0),
                "dγ[{ch}]: {} against {dg}",
                dgamma[ch]
            );
            assert!(
                (dbeta[ch] as f64 - db).abs() < 1e-2 * db.abs().max(1.0),
                "dβ[{ch}]: {} against {db}",
                dbeta[ch]
            );
        }
    }

    #[test]
    fn inference_uses_the_given_statistics() {
        let p = Planes {
            n: 2,
            c: 2,
            plane: 3,
        };
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0, 4.0, 5.0, 6.0, 2.0, 2.0, 2.0];
        let y = inference(
            &x,
            [&[2.0, 1.0], &[0.5, -1.0], &[2.0, 0.0], &[4.0, 1.0]],
            0.0,
            p,
        );
        // Channel 0: (x − 2)/2·2 + 0.5; channel 1: x − 1, both cut at 0.
        assert_eq!(
            y,
            vec![0.0, 0.5, 1.5, 0.0, 0.0, 0.0, 2.5, 3.5, 4.5, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let p = Planes {
            n: 5,
            c: 7,
            plane: 300,
        };
        let x = values(p.len(), 5);
        let dy = values(p.len(), 9);
        let gamma = vec![1.1f32; p.c];
        let beta = vec![0.2f32; p.c];
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (y, affine) = train_forward(&x, &gamma, &beta, 1e-5, p);
                let (dx, dg, db) = train_backward(&x, &dy, &affine, p);
                [y, dx, dg, db].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
            })
        };
        let one = run(1);
        for threads in [2, 3, 16] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }
}
