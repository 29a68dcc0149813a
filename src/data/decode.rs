//! Decoding one Omniglot PNG.

use std::io::Cursor;
use std::path::Path;

use image::codecs::png::PngDecoder;
use image::{DynamicImage, GrayImage, ImageDecoder, Limits};

use super::canonical::NATIVE_SIZE;
use crate::{Error, Result};

/// Largest PNG file accepted, in bytes. An Omniglot PNG is under 1 KB; anything much larger
/// is not one, and refusing it early bounds the work spent on a corrupt archive.
pub const MAX_PNG_BYTES: usize = 1 << 20;

/// What the loader and the official runs read an Omniglot PNG as.
pub(crate) const OMNIGLOT_PNG: crate::io::FileKind =
    crate::io::FileKind::new("an Omniglot PNG", MAX_PNG_BYTES as u64);

/// Decodes an Omniglot PNG (black strokes on white, 105 × 105) into an ink-high image:
/// ink 255, background 0 (see the [pixel convention](super#pixel-convention)).
///
/// `source` names the file in errors, for example
/// `images_background.zip/images_background/Latin/character01/0690_01.png`.
/// The size is checked from the header before any pixel is decoded.
///
/// ```
/// use std::io::Cursor;
/// use image::{GrayImage, ImageFormat, Luma};
///
/// // White background, one black pixel: the file as Omniglot stores it.
/// let mut page = GrayImage::from_pixel(105, 105, Luma([255]));
/// page.put_pixel(3, 4, Luma([0]));
/// let mut png = Cursor::new(Vec::new());
/// page.write_to(&mut png, ImageFormat::Png).unwrap();
///
/// let image = siamese::data::decode_png(png.get_ref(), "dot.png")?;
/// assert_eq!(image.get_pixel(3, 4).0, [255]); // ink is high
/// assert_eq!(image.get_pixel(0, 0).0, [0]);
///
/// let err = siamese::data::decode_png(b"not a png", "junk.png").unwrap_err();
/// assert!(err.to_string().contains("junk.png"));
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Image`] naming `source` when the bytes are not a PNG, do not decode, are larger
/// than [`MAX_PNG_BYTES`], or the image is not 105 × 105.
pub fn decode_png(bytes: &[u8], source: impl AsRef<Path>) -> Result<GrayImage> {
    let fail = |reason: String| Error::Image {
        path: source.as_ref().to_path_buf(),
        reason,
    };
    if bytes.len() > MAX_PNG_BYTES {
        return Err(fail(format!(
            "{} bytes is larger than the {MAX_PNG_BYTES} bytes an Omniglot PNG can have",
            bytes.len()
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(64 << 20);
    let decoder = PngDecoder::with_limits(Cursor::new(bytes), limits)
        .map_err(|e| fail(format!("not a readable PNG: {e}")))?;
    let (width, height) = decoder.dimensions();
    if (width, height) != (NATIVE_SIZE, NATIVE_SIZE) {
        return Err(fail(format!(
            "is {width}×{height} pixels, expected {NATIVE_SIZE}×{NATIVE_SIZE}"
        )));
    }
    let decoded =
        DynamicImage::from_decoder(decoder).map_err(|e| fail(format!("does not decode: {e}")))?;
    let mut image = decoded.to_luma8();
    image.iter_mut().for_each(|v| *v = 255 - *v);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Luma};

    fn png_bytes(image: &GrayImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn inverts_to_ink_high() {
        let page = GrayImage::from_fn(105, 105, |x, _| Luma([if x < 50 { 0 } else { 255 }]));
        let image = decode_png(&png_bytes(&page), "a.png").unwrap();
        assert_eq!(image.get_pixel(10, 10).0, [255]);
        assert_eq!(image.get_pixel(80, 10).0, [0]);
    }

    #[test]
    fn wrong_size_is_named() {
        let page = GrayImage::from_pixel(104, 105, Luma([255]));
        let message = decode_png(&png_bytes(&page), "x/0001_01.png")
            .unwrap_err()
            .to_string();
        assert!(message.contains("x/0001_01.png"), "{message}");
        assert!(message.contains("104×105"), "{message}");
    }

    #[test]
    fn truncated_png_is_an_error() {
        let bytes = png_bytes(&GrayImage::from_pixel(105, 105, Luma([255])));
        for len in [0, 8, 20, 40, bytes.len() / 2] {
            assert!(decode_png(&bytes[..len], "t.png").is_err(), "length {len}");
        }
    }
}
