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
    /// Height and width of one channel of one image.
    pub h: usize,
    pub w: usize,
}

impl Planes {
    /// All values.
    pub fn len(&self) -> usize {
        self.n * self.c * self.plane()
    }

    /// Values of one channel of one image.
    pub fn plane(&self) -> usize {
        self.h * self.w
    }

    /// The planes after a 2 × 2 max-pool of stride 2 (a last odd row or column dropped).
    pub fn pooled(&self) -> Planes {
        Planes {
            h: self.h / 2,
            w: self.w / 2,
            ..*self
        }
    }

    /// Values per channel, over all images.
    fn per_channel(&self) -> f64 {
        (self.n * self.plane()) as f64
    }

    /// The planes of channel `ch`, one per image.
    fn channel<'a>(&self, x: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (c, plane) = (self.c, self.plane());
        (0..self.n).map(move |i| &x[(i * c + ch) * plane..][..plane])
    }

    /// Planes handed to one task of a writing pass: a few thousand values at least, so that
    /// small planes (6 × 6 at the end of the compact network) do not cost a task each.
    fn planes_per_task(&self) -> usize {
        4096usize.div_ceil(self.plane().max(1))
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
    let plane = p.plane().max(1);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(plane)
        .zip(a.par_chunks(plane))
        .zip(b.par_chunks(plane))
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

/// The batch statistics of `x` and the factors of the normalisation they give.
fn statistics(x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64, p: Planes) -> Affine {
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
    Affine {
        mean,
        var,
        inv_std,
        scale,
        shift,
    }
}

/// The training forward pass: `relu(batch_norm(x))` with the batch's own statistics,
/// max-pooled 2 × 2 with stride 2 when `pool`, and the factors its backward pass needs.
pub fn train_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    p: Planes,
    pool: bool,
) -> (Vec<f32>, Affine) {
    assert_eq!(x.len(), p.len(), "the activation does not match its planes");
    let affine = statistics(x, gamma, beta, epsilon, p);
    let (scale, shift) = (&affine.scale, &affine.shift);
    let activation = |ch: usize| {
        let (k, s) = (scale[ch], shift[ch]);
        move |x| activate(x, k, s)
    };
    let output = match pool {
        true => pool_planes(x, p, activation),
        false => map_planes(p, [x, x], |ch| {
            let a = activation(ch);
            move |x, _| a(x)
        }),
    };
    (output, affine)
}

/// `out = max over each 2 × 2 window of f(channel)(x)`, stride 2, on all cores.
fn pool_planes<A: Fn(f32) -> f32>(x: &[f32], p: Planes, f: impl Fn(usize) -> A + Sync) -> Vec<f32> {
    let q = p.pooled();
    let mut out = vec![0f32; q.len()];
    if q.plane() == 0 {
        return out;
    }
    out.par_chunks_mut(q.plane())
        .zip(x.par_chunks(p.plane()))
        .enumerate()
        .with_min_len(p.planes_per_task())
        .for_each(|(index, (out, x))| {
            let a = f(index % p.c);
            for (oy, out) in out.chunks_exact_mut(q.w).enumerate() {
                let top = &x[2 * oy * p.w..][..p.w];
                let bottom = &x[(2 * oy + 1) * p.w..][..p.w];
                for (ox, y) in out.iter_mut().enumerate() {
                    let [l, r] = [2 * ox, 2 * ox + 1];
                    *y = a(top[l]).max(a(top[r])).max(a(bottom[l])).max(a(bottom[r]));
                }
            }
        });
    out
}

/// The window of a 2 × 2 max-pool that wins: the index of its first largest activation in
/// row-major order (as Burn's pool picks it) within `plane`, and that activation.
#[inline(always)]
fn winner(x: &[f32], w: usize, [oy, ox]: [usize; 2], a: impl Fn(f32) -> f32) -> (usize, f32) {
    let top = 2 * oy * w + 2 * ox;
    let mut best = (top, a(x[top]));
    for at in [top + 1, top + w, top + w + 1] {
        let y = a(x[at]);
        if y > best.1 {
            best = (at, y);
        }
    }
    best
}

/// The backward pass of [`train_forward`]: `(dx, dγ, dβ)` from the output gradient `dy`
/// (pooled when the forward pass pooled).
pub fn train_backward(
    x: &[f32],
    dy: &[f32],
    affine: &Affine,
    p: Planes,
    pool: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let q = if pool { p.pooled() } else { p };
    assert!(
        x.len() == p.len() && dy.len() == q.len(),
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
            for (x, dy) in p.channel(x, ch).zip(q.channel(dy, ch)) {
                let [g, gx] = match pool {
                    // Only each window's winner passes a gradient on.
                    true => windows(q).fold([0f32; 2], |[g, gx], (o, at)| {
                        let (at, y) = winner(x, p.w, at, |x| activate(x, k, s));
                        match y > 0.0 {
                            true => [g + dy[o], gx + dy[o] * ((x[at] - m) * i)],
                            false => [g, gx],
                        }
                    }),
                    false => sum2(x, dy, |x, dy| {
                        let g = if activate(x, k, s) > 0.0 { dy } else { 0.0 };
                        [g, g * ((x - m) * i)]
                    }),
                };
                totals[0] += g as f64;
                totals[1] += gx as f64;
            }
            (totals[0] as f32, totals[1] as f32)
        })
        .unzip();
    let count = p.per_channel() as f32;
    let factors = |ch: usize| {
        let (mean_g, mean_gx) = (dbeta[ch] / count, dgamma[ch] / count);
        (mean[ch], inv_std[ch], scale[ch], shift[ch], mean_g, mean_gx)
    };
    let dx = match pool {
        false => map_planes(p, [x, dy], |ch| {
            let (m, i, k, s, mean_g, mean_gx) = factors(ch);
            move |x, dy| {
                let g = if activate(x, k, s) > 0.0 { dy } else { 0.0 };
                k * (g - mean_g - (x - m) * i * mean_gx)
            }
        }),
        true => unpool_planes(x, dy, p, |ch, dx, x, dy| {
            let (m, i, k, s, mean_g, mean_gx) = factors(ch);
            // Every value gets the normalisation's share; each winner adds its own.
            for (d, &x) in dx.iter_mut().zip(x) {
                *d = -k * (mean_g + (x - m) * i * mean_gx);
            }
            for (o, at) in windows(q) {
                let (at, y) = winner(x, p.w, at, |x| activate(x, k, s));
                if y > 0.0 {
                    dx[at] += k * dy[o];
                }
            }
        }),
    };
    (dx, dgamma, dbeta)
}

/// The windows of a pooled plane `q`: output index and `[row, column]`.
fn windows(q: Planes) -> impl Iterator<Item = (usize, [usize; 2])> {
    (0..q.h).flat_map(move |oy| (0..q.w).map(move |ox| (oy * q.w + ox, [oy, ox])))
}

/// `relu(batch_norm(x))` with given (running) statistics, max-pooled 2 × 2 with stride 2
/// when `pool`, in the order of Burn's own `batch_norm`, `((x − μ) / √(σ² + ε))·γ + β`, so
/// that inference gives the same values as Burn's operations.
pub fn inference(
    x: &[f32],
    [gamma, beta, mean, var]: [&[f32]; 4],
    epsilon: f64,
    p: Planes,
    pool: bool,
) -> Vec<f32> {
    assert_eq!(x.len(), p.len(), "the activation does not match its planes");
    let std: Vec<f32> = var.iter().map(|&v| (v + epsilon as f32).sqrt()).collect();
    let activation = |ch: usize| {
        let (m, d, g, b) = (mean[ch], std[ch], gamma[ch], beta[ch]);
        move |x: f32| (((x - m) / d) * g + b).max(0.0)
    };
    match pool {
        true => pool_planes(x, p, activation),
        false => map_planes(p, [x, x], |ch| {
            let a = activation(ch);
            move |x, _| a(x)
        }),
    }
}

/// `relu(x)` max-pooled 2 × 2 with stride 2: a block without batch norm (`koch`). One
/// reading pass, where Burn's ReLU and pool write and read the activation again.
pub fn relu_pool(x: &[f32], p: Planes) -> Vec<f32> {
    assert_eq!(x.len(), p.len(), "the activation does not match its planes");
    pool_planes(x, p, |_| relu)
}

/// The backward pass of [`relu_pool`]: each window's winner gets the window's gradient when
/// its activation is positive; every other value gets zero.
pub fn relu_pool_backward(x: &[f32], dy: &[f32], p: Planes) -> Vec<f32> {
    let q = p.pooled();
    assert!(
        x.len() == p.len() && dy.len() == q.len(),
        "the activation or its gradient does not match its planes"
    );
    unpool_planes(x, dy, p, |_, dx, x, dy| {
        // Written before anything is read: the fresh pages then cost no copy-on-write fault.
        dx.fill(0.0);
        for (o, at) in windows(q) {
            let (at, y) = winner(x, p.w, at, relu);
            if y > 0.0 {
                dx[at] = dy[o];
            }
        }
    })
}

/// The full-size gradient of a pooled operation, plane by plane on all cores:
/// `f(channel, dx, x, dy)` gets one plane of `dx` to write in full, the same plane of the
/// input `x`, and the pooled plane of the gradient `dy`.
fn unpool_planes(
    x: &[f32],
    dy: &[f32],
    p: Planes,
    f: impl Fn(usize, &mut [f32], &[f32], &[f32]) + Sync,
) -> Vec<f32> {
    let q = p.pooled();
    let mut dx = vec![0f32; p.len()];
    dx.par_chunks_mut(p.plane().max(1))
        .zip(x.par_chunks(p.plane().max(1)))
        .zip(dy.par_chunks(q.plane().max(1)))
        .enumerate()
        .with_min_len(p.planes_per_task())
        .for_each(|(index, ((dx, x), dy))| f(index % p.c, dx, x, dy));
    dx
}

#[inline(always)]
fn relu(x: f32) -> f32 {
    x.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook batch norm + ReLU in f64, channel by channel, then the textbook 2 × 2 max-pool
    /// when `pool`; also the batch means and variances.
    fn reference(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        p: Planes,
        pool: bool,
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut y = vec![0.0; p.len()];
        let (mut means, mut vars) = (vec![], vec![]);
        for ch in 0..p.c {
            let values: Vec<f64> = p.channel(x, ch).flatten().map(|&v| v as f64).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
            for i in 0..p.n {
                for j in 0..p.plane() {
                    let at = (i * p.c + ch) * p.plane() + j;
                    let normal = (x[at] as f64 - mean) / (var + eps).sqrt();
                    y[at] = (normal * gamma[ch] as f64 + beta[ch] as f64).max(0.0);
                }
            }
            means.push(mean);
            vars.push(var);
        }
        if !pool {
            return (y, means, vars);
        }
        let q = p.pooled();
        let mut pooled = vec![f64::MIN; q.len()];
        for plane in 0..p.n * p.c {
            for oy in 0..q.h {
                for ox in 0..q.w {
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let v = y[plane * p.plane() + (2 * oy + dy) * p.w + 2 * ox + dx];
                        let out = &mut pooled[plane * q.plane() + oy * q.w + ox];
                        *out = out.max(v);
                    }
                }
            }
        }
        (pooled, means, vars)
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

    /// Shapes with odd sides (a dropped row and column when pooled) and a 1 × 1 plane
    /// (nothing left when pooled).
    const SHAPES: [Planes; 4] = [
        Planes {
            n: 3,
            c: 2,
            h: 4,
            w: 6,
        },
        Planes {
            n: 4,
            c: 3,
            h: 5,
            w: 7,
        },
        Planes {
            n: 2,
            c: 5,
            h: 1,
            w: 1,
        },
        Planes {
            n: 1,
            c: 2,
            h: 9,
            w: 8,
        },
    ];

    fn parameters(c: usize) -> (Vec<f32>, Vec<f32>) {
        // One negative γ: the normalisation then reverses the order within a window.
        let gamma = (0..c)
            .map(|c| if c == 1 { -0.8 } else { 0.5 + c as f32 })
            .collect();
        let beta = (0..c).map(|c| 0.3 - 0.2 * c as f32).collect();
        (gamma, beta)
    }

    #[test]
    fn the_forward_pass_is_the_textbook_one() {
        for p in SHAPES {
            for pool in [false, true] {
                let x = values(p.len(), 1);
                let (gamma, beta) = parameters(p.c);
                let (y, affine) = train_forward(&x, &gamma, &beta, 1e-5, p, pool);
                let (expected, means, vars) = reference(&x, &gamma, &beta, 1e-5, p, pool);
                assert_eq!(y.len(), expected.len(), "{p:?}, pool {pool}");
                for (got, want) in y.iter().zip(&expected) {
                    assert!(
                        (*got as f64 - want).abs() < 1e-5,
                        "{p:?}, pool {pool}: {got} against {want}"
                    );
                }
                for ch in 0..p.c {
                    assert!((affine.mean[ch] as f64 - means[ch]).abs() < 1e-6);
                    assert!((affine.var[ch] as f64 - vars[ch]).abs() < 1e-5);
                }
                if !pool && p.plane() > 4 {
                    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
                }
            }
        }
    }

    /// The gradients against central differences of `Σ probe · y` in f64.
    #[test]
    fn the_backward_pass_matches_finite_differences() {
        for (p, pool) in [
            (
                Planes {
                    n: 3,
                    c: 2,
                    h: 1,
                    w: 7,
                },
                false,
            ),
            (
                Planes {
                    n: 2,
                    c: 2,
                    h: 5,
                    w: 4,
                },
                true,
            ),
        ] {
            let x = values(p.len(), 3);
            let q = if pool { p.pooled() } else { p };
            let probe = values(q.len(), 11);
            let (gamma, beta) = parameters(p.c);
            let eps = 1e-5;
            let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
                let (y, _, _) = reference(x, gamma, beta, eps, p, pool);
                y.iter()
                    .zip(&probe)
                    .map(|(y, q)| y * *q as f64)
                    .sum::<f64>()
            };
            let (_, affine) = train_forward(&x, &gamma, &beta, eps, p, pool);
            let (dx, dgamma, dbeta) = train_backward(&x, &probe, &affine, p, pool);
            let h = 1e-3;
            let numeric =
                |perturb: &dyn Fn(f32) -> f64| (perturb(h) - perturb(-h)) / (2.0 * h as f64);
            let check = |got: f32, want: f64, what: String| {
                assert!(
                    (got as f64 - want).abs() < 2e-2 * want.abs().max(1.0),
                    "pool {pool}, {what}: {got} against {want}"
                );
            };
            for j in 0..p.len() {
                let d = numeric(&|step| {
                    let mut x = x.clone();
                    x[j] += step;
                    loss(&x, &gamma, &beta)
                });
                check(dx[j], d, format!("dx[{j}]"));
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
                check(dgamma[ch], dg, format!("dγ[{ch}]"));
                check(dbeta[ch], db, format!("dβ[{ch}]"));
            }
        }
    }

    #[test]
    fn inference_uses_the_given_statistics() {
        let p = Planes {
            n: 2,
            c: 2,
            h: 1,
            w: 3,
        };
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0, 4.0, 5.0, 6.0, 2.0, 2.0, 2.0];
        let stats: [&[f32]; 4] = [&[2.0, 1.0], &[0.5, -1.0], &[2.0, 0.0], &[4.0, 1.0]];
        let y = inference(&x, stats, 0.0, p, false);
        // Channel 0: (x − 2)/2·2 + 0.5; channel 1: x − 1, both cut at 0.
        assert_eq!(
            y,
            vec![0.0, 0.5, 1.5, 0.0, 0.0, 0.0, 2.5, 3.5, 4.5, 1.0, 1.0, 1.0]
        );
        // Pooled as 2 × 2 windows of a 2 × 3 plane: the last column is dropped.
        let p = Planes {
            n: 1,
            c: 2,
            h: 2,
            w: 3,
        };
        let y = inference(&x, stats, 0.0, p, true);
        assert_eq!(y, vec![0.5, 4.0]);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let p = Planes {
            n: 5,
            c: 7,
            h: 20,
            w: 15,
        };
        let x = values(p.len(), 5);
        let (gamma, beta) = parameters(p.c);
        for pool in [false, true] {
            let dy = values(if pool { p.pooled() } else { p }.len(), 9);
            let run = |threads| {
                let pool_of_threads = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool_of_threads.install(|| {
                    let (y, affine) = train_forward(&x, &gamma, &beta, 1e-5, p, pool);
                    let (dx, dg, db) = train_backward(&x, &dy, &affine, p, pool);
                    [y, dx, dg, db].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
                })
            };
            let one = run(1);
            for threads in [2, 3, 16] {
                assert_eq!(run(threads), one, "{threads} threads, pool {pool}");
            }
        }
    }

    /// Known values, ties included: the first maximum in row-major order wins, and a
    /// window whose maximum is not positive passes no gradient.
    #[test]
    fn relu_pool_and_its_backward_pass_on_known_values() {
        // One 3 × 5 plane: windows cover rows 0–1 and columns 0–3; the rest is dropped.
        let p = Planes {
            n: 1,
            c: 1,
            h: 3,
            w: 5,
        };
        #[rustfmt::skip]
        let x = [
            1.0, 3.0,   -2.0, -1.0,  9.0,
            3.0, 0.5,   -0.5, -4.0,  9.0,
            9.0, 9.0,    9.0,  9.0,  9.0,
        ];
        assert_eq!(relu_pool(&x, p), vec![3.0, 0.0]);
        let dx = relu_pool_backward(&x, &[10.0, 20.0], p);
        #[rustfmt::skip]
        let expected = vec![
            0.0, 10.0,  0.0, 0.0, 0.0,
            0.0,  0.0,  0.0, 0.0, 0.0,
            0.0,  0.0,  0.0, 0.0, 0.0,
        ];
        assert_eq!(dx, expected);
    }

    /// Against the textbook ReLU then pool, for every shape; backward, the gradient of each
    /// window with a positive maximum lands once, on a positive value, and nothing else
    /// gets any.
    #[test]
    fn relu_pool_matches_the_textbook_one() {
        for p in SHAPES {
            let x = values(p.len(), 21);
            let relu: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
            // γ = 1, β = 0, mean 0 and variance 1 make the inference pass a plain ReLU.
            let ones = vec![1.0; p.c];
            let zeros = vec![0.0; p.c];
            let expected = inference(&relu, [&ones, &zeros, &zeros, &ones], 0.0, p, true);
            assert_eq!(relu_pool(&x, p), expected, "{p:?}");
            let dy = values(p.pooled().len(), 22);
            let dx = relu_pool_backward(&x, &dy, p);
            // Each window's gradient lands once, on a positive value of that window.
            let q = p.pooled();
            let landed: f32 = dx.iter().sum();
            let passed: f32 = dy
                .iter()
                .zip(&expected)
                .filter(|(_, y)| **y > 0.0)
                .map(|(d, _)| d)
                .sum();
            assert!(
                (landed - passed).abs() < 1e-4,
                "{p:?}: {landed} against {passed}"
            );
            for (j, d) in dx.iter().enumerate() {
                if *d != 0.0 {
                    assert!(x[j] > 0.0, "{p:?}: gradient on a non-positive value");
                }
            }
            assert!(dx.iter().filter(|d| **d != 0.0).count() <= q.len());
        }
    }
}
