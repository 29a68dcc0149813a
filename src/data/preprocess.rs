//! How any picture becomes what a network reads: the rule a network is trained with,
//! saved in its configuration, so that training, evaluation and matching prepare a
//! picture the same way.

use image::imageops::{self, FilterType};
use image::{DynamicImage, GenericImageView, GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba};
use serde::{Deserialize, Serialize};

use super::canonical::{NATIVE_SIZE, check_size};
use crate::{Error, Result};

/// How a decoded image of any size and colour type is brought to the form a network reads.
///
/// Saved in [`SiameseConfig::preprocess`](crate::SiameseConfig::preprocess), so a network
/// carries the rule it was trained with: [`Matcher`](crate::matcher::Matcher), the
/// evaluator and the trainer all take it from the network
/// ([`Siamese::input_spec`](crate::Siamese::input_spec)).
///
/// ```
/// use image::{DynamicImage, Rgba, RgbaImage};
/// use siamese::data::{InputSpec, Preprocess};
///
/// // A red disc on a transparent 64 × 32 canvas.
/// let icon = RgbaImage::from_fn(64, 32, |x, y| {
///     let (dx, dy) = (x as f32 - 32.0, y as f32 - 16.0);
///     if dx * dx + dy * dy < 100.0 { Rgba([220, 0, 0, 255]) } else { Rgba([0, 0, 0, 0]) }
/// });
/// let spec = InputSpec::new(3, 32, Preprocess::picture())?;
/// let picture = spec.prepare(&DynamicImage::ImageRgba8(icon))?.into_rgb8();
/// assert_eq!(picture.dimensions(), (32, 32));
/// assert_eq!(picture.get_pixel(16, 16).0, [220, 0, 0]); // the disc, its colour kept
/// assert_eq!(picture.get_pixel(0, 0).0, [255, 255, 255]); // padding: the background
/// assert_eq!(picture.get_pixel(1, 16).0, [255, 255, 255]); // transparency: the background
/// # Ok::<(), siamese::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Preprocess {
    /// Ink on paper, the rule of handwritten characters ([`prepare`](super::prepare)):
    /// grey, polarity read from the frame (ink becomes high), the paper's level
    /// subtracted, fitted to 105 × 105 keeping the aspect ratio, the strongest stroke
    /// stretched to 255. What Omniglot's networks are trained with, and what a
    /// configuration saved without this field loads as.
    Ink,
    /// Pictures as they are (icons, logos, photos): transparent pixels composited over
    /// `background`, the whole picture fitted into the network's square keeping its
    /// aspect ratio and padded with `background`. No polarity or contrast is guessed.
    Picture {
        /// The colour behind transparent pixels and around the fitted picture, RGB.
        background: [u8; 3],
    },
}

impl Preprocess {
    /// Pictures on a white background.
    pub fn picture() -> Self {
        Self::Picture {
            background: [255; 3],
        }
    }

    /// The colour of empty space: what the padding, and the corners that a distortion
    /// uncovers, are filled with (black for ink: ink is high, paper is 0).
    pub fn background(&self) -> [u8; 3] {
        match self {
            Self::Ink => [0; 3],
            Self::Picture { background } => *background,
        }
    }
}

/// What a network reads: `channels × side × side` floats in `[0, 1]`, from pictures
/// prepared by `preprocess`. [`Siamese::input_spec`](crate::Siamese::input_spec) gives a
/// network's; the batchers, the scorers and the matcher turn pictures into tensors with it.
///
/// A prepared picture is the form a data set stores and the samplers distort: a
/// [`DynamicImage`] that is `Luma8` or `Rgb8`. With [`Preprocess::Ink`] it is the 105 × 105
/// canonical form (resized to `side` only on its way into a tensor, as Omniglot's networks
/// were trained); with [`Preprocess::Picture`] it is `side × side` already, in the
/// network's channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    channels: usize,
    side: usize,
    preprocess: Preprocess,
}

/// Largest side a network input may have (as [`EncoderConfig`](crate::EncoderConfig)
/// allows).
const MAX_SIDE: usize = 1024;

impl InputSpec {
    /// A spec for `channels` (1: grey, 3: RGB) of `side × side` pixels.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `channels` is not 1 or 3, or `side` is 0 or over 1024.
    pub fn new(channels: usize, side: usize, preprocess: Preprocess) -> Result<Self> {
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                "channels",
                format!("{channels}: a network reads 1 (grey) or 3 (RGB) channels"),
            ));
        }
        if side == 0 || side > MAX_SIDE {
            return Err(Error::invalid(
                "side",
                format!("{side} is not in 1..={MAX_SIDE}"),
            ));
        }
        Ok(Self {
            channels,
            side,
            preprocess,
        })
    }

    /// One grey channel of ink on paper: how Omniglot's networks read.
    ///
    /// # Errors
    /// As [`InputSpec::new`].
    pub fn ink(side: usize) -> Result<Self> {
        Self::new(1, side, Preprocess::Ink)
    }

    /// Input channels: 1 or 3.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Side of the network's square input.
    pub fn side(&self) -> usize {
        self.side
    }

    /// The preprocessing rule.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// Side of a prepared picture: 105 for ink, the input side for pictures.
    pub fn stored_side(&self) -> u32 {
        match self.preprocess {
            Preprocess::Ink => NATIVE_SIZE,
            Preprocess::Picture { .. } => self.side as u32,
        }
    }

    /// Channels of a prepared picture: 1 for ink, the network's for pictures.
    pub fn stored_channels(&self) -> usize {
        match self.preprocess {
            Preprocess::Ink => 1,
            Preprocess::Picture { .. } => self.channels,
        }
    }

    /// Brings a decoded image of any size and colour type to its prepared form
    /// (`Luma8` or `Rgb8`, [`InputSpec::stored_side`] square).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the image has no pixels.
    pub fn prepare(&self, image: &DynamicImage) -> Result<DynamicImage> {
        check_size(image.width(), image.height())
            .map_err(|reason| Error::invalid("image", reason))?;
        Ok(match self.preprocess {
            Preprocess::Ink => DynamicImage::ImageLuma8(super::canonical::canonical_of(image)),
            Preprocess::Picture { background } => {
                let (width, height) = image.dimensions();
                let rgb =
                    picture_in_strips(width, height, self.side as u32, background, |y, rows| {
                        image.crop_imm(0, y, width, rows).to_rgba32f()
                    });
                if self.channels == 1 {
                    DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(rgb).into_luma8())
                } else {
                    DynamicImage::ImageRgb8(rgb)
                }
            }
        })
    }

    /// Reads an image file in any format the `image` crate reads, bounded as
    /// [`load_image`](super::load_image) is, and prepares it.
    ///
    /// # Errors
    /// As [`load_image`](super::load_image).
    pub fn load(&self, path: impl AsRef<std::path::Path>) -> Result<DynamicImage> {
        let path = path.as_ref();
        super::canonical::load_with(path, |image| self.prepare(image))?.map_err(|e| Error::Image {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Decodes an image from memory, bounded as [`decode_image`](super::decode_image) is,
    /// and prepares it; `source` names it in errors.
    ///
    /// # Errors
    /// As [`decode_image`](super::decode_image).
    pub fn decode(
        &self,
        bytes: &[u8],
        source: impl AsRef<std::path::Path>,
    ) -> Result<DynamicImage> {
        let source = source.as_ref();
        super::canonical::decode_with(bytes, source, |image| self.prepare(image))?.map_err(|e| {
            Error::Image {
                path: source.into(),
                reason: e.to_string(),
            }
        })
    }

    /// A prepared picture (or any image) as `channels × side × side` floats in `[0, 1]`,
    /// channel-major: one `[C, S, S]` slice of a `[B, C, S, S]` tensor. Grey pictures fill
    /// every channel of an RGB network alike; colour pictures give a grey network their
    /// luminance. A picture of another size is resized as [`to_input`](super::to_input)
    /// resizes (with `image`'s triangle filter, in `f32`).
    ///
    /// # Panics
    /// When the image is empty.
    pub fn to_input(&self, image: &DynamicImage) -> Vec<f32> {
        let side = self.side;
        match (self.channels, image) {
            (1, DynamicImage::ImageLuma8(grey)) => super::to_input(grey, side),
            (1, other) => super::to_input(&other.to_luma8(), side),
            (_, DynamicImage::ImageLuma8(grey)) => {
                let plane = super::to_input(grey, side);
                [&plane[..], &plane[..], &plane[..]].concat()
            }
            (_, DynamicImage::ImageRgb8(rgb)) => rgb_input(rgb, side),
            (_, other) => rgb_input(&other.to_rgb8(), side),
        }
    }

    /// The network inputs of `images`, each converted with [`InputSpec::to_input`].
    ///
    /// # Shapes
    /// - output: `[images.len(), C, S, S]`
    pub(crate) fn batch(
        &self,
        images: &[&DynamicImage],
        device: &burn::tensor::Device,
    ) -> burn::tensor::Tensor<4> {
        let pixels: Vec<f32> = images.iter().flat_map(|i| self.to_input(i)).collect();
        crate::tensors::input_tensor(pixels, images.len(), self.channels, self.side, device)
    }
}

/// An RGB picture as three planes of `side × side` floats in `[0, 1]`.
fn rgb_input(image: &RgbImage, side: usize) -> Vec<f32> {
    let interleaved =
        super::input::scaled_samples::<Rgb<f32>>(image.as_raw(), image.dimensions(), side);
    let plane = side * side;
    let mut planar = vec![0.0; 3 * plane];
    for (p, rgb) in interleaved.chunks_exact(3).enumerate() {
        for (c, &v) in rgb.iter().enumerate() {
            planar[c * plane + p] = v;
        }
    }
    planar
}

/// [`Preprocess::Picture`] on a `width × height` image given as strips of RGBA rows in
/// `[0, 1]`: composited over `background` and fitted into a `side × side` square.
///
/// A picture whose longer side is at least twice `4 × side` is box-reduced by a whole factor
/// as its strips arrive (premultiplied colour and opacity are averaged, which is exact for
/// the compositing), so the working copy stays small whatever the picture's size.
fn picture_in_strips(
    width: u32,
    height: u32,
    side: u32,
    background: [u8; 3],
    mut strip: impl FnMut(u32, u32) -> ImageBuffer<Rgba<f32>, Vec<f32>>,
) -> RgbImage {
    let factor = (width.max(height) / (4 * side)).max(1);
    let (cells_x, cells_y) = (width.div_ceil(factor), height.div_ceil(factor));
    // Per cell: premultiplied colour sums and opacity sums.
    let mut sums = vec![[0.0f32; 4]; (cells_x * cells_y) as usize];
    let strip_rows = factor * (64 / factor).max(1);
    for y0 in (0..height).step_by(strip_rows as usize) {
        let rows = strip_rows.min(height - y0);
        for (x, dy, pixel) in strip(y0, rows).enumerate_pixels() {
            let [r, g, b, a] = pixel.0;
            let cell = &mut sums[(((y0 + dy) / factor) * cells_x + x / factor) as usize];
            cell[0] += a * r;
            cell[1] += a * g;
            cell[2] += a * b;
            cell[3] += a;
        }
    }
    let back = background.map(|v| f32::from(v) / 255.0);
    let cell_pixels = |c, cells, length| super::canonical::cell_pixels(c, cells, length, factor);
    let composited: Vec<f32> = sums
        .iter()
        .enumerate()
        .flat_map(|(i, cell)| {
            let (cx, cy) = (i as u32 % cells_x, i as u32 / cells_x);
            let n = (cell_pixels(cx, cells_x, width) * cell_pixels(cy, cells_y, height)) as f32;
            let opaque = cell[3] / n;
            (0..3).map(move |c| (cell[c] / n + (1.0 - opaque) * back[c]).clamp(0.0, 1.0))
        })
        .collect();
    let work: ImageBuffer<Rgb<f32>, Vec<f32>> =
        ImageBuffer::from_raw(cells_x, cells_y, composited).expect("three levels per cell");
    // Fit the longer side to `side`, keeping the aspect ratio, centred on the background.
    let (new_width, new_height) = super::canonical::fitted_size((width, height), side);
    let resized = if (new_width, new_height) == work.dimensions() {
        work
    } else {
        imageops::resize(&work, new_width, new_height, FilterType::Triangle)
    };
    let mut page = RgbImage::from_pixel(side, side, Rgb(background));
    let quantised = ImageBuffer::from_fn(new_width, new_height, |x, y| {
        Rgb(resized
            .get_pixel(x, y)
            .0
            .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8))
    });
    imageops::replace(
        &mut page,
        &quantised,
        i64::from((side - new_width) / 2),
        i64::from((side - new_height) / 2),
    );
    page
}

/// A prepared picture's pixels in another pose or distortion keep their kind (`Luma8` or
/// `Rgb8`); any other kind is first brought to `Rgb8`.
pub(crate) fn map_picture(
    image: &DynamicImage,
    grey: impl FnOnce(&GrayImage) -> GrayImage,
    rgb: impl FnOnce(&RgbImage) -> RgbImage,
) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(g) => DynamicImage::ImageLuma8(grey(g)),
        DynamicImage::ImageRgb8(c) => DynamicImage::ImageRgb8(rgb(c)),
        other => DynamicImage::ImageRgb8(rgb(&other.to_rgb8())),
    }
}

/// The fill of a grey picture for a background colour: its luminance.
pub(crate) fn grey_fill(background: [u8; 3]) -> Luma<u8> {
    DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb(background)))
        .into_luma8()
        .get_pixel(0, 0)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbaImage};

    #[test]
    fn specs_refuse_other_channel_counts_and_sides() {
        assert!(InputSpec::new(2, 52, Preprocess::Ink).is_err());
        assert!(InputSpec::new(4, 52, Preprocess::Ink).is_err());
        assert!(InputSpec::new(3, 0, Preprocess::Ink).is_err());
        assert!(InputSpec::new(3, 4096, Preprocess::picture()).is_err());
        let message = InputSpec::new(2, 52, Preprocess::Ink)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("channels") && message.contains('2'),
            "{message}"
        );
    }

    #[test]
    fn the_preprocessing_round_trips_through_json() {
        for preprocess in [
            Preprocess::Ink,
            Preprocess::Picture {
                background: [1, 2, 3],
            },
        ] {
            let json = serde_json::to_string(&preprocess).unwrap();
            assert_eq!(
                serde_json::from_str::<Preprocess>(&json).unwrap(),
                preprocess
            );
        }
        assert_eq!(serde_json::to_string(&Preprocess::Ink).unwrap(), "\"Ink\"");
    }

    #[test]
    fn ink_is_the_canonical_form() {
        let mut page = GrayImage::from_pixel(80, 40, Luma([255]));
        for x in 10..70 {
            page.put_pixel(x, 20, Luma([0]));
        }
        let image = DynamicImage::ImageLuma8(page);
        let spec = InputSpec::ink(52).unwrap();
        let prepared = spec.prepare(&image).unwrap();
        assert_eq!(
            prepared.as_luma8().unwrap(),
            &super::super::prepare(&image).unwrap()
        );
        assert_eq!(spec.to_input(&prepared).len(), 52 * 52);
    }

    #[test]
    fn a_wide_picture_is_fitted_and_padded_with_the_background() {
        let wide = RgbImage::from_pixel(60, 20, Rgb([0, 0, 200]));
        let spec = InputSpec::new(
            3,
            30,
            Preprocess::Picture {
                background: [10, 20, 30],
            },
        )
        .unwrap();
        let out = spec
            .prepare(&DynamicImage::ImageRgb8(wide))
            .unwrap()
            .into_rgb8();
        assert_eq!(out.dimensions(), (30, 30));
        // 60 × 20 becomes 30 × 10, centred: rows 10..20 are the picture.
        assert_eq!(out.get_pixel(15, 15).0, [0, 0, 200]);
        assert_eq!(out.get_pixel(15, 5).0, [10, 20, 30]);
        assert_eq!(out.get_pixel(15, 25).0, [10, 20, 30]);
    }

    #[test]
    fn half_transparent_pixels_are_blended_with_the_background() {
        let icon = RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 128]));
        let spec = InputSpec::new(3, 8, Preprocess::picture()).unwrap();
        let out = spec
            .prepare(&DynamicImage::ImageRgba8(icon))
            .unwrap()
            .into_rgb8();
        assert!(
            out.pixels().all(|p| p.0 == [127; 3]),
            "{:?}",
            out.get_pixel(0, 0)
        );
        let grey = InputSpec::new(1, 8, Preprocess::picture()).unwrap();
        let out = grey
            .prepare(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(
                8,
                8,
                Rgba([0, 0, 0, 128]),
            )))
            .unwrap();
        assert_eq!(out.as_luma8().unwrap().get_pixel(3, 3).0, [127]);
    }

    #[test]
    fn large_pictures_are_reduced_as_they_are_read_with_the_same_colours() {
        // Two colour halves, 2000 × 1000: reduced by a factor of 15 on the way.
        let big = RgbImage::from_fn(2000, 1000, |x, _| {
            if x < 1000 {
                Rgb([200, 10, 10])
            } else {
                Rgb([10, 10, 200])
            }
        });
        let spec = InputSpec::new(3, 32, Preprocess::picture()).unwrap();
        let out = spec
            .prepare(&DynamicImage::ImageRgb8(big))
            .unwrap()
            .into_rgb8();
        assert_eq!(out.get_pixel(4, 16).0, [200, 10, 10]);
        assert_eq!(out.get_pixel(28, 16).0, [10, 10, 200]);
        assert_eq!(out.get_pixel(16, 2).0, [255; 3]);
    }

    #[test]
    fn inputs_are_channel_major_and_grey_fills_every_channel() {
        let spec = InputSpec::new(3, 2, Preprocess::picture()).unwrap();
        let rgb = RgbImage::from_fn(2, 2, |x, y| Rgb([(x * 255) as u8, (y * 255) as u8, 51]));
        let input = spec.to_input(&DynamicImage::ImageRgb8(rgb));
        assert_eq!(
            input,
            [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2]
        );
        let grey = GrayImage::from_fn(2, 2, |x, _| Luma([(x * 255) as u8]));
        let input = spec.to_input(&DynamicImage::ImageLuma8(grey));
        assert_eq!(input, [0.0, 1.0, 0.0, 1.0].repeat(3));
        let one = InputSpec::new(1, 2, Preprocess::picture()).unwrap();
        let white = RgbImage::from_pixel(2, 2, Rgb([255; 3]));
        assert_eq!(one.to_input(&DynamicImage::ImageRgb8(white)), [1.0; 4]);
    }

    #[test]
    fn the_grey_fill_of_white_is_white() {
        assert_eq!(grey_fill([255; 3]).0, [255]);
        assert_eq!(grey_fill([0; 3]).0, [0]);
    }
}
