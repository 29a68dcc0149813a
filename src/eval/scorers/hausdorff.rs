//! Lake's modified Hausdorff distance baseline.

use image::{DynamicImage, GrayImage};
use rayon::prelude::*;

use super::scorer::Scorer;
use crate::Result;

/// The smallest ink-high value that counts as ink. Omniglot images are binary (0 or 255);
/// for grey images (distorted or resized) this is the midpoint.
pub(crate) const INK_THRESHOLD: u8 = 128;

/// Scores a pair by minus the modified Hausdorff distance (Dubuisson and Jain, 1994)
/// between their inked pixels, as `demo_classification.py` of brendenlake/omniglot
/// computes it:
///
/// - the points of an image are the `(row, column)` of its ink pixels, centred by
///   subtracting their mean;
/// - `MHD(A, B) = max(mean over a in A of min over b in B of |a - b|,
///   mean over b in B of min over a in A of |a - b|)`.
///
/// On the official 20 runs it makes 38.8% errors (61.2% accuracy), as the demo reports.
///
/// An image without ink is infinitely far from every image with ink (score `-inf`),
/// and at distance 0 from another image without ink.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::eval::{ModifiedHausdorff, Scorer};
///
/// // A dot and a 3-pixel bar: centred, the dot is at the bar's middle pixel.
/// let mut dot = GrayImage::new(5, 5);
/// dot.put_pixel(1, 1, Luma([255]));
/// let bar = GrayImage::from_fn(5, 5, |x, y| Luma([if y == 2 && x < 3 { 255 } else { 0 }]));
/// let points = ModifiedHausdorff.embed(&[&dot.into(), &bar.into()])?;
/// let scores = ModifiedHausdorff.score(&points, &[0], &[0, 1])?;
/// // dot to bar: 0; bar to dot: (1 + 0 + 1) / 3.
/// assert_eq!(scores, vec![0.0, -2.0 / 3.0]);
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ModifiedHausdorff;

/// The centred ink points of one image, in row-major order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InkPoints {
    rows: Vec<f32>,
    cols: Vec<f32>,
    /// The distinct rows, ascending, and where each starts in `rows` (plus the end).
    row_values: Vec<f32>,
    row_starts: Vec<usize>,
}

impl InkPoints {
    /// The centred `(row, column)` of every pixel at or above 128 (ink).
    pub fn of(image: &GrayImage) -> Self {
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for (col, row, pixel) in image.enumerate_pixels() {
            if pixel.0[0] >= INK_THRESHOLD {
                rows.push(row);
                cols.push(col);
            }
        }
        let centre = |v: &[u32]| {
            let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
            v.iter()
                .map(|&x| (f64::from(x) - mean) as f32)
                .collect::<Vec<f32>>()
        };
        let (rows_f, cols_f) = (centre(&rows), centre(&cols));
        let mut row_values = Vec::new();
        let mut row_starts = Vec::new();
        for (i, &row) in rows.iter().enumerate() {
            if i == 0 || rows[i - 1] != row {
                row_values.push(rows_f[i]);
                row_starts.push(i);
            }
        }
        row_starts.push(rows.len());
        Self {
            rows: rows_f,
            cols: cols_f,
            row_values,
            row_starts,
        }
    }

    /// Row of each point minus the mean row, ascending.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Column of each point minus the mean column (ascending within a row).
    pub fn cols(&self) -> &[f32] {
        &self.cols
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the image had no ink.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Squared distance from `(r, c)` to the nearest point of `self`, if nearer than `best`.
    ///
    /// Exact, but not by brute force (an Omniglot drawing has about 1,000 ink pixels): rows
    /// are visited outwards from `r` until one is farther than the best distance so far,
    /// and within a row, columns outwards from `c` likewise.
    fn nearest_squared(&self, r: f32, c: f32) -> f32 {
        let mut best = f32::INFINITY;
        let visit = |row: usize, best: &mut f32| -> bool {
            let dr = self.row_values[row] - r;
            let dr2 = dr * dr;
            if dr2 >= *best {
                return false;
            }
            let cols = &self.cols[self.row_starts[row]..self.row_starts[row + 1]];
            let split = cols.partition_point(|&x| x < c);
            for &x in &cols[split..] {
                let d = dr2 + (x - c) * (x - c);
                if d >= *best {
                    break;
                }
                *best = d;
            }
            for &x in cols[..split].iter().rev() {
                let d = dr2 + (x - c) * (x - c);
                if d >= *best {
                    break;
                }
                *best = d;
            }
            true
        };
        let start = self.row_values.partition_point(|&v| v < r);
        for row in start..self.row_values.len() {
            if !visit(row, &mut best) {
                break;
            }
        }
        for row in (0..start).rev() {
            if !visit(row, &mut best) {
                break;
            }
        }
        best
    }

    /// Mean over the points of `self` of the distance to the nearest point of `other`.
    fn mean_nearest(&self, other: &InkPoints) -> f64 {
        let total: f64 = self
            .rows
            .iter()
            .zip(&self.cols)
            .map(|(&r, &c)| f64::from(other.nearest_squared(r, c)).sqrt())
            .sum();
        total / self.len() as f64
    }

    /// The modified Hausdorff distance to `other`.
    pub fn distance(&self, other: &InkPoints) -> f64 {
        match (self.is_empty(), other.is_empty()) {
            (true, true) => 0.0,
            (true, false) | (false, true) => f64::INFINITY,
            (false, false) => self.mean_nearest(other).max(other.mean_nearest(self)),
        }
    }
}

impl Scorer for ModifiedHausdorff {
    /// Centred ink points of each image.
    type Embeddings = Vec<InkPoints>;

    fn name(&self) -> String {
        "modified Hausdorff".into()
    }

    fn embed(&self, images: &[&DynamicImage]) -> Result<Self::Embeddings> {
        Ok(images
            .par_iter()
            .map(|image| match image {
                DynamicImage::ImageLuma8(grey) => InkPoints::of(grey),
                other => InkPoints::of(&other.to_luma8()),
            })
            .collect())
    }

    fn concat(&self, batches: Vec<Self::Embeddings>) -> Result<Self::Embeddings> {
        Ok(batches.concat())
    }

    fn score(
        &self,
        points: &Self::Embeddings,
        queries: &[usize],
        supports: &[usize],
    ) -> Result<Vec<f32>> {
        let pairs: Vec<(usize, usize)> = queries
            .iter()
            .flat_map(|&q| supports.iter().map(move |&s| (q, s)))
            .collect();
        Ok(pairs
            .par_iter()
            .map(|&(q, s)| -(points[q].distance(&points[s]) as f32))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn image(ink: &[(u32, u32)]) -> GrayImage {
        let mut image = GrayImage::new(40, 40);
        for &(x, y) in ink {
            image.put_pixel(x, y, Luma([255]));
        }
        image
    }

    /// Lake's formula, directly: every pair of points, in f64.
    fn reference(a: &GrayImage, b: &GrayImage) -> f64 {
        let points = |image: &GrayImage| {
            let p: Vec<(f64, f64)> = image
                .enumerate_pixels()
                .filter(|(_, _, v)| v.0[0] > 127)
                .map(|(x, y, _)| (y as f64, x as f64))
                .collect();
            let n = p.len() as f64;
            let (mr, mc) = p
                .iter()
                .fold((0.0, 0.0), |(r, c), (pr, pc)| (r + pr / n, c + pc / n));
            p.into_iter()
                .map(|(r, c)| (r - mr, c - mc))
                .collect::<Vec<_>>()
        };
        let (pa, pb) = (points(a), points(b));
        let mean_min = |x: &[(f64, f64)], y: &[(f64, f64)]| {
            x.iter()
                .map(|p| {
                    y.iter()
                        .map(|q| ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt())
                        .fold(f64::INFINITY, f64::min)
                })
                .sum::<f64>()
                / x.len() as f64
        };
        mean_min(&pa, &pb).max(mean_min(&pb, &pa))
    }

    #[test]
    fn matches_the_formula_on_random_drawings() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20 {
            let mut draw = || {
                let n = rng.random_range(1..400);
                let ink: Vec<(u32, u32)> = (0..n)
                    .map(|_| (rng.random_range(0..40), rng.random_range(0..40)))
                    .collect();
                image(&ink)
            };
            let (a, b) = (draw(), draw());
            let got = InkPoints::of(&a).distance(&InkPoints::of(&b));
            let want = reference(&a, &b);
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn is_symmetric_translation_invariant_and_zero_on_itself() {
        let a = image(&[(1, 1), (2, 1), (3, 2), (3, 3)]);
        let shifted = image(&[(11, 21), (12, 21), (13, 22), (13, 23)]);
        let b = image(&[(5, 5), (9, 9)]);
        let (pa, ps, pb) = (
            InkPoints::of(&a),
            InkPoints::of(&shifted),
            InkPoints::of(&b),
        );
        assert_eq!(pa.distance(&ps), 0.0);
        assert_eq!(pa.distance(&pb), pb.distance(&pa));
        assert!(pa.distance(&pb) > 0.0);
    }

    #[test]
    fn blank_images_are_infinitely_far_from_ink() {
        let (blank, ink) = (InkPoints::of(&image(&[])), InkPoints::of(&image(&[(3, 3)])));
        assert_eq!(blank.distance(&ink), f64::INFINITY);
        assert_eq!(ink.distance(&blank), f64::INFINITY);
        assert_eq!(blank.distance(&blank), 0.0);
    }
}
