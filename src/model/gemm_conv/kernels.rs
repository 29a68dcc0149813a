//! The arithmetic of a GEMM-shaped 2-D convolution on f32 NCHW slices, groups 1.
//!
//! Each image is unfolded (im2col) into a `[K, P]` matrix, `K = C·kh·kw` rows of
//! `P = OH·OW` output pixels, and every pass is one matrix product per image:
//! - forward: `Y_i[O, P] = W[O, K] · col_i[K, P] + b`;
//! - weight gradient: `dW[O, K] = Σ_i dY_i[O, P] · col_i[K, P]ᵀ`;
//! - input gradient: `dX_i = col2im(Wᵀ[K, O] · dY_i[O, P])`.
//!
//! Burn's default weight gradient is instead a convolution of the swapped input with the
//! output gradient as its kernel (an `OH×OW` kernel over `C` "images"), which is several
//! times slower on a CPU than the product above.

use std::cell::Cell;

use gemm::Parallelism;
use rayon::prelude::*;

use crate::model::lanes;

/// The shape of one convolution: input, kernel, stride, padding, dilation and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    /// Stride.
    pub stride: [usize; 2],
    /// Padding before the first row and column (the padding after is implied by the
    /// output size).
    pub pad: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Output height and width.
    pub oh: usize,
    pub ow: usize,
}

impl Geometry {
    /// Rows of the unfolded image: one per input channel and kernel position.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels of one image.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Input values of one image.
    pub fn chw(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Output values of one image.
    fn op(&self) -> usize {
        self.o * self.p()
    }

    /// The output columns `ox` whose input column `ox·stride + offset − pad` lies inside the
    /// image, as a range.
    fn valid_columns(&self, offset: usize) -> std::ops::Range<usize> {
        let [_, sw] = self.stride;
        let [_, pl] = self.pad;
        // ix = ox·sw + offset − pl ≥ 0  ⇔  ox ≥ ceil((pl − offset) / sw)
        let lo = pl.saturating_sub(offset).div_ceil(sw);
        // ix < w  ⇔  ox·sw < w + pl − offset
        let hi = (self.w + pl)
            .checked_sub(offset)
            .map_or(0, |limit| limit.div_ceil(sw));
        lo.min(self.ow)..hi.min(self.ow).max(lo.min(self.ow))
    }

    /// The input row that output row `oy` reads at kernel row `ki`, if inside the image.
    fn input_row(&self, oy: usize, ki: usize) -> Option<usize> {
        let iy = (oy * self.stride[0] + ki * self.dilation[0]).checked_sub(self.pad[0])?;
        (iy < self.h).then_some(iy)
    }
}

/// `col[K, P]` of one image `x[C, H, W]`, zero where the kernel overlaps the padding.
fn im2col(x: &[f32], g: &Geometry, col: &mut [f32]) {
    let p = g.p();
    let sw = g.stride[1];
    for c in 0..g.c {
        let channel = &x[c * g.h * g.w..][..g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &mut col[((c * g.kh + ki) * g.kw + kj) * p..][..p];
                let offset = kj * g.dilation[1];
                let valid = g.valid_columns(offset);
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..][..g.ow];
                    let Some(iy) = g.input_row(oy, ki) else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &channel[iy * g.w..][..g.w];
                    out[..valid.start].fill(0.0);
                    out[valid.end..].fill(0.0);
                    // First input column read: valid.start·sw + offset − pad (≥ 0 by `valid`).
                    let first = valid.start * sw + offset - g.pad[1];
                    if sw == 1 {
                        out[valid.clone()].copy_from_slice(&src[first..][..valid.len()]);
                    } else {
                        for (d, s) in out[valid.clone()]
                            .iter_mut()
                            .zip(src[first..].iter().step_by(sw))
                        {
                            *d = *s;
                        }
                    }
                }
            }
        }
    }
}

/// `dx[C, H, W] += col2im(dcol[K, P])`, the adjoint of [`im2col`].
fn col2im_add(dcol: &[f32], g: &Geometry, dx: &mut [f32]) {
    let p = g.p();
    let sw = g.stride[1];
    for c in 0..g.c {
        let channel = &mut dx[c * g.h * g.w..][..g.h * g.w];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let row = &dcol[((c * g.kh + ki) * g.kw + kj) * p..][..p];
                let offset = kj * g.dilation[1];
                let valid = g.valid_columns(offset);
                if valid.is_empty() {
                    continue;
                }
                let first = valid.start * sw + offset - g.pad[1];
                for oy in 0..g.oh {
                    let Some(iy) = g.input_row(oy, ki) else {
                        continue;
                    };
                    let src = &row[oy * g.ow..][valid.clone()];
                    let dst = &mut channel[iy * g.w..][first..];
                    if sw == 1 {
                        // Contiguous: a plain slice sum, which vectorises.
                        for (d, s) in dst[..src.len()].iter_mut().zip(src) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// A strided view of a matrix: element `(i, j)` is `data[i·rows + j·cols]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> Strided<'a> {
    /// A row-major `[_, width]` matrix.
    fn row_major(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            rows: width,
            cols: 1,
        }
    }

    /// The transpose of a row-major `[_, width]` matrix.
    fn transposed(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            rows: 1,
            cols: width,
        }
    }

    /// Whether every element of an `m × n` view lies inside `data`.
    fn covers(&self, m: usize, n: usize) -> bool {
        m == 0 || n == 0 || (m - 1) * self.rows + (n - 1) * self.cols < self.data.len()
    }
}

/// `dst[m, n] (row-major) = (accumulate ? dst : 0) + a[m, k] · b[k, n]`.
fn sgemm(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    a: Strided,
    b: Strided,
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n && a.covers(m, k) && b.covers(k, n));
    // SAFETY: the assertion keeps every index the strides reach inside its slice, and
    // `dst` is a unique borrow, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cols as isize,
            a.rows as isize,
            b.data.as_ptr(),
            b.cols as isize,
            b.rows as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Images go to threads when there are at least as many as threads; otherwise one image at
/// a time, each product spread over the threads (inference on a single pair).
fn by_image(g: &Geometry) -> bool {
    g.n >= rayon::current_num_threads()
}

fn product_parallelism(g: &Geometry) -> Parallelism {
    if by_image(g) {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

thread_local! {
    /// Each thread's unfolded-image buffer, kept between calls. A fresh buffer of a few
    /// megabytes (22 MB for the second `koch` layer) is fresh pages from the kernel on every
    /// call: page faults, zeroing, and on a multi-core virtual machine TLB shootdowns, which
    /// cost a quarter of a `koch` training step before this cache.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Calls `f` with this thread's scratch buffer of at least `len` values (stale contents).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = SCRATCH.take();
    if buffer.len() < len {
        // Dropped first, so the old and the new buffer are never held together.
        drop(std::mem::take(&mut buffer));
        buffer = vec![0.0; len];
    }
    let result = f(&mut buffer[..len]);
    SCRATCH.set(buffer);
    result
}

/// Calls `f(scratch, out_i, in_i)` for each image's `out_len` outputs and `in_len` inputs,
/// with a `[K, P]` scratch matrix.
fn for_each_image(
    out: &mut [f32],
    out_len: usize,
    input: &[f32],
    in_len: usize,
    g: &Geometry,
    f: impl Fn(&mut [f32], &mut [f32], &[f32]) + Sync,
) {
    let each = |(o, i): (&mut [f32], &[f32])| with_scratch(g.k() * g.p(), |col| f(col, o, i));
    if by_image(g) {
        out.par_chunks_mut(out_len)
            .zip(input.par_chunks(in_len))
            .for_each(each);
    } else {
        out.chunks_mut(out_len)
            .zip(input.chunks(in_len))
            .for_each(each);
    }
}

/// `y[N, O, OH, OW] = conv2d(x, w) + b`.
pub fn forward(x: &[f32], w: &[f32], b: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut y = vec![0.0; g.n * g.op()];
    for_each_image(&mut y, g.op(), x, g.chw(), g, |col, yi, xi| {
        im2col(xi, g, col);
        let a = Strided::row_major(w, k);
        sgemm(
            [g.o, p, k],
            yi,
            false,
            a,
            Strided::row_major(col, p),
            product_parallelism(g),
        );
        for (row, bias) in yi.chunks_mut(p).zip(b) {
            row.iter_mut().for_each(|v| *v += bias);
        }
    });
    y
}

/// Images whose weight-gradient terms are summed into one partial sum. Fixed, so that the
/// order of the floating-point additions, and hence the gradient to the last bit, does not
/// depend on the thread count or on scheduling: a resumed training run must end with the
/// weights of an unbroken one.
const IMAGES_PER_PARTIAL: usize = 4;

/// `dW[O, C, kh, kw] = Σ_i dY_i · col_iᵀ`, summed in a fixed order.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let partial = |(xs, dys): (&[f32], &[f32])| {
        // The first product writes the sum (a read-first sum of fresh zeroed pages costs a
        // copy-on-write fault per page), the others add to it.
        let mut dw = vec![0.0; g.o * k];
        with_scratch(k * p, |col| {
            for (index, (xi, dyi)) in xs.chunks(g.chw()).zip(dys.chunks(g.op())).enumerate() {
                im2col(xi, g, col);
                let a = Strided::row_major(dyi, p);
                let b = Strided::transposed(col, p);
                sgemm(
                    [g.o, k, p],
                    &mut dw,
                    index > 0,
                    a,
                    b,
                    product_parallelism(g),
                );
            }
        });
        dw
    };
    let (x_chunk, dy_chunk) = (g.chw() * IMAGES_PER_PARTIAL, g.op() * IMAGES_PER_PARTIAL);
    let partials: Vec<Vec<f32>> = if by_image(g) {
        x.par_chunks(x_chunk)
            .zip(dy.par_chunks(dy_chunk))
            .map(partial)
            .collect()
    } else {
        x.chunks(x_chunk)
            .zip(dy.chunks(dy_chunk))
            .map(partial)
            .collect()
    };
    partials
        .into_iter()
        .reduce(|mut sum, part| {
            sum.iter_mut().zip(&part).for_each(|(s, v)| *s += v);
            sum
        })
        .unwrap_or_else(|| vec![0.0; g.o * k])
}

/// `dX_i = col2im(Wᵀ · dY_i)`.
pub fn input_grad(w: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0.0; g.n * g.chw()];
    for_each_image(&mut dx, g.chw(), dy, g.op(), g, |dcol, dxi, dyi| {
        let a = Strided::transposed(w, k);
        sgemm(
            [k, p, g.o],
            dcol,
            false,
            a,
            Strided::row_major(dyi, p),
            product_parallelism(g),
        );
        // Written before it is read: see `weight_grad`.
        dxi.fill(0.0);
        col2im_add(dcol, g, dxi);
    });
    dx
}

/// `db[o] = Σ_i Σ_p dY[i, o, p]`.
pub fn bias_grad(dy: &[f32], g: &Geometry) -> Vec<f32> {
    let mut db = vec![0.0; g.o];
    for dyi in dy.chunks(g.op()) {
        for (sum, row) in db.iter_mut().zip(dyi.chunks(g.p())) {
            *sum += lanes::sum(row, |v| v);
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definition, one multiply-add at a time.
    fn naive(x: &[f32], w: &[f32], g: &Geometry) -> Vec<f32> {
        let mut y = vec![0.0; g.n * g.op()];
        for i in 0..g.n {
            for o in 0..g.o {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut sum = 0.0;
                        for c in 0..g.c {
                            for ki in 0..g.kh {
                                for kj in 0..g.kw {
                                    let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize
                                        - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize
                                        - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((i * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    sum += xv * w[((o * g.c + c) * g.kh + ki) * g.kw + kj];
                                }
                            }
                        }
                        y[((i * g.o + o) * g.oh + oy) * g.ow + ox] = sum;
                    }
                }
            }
        }
        y
    }

    /// `[images, channels, side, filters, kernel, stride, padding, dilation]`; the input is
    /// one column wider than high.
    fn geometry([n, c, side, o, k, stride, pad, dilation]: [usize; 8]) -> Geometry {
        let out = (side + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
        Geometry {
            n,
            c,
            h: side,
            w: side + 1,
            o,
            kh: k,
            kw: k,
            stride: [stride; 2],
            pad: [pad; 2],
            dilation: [dilation; 2],
            oh: out,
            ow: (side + 1 + 2 * pad - dilation * (k - 1) - 1) / stride + 1,
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                ((i.wrapping_mul(2654435761).wrapping_add(seed * 97)) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    const SHAPES: [[usize; 8]; 6] = [
        [1, 1, 7, 2, 3, 1, 1, 1],
        [3, 2, 9, 4, 3, 1, 0, 1],
        [2, 3, 11, 2, 4, 2, 1, 1],
        [4, 2, 10, 3, 3, 3, 2, 2],
        [1, 1, 5, 1, 5, 1, 2, 1],
        [2, 1, 4, 2, 2, 1, 3, 1],
    ];

    #[test]
    fn forward_matches_the_definition() {
        for shape in SHAPES {
            let g = geometry(shape);
            let (n, o) = (g.n, g.o);
            let (x, w) = (values(n * g.chw(), 1), values(o * g.k(), 2));
            let b = vec![0.0; o];
            let got = forward(&x, &w, &b, &g);
            for (a, e) in got.iter().zip(naive(&x, &w, &g)) {
                assert!((a - e).abs() < 1e-4, "{g:?}: {a} against {e}");
            }
        }
    }

    /// ⟨dy, conv(x, w)⟩ is linear in x and in w, so its gradients are the adjoints: checked
    /// against the definition by the identities ⟨dW, w'⟩ = ⟨dy, conv(x, w')⟩ and
    /// ⟨dX, x'⟩ = ⟨dy, conv(x', w)⟩ for arbitrary w', x'.
    #[test]
    fn gradients_are_the_adjoints_of_the_definition() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
        for shape in SHAPES {
            let g = geometry(shape);
            let (n, o) = (g.n, g.o);
            let (x, w, dy) = (
                values(n * g.chw(), 3),
                values(o * g.k(), 4),
                values(n * g.op(), 5),
            );
            let (x2, w2) = (values(n * g.chw(), 6), values(o * g.k(), 7));
            let dw = weight_grad(&x, &dy, &g);
            let dx = input_grad(&w, &dy, &g);
            let lhs_w = dot(&dw, &w2);
            let rhs_w = dot(&dy, &naive(&x, &w2, &g));
            assert!(
                (lhs_w - rhs_w).abs() < 1e-3 * (1.0 + rhs_w.abs()),
                "{g:?}: dW {lhs_w} {rhs_w}"
            );
            let lhs_x = dot(&dx, &x2);
            let rhs_x = dot(&dy, &naive(&x2, &w, &g));
            assert!(
                (lhs_x - rhs_x).abs() < 1e-3 * (1.0 + rhs_x.abs()),
                "{g:?}: dX {lhs_x} {rhs_x}"
            );
            let db = bias_grad(&dy, &g);
            let total: f32 = db.iter().sum();
            assert!((total - dy.iter().sum::<f32>()).abs() < 1e-3);
        }
    }

    /// The scratch buffer outlives calls: a smaller convolution with padding after a
    /// larger one (whose values are left in the buffer) reads none of them.
    #[test]
    fn stale_scratch_values_do_not_leak_into_results() {
        let big = geometry([4, 3, 12, 4, 3, 1, 0, 1]);
        let small = geometry([4, 2, 5, 3, 3, 1, 2, 1]);
        for (g, seed) in [(big, 30), (small, 40), (big, 50), (small, 60)] {
            let (x, w) = (values(g.n * g.chw(), seed), values(g.o * g.k(), seed + 1));
            let got = forward(&x, &w, &vec![0.0; g.o], &g);
            for (a, e) in got.iter().zip(naive(&x, &w, &g)) {
                assert!((a - e).abs() < 1e-4, "{g:?}: {a} against {e}");
            }
        }
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let g = geometry([9, 3, 10, 5, 3, 1, 1, 1]);
        let (x, dy) = (values(g.n * g.chw(), 8), values(g.n * g.op(), 9));
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| weight_grad(&x, &dy, &g))
        };
        let one = on(1);
        for threads in [2, 3, 16] {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&on(threads)), bits(&one), "{threads} threads");
        }
    }
}
