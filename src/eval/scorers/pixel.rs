//! The pixel nearest-neighbour baseline.

use image::DynamicImage;
use rayon::prelude::*;

use super::scorer::Scorer;
use crate::{Error, Result};

/// Scores a pair by minus the Euclidean distance between their pixels (scaled to
/// `[0, 1]`, ink 1; every channel of a colour picture), at the images' own size: the "1-nearest neighbour" baseline of
/// Lake et al. (2015), which gets about a fifth of the official runs right.
///
/// All images must have the same size.
#[derive(Clone, Copy, Debug, Default)]
pub struct PixelNearestNeighbour;

impl Scorer for PixelNearestNeighbour {
    /// Pixels of each image, in `[0, 1]`.
    type Embeddings = Vec<Vec<f32>>;

    fn name(&self) -> String {
        "pixel nearest neighbour".into()
    }

    fn embed(&self, images: &[&DynamicImage]) -> Result<Self::Embeddings> {
        Ok(images
            .iter()
            .map(|image| match image {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image
                    .as_bytes()
                    .iter()
                    .map(|&v| f32::from(v) / 255.0)
                    .collect(),
                other => other
                    .to_rgb8()
                    .iter()
                    .map(|&v| f32::from(v) / 255.0)
                    .collect(),
            })
            .collect())
    }

    fn concat(&self, batches: Vec<Self::Embeddings>) -> Result<Self::Embeddings> {
        Ok(batches.concat())
    }

    /// # Errors
    /// [`Error::InvalidArgument`] when two images differ in size.
    fn score(
        &self,
        pixels: &Self::Embeddings,
        queries: &[usize],
        supports: &[usize],
    ) -> Result<Vec<f32>> {
        let len = pixels[queries[0]].len();
        if let Some(&i) = queries
            .iter()
            .chain(supports)
            .find(|&&i| pixels[i].len() != len)
        {
            return Err(Error::invalid(
                "images",
                format!(
                    "pixel nearest neighbour compares images of one size, got {len} and {} pixels",
                    pixels[i].len()
                ),
            ));
        }
        Ok(queries
            .par_iter()
            .flat_map_iter(|&q| {
                supports.iter().map(move |&s| {
                    let squared: f32 = pixels[q]
                        .iter()
                        .zip(&pixels[s])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    -squared.sqrt()
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn scores_are_minus_euclidean_distances() {
        let a = GrayImage::from_pixel(2, 2, Luma([0])).into();
        let b = GrayImage::from_pixel(2, 2, Luma([255])).into();
        let mut c = GrayImage::new(2, 2);
        c.put_pixel(1, 1, Luma([255]));
        let c = c.into();
        let scorer = PixelNearestNeighbour;
        let pixels = scorer.embed(&[&a, &b, &c]).unwrap();
        let scores = scorer.score(&pixels, &[0, 2], &[0, 1, 2]).unwrap();
        assert_eq!(scores, vec![0.0, -2.0, -1.0, -1.0, -3f32.sqrt(), 0.0]);
    }

    #[test]
    fn different_sizes_are_refused() {
        let scorer = PixelNearestNeighbour;
        let pixels = scorer
            .embed(&[&GrayImage::new(2, 2).into(), &GrayImage::new(3, 3).into()])
            .unwrap();
        let message = scorer.score(&pixels, &[0], &[1]).unwrap_err().to_string();
        assert!(message.contains("4 and 9 pixels"), "{message}");
    }
}
