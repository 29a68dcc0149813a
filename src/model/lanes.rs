//! Float sums in a fixed order that the compiler can still vectorise.
//!
//! The compiler may not reorder a float sum, so `iter().sum()` adds one value at a time.
//! Summing into [`LANES`] independent accumulators, then adding those, is a fixed order too
//! (the result does not depend on threads or on the CPU), and it runs in SIMD registers.

/// Independent accumulators of a sum.
const LANES: usize = 16;

/// `Σ f(a_j, b_j)` over two equally long slices, both components at once.
pub fn sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; 2]) -> [f32; 2] {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [[0f32; LANES]; 2];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest = a_chunks.remainder().iter().zip(b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let [u, v] = f(a[lane], b[lane]);
            acc[0][lane] += u;
            acc[1][lane] += v;
        }
    }
    let mut total = [acc[0].iter().sum::<f32>(), acc[1].iter().sum::<f32>()];
    for (&a, &b) in rest {
        let [u, v] = f(a, b);
        total[0] += u;
        total[1] += v;
    }
    total
}

/// `Σ f(a_j)`.
pub fn sum(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    sum2(a, a, |v, _| [f(v), 0.0])[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_equal_the_exact_ones_on_every_length() {
        for len in [0, 1, 15, 16, 17, 40, 1000] {
            let a: Vec<f32> = (0..len).map(|j| (j % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..len).map(|j| (j % 5) as f32).collect();
            let exact_a: f32 = a.iter().sum();
            let exact_ab: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            // Small integers: every order of addition is exact.
            assert_eq!(sum(&a, |v| v), exact_a, "length {len}");
            assert_eq!(
                sum2(&a, &b, |x, y| [x * y, y]),
                [exact_ab, b.iter().sum()],
                "length {len}"
            );
        }
    }
}
