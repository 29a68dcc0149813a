//! What a JPEG's frame header says about the memory its decoder will take.
//!
//! The `image` crate's JPEG decoder (zune-jpeg) takes no allocation limit. A baseline
//! JPEG decodes a row of blocks at a time, but a progressive one keeps every DCT
//! coefficient of the picture (two bytes a sample of every component) until its last
//! scan, and a CMYK one is decoded to four channels before it becomes RGB: a 1 MB
//! progressive 16384² file takes three times its decoded size. The frame header (`SOFn`)
//! says which, before anything is decoded.

use std::io::{self, Read, Seek, SeekFrom};

/// A JPEG's frame header: its kind, size and components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JpegFrame {
    /// Whether the scans are progressive (`SOF2`, `SOF6`, `SOF10`, `SOF14`).
    pub progressive: bool,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour components (1 grey, 3 YCbCr, 4 CMYK or YCCK).
    pub components: u8,
    /// Bits that each 8 × 8 block of a full-resolution component takes at least in the
    /// coded data: 2 in a sequential Huffman frame (a DC code and an end-of-block code, each
    /// at least a bit), 1 in a progressive one (its first DC scan); 0 where no such bound
    /// holds (arithmetic coding, lossless frames).
    pub min_block_bits: u8,
}

impl JpegFrame {
    /// Reads the markers from the start of `inner` up to the frame header, skipping the
    /// other segments' payloads, and leaves `inner` at its start. `None` when the file
    /// ends first or is not laid out as JPEG segments (the decoder then names the fault).
    pub(crate) fn read<R: Read + Seek>(inner: &mut R) -> io::Result<Option<Self>> {
        let frame = Self::scan(inner);
        inner.seek(SeekFrom::Start(0))?;
        match frame {
            Ok(frame) => Ok(frame),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn scan<R: Read + Seek>(inner: &mut R) -> io::Result<Option<Self>> {
        let mut two = [0u8; 2];
        inner.read_exact(&mut two)?;
        if two != [0xFF, 0xD8] {
            return Ok(None);
        }
        loop {
            inner.read_exact(&mut two)?;
            if two[0] != 0xFF {
                return Ok(None);
            }
            let mut marker = two[1];
            // Fill bytes (any number of FF) may precede a marker.
            while marker == 0xFF {
                let mut one = [0u8; 1];
                inner.read_exact(&mut one)?;
                marker = one[0];
            }
            // Markers without a payload: TEM, RSTn, SOI.
            if marker == 0x01 || (0xD0..=0xD8).contains(&marker) {
                continue;
            }
            // End of image or start of scan before any frame header: nothing to say.
            if marker == 0xD9 || marker == 0xDA {
                return Ok(None);
            }
            inner.read_exact(&mut two)?;
            let length = u16::from_be_bytes(two);
            if length < 2 {
                return Ok(None);
            }
            // SOF0..SOF15 less DHT (C4), JPG (C8) and DAC (CC).
            if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                let mut header = [0u8; 6];
                inner.read_exact(&mut header)?;
                return Ok(Some(Self {
                    progressive: [0xC2, 0xC6, 0xCA, 0xCE].contains(&marker),
                    min_block_bits: match marker {
                        0xC0 | 0xC1 => 2,
                        0xC2 => 1,
                        _ => 0,
                    },
                    height: u32::from(u16::from_be_bytes([header[1], header[2]])),
                    width: u32::from(u16::from_be_bytes([header[3], header[4]])),
                    components: header[5],
                }));
            }
            inner.seek(SeekFrom::Current(i64::from(length) - 2))?;
        }
    }

    /// Bytes the decoder holds beside the decoded picture, as an upper bound: the
    /// coefficients of a progressive file (2 bytes a sample of every component, padded to
    /// whole 16 × 16 blocks) and the four-channel copy of a CMYK one.
    pub(crate) fn extra_bytes(&self) -> u64 {
        let padded = |side: u32| u64::from(side).div_ceil(16) * 16;
        let samples = padded(self.width) * padded(self.height) * u64::from(self.components);
        let coefficients = if self.progressive { 2 * samples } else { 0 };
        let cmyk = if self.components == 4 { samples } else { 0 };
        coefficients + cmyk
    }

    /// Bytes of coded data the frame needs at least: [`Self::min_block_bits`] for every
    /// block of one full-resolution component (some component is never subsampled). A file
    /// shorter than this has lost data or forged its size, and the decoder would fill the
    /// missing blocks with grey rather than fail.
    pub(crate) fn min_coded_bytes(&self) -> u64 {
        let blocks = u64::from(self.width).div_ceil(8) * u64::from(self.height).div_ceil(8);
        (blocks * u64::from(self.min_block_bits)).div_ceil(8)
    }
}

/// A baseline JPEG (all the `image` crate writes) marked progressive: its SOF marker
/// `FFC0` becomes `FFC2`, which is all the frame reader looks at. For tests.
#[cfg(test)]
pub(crate) fn marked_progressive(mut bytes: Vec<u8>) -> Vec<u8> {
    let at = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[at + 1] = 0xC2;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn jpeg(image: &image::DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
            .unwrap();
        bytes
    }

    #[test]
    fn reads_the_frame_of_a_baseline_and_a_progressive_file() {
        let picture = image::DynamicImage::new_rgb8(37, 21);
        let baseline = jpeg(&picture);
        let mut cursor = Cursor::new(baseline.clone());
        let frame = JpegFrame::read(&mut cursor).unwrap().unwrap();
        assert_eq!(
            frame,
            JpegFrame {
                progressive: false,
                width: 37,
                height: 21,
                components: 3,
                min_block_bits: 2,
            }
        );
        // 5 × 3 blocks of at least 2 bits.
        assert_eq!(frame.min_coded_bytes(), 4);
        assert_eq!(cursor.position(), 0, "left at its start");
        assert_eq!(frame.extra_bytes(), 0);

        let progressive = marked_progressive(baseline);
        let frame = JpegFrame::read(&mut Cursor::new(progressive))
            .unwrap()
            .unwrap();
        assert!(frame.progressive);
        assert_eq!(frame.min_block_bits, 1);
        // 48 × 32 padded samples of 3 components, 2 bytes each.
        assert_eq!(frame.extra_bytes(), 48 * 32 * 3 * 2);

        let grey = jpeg(&image::DynamicImage::new_luma8(16, 16));
        let frame = JpegFrame::read(&mut Cursor::new(grey)).unwrap().unwrap();
        assert_eq!((frame.components, frame.width, frame.height), (1, 16, 16));
    }

    #[test]
    fn a_cmyk_frame_counts_its_four_channel_copy() {
        let frame = JpegFrame {
            progressive: false,
            width: 16,
            height: 16,
            components: 4,
            min_block_bits: 2,
        };
        assert_eq!(frame.extra_bytes(), 16 * 16 * 4);
        let progressive = JpegFrame {
            progressive: true,
            ..frame
        };
        assert_eq!(progressive.extra_bytes(), 16 * 16 * 4 * 3);
    }

    #[test]
    fn what_is_not_laid_out_as_a_jpeg_says_nothing() {
        for bytes in [
            &b""[..],
            b"\xFF\xD8",
            b"\xFF\xD8\xFF\xE0\x00",
            b"\x89PNG\r\n\x1a\n",
            b"\xFF\xD8\x00\x00",
            b"\xFF\xD8\xFF\xDA\x00\x08",
            b"\xFF\xD8\xFF\xE0\x00\x01",
        ] {
            let mut cursor = Cursor::new(bytes.to_vec());
            assert_eq!(JpegFrame::read(&mut cursor).unwrap(), None, "{bytes:?}");
            assert_eq!(cursor.position(), 0);
        }
    }
}
