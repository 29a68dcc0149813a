//! The one conversion from canonical (ink-high grey) images to network input:
//! [`to_input`], which [`InputSpec::to_input`](super::InputSpec::to_input) calls for grey
//! pictures.

use image::imageops::{self, FilterType};
use image::{GrayImage, ImageBuffer, Luma, Pixel};

/// Converts an ink-high image (ink 255, background 0) of any size to `size × size` floats
/// in `[0, 1]` (ink 1.0), row-major: one `[1, S, S]` slice of a `[B, 1, S, S]` tensor.
///
/// An image already `size × size` is only rescaled to `[0, 1]`. Any other is resized with
/// `image`'s triangle (bilinear, area-averaging when shrinking) filter, in `f32` so that
/// grey levels are not rounded twice. Training ([`PairBatcher`](super::PairBatcher)) and
/// evaluation both call this, so a network sees the same pixels in both.
///
/// ```
/// use image::{GrayImage, Luma};
/// use siamese::data::to_input;
///
/// let mut image = GrayImage::new(105, 105);
/// image.put_pixel(52, 52, Luma([255]));
/// let same = to_input(&image, 105);
/// assert_eq!(same.len(), 105 * 105);
/// assert_eq!(same[52 * 105 + 52], 1.0);
///
/// let half = to_input(&image, 52);
/// assert_eq!(half.len(), 52 * 52);
/// assert!(half.iter().all(|&v| (0.0..=1.0).contains(&v)));
/// assert!(half.iter().sum::<f32>() > 0.0); // the dot survives, spread out
/// ```
///
/// # Panics
/// When `size` is 0 or the image is empty.
pub fn to_input(image: &GrayImage, size: usize) -> Vec<f32> {
    scaled_samples::<Luma<f32>>(image.as_raw(), image.dimensions(), size)
}

/// The 8-bit samples of an image of pixel type `P` (`Luma`, `Rgb`), `width × height`, as
/// floats in `[0, 1]` resized to `size × size` as [`to_input`] resizes, still interleaved.
///
/// # Panics
/// When `size` is 0 or the image is empty.
pub(crate) fn scaled_samples<P: Pixel<Subpixel = f32> + 'static>(
    raw: &[u8],
    (width, height): (u32, u32),
    size: usize,
) -> Vec<f32> {
    assert!(size > 0, "input size must be positive");
    assert!(width > 0 && height > 0, "cannot convert an empty image");
    let scaled: Vec<f32> = raw.iter().map(|&v| f32::from(v) / 255.0).collect();
    if width as usize == size && height as usize == size {
        return scaled;
    }
    let side = u32::try_from(size).expect("input size fits in u32");
    let source: ImageBuffer<P, Vec<f32>> =
        ImageBuffer::from_raw(width, height, scaled).expect("buffer matches size");
    imageops::resize(&source, side, side, FilterType::Triangle)
        .into_raw()
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_size_is_an_exact_rescale() {
        let image = GrayImage::from_fn(105, 105, |x, y| Luma([((x + y) % 256) as u8]));
        let input = to_input(&image, 105);
        for (v, p) in input.iter().zip(image.as_raw()) {
            assert_eq!(*v, f32::from(*p) / 255.0);
        }
    }

    #[test]
    fn uniform_images_stay_uniform_when_resized() {
        for (value, expected) in [(0u8, 0.0f32), (255, 1.0)] {
            let image = GrayImage::from_pixel(105, 105, Luma([value]));
            for size in [52, 28, 200] {
                let input = to_input(&image, size);
                assert_eq!(input.len(), size * size);
                assert!(
                    input.iter().all(|v| (v - expected).abs() < 1e-6),
                    "{value} at {size}"
                );
            }
        }
    }

    #[test]
    fn shrinking_keeps_the_ink_mass_and_its_place() {
        // A vertical bar in the left half stays in the left half, with about the same share
        // of ink.
        let image = GrayImage::from_fn(105, 105, |x, _| {
            Luma([if (20..30).contains(&x) { 255 } else { 0 }])
        });
        let input = to_input(&image, 52);
        let total: f32 = input.iter().sum();
        let left: f32 = (0..52)
            .flat_map(|y| (0..26).map(move |x| (x, y)))
            .map(|(x, y)| input[y * 52 + x])
            .sum();
        let share = total / (52.0 * 52.0);
        assert!((share - 10.0 / 105.0).abs() < 0.01, "ink share {share}");
        assert!(left / total > 0.99);
    }
}
