//! Any image to the crate's canonical form: [`prepare`] for a decoded image, and the ways
//! in that end in it ([`load_image`] for a file, [`decode_image`] for bytes,
//! [`ImageInput`] for whatever the matcher is given).
//!
//! Every image a network sees, in training, evaluation or matching, is first brought to
//! the [pixel convention](super#pixel-convention) here; [`to_input`](super::to_input)
//! then turns it into network input.

use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{
    DynamicImage, GrayImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, Luma,
    LumaA,
};

use super::budget;
use super::jpeg_frame::JpegFrame;
use crate::{Error, Result};

/// Side of every Omniglot image in pixels, and of the canonical form.
pub const NATIVE_SIZE: u32 = 105;

/// Largest width or height [`decode_image`] and [`load_image`] accept.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Largest file [`load_image`] reads, in bytes: an uncompressed file of the largest
/// decoded size.
pub const MAX_IMAGE_BYTES: u64 = MAX_DECODED_BYTES;

/// What [`load_image`] reads, bounded by [`MAX_IMAGE_BYTES`].
const IMAGE_FILE: crate::io::FileKind = crate::io::FileKind::new("an image", MAX_IMAGE_BYTES);

/// Largest image [`decode_image`] and [`load_image`] decode, in bytes of its own pixel
/// format (width × height × bytes per pixel), checked from the file's header before any
/// pixel is allocated: 16384 × 16384 grey, 8192 × 8192 RGBA, a 50-megapixel RGB photo.
///
/// Past decoding, preparation holds only a working copy of at most 840 × 840 pixels (a
/// large image is reduced by whole-pixel box averaging as its rows are read), so an
/// image's peak memory is its decoded size, plus its file for formats read whole (JPEG),
/// plus a few megabytes. Preparations running in parallel share a budget of
/// [`PREPARE_BUDGET`](super::PREPARE_BUDGET) bytes, so the peak does not grow with the
/// core count.
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

/// Images whose longer side is at least twice this are box-reduced to between this and
/// twice this before the final resize: a bound on the working copy.
const WORK_SIDE: u32 = 4 * NATIVE_SIZE;

/// What a decoder may allocate while it reads a header and its ancillary data (an ICC
/// profile, text chunks, a TIFF directory), and for its own line and strip buffers beside
/// the decoded pixels: a 2 MB PNG whose ICC profile inflates to 300 MB is refused here.
const DECODER_SCRATCH: u64 = 16 << 20;

/// Most a decoder may hold for one image, its decoded pixels included, as its format
/// allocates them (checked from the header before decoding): a TIFF or WebP decodes into
/// a buffer of its own and then copies it, a progressive JPEG keeps every coefficient.
/// Preparations in parallel lease this cost from [`PREPARE_BUDGET`](super::PREPARE_BUDGET).
pub const MAX_DECODER_BYTES: u64 = 384 << 20;

/// Grey levels in `[0, 1]`, before the canonical form is quantised.
type GrayF32 = ImageBuffer<Luma<f32>, Vec<f32>>;

/// Brings any image to the canonical form: 105 × 105, ink 255 on background 0.
///
/// # The canonical form
///
/// The [pixel convention](super#pixel-convention) at the native size: a 105 × 105
/// ([`NATIVE_SIZE`]) [`GrayImage`] with ink 255 on background 0. `prepare` reaches it
/// from an image of any size, colour type and polarity in four steps:
///
/// 1. **Grey levels.** Colour becomes luminance (Rec. 709 weights, as `image` converts).
///    Transparent pixels are background: they are composited over white when the opaque
///    pixels are mostly dark (their alpha-weighted mean luminance is below one half) and
///    over black otherwise, so strokes drawn on a transparent canvas stay visible whatever
///    their colour.
/// 2. **Polarity.** The background is the median of the pixels on the image's outer
///    frame (its first and last rows and columns): a drawing is framed by blank page even
///    where a stroke touches the edge. A light frame (median above one half) means dark
///    strokes on light paper, and the image is inverted; a dark frame means it is already
///    ink-high. The background level is then subtracted, so that grey paper becomes 0.
/// 3. **Size.** The longer side is scaled to 105 with `image`'s triangle filter (area
///    averaging when shrinking), keeping the aspect ratio, and the shorter side is padded
///    with background on both sides, centred: nothing is stretched or cropped.
/// 4. **Levels.** The result is scaled so that its brightest pixel is 255: grey pencil, and
///    thin strokes of a large image shrunk to 105, come out as strong as Omniglot's ink.
///    An image without ink (every pixel at the background level or below) comes out blank.
///
/// An image already in canonical form (105 × 105, ink-high on a frame of 0, some pixel at
/// 255) comes out unchanged. Every Omniglot image decoded by
/// [`decode_png`](super::decode_png) is in that form, and so is the output of `prepare`
/// for an image on a clean background: preparing it again changes nothing.
///
/// ```
/// use image::{DynamicImage, Rgb, RgbImage};
/// use siamese::data::{NATIVE_SIZE, prepare};
///
/// // A dark-blue stroke on a light-grey page, 300 × 150.
/// let page = RgbImage::from_fn(300, 150, |x, _| {
///     if (140..160).contains(&x) { Rgb([20, 20, 90]) } else { Rgb([230, 230, 225]) }
/// });
/// let image = prepare(&DynamicImage::ImageRgb8(page))?;
/// assert_eq!(image.dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
/// assert_eq!(image.get_pixel(52, 52).0, [255]); // the stroke, now ink-high
/// assert_eq!(image.get_pixel(10, 52).0, [0]); // the page
/// assert_eq!(image.get_pixel(52, 5).0, [0]); // padding above the wide image
///
/// let empty = DynamicImage::new_luma8(0, 10);
/// assert!(prepare(&empty).is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] when the image has no pixels (a width or height of 0).
pub fn prepare(image: &DynamicImage) -> Result<GrayImage> {
    check_size(image.width(), image.height()).map_err(|reason| Error::invalid("image", reason))?;
    Ok(canonical_of(image))
}

/// [`prepare`] on a non-empty image.
pub(crate) fn canonical_of(image: &DynamicImage) -> GrayImage {
    canonical_in_strips(image.width(), image.height(), WORK_SIDE, |y, rows| {
        image.crop_imm(0, y, image.width(), rows).to_luma_alpha32f()
    })
}

/// Reads an image file in any format the `image` crate reads (PNG, JPEG, GIF, BMP, TIFF,
/// WebP, ...) and brings it to the canonical form with [`prepare`].
///
/// The format is recognised from the file's first bytes, or else from its extension.
///
/// ```
/// use image::{GrayImage, Luma};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("dot.png");
/// let mut page = GrayImage::from_pixel(105, 105, Luma([255])); // white page
/// page.put_pixel(3, 4, Luma([0])); // one black dot
/// page.save(&path).unwrap();
///
/// let image = siamese::data::load_image(&path)?;
/// assert_eq!(image.get_pixel(3, 4).0, [255]);
/// assert_eq!(image.get_pixel(0, 0).0, [0]);
///
/// let err = siamese::data::load_image(dir.path().join("absent.png")).unwrap_err();
/// assert!(err.to_string().contains("absent.png"));
/// # Ok::<(), siamese::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the file when it cannot be read, [`Error::TooLarge`] naming it
/// when it has more than [`MAX_IMAGE_BYTES`] (a device or pipe included), [`Error::Image`]
/// naming it when it is not an image, does not decode, is larger than [`MAX_IMAGE_SIDE`]
/// or has no pixels.
pub fn load_image(path: impl AsRef<Path>) -> Result<GrayImage> {
    load_with(path.as_ref(), canonical_of)
}

/// Reads an image file as [`load_image`] does, bounded alike, and hands the decoded image
/// to `finish` while its memory is still leased.
pub(crate) fn load_with<T>(path: &Path, finish: impl FnOnce(&DynamicImage) -> T) -> Result<T> {
    // Only a regular file is opened (a pipe would block, a device never end); its length
    // is its size, and the decoder reads it as it goes.
    let (file, length) = crate::io::open_regular(path, IMAGE_FILE)?;
    let reader = image_reader(BufReader::new(file), path)?;
    decode_from(reader, path, |cost| budget::lease(cost + length), finish)
}

/// Decodes an image from memory (any format the `image` crate reads) and brings it to the
/// canonical form with [`prepare`]. `source` names it in errors; its extension is the
/// fallback for formats that cannot be recognised from their first bytes.
///
/// # Errors
/// [`Error::Image`] naming `source` when the bytes are not an image, do not decode, are
/// wider or taller than [`MAX_IMAGE_SIDE`], would decode to more than
/// [`MAX_DECODED_BYTES`] or have no pixels.
pub fn decode_image(bytes: &[u8], source: impl AsRef<Path>) -> Result<GrayImage> {
    decode_with(bytes, source.as_ref(), canonical_of)
}

/// Decodes an image from memory as [`decode_image`] does, bounded alike, and hands the
/// decoded image to `finish` while its memory is still leased.
pub(crate) fn decode_with<T>(
    bytes: &[u8],
    source: &Path,
    finish: impl FnOnce(&DynamicImage) -> T,
) -> Result<T> {
    let reader = image_reader(Cursor::new(bytes), source)?;
    decode_from(reader, source, budget::lease, finish)
}

fn image_fail(source: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Image {
        path: source.to_path_buf(),
        reason,
    }
}

/// A reader that knows its format (from the first bytes, else from the extension), and a
/// JPEG's frame header.
fn image_reader<R: BufRead + Seek>(
    inner: R,
    source: &Path,
) -> Result<(ImageReader<R>, Option<JpegFrame>)> {
    let fail = image_fail(source);
    let mut reader = ImageReader::new(inner);
    if let Ok(format) = ImageFormat::from_path(source) {
        reader.set_format(format);
    }
    let reader = reader
        .with_guessed_format()
        .map_err(|e| fail(format!("cannot be read: {e}")))?;
    let Some(format) = reader.format() else {
        return Err(fail(
            "is not in an image format the `image` crate reads".into(),
        ));
    };
    if format == ImageFormat::Jpeg {
        // The JPEG decoder fills a picture whose data ends early with grey: refuse it.
        let mut inner = reader.into_inner();
        let unreadable = |e: std::io::Error| fail(format!("cannot be read: {e}"));
        if !ends_like_a_jpeg(&mut inner).map_err(unreadable)? {
            return Err(fail(
                "ends early: no JPEG end-of-image marker (a truncated file)".into(),
            ));
        }
        let frame = JpegFrame::read(&mut inner).map_err(unreadable)?;
        if let Some(frame) = frame {
            let length = inner.seek(std::io::SeekFrom::End(0)).map_err(unreadable)?;
            inner.rewind().map_err(unreadable)?;
            if length < frame.min_coded_bytes() {
                return Err(fail(format!(
                    "ends early: a {}×{} JPEG needs at least {} bytes of coded data and the \
                     file holds {length} (cut short, or a forged size)",
                    frame.width,
                    frame.height,
                    frame.min_coded_bytes()
                )));
            }
        }
        return Ok((ImageReader::with_format(inner, format), frame));
    }
    Ok((reader, None))
}

/// Bytes a decoder of `format` holds at its peak for an image of `decoded` bytes (see
/// [`MAX_DECODER_BYTES`]).
fn decoder_bytes(format: Option<ImageFormat>, decoded: u64, jpeg: Option<JpegFrame>) -> u64 {
    let pixels = match format {
        // Decoded straight into the image, a row at a time.
        Some(ImageFormat::Png | ImageFormat::Bmp | ImageFormat::Pnm | ImageFormat::Qoi) => decoded,
        Some(ImageFormat::Jpeg) => decoded + jpeg.map_or(0, |frame| frame.extra_bytes()),
        // Decoded into a buffer of the decoder's, then copied or converted.
        _ => 2 * decoded,
    };
    pixels + DECODER_SCRATCH
}

/// Whether the last 64 KiB of a JPEG hold its end-of-image marker (`FF D9`; the marker
/// cannot occur inside entropy-coded data, where `FF` is always followed by `00`), leaving
/// the reader at its start.
fn ends_like_a_jpeg<R: BufRead + Seek>(inner: &mut R) -> std::io::Result<bool> {
    use std::io::{Read, SeekFrom};
    let length = inner.seek(SeekFrom::End(0))?;
    let tail = length.min(64 << 10);
    inner.seek(SeekFrom::End(-(tail as i64)))?;
    let mut bytes = Vec::with_capacity(tail as usize);
    inner.by_ref().take(tail).read_to_end(&mut bytes)?;
    inner.seek(SeekFrom::Start(0))?;
    Ok(bytes.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Reads the header under [`DECODER_SCRATCH`], checks the size and what decoding will
/// hold ([`MAX_DECODER_BYTES`]), takes a [`budget::Lease`] for it (`lease` is given it),
/// only then decodes, and hands the image to `finish`.
fn decode_from<R: BufRead + Seek, T>(
    (reader, jpeg): (ImageReader<R>, Option<JpegFrame>),
    source: &Path,
    lease: impl FnOnce(u64) -> budget::Lease,
    finish: impl FnOnce(&DynamicImage) -> T,
) -> Result<T> {
    let fail = image_fail(source);
    let format = reader.format();
    let mut decoder = header_limited(reader)
        .into_decoder()
        .map_err(|e| fail(decode_error(&e)))?;
    let (width, height) = decoder.dimensions();
    check_size(width, height).map_err(&fail)?;
    if width.max(height) > MAX_IMAGE_SIDE {
        return Err(fail(format!(
            "is {width}×{height} pixels, larger than the {MAX_IMAGE_SIDE} pixels a side \
             that MAX_IMAGE_SIDE allows"
        )));
    }
    let decoded = decoder.total_bytes();
    if decoded > MAX_DECODED_BYTES {
        let pixel = decoder.color_type().bytes_per_pixel();
        return Err(fail(format!(
            "is {width}×{height} pixels of {pixel} bytes: {} MiB decoded, more than the {} \
             MiB that MAX_DECODED_BYTES allows",
            decoded.div_ceil(1 << 20),
            MAX_DECODED_BYTES >> 20
        )));
    }
    let cost = decoder_bytes(format, decoded, jpeg);
    if cost > MAX_DECODER_BYTES {
        let kind = match jpeg {
            Some(frame) if frame.progressive => "a progressive JPEG".to_string(),
            Some(frame) if frame.components == 4 => "a CMYK JPEG".to_string(),
            _ => format.map_or("an image".into(), |f| format!("{f:?}")),
        };
        return Err(fail(format!(
            "is {kind} of {width}×{height} pixels: its decoder would hold {} MiB, more than \
             the {} MiB that MAX_DECODER_BYTES allows",
            cost.div_ceil(1 << 20),
            MAX_DECODER_BYTES >> 20
        )));
    }
    // The pixels may now be allocated; decoders that count (TIFF, GIF) get the rest.
    decoder
        .set_limits(limits(cost))
        .map_err(|e| fail(decode_error(&e)))?;
    let _lease = lease(cost);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| fail(decode_error(&e)))?;
    Ok(finish(&image))
}

/// `reader` set to read its header and ancillary chunks under [`DECODER_SCRATCH`].
fn header_limited<R: BufRead + Seek>(mut reader: ImageReader<R>) -> ImageReader<R> {
    reader.limits(limits(DECODER_SCRATCH));
    reader
}

/// Limits that bound only the allocations, at `bytes`.
fn limits(bytes: u64) -> Limits {
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(bytes);
    limits
}

/// A decoder's error, with what a refused allocation means.
fn decode_error(error: &image::ImageError) -> String {
    match error {
        image::ImageError::Limits(_) => format!(
            "does not decode: it asks for more memory than its size allows (an ICC profile, a text \
             chunk, a directory or a frame larger than the {} MiB a decoder may hold beside \
             the pixels): {error}",
            DECODER_SCRATCH >> 20
        ),
        _ => format!("does not decode: {error}"),
    }
}

/// An image the crate can prepare for a network: one already decoded ([`DynamicImage`],
/// [`GrayImage`]) or a file to read ([`Path`], [`PathBuf`]), and references to any of
/// them. The [`Matcher`](crate::matcher::Matcher) takes its images through this trait, so
/// every image it embeds is prepared as its network says
/// ([`ImageInput::prepare_for`]); [`ImageInput::to_canonical`] is the ink rule
/// ([`prepare`]) alone.
///
/// ```
/// use std::path::Path;
/// use image::{DynamicImage, GrayImage, Luma};
/// use siamese::data::ImageInput;
///
/// let gray = GrayImage::from_pixel(50, 20, Luma([255])); // blank white paper
/// assert_eq!(gray.to_canonical()?.dimensions(), (105, 105));
/// let dynamic = DynamicImage::ImageLuma8(gray.clone());
/// assert_eq!(dynamic.to_canonical()?, gray.to_canonical()?);
/// assert!(Path::new("no/such/file.png").to_canonical().is_err());
/// # Ok::<(), siamese::Error>(())
/// ```
pub trait ImageInput {
    /// The image in canonical form: 105 × 105, ink 255 on background 0.
    ///
    /// # Errors
    /// As [`prepare`] for decoded images, as [`load_image`] for files.
    fn to_canonical(&self) -> Result<GrayImage>;

    /// The image prepared for a network that reads `input`
    /// ([`InputSpec::prepare`](super::InputSpec::prepare)).
    ///
    /// # Errors
    /// As [`prepare`] for decoded images, as [`load_image`] for files.
    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage>;
}

impl ImageInput for DynamicImage {
    fn to_canonical(&self) -> Result<GrayImage> {
        prepare(self)
    }

    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage> {
        input.prepare(self)
    }
}

impl ImageInput for GrayImage {
    fn to_canonical(&self) -> Result<GrayImage> {
        check_size(self.width(), self.height())
            .map_err(|reason| Error::invalid("image", reason))?;
        Ok(canonical_in_strips(
            self.width(),
            self.height(),
            WORK_SIDE,
            |y, rows| {
                let strip = imageops::crop_imm(self, 0, y, self.width(), rows).to_image();
                DynamicImage::ImageLuma8(strip).to_luma_alpha32f()
            },
        ))
    }

    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage> {
        match input.preprocess() {
            super::Preprocess::Ink => Ok(DynamicImage::ImageLuma8(self.to_canonical()?)),
            _ => input.prepare(&DynamicImage::ImageLuma8(self.clone())),
        }
    }
}

impl ImageInput for Path {
    fn to_canonical(&self) -> Result<GrayImage> {
        load_image(self)
    }

    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage> {
        input.load(self)
    }
}

impl ImageInput for PathBuf {
    fn to_canonical(&self) -> Result<GrayImage> {
        load_image(self)
    }

    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage> {
        input.load(self)
    }
}

impl<T: ImageInput + ?Sized> ImageInput for &T {
    fn to_canonical(&self) -> Result<GrayImage> {
        (**self).to_canonical()
    }

    fn prepare_for(&self, input: &super::InputSpec) -> Result<DynamicImage> {
        (**self).prepare_for(input)
    }
}

pub(crate) fn check_size(width: u32, height: u32) -> std::result::Result<(), String> {
    if width == 0 || height == 0 {
        Err(format!(
            "is {width}×{height} pixels: an empty image (or a malformed header) has nothing \
             to match"
        ))
    } else {
        Ok(())
    }
}

/// The four steps of [`prepare`] on a non-empty `width × height` image whose rows
/// `strip(y, rows)` gives as grey level and opacity in `[0, 1]`, a strip at a time.
///
/// An image whose longer side is under `2 × work_side` is worked on whole. A larger one is
/// box-reduced by a whole factor as its strips arrive, to a working copy whose longer side
/// is `work_side` to `2 × work_side`: opacity and premultiplied grey are averaged, which is
/// exact for the compositing of step 1. Only the polarity and background subtraction of
/// step 2 then act on averaged pixels, and the frame whose median decides them is kept at
/// full resolution.
fn canonical_in_strips(
    width: u32,
    height: u32,
    work_side: u32,
    mut strip: impl FnMut(u32, u32) -> ImageBuffer<LumaA<f32>, Vec<f32>>,
) -> GrayImage {
    let factor = (width.max(height) / work_side).max(1);
    let (cells_x, cells_y) = (width.div_ceil(factor), height.div_ceil(factor));
    let cells = (cells_x * cells_y) as usize;
    // Per cell: sums of opacity × grey and of opacity.
    let (mut inked, mut opaque) = (vec![0.0f32; cells], vec![0.0f32; cells]);
    let (mut opacity, mut luminance) = (0.0f64, 0.0f64);
    let mut frame = Vec::with_capacity(2 * (width + height) as usize);
    let strip_rows = factor * (64 / factor).max(1);
    for y0 in (0..height).step_by(strip_rows as usize) {
        let rows = strip_rows.min(height - y0);
        let pixels = strip(y0, rows);
        for (x, dy, pixel) in pixels.enumerate_pixels() {
            let y = y0 + dy;
            let [l, a] = pixel.0;
            opacity += f64::from(a);
            luminance += f64::from(a * l);
            let cell = ((y / factor) * cells_x + x / factor) as usize;
            inked[cell] += a * l;
            opaque[cell] += a;
            if y == 0 || y == height - 1 || x == 0 || x == width - 1 {
                frame.push([l, a]);
            }
        }
    }
    // Step 1: transparent pixels go over the backdrop that contrasts with the opaque ones.
    let backdrop = if opacity > 0.0 && luminance / opacity < 0.5 {
        1.0
    } else {
        0.0
    };
    let over = |inked: f32, opaque: f32| (inked + (1.0 - opaque) * backdrop).clamp(0.0, 1.0);
    let mut frame: Vec<f32> = frame.into_iter().map(|[l, a]| over(a * l, a)).collect();
    let middle = frame.len() / 2;
    let frame = *frame.select_nth_unstable_by(middle, f32::total_cmp).1;
    let cell_pixels = |c, cells, length| cell_pixels(c, cells, length, factor);
    let levels = (0..cells)
        .map(|i| {
            let (cx, cy) = (i as u32 % cells_x, i as u32 / cells_x);
            let n = (cell_pixels(cx, cells_x, width) * cell_pixels(cy, cells_y, height)) as f32;
            over(inked[i] / n, opaque[i] / n)
        })
        .collect();
    let gray = GrayF32::from_raw(cells_x, cells_y, levels).expect("one level per cell");
    canonical(gray, frame, (width, height))
}

/// Steps 2 to 4 on a grey image (a working copy of an image `size` pixels large) whose
/// frame has the median grey level `frame`.
fn canonical(mut gray: GrayF32, frame: f32, size: (u32, u32)) -> GrayImage {
    let invert = frame > 0.5;
    let background = if invert { 1.0 - frame } else { frame };
    gray.iter_mut().for_each(|v| {
        let level = if invert { 1.0 - *v } else { *v };
        *v = (level - background).max(0.0);
    });
    let fitted = fit(gray, size);
    let ink = fitted.iter().copied().fold(0.0, f32::max);
    let scale = if ink < 0.5 / 255.0 { 0.0 } else { 1.0 / ink };
    let pixels = fitted
        .into_raw()
        .into_iter()
        .map(|v| (v * scale * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    GrayImage::from_raw(NATIVE_SIZE, NATIVE_SIZE, pixels).expect("105 × 105 pixels")
}

/// Pixels along one side of cell `c` of `cells` when `length` pixels are box-reduced by
/// `factor`: the last cell takes what is left.
pub(crate) fn cell_pixels(c: u32, cells: u32, length: u32, factor: u32) -> u32 {
    if c + 1 < cells {
        factor
    } else {
        length - c * factor
    }
}

/// The size of a `width × height` picture fitted into a `side × side` square keeping its
/// aspect ratio: the longer side becomes `side`.
pub(crate) fn fitted_size((width, height): (u32, u32), side: u32) -> (u32, u32) {
    let scale = f64::from(side) / f64::from(width.max(height));
    let fitted = |length: u32| ((f64::from(length) * scale).round() as u32).clamp(1, side);
    (fitted(width), fitted(height))
}

/// Step 3: the longer side of an image `size` pixels large (`gray` is it, or its
/// working copy) scaled to [`NATIVE_SIZE`], the shorter one padded, centred.
fn fit(gray: GrayF32, (width, height): (u32, u32)) -> GrayF32 {
    if gray.dimensions() == (NATIVE_SIZE, NATIVE_SIZE) {
        return gray;
    }
    let (new_width, new_height) = fitted_size((width, height), NATIVE_SIZE);
    let resized = if (new_width, new_height) == gray.dimensions() {
        gray
    } else {
        imageops::resize(&gray, new_width, new_height, FilterType::Triangle)
    };
    let mut page = GrayF32::new(NATIVE_SIZE, NATIVE_SIZE);
    imageops::replace(
        &mut page,
        &resized,
        i64::from((NATIVE_SIZE - new_width) / 2),
        i64::from((NATIVE_SIZE - new_height) / 2),
    );
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::jpeg_frame::marked_progressive;
    use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

    /// `result` is `Error::TooLarge` at `MAX_IMAGE_BYTES`, naming `name`.
    fn assert_refused_at_the_image_bound(result: Result<GrayImage>, name: &str) {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    limit: MAX_IMAGE_BYTES,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }

    /// `match_images --query /dev/zero` used to read until the memory ran out: the size
    /// check trusted `metadata().len()`, which is 0 for a device. Only regular files are
    /// opened now.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_endless_device_as_an_image_is_refused_without_reading() {
        let err = load_image("/dev/zero").unwrap_err().to_string();
        assert!(
            err.contains("/dev/zero") && err.contains("not a regular file"),
            "{err}"
        );
    }

    /// A regular file is checked by its length before the decoder reads anything.
    #[test]
    fn a_regular_file_past_the_bound_is_refused_by_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_IMAGE_BYTES + 1).unwrap(); // sparse: no disk used
        assert_refused_at_the_image_bound(load_image(&path), "huge.png");
    }

    /// A binary ink-high 105 × 105 drawing, like a decoded Omniglot image: a ring and a
    /// bar that touches the left edge.
    fn drawing() -> GrayImage {
        GrayImage::from_fn(105, 105, |x, y| {
            let (dx, dy) = (x as f32 - 60.0, y as f32 - 50.0);
            let r = (dx * dx + dy * dy).sqrt();
            let ring = (20.0..25.0).contains(&r);
            let bar = (70..74).contains(&y) && x < 60;
            Luma([if ring || bar { 255 } else { 0 }])
        })
    }

    fn inverted(image: &GrayImage) -> GrayImage {
        let mut out = image.clone();
        out.iter_mut().for_each(|v| *v = 255 - *v);
        out
    }

    /// A JPEG cut at half its length used to decode, its missing half filled in, and a
    /// query made of it was matched with confidence.
    /// `page` as a JPEG of quality 90.
    fn jpeg_of(page: &GrayImage) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(page)
            .unwrap();
        jpeg
    }

    /// A PNG chunk: length, type, data, CRC.
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(kind);
        chunk.extend_from_slice(data);
        chunk.extend_from_slice(&crc.finalize().to_be_bytes());
        chunk
    }

    /// A 2 MB PNG whose ICC profile inflates to 300 MB cost 341 MB to decode: the decoder
    /// inflated ancillary chunks up to the whole image allowance. Now the header is read
    /// under `DECODER_SCRATCH` (16 MiB): the oversized profile is dropped (the `png` crate
    /// ignores a profile it cannot hold) and the picture decodes as it should.
    #[test]
    fn an_icc_profile_bomb_is_not_inflated_past_the_header_allowance() {
        use std::io::Write;
        let page = GrayImage::from_fn(40, 30, |x, y| {
            Luma([if x > 20 && y > 10 { 0 } else { 255 }])
        });
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(page.as_raw(), 40, 30, image::ExtendedColorType::L8)
            .unwrap();
        // 64 MiB of zeros deflate to about 64 KiB.
        let mut profile = b"bomb\0\0".to_vec();
        let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            deflate.write_all(&zeros).unwrap();
        }
        profile.extend(deflate.finish().unwrap());
        assert!(profile.len() < 1 << 20);
        // After the signature (8 bytes) and IHDR (25 bytes).
        let mut bomb = png[..33].to_vec();
        bomb.extend(png_chunk(b"iCCP", &profile));
        bomb.extend_from_slice(&png[33..]);
        let image = decode_image(&bomb, "bomb.png").unwrap();
        assert_eq!(image, decode_image(&png, "plain.png").unwrap());
        // What the header reader keeps: not the bomb (under the old allowance of 320 MiB
        // its 64 MiB were inflated and held), but a profile of ordinary size.
        let profile_of = |bytes: &[u8]| {
            let reader = ImageReader::with_format(Cursor::new(bytes.to_vec()), ImageFormat::Png);
            let mut decoder = header_limited(reader).into_decoder().unwrap();
            decoder.icc_profile().unwrap()
        };
        assert_eq!(profile_of(&bomb), None);
        let mut small = b"small\0\0".to_vec();
        let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        deflate.write_all(&[9u8; 4096]).unwrap();
        small.extend(deflate.finish().unwrap());
        let mut kept = png[..33].to_vec();
        kept.extend(png_chunk(b"iCCP", &small));
        kept.extend_from_slice(&png[33..]);
        assert_eq!(profile_of(&kept).map(|p| p.len()), Some(4096));
    }

    /// A progressive JPEG keeps every coefficient (2 bytes a sample) until its last scan:
    /// a 16384² grey one took 789 MB. Its frame header says so; it is refused before a
    /// pixel is allocated, naming the file, the kind and the bound.
    #[test]
    fn a_progressive_jpeg_too_large_for_its_decoder_is_refused_from_its_header() {
        let page = GrayImage::from_fn(64, 64, |x, y| Luma([((x * 5 + y * 9) % 256) as u8]));
        let jpeg = jpeg_of(&page);
        let mut huge = marked_progressive(jpeg.clone());
        let sof = huge.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
        // SOF: marker, length (2), precision (1), height (2), width (2).
        huge[sof + 5..sof + 9].copy_from_slice(&[0x40, 0x00, 0x40, 0x00]);
        // Comment segments after the start marker make the file as long as 16384² blocks
        // of a bit need, so that it is refused for its decoder and not as cut short.
        let comment: Vec<u8> = [0xFF, 0xFE, 0xFF, 0xFF]
            .into_iter()
            .chain(std::iter::repeat_n(b' ', 0xFFFF - 2))
            .collect();
        let huge: Vec<u8> = huge[..2]
            .iter()
            .chain(comment.iter().cycle().take(9 * comment.len()))
            .chain(&huge[2..])
            .copied()
            .collect();
        let message = decode_image(&huge, "progressive.jpg")
            .unwrap_err()
            .to_string();
        for needle in [
            "progressive.jpg",
            "progressive JPEG",
            "16384×16384",
            "MAX_DECODER_BYTES",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        // The same small picture marked progressive is not refused for its size.
        let small = marked_progressive(jpeg);
        if let Err(e) = decode_image(&small, "small.jpg") {
            assert!(!e.to_string().contains("MAX_DECODER_BYTES"), "{e}");
        }
    }

    #[test]
    fn each_format_is_costed_as_its_decoder_allocates() {
        let mib = 1u64 << 20;
        let png = decoder_bytes(Some(ImageFormat::Png), 100 * mib, None);
        assert_eq!(png, 100 * mib + DECODER_SCRATCH);
        // TIFF and WebP decode into a buffer of their own, then copy.
        for format in [ImageFormat::Tiff, ImageFormat::WebP, ImageFormat::Gif] {
            assert_eq!(
                decoder_bytes(Some(format), 100 * mib, None),
                200 * mib + DECODER_SCRATCH
            );
        }
        let frame = JpegFrame {
            progressive: true,
            width: 1024,
            height: 1024,
            components: 1,
            min_block_bits: 1,
        };
        assert_eq!(
            decoder_bytes(Some(ImageFormat::Jpeg), mib, Some(frame)),
            3 * mib + DECODER_SCRATCH
        );
        // The largest PNG the pixel bound allows fits; the same pixels as TIFF do not.
        assert!(
            decoder_bytes(Some(ImageFormat::Png), MAX_DECODED_BYTES, None) <= MAX_DECODER_BYTES
        );
        assert!(
            decoder_bytes(Some(ImageFormat::Tiff), MAX_DECODED_BYTES, None) > MAX_DECODER_BYTES
        );
    }

    #[test]
    fn a_truncated_jpeg_is_refused() {
        let page = GrayImage::from_fn(200, 160, |x, y| Luma([((x * 7 + y * 3) % 256) as u8]));
        let jpeg = jpeg_of(&page);
        assert!(decode_image(&jpeg, "whole.jpg").is_ok());
        for cut in [jpeg.len() / 2, jpeg.len() - 2, jpeg.len() / 10] {
            let message = decode_image(&jpeg[..cut], "cut.jpg")
                .unwrap_err()
                .to_string();
            assert!(message.contains("cut.jpg"), "{message}");
        }
        let message = decode_image(&jpeg[..jpeg.len() / 2], "cut.jpg")
            .unwrap_err()
            .to_string();
        assert!(message.contains("ends early"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.jpg");
        std::fs::write(&path, &jpeg[..jpeg.len() / 2]).unwrap();
        assert!(
            load_image(&path)
                .unwrap_err()
                .to_string()
                .contains("ends early")
        );
    }

    /// A small JPEG whose frame header claims 16384² keeps its end-of-image marker, and
    /// the decoder filled the missing blocks with grey: a silently wrong picture. Its data
    /// cannot hold that many blocks.
    #[test]
    fn a_jpeg_claiming_more_blocks_than_its_data_holds_is_refused() {
        let jpeg = jpeg_of(&drawing());
        let claim = |side: u16| {
            let mut forged = jpeg.clone();
            let sof = forged.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
            forged[sof + 5..sof + 9]
                .copy_from_slice(&[side.to_be_bytes(), side.to_be_bytes()].concat());
            forged
        };
        let message = decode_image(&claim(16_384), "forged.jpg")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("forged.jpg") && message.contains("ends early"),
            "{message}"
        );
        assert!(message.contains("16384×16384"), "{message}");
        let progressive = marked_progressive(claim(4_096));
        let message = decode_image(&progressive, "forged.jpg")
            .unwrap_err()
            .to_string();
        assert!(message.contains("ends early"), "{message}");
        // The real size, and a little more than the data covers but within the bound, still
        // decode: the bound is a floor, not a guess.
        assert!(decode_image(&jpeg, "whole.jpg").is_ok());
        assert!(decode_image(&claim(120), "near.jpg").is_ok());
    }

    #[test]
    fn canonical_images_come_out_unchanged() {
        let image = drawing();
        assert_eq!(image.to_canonical().unwrap(), image);
        assert_eq!(
            prepare(&DynamicImage::ImageLuma8(image.clone())).unwrap(),
            image
        );
        let blank = GrayImage::new(105, 105);
        assert_eq!(blank.to_canonical().unwrap(), blank);
    }

    #[test]
    fn an_omniglot_png_reads_as_decode_png_reads_it() {
        let page = inverted(&drawing()); // black strokes on white, as Omniglot stores it
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0690_01.png");
        page.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let expected = super::super::decode_png(&bytes, &path).unwrap();
        assert_eq!(load_image(&path).unwrap(), expected);
        assert_eq!(expected, drawing());
    }

    #[test]
    fn both_polarities_give_the_same_image() {
        let image = drawing();
        assert_eq!(inverted(&image).to_canonical().unwrap(), image);
    }

    #[test]
    fn colour_and_alpha_become_ink_high_grey() {
        let image = drawing();
        let ink = |x, y| image.get_pixel(x, y).0[0] == 255;
        // Red strokes on a white page.
        let rgb = RgbImage::from_fn(105, 105, |x, y| {
            if ink(x, y) {
                Rgb([200, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        assert_eq!(prepare(&DynamicImage::ImageRgb8(rgb)).unwrap(), image);
        // Black strokes on a transparent canvas stored as transparent black: composited
        // over white, or the whole page would be ink.
        let dark = RgbaImage::from_fn(105, 105, |x, y| {
            Rgba([0, 0, 0, if ink(x, y) { 255 } else { 0 }])
        });
        assert_eq!(prepare(&DynamicImage::ImageRgba8(dark)).unwrap(), image);
        // White strokes on the same canvas: composited over black.
        let light = RgbaImage::from_fn(105, 105, |x, y| {
            if ink(x, y) {
                Rgba([255, 255, 255, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        assert_eq!(prepare(&DynamicImage::ImageRgba8(light)).unwrap(), image);
        // Nothing opaque: blank.
        let clear = DynamicImage::ImageRgba8(RgbaImage::new(30, 30));
        assert!(prepare(&clear).unwrap().iter().all(|&v| v == 0));
    }

    #[test]
    fn grey_paper_and_grey_pencil_are_stretched_to_black_and_white() {
        let image = drawing();
        let pencil = GrayImage::from_fn(105, 105, |x, y| {
            Luma([if image.get_pixel(x, y).0[0] == 255 {
                90
            } else {
                190
            }])
        });
        assert_eq!(pencil.to_canonical().unwrap(), image);
        // A uniform page has no ink, whatever its shade.
        for shade in [0, 128, 255] {
            let page = GrayImage::from_pixel(40, 70, Luma([shade]));
            assert!(
                page.to_canonical().unwrap().iter().all(|&v| v == 0),
                "{shade}"
            );
        }
    }

    #[test]
    fn the_aspect_ratio_is_kept_and_the_image_centred() {
        // A 40 × 40 black square in the middle of a 400 × 200 white page: a 10.5 × 10.5
        // square after scaling by 105 / 400, on a band 52.5 pixels high.
        let page = GrayImage::from_fn(400, 200, |x, y| {
            Luma([if (180..220).contains(&x) && (80..120).contains(&y) {
                0
            } else {
                255
            }])
        });
        let image = page.to_canonical().unwrap();
        let inked = |v: u8| v >= 128;
        let rows: Vec<u32> = (0..105)
            .filter(|&y| (0..105).any(|x| inked(image.get_pixel(x, y).0[0])))
            .collect();
        let columns: Vec<u32> = (0..105)
            .filter(|&x| (0..105).any(|y| inked(image.get_pixel(x, y).0[0])))
            .collect();
        assert!((10..=12).contains(&rows.len()), "{rows:?}");
        assert!(
            rows.len().abs_diff(columns.len()) <= 1,
            "a square stays square"
        );
        let centre = |v: &[u32]| (v[0] + v[v.len() - 1]) as f32 / 2.0;
        assert!((centre(&rows) - 52.0).abs() <= 1.0, "{rows:?}");
        assert!((centre(&columns) - 52.0).abs() <= 1.0, "{columns:?}");
        // The padding above and below the band is background.
        for y in (0..25).chain(80..105) {
            assert!((0..105).all(|x| image.get_pixel(x, y).0[0] == 0), "row {y}");
        }
    }

    #[test]
    fn small_images_are_scaled_up() {
        let page = GrayImage::from_fn(21, 21, |x, _| Luma([if x == 10 { 0 } else { 255 }]));
        let image = page.to_canonical().unwrap();
        // The centre line, 5 pixels wide after scaling by 5, in the middle.
        assert_eq!(image.get_pixel(52, 52).0, [255]);
        assert_eq!(image.get_pixel(20, 52).0, [0]);
    }

    #[test]
    fn preparing_twice_is_preparing_once() {
        let page = GrayImage::from_fn(333, 150, |x, y| {
            Luma([if (x * 7 + y * 3) % 97 < 9 { 30 } else { 220 }])
        });
        for image in [page.clone(), inverted(&page), drawing()] {
            let once = image.to_canonical().unwrap();
            assert_eq!(once.to_canonical().unwrap(), once);
        }
    }

    #[test]
    fn other_formats_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let page = RgbImage::from_fn(120, 90, |x, _| {
            if (55..65).contains(&x) {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        for name in ["page.jpg", "page.bmp", "page.tiff"] {
            let path = dir.path().join(name);
            page.save(&path).unwrap();
            let image = load_image(&path).unwrap();
            assert!(image.get_pixel(52, 52).0[0] > 200, "{name}");
            assert!(image.get_pixel(20, 52).0[0] < 30, "{name}");
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not an image").unwrap();
        let truncated = dir.path().join("half.png");
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(drawing().as_raw(), 105, 105, image::ExtendedColorType::L8)
            .unwrap();
        std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
        let tall = dir.path().join("tall.png");
        GrayImage::new(1, MAX_IMAGE_SIDE + 1).save(&tall).unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        for path in [&text, &truncated, &tall, &empty] {
            let err = load_image(path).unwrap_err();
            assert!(matches!(err, Error::Image { .. }), "{err:?}");
            assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        }
        let missing = dir.path().join("missing.png");
        let err = load_image(&missing).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.png"), "{err}");
        let err = decode_image(b"\x89PNG", "upload.png").unwrap_err();
        assert!(err.to_string().contains("upload.png"), "{err}");
    }

    #[test]
    fn empty_images_are_errors() {
        for (w, h) in [(0, 0), (0, 5), (5, 0)] {
            let err = prepare(&DynamicImage::new_rgb8(w, h)).unwrap_err();
            assert!(err.to_string().contains(&format!("{w}×{h}")), "{err}");
            assert!(GrayImage::new(w, h).to_canonical().is_err());
        }
    }

    /// A PNG of `width × height` pixels of `color` (PNG colour type, 8 bits) whose pixel
    /// data is junk: enough for a decoder to read the header, not to decode.
    fn png_header_only(width: u32, height: u32, color: u8) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &byte in bytes {
                crc ^= u32::from(byte);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, color, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &header);
        chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A 300 KB PNG of 16384 × 16384 pixels used to take 3.4 GB: it was decoded, then
    /// copied to 8 bytes a pixel, before anything was checked.
    #[test]
    fn images_too_large_to_decode_are_refused_from_the_header_with_their_size() {
        // RGBA, 4 bytes a pixel: 1 GiB decoded.
        let err = decode_image(&png_header_only(16_384, 16_384, 6), "huge.png").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Image { .. }), "{err:?}");
        for part in ["huge.png", "16384×16384", "4 bytes", "1024 MiB", "256 MiB"] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
        // Past the side limit: both sizes are named.
        let err = decode_image(&png_header_only(16_385, 2, 0), "wide.png").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("16385×2") && message.contains("16384"),
            "{message}"
        );
        // At the limit, the header passes and the junk pixel data is what fails.
        let err = decode_image(&png_header_only(16_384, 16_384, 0), "full.png").unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
    }

    #[test]
    fn large_images_are_reduced_as_they_are_read_with_the_same_result() {
        // 1700 × 1100: four times the working side, so box-reduced by 4.
        let (width, height) = (1700, 1100);
        let page = GrayImage::from_fn(width, height, |x, y| {
            let (dx, dy) = (x as f32 - 900.0, y as f32 - 500.0);
            let r = (dx * dx + dy * dy).sqrt();
            let ring = (r - 350.0).abs() < 25.0;
            let bar = (600..640).contains(&x) && y > 200;
            Luma([if ring || bar { 30 } else { 235 }])
        });
        let strips = |y, rows| {
            let strip = imageops::crop_imm(&page, 0, y, width, rows).to_image();
            DynamicImage::ImageLuma8(strip).to_luma_alpha32f()
        };
        let reduced = canonical_in_strips(width, height, WORK_SIDE, strips);
        let whole = canonical_in_strips(width, height, u32::MAX, strips);
        let differences: Vec<i32> = reduced
            .as_raw()
            .iter()
            .zip(whole.as_raw())
            .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
            .collect();
        let mean = differences.iter().sum::<i32>() as f64 / differences.len() as f64;
        let worst = differences.iter().copied().max().unwrap();
        assert!(mean < 1.0 && worst <= 24, "mean {mean}, worst {worst}");
        // And the drawing is there: ink on the ring, none in the corner.
        assert_eq!(reduced.get_pixel(2, 10).0, [0]);
        assert!(reduced.as_raw().iter().filter(|&&v| v > 128).count() > 500);
    }

    /// Every format the crate reads, mutated: `decode_image` never panics, and what it
    /// accepts comes out in canonical form. The PNGs also go through Omniglot's
    /// [`decode_png`](super::super::decode_png).
    #[test]
    fn fuzz_image_decoding() {
        let page = inverted(&drawing());
        let small = imageops::resize(&page, 24, 17, FilterType::Triangle);
        let rgba = DynamicImage::ImageLuma8(small.clone()).to_rgba8();
        let mut seeds = Vec::new();
        for (image, format) in [
            (DynamicImage::ImageLuma8(page.clone()), ImageFormat::Png),
            (DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Png),
            (
                DynamicImage::ImageLuma16(DynamicImage::ImageLuma8(small.clone()).to_luma16()),
                ImageFormat::Png,
            ),
            (DynamicImage::ImageLuma8(small.clone()), ImageFormat::Jpeg),
            (DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Gif),
            (DynamicImage::ImageLuma8(small.clone()), ImageFormat::Bmp),
            (DynamicImage::ImageLuma8(small.clone()), ImageFormat::Tiff),
            (DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::WebP),
            (DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Tga),
            (DynamicImage::ImageRgba8(rgba.clone()), ImageFormat::Qoi),
            (DynamicImage::ImageRgba8(rgba), ImageFormat::Ico),
            (DynamicImage::ImageLuma8(small), ImageFormat::Pnm),
        ] {
            let mut bytes = Cursor::new(Vec::new());
            image.write_to(&mut bytes, format).unwrap();
            seeds.push(bytes.into_inner());
        }
        // The shapes of the second hostile-input round: a PNG with an ICC profile, a JPEG
        // marked progressive, a JPEG cut in half.
        let mut profile = b"icc\0\0".to_vec();
        let mut deflate =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut deflate, &[7u8; 4096]).unwrap();
        profile.extend(deflate.finish().unwrap());
        let mut icc = seeds[0][..33].to_vec();
        icc.extend(png_chunk(b"iCCP", &profile));
        icc.extend_from_slice(&seeds[0][33..]);
        let jpeg = seeds[3].clone();
        let progressive = marked_progressive(jpeg.clone());
        seeds.extend([icc, progressive, jpeg[..jpeg.len() / 2].to_vec()]);
        let report = crate::testing::fuzz::fuzz(
            "image decoding",
            &seeds,
            &[
                b"IHDR",
                b"IDAT",
                b"IEND",
                b"PLTE",
                b"\xff\xd8\xff",
                b"\xff\xc0",
                b"\xff\xc2",
                b"\xff\xd9",
                b"iCCP",
                b"GIF89a",
                b"BM",
                b"II*\0",
                b"RIFF",
                b"VP8L",
                b"qoif",
                b"P5\n",
            ],
            |_, bytes| {
                if let Ok(image) = crate::data::decode_png(bytes, "fuzz.png")
                    && image.dimensions() != (NATIVE_SIZE, NATIVE_SIZE)
                {
                    return Err(format!("decode_png gave {:?}", image.dimensions()));
                }
                match decode_image(bytes, "fuzz") {
                    Ok(image) if image.dimensions() == (NATIVE_SIZE, NATIVE_SIZE) => Ok(None),
                    Ok(image) => Err(format!("decode_image gave {:?}", image.dimensions())),
                    Err(e) => Ok(Some(e.to_string())),
                }
            },
        );
        assert!(
            report.refused > 0 && report.refused < report.executions,
            "{report:?}"
        );
    }
}
