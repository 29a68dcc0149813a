//! The gallery file: labels, embeddings, and what identifies the network that made them.
//!
//! Layout: the 8 bytes `SIAMGAL1`, a little-endian `u64` header length, the header (JSON,
//! [`Header`]), then the `shots × D` embeddings as little-endian `f32`, row by row.

use std::path::Path;

use image::{DynamicImage, GrayImage, Luma};
use serde::{Deserialize, Serialize};

use super::gallery::Gallery;
use crate::eval::Aggregation;
use crate::{Error, Result, Siamese};

/// A gallery file: a Koch gallery of 10,000 images takes 160 MB.
const GALLERY: crate::io::FileKind = crate::io::FileKind::new("a gallery file", 1 << 30);

const MAGIC: &[u8; 8] = b"SIAMGAL1";

/// Version of the layout.
const FORMAT: u32 = 1;

/// Largest difference between the probe embeddings saved and recomputed (relative to
/// their largest magnitude, or absolute below 1) that still counts as the same network:
/// backends differ by about 1e-6, networks trained apart by far more than 1e-3.
const PROBE_TOLERANCE: f32 = 1e-3;

/// Everything but the embeddings.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Header {
    /// [`FORMAT`].
    pub format: u32,
    /// The network's configuration, for whoever reads the file.
    pub network: serde_json::Value,
    /// Side of the network's input.
    pub input_size: usize,
    /// Width `D` of the embeddings.
    pub embedding_size: usize,
    /// The embeddings of [`probe_images`]: identifies the weights, not only the shape.
    pub probe: Vec<f32>,
    /// How the matcher aggregates shots.
    pub aggregation: Aggregation,
    /// The matcher's "same class" threshold.
    pub threshold: f32,
    /// Class labels.
    pub labels: Vec<String>,
    /// Class of each embedding row.
    pub shot_class: Vec<usize>,
}

/// Saves a matcher's gallery, aggregation and threshold with what identifies `model`
/// (`probe`: its embeddings of [`probe_images`]).
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] naming the file that could not be written.
pub(super) fn save(
    path: &Path,
    model: &Siamese,
    probe: Vec<f32>,
    gallery: &Gallery,
    aggregation: Aggregation,
    threshold: f32,
) -> Result<()> {
    let embeddings = &gallery.embeddings;
    let network =
        serde_json::from_str(&model.config.to_string()).map_err(|e| Error::checkpoint(path, e))?;
    let header = Header {
        format: FORMAT,
        network,
        input_size: model.input_shape()[0],
        embedding_size: model.embedding_size(),
        probe,
        aggregation,
        threshold,
        labels: gallery.labels.clone(),
        shot_class: gallery.shot_class.clone(),
    };
    write(path, &header, embeddings)
}

/// The gallery, aggregation and threshold saved at `path`, on `model`'s device, after
/// checking that `model` (whose embeddings of [`probe_images`] are `probe`) made them.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Checkpoint`] naming it when it is
/// not a gallery file, is truncated or inconsistent, or was made by another network.
pub(super) fn load(
    path: &Path,
    model: &Siamese,
    probe: &[f32],
) -> Result<(Gallery, Aggregation, f32)> {
    let (header, embeddings) = read(path)?;
    check_shape(
        path,
        &header,
        model.input_shape()[0],
        model.embedding_size(),
    )?;
    check_probe(path, &header, probe)?;
    let gallery = Gallery::new(
        header.labels,
        header.shot_class,
        embeddings,
        header.embedding_size,
    );
    Ok((gallery, header.aggregation, header.threshold))
}

/// Writes a gallery file (through a temporary file and a rename).
fn write(path: &Path, header: &Header, embeddings: &[f32]) -> Result<()> {
    let json = serde_json::to_vec(header).map_err(|e| Error::checkpoint(path, e))?;
    let mut bytes = Vec::with_capacity(16 + json.len() + 4 * embeddings.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for v in embeddings {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::io::write_atomically(path, &bytes)
}

/// Reads a gallery file and checks that it is whole and consistent.
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::Checkpoint`] naming it when it is not a
/// gallery file, is truncated, or its parts disagree.
fn read(path: &Path) -> Result<(Header, Vec<f32>)> {
    let bytes = crate::io::read_bounded(path, GALLERY)?;
    let fail = |reason: String| Error::checkpoint(path, reason);
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(fail(
            "is not a gallery file (saved by Matcher::save)".into(),
        ));
    }
    let header_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let body = &bytes[16..];
    let header_len = usize::try_from(header_len)
        .ok()
        .filter(|&n| n <= body.len())
        .ok_or_else(|| fail("is truncated: the header is cut short".into()))?;
    let header: Header = serde_json::from_slice(&body[..header_len])
        .map_err(|e| fail(format!("has an unreadable header: {e}")))?;
    if header.format != FORMAT {
        return Err(fail(format!(
            "is in gallery format {}, this version reads format {FORMAT}",
            header.format
        )));
    }
    let floats = &body[header_len..];
    let expected = header
        .shot_class
        .len()
        .checked_mul(header.embedding_size)
        .and_then(|n| n.checked_mul(4))
        .unwrap_or(usize::MAX);
    if floats.len() != expected {
        return Err(fail(format!(
            "holds {} bytes of embeddings, expected {expected} ({} shots × {} floats)",
            floats.len(),
            header.shot_class.len(),
            header.embedding_size
        )));
    }
    let mut shots = vec![0usize; header.labels.len()];
    for &class in &header.shot_class {
        *shots
            .get_mut(class)
            .ok_or_else(|| fail(format!("names class {class} of {}", header.labels.len())))? += 1;
    }
    if let Some(class) = shots.iter().position(|&n| n == 0) {
        return Err(fail(format!(
            "class {:?} has no shots",
            header.labels[class]
        )));
    }
    let mut labels = header.labels.clone();
    labels.sort();
    if let Some(pair) = labels.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(fail(format!("label {:?} appears twice", pair[0])));
    }
    let embeddings: Vec<f32> = floats
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    // A NaN would rank silently last (or first); no network embeds to one.
    if let Some(i) = embeddings.iter().position(|v| !v.is_finite()) {
        return Err(fail(format!(
            "embedding {} of shot {} is {}: the file is damaged",
            i % header.embedding_size.max(1),
            i / header.embedding_size.max(1),
            embeddings[i]
        )));
    }
    if !header.threshold.is_finite() || header.probe.iter().any(|v| !v.is_finite()) {
        return Err(fail(
            "its threshold or probe is not a finite number: the file is damaged".into(),
        ));
    }
    Ok((header, embeddings))
}

/// Refuses a gallery made by a network of another shape: another input size or
/// embedding width.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file and what differs.
fn check_shape(
    path: &Path,
    header: &Header,
    input_size: usize,
    embedding_size: usize,
) -> Result<()> {
    if (header.input_size, header.embedding_size) != (input_size, embedding_size) {
        return Err(Error::checkpoint(
            path,
            format!(
                "was built by a network taking {0}×{0} images to {1} features; this \
                 matcher's network takes {2}×{2} images to {3} features",
                header.input_size, header.embedding_size, input_size, embedding_size
            ),
        ));
    }
    Ok(())
}

/// Refuses a gallery made by a network with other weights: the probe embeddings differ.
///
/// # Errors
/// [`Error::Checkpoint`] naming the file.
fn check_probe(path: &Path, header: &Header, probe: &[f32]) -> Result<()> {
    let scale = header.probe.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let difference = if header.probe.len() == probe.len() {
        header
            .probe
            .iter()
            .zip(probe)
            .map(|(a, b)| (a - b).abs())
            // Unlike f32::max, a NaN sticks.
            .fold(0.0, |m, d| if d > m || d.is_nan() { d } else { m })
    } else {
        f32::INFINITY
    };
    if difference.is_nan() || difference > PROBE_TOLERANCE * scale {
        return Err(Error::checkpoint(
            path,
            format!(
                "was built by a network with other weights (its probe embeddings differ by \
                 up to {difference}): embed the gallery again with this network"
            ),
        ));
    }
    Ok(())
}

/// Two fixed drawings whose embeddings fingerprint a network: a ring and a cross.
pub(super) fn probe_images() -> Vec<DynamicImage> {
    let ring = GrayImage::from_fn(105, 105, |x, y| {
        let (dx, dy) = (x as f32 - 52.0, y as f32 - 52.0);
        let r = (dx * dx + dy * dy).sqrt();
        Luma([if (25.0..31.0).contains(&r) { 255 } else { 0 }])
    });
    let cross = GrayImage::from_fn(105, 105, |x, y| {
        let stroke = x.abs_diff(y) < 4 || (x + y).abs_diff(104) < 4;
        Luma([if stroke && (20..85).contains(&x) {
            255
        } else {
            0
        }])
    });
    vec![ring.into(), cross.into()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            network: serde_json::json!({"encoder": "toy"}),
            input_size: 8,
            embedding_size: 2,
            probe: vec![0.25, 0.5],
            aggregation: Aggregation::Max,
            threshold: 0.4,
            labels: vec!["a".into(), "b".into()],
            shot_class: vec![1, 0, 1],
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gallery.bin");
        let embeddings = [0.1, -2.5, 3.0, 1e-30, f32::MAX, 0.0];
        write(&path, &header(), &embeddings).unwrap();
        let (read_header, read_embeddings) = read(&path).unwrap();
        assert_eq!(read_embeddings, embeddings);
        assert_eq!(read_header.labels, ["a", "b"]);
        assert_eq!(read_header.shot_class, [1, 0, 1]);
        assert_eq!(read_header.aggregation, Aggregation::Max);
        assert_eq!(read_header.threshold, 0.4);
    }

    #[test]
    fn damaged_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gallery.bin");
        write(&path, &header(), &[0.0; 6]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let broken = dir.path().join("broken.bin");
        let mut inconsistent = header();
        inconsistent.shot_class = vec![0, 0, 0]; // "b" has no shots
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PNG....".to_vec(), "not a gallery file"),
            (bytes[..20].to_vec(), "truncated"),
            (bytes[..bytes.len() - 4].to_vec(), "expected 24"),
            ([&bytes[..], &[0, 0, 0, 0]].concat(), "expected 24"),
        ];
        for (content, message) in cases {
            std::fs::write(&broken, content).unwrap();
            let err = read(&broken).unwrap_err();
            assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
            let text = err.to_string();
            assert!(
                text.contains("broken.bin") && text.contains(message),
                "{text}"
            );
        }
        write(&broken, &inconsistent, &[0.0; 6]).unwrap();
        let err = read(&broken).unwrap_err();
        assert!(err.to_string().contains("\"b\" has no shots"), "{err}");
        let mut twice = header();
        twice.labels = vec!["a".into(), "a".into()];
        write(&broken, &twice, &[0.0; 6]).unwrap();
        assert!(read(&broken).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn another_network_is_refused() {
        let path = Path::new("g.bin");
        let header = header();
        assert!(check_shape(path, &header, 8, 2).is_ok());
        let err = check_shape(path, &header, 8, 3).unwrap_err();
        assert!(
            err.to_string().contains("8×8 images to 2 features"),
            "{err}"
        );
        assert!(check_probe(path, &header, &[0.25, 0.5000001]).is_ok());
        let err = check_probe(path, &header, &[0.25, 0.6]).unwrap_err();
        assert!(err.to_string().contains("other weights"), "{err}");
        assert!(check_probe(path, &header, &[0.25, f32::NAN]).is_err());
        assert!(check_probe(path, &header, &[0.25]).is_err());
    }

    /// Damaged gallery files: [`read`] never panics, and what it accepts is whole and
    /// consistent (a row of finite numbers per shot, every class with a shot, distinct
    /// labels, a finite probe and threshold).
    #[test]
    fn fuzz_gallery_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gallery.siam");
        write(&path, &header(), &[0.1, -2.5, 3.0, 0.5, 0.75, 0.0]).unwrap();
        let seed = std::fs::read(&path).unwrap();
        let report = crate::testing::fuzz::fuzz(
            "gallery file",
            &[seed],
            &[
                b"\"",
                b"null",
                b"-1",
                b"1e400",
                b"18446744073709551615",
                b"[]",
                b"\"a\"",
                b"[0,0,0,0,0,0,0,0]",
                b"\"Mean\"",
            ],
            |_, bytes| {
                std::fs::write(&path, bytes).unwrap();
                let (header, embeddings) = match read(&path) {
                    Err(e) => return Ok(Some(e.to_string())),
                    Ok(read) => read,
                };
                let classes = header.labels.len();
                let whole = embeddings.len() == header.shot_class.len() * header.embedding_size
                    && (0..classes).all(|c| header.shot_class.contains(&c))
                    && header.shot_class.iter().all(|&c| c < classes)
                    && embeddings
                        .iter()
                        .chain(&header.probe)
                        .all(|v| v.is_finite())
                    && header.threshold.is_finite();
                if whole {
                    Ok(None)
                } else {
                    Err(format!("accepted {header:?}"))
                }
            },
        );
        assert!(
            report.refused > 0 && report.refused < report.executions,
            "{report:?}"
        );
    }

    /// Found by `fuzz_gallery_file`: four bytes of 0xFF made an embedding NaN, which loaded.
    #[test]
    fn a_nan_embedding_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gallery.siam");
        write(&path, &header(), &[0.1, -2.5, f32::NAN, 0.5, 0.75, 0.0]).unwrap();
        let message = read(&path).unwrap_err().to_string();
        assert!(
            message.contains("embedding 0 of shot 1 is NaN"),
            "{message}"
        );
        let mut huge = header();
        huge.embedding_size = usize::MAX / 2; // shots × size × 4 overflows
        write(&path, &huge, &[]).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("expected"));
    }
}
