//! The data module end to end: bad input on small files written here, and the real
//! Omniglot from the data folder (`$OMNIGLOT_DIR` or the download cache; a test fails
//! with the command that fetches it when there is none).

use std::collections::HashSet;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use image::{GrayImage, ImageFormat, Luma};
use proptest::prelude::*;
use siamese::Error;
use siamese::data::{
    EVALUATION_OTHER_ALPHABETS, EVALUATION_RUN_ALPHABETS, ImageSet, KOCH_TEST_DRAWERS,
    KOCH_TRAIN_DRAWERS, KOCH_VALIDATION_DRAWERS, NATIVE_SIZE, Omniglot, PairBatcher,
    PairDatasetConfig, Part, decode_png,
};
use zip::write::SimpleFileOptions;

mod common;
use common::omniglot;

// ---------------------------------------------------------------------------------------
// Small synthetic data

/// A page as Omniglot stores it: black strokes on white.
fn page(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let image = GrayImage::from_fn(width, height, |x, y| {
        let stroke = (x + seed * 7) % 23 < 3 && (20..80).contains(&y);
        Luma([if stroke { 0 } else { 255 }])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `(path relative to the set folder, bytes)`: 2 alphabets × 2 characters × 3 drawers.
fn toy_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut seed = 0;
    for alphabet in ["Latin", "Greek"] {
        for character in ["character01", "character02"] {
            for drawer in 1..=3 {
                seed += 1;
                files.push((
                    format!("{alphabet}/{character}/00{seed:02}_{drawer:02}.png"),
                    page(105, 105, seed),
                ));
            }
        }
    }
    files
}

/// A zip of `files` under `top/`, with folder entries, as the official zips are.
fn zip_bytes(top: &str, files: &[(String, Vec<u8>)], extra_dirs: &[&str]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    let mut dirs: Vec<String> = vec![format!("{top}/")];
    for (path, _) in files {
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            dirs.push(format!("{top}/{}/", parts[..depth].join("/")));
        }
    }
    dirs.extend(extra_dirs.iter().map(|d| format!("{top}/{d}/")));
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        zip.add_directory(dir.as_str(), options).unwrap();
    }
    for (path, bytes) in files {
        zip.start_file(format!("{top}/{path}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn write_zip(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}.zip"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write_folder(dir: &Path, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
    let root = dir.join(name);
    for (path, bytes) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    root
}

/// Loads `files` both as a zip and as a folder, expecting the same outcome.
fn load_both(files: &[(String, Vec<u8>)], extra_dirs: &[&str]) -> [Result<ImageSet, Error>; 2] {
    let dir = tempfile::tempdir().unwrap();
    let zip = write_zip(
        dir.path(),
        "images_background",
        &zip_bytes("images_background", files, extra_dirs),
    );
    let folder = write_folder(&dir.path().join("extracted"), "images_background", files);
    for extra in extra_dirs {
        std::fs::create_dir_all(folder.join(extra)).unwrap();
    }
    [ImageSet::open(zip), ImageSet::open(folder)]
}

fn expect_error(results: [Result<ImageSet, Error>; 2], needles: &[&str]) {
    for result in results {
        let message = result.expect_err("must not load").to_string();
        for needle in needles {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading and bad input

#[test]
fn zip_and_folder_load_the_same_toy_set() {
    let [zip, folder] = load_both(&toy_files(), &[]);
    let (zip, folder) = (zip.unwrap(), folder.unwrap());
    assert_eq!(zip, folder);
    assert_eq!(
        zip.to_string(),
        "images_background: 2 groups, 4 classes, 12 images"
    );
    assert_eq!(zip.group_names(), ["Greek", "Latin"]);
    assert_eq!(zip.instances(), [1, 2, 3]);
    // Ink-high: the strokes were black in the file.
    let image = zip.image(0);
    assert_eq!(image.dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
    assert_eq!(image.get_pixel(0, 0).0, [0]);
    assert!(zip.ink_pixels(0) > 100);
}

#[test]
fn omniglot_finds_zips_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    write_zip(
        dir.path(),
        "images_background",
        &zip_bytes("images_background", &toy_files(), &[]),
    );
    write_folder(dir.path(), "images_evaluation", &toy_files());
    let omniglot = Omniglot::open(dir.path()).unwrap();
    assert!(
        omniglot
            .locate(Part::Background)
            .unwrap()
            .ends_with("images_background.zip")
    );
    assert!(
        omniglot
            .locate(Part::Evaluation)
            .unwrap()
            .ends_with("images_evaluation")
    );
    assert_eq!(omniglot.background().unwrap().len(), 12);
    assert_eq!(omniglot.evaluation().unwrap().name(), "images_evaluation");
    let message = omniglot
        .load(Part::BackgroundSmall1)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("images_background_small1.zip"),
        "{message}"
    );
}

#[test]
fn hidden_files_and_macos_folders_are_skipped() {
    let mut files = toy_files();
    files.push(("Latin/.DS_Store".into(), b"junk".to_vec()));
    files.push(("Latin/character01/._0001_01.png".into(), b"junk".to_vec()));
    let [zip, folder] = load_both(&files, &[]);
    assert_eq!(zip.unwrap().len(), 12);
    assert_eq!(folder.unwrap().len(), 12);
}

#[test]
fn missing_path_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        dir.path().join("images_background.zip"),
        dir.path().join("nothing/here"),
    ] {
        let err = ImageSet::open(&path).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }
    assert!(matches!(
        Omniglot::open(dir.path().join("nope")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn zip_without_the_top_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The alphabets at the root of the zip.
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (path, bytes) in toy_files() {
        zip.start_file(path, SimpleFileOptions::default()).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let path = write_zip(dir.path(), "images_background", &bytes);
    let err = ImageSet::open(path).unwrap_err();
    assert!(matches!(err, Error::Layout { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("top folder `images_background/`"),
        "{message}"
    );
    assert!(
        message.contains("images_background.zip/Greek")
            || message.contains("images_background.zip/Latin"),
        "{message}"
    );

    // Under another top folder.
    let path = write_zip(
        dir.path(),
        "images_evaluation",
        &zip_bytes("images_background", &toy_files(), &[]),
    );
    let message = ImageSet::open(path).unwrap_err().to_string();
    assert!(message.contains("`images_evaluation/`"), "{message}");

    // Only the top folder.
    let path = write_zip(dir.path(), "empty", &zip_bytes("empty", &[], &[]));
    let message = ImageSet::open(path).unwrap_err().to_string();
    assert!(message.contains("no alphabet folders"), "{message}");

    // Not a zip at all.
    let path = write_zip(dir.path(), "junk", b"PK not really");
    let message = ImageSet::open(path).unwrap_err().to_string();
    assert!(
        message.contains("junk.zip") && message.contains("not a readable zip"),
        "{message}"
    );
}

#[test]
fn png_that_does_not_decode_is_named() {
    let mut files = toy_files();
    files[4].1 = b"\x89PNG\r\n\x1a\n garbage".to_vec();
    let bad = files[4].0.clone();
    let results = load_both(&files, &[]);
    for result in &results {
        assert!(matches!(result, Err(Error::Image { .. })), "{result:?}");
    }
    expect_error(results, &[&format!("images_background/{bad}")]);

    let mut files = toy_files();
    let half = files[0].1.len() / 2;
    files[0].1.truncate(half);
    expect_error(load_both(&files, &[]), &[&files[0].0]);
}

#[test]
fn image_of_the_wrong_size_is_named() {
    let mut files = toy_files();
    files[7].1 = page(104, 105, 1);
    expect_error(
        load_both(&files, &[]),
        &[&files[7].0, "104×105", "expected 105×105"],
    );
    files[7].1 = page(105, 210, 1);
    expect_error(load_both(&files, &[]), &[&files[7].0, "105×210"]);
}

#[test]
fn character_folder_without_images_is_named() {
    expect_error(
        load_both(&toy_files(), &["Latin/character03"]),
        &["Latin/character03", "character folder without images"],
    );
    expect_error(
        load_both(&toy_files(), &["Cyrillic"]),
        &["Cyrillic", "alphabet folder without character folders"],
    );
}

#[test]
fn badly_named_or_placed_files_are_named() {
    for bad in [
        "Latin/character01/0001-04.png",
        "Latin/character01/0001_04.jpg",
        "Latin/character01/0001_00.png",
        "Latin/character01/x001_04.png",
        "Latin/character01/0001_04",
    ] {
        let mut files = toy_files();
        files.push((bad.into(), page(105, 105, 0)));
        expect_error(load_both(&files, &[]), &[bad, "<id>_<drawer>.png"]);
    }
    let mut files = toy_files();
    files.push(("Latin/0001_01.png".into(), page(105, 105, 0)));
    expect_error(
        load_both(&files, &[]),
        &["Latin/0001_01.png", "out of place"],
    );
    let mut files = toy_files();
    files.push((
        "Latin/character01/deeper/0001_01.png".into(),
        page(105, 105, 0),
    ));
    expect_error(load_both(&files, &[]), &["deeper"]);
}

#[test]
fn duplicate_drawer_is_named() {
    let mut files = toy_files();
    files.push(("Latin/character01/9999_02.png".into(), page(105, 105, 3)));
    expect_error(
        load_both(&files, &[]),
        &["instance 2 of Latin/character01 appears twice"],
    );
}

#[test]
fn unknown_alphabet_or_drawer_is_named() {
    let [set, _] = load_both(&toy_files(), &[]);
    let set = set.unwrap();
    let err = set.subset(Some(&["Klingon"]), None).unwrap_err();
    assert!(
        matches!(err, Error::NotFound { kind: "group", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("\"Klingon\" not found (available: Greek, Latin)"),
        "{err}"
    );
    let err = set.subset(None, Some(&[2, 21])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: "instance",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"21\""), "{err}");
}

#[test]
fn split_without_two_images_per_class_is_refused_for_same_pairs() {
    let [set, _] = load_both(&toy_files(), &[]);
    let one_drawer = set.unwrap().subset(None, Some(&[2])).unwrap();
    let err = PairDatasetConfig::training()
        .init(one_drawer.clone())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "split", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Greek/character01"), "{err}");
    assert!(
        PairDatasetConfig::training()
            .with_same_fraction(0.0)
            .init(one_drawer)
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------
// Corrupt bytes never panic

fn valid_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| page(105, 105, 5))
}

fn valid_zip() -> &'static [u8] {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| zip_bytes("images_background", &toy_files(), &[]))
}

fn corrupt(bytes: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    let mut bytes = bytes[..cut.min(bytes.len())].to_vec();
    for &(at, bit) in flips {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] ^= 1 << (bit % 8);
        }
    }
    bytes
}

fn check_set(set: &ImageSet) {
    assert!(!set.is_empty());
    for image in 0..set.len() {
        assert_eq!(set.image(image).dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
        let class = set.class_of(image);
        assert_eq!(set.image_of(class, set.instance_of(image)), Some(image));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn corrupt_png_is_an_error_or_an_image(
        cut in 0usize..2000,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        random in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for bytes in [corrupt(valid_png(), cut, &flips), random.clone(), [b"\x89PNG\r\n\x1a\n".as_slice(), &random].concat()] {
            if let Ok(image) = decode_png(&bytes, "p.png") {
                prop_assert_eq!(image.dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
            }
        }
    }

    #[test]
    fn corrupt_zip_is_an_error_or_a_set(
        cut in 0usize..20_000,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        random in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        for bytes in [corrupt(valid_zip(), cut, &flips), random.clone(), [b"PK\x03\x04".as_slice(), &random].concat()] {
            if let Ok(set) = ImageSet::from_zip(Cursor::new(bytes), "images_background.zip") {
                check_set(&set);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real data

/// The background set, loaded once for all tests of this binary.
fn background() -> &'static ImageSet {
    static SET: OnceLock<ImageSet> = OnceLock::new();
    SET.get_or_init(|| omniglot().background().unwrap())
}

fn assert_counts(set: &ImageSet, alphabets: usize, characters: usize, images: usize) {
    assert_eq!(
        (set.num_groups(), set.num_classes(), set.len()),
        (alphabets, characters, images),
        "{set}"
    );
    assert_eq!(set.instances(), (1..=20).collect::<Vec<u32>>());
    for class in 0..set.num_classes() {
        for drawer in 1..=20 {
            let image = set.image_of(class, drawer).unwrap();
            assert_eq!(
                (set.class_of(image), set.instance_of(image)),
                (class, drawer)
            );
        }
    }
}

#[test]
fn real_background_and_evaluation_have_the_published_counts() {
    let (omniglot, background) = (omniglot(), background());
    assert_counts(background, 30, 964, 19_280);
    assert_eq!(background.class_name(0), "Alphabet_of_the_Magi/character01");
    // Every image has ink, and less ink than background.
    for image in (0..background.len()).step_by(97) {
        let ink = background.ink_pixels(image);
        assert!(
            ink > 20 && ink < 105 * 105 / 2,
            "image {image}: {ink} ink pixels"
        );
    }

    let evaluation = omniglot.evaluation().unwrap();
    assert_counts(&evaluation, 20, 659, 13_180);
    // Part's official counts are these, and what a download is checked against.
    let path = std::path::Path::new("images_background.zip");
    Part::Background.check(background, path).unwrap();
    Part::Evaluation.check(&evaluation, path).unwrap();
    let wrong = Part::Evaluation
        .check(background, path)
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("images_background.zip")
            && wrong.contains("20 alphabets, 659 characters and 13180 images")
            && wrong.contains("30, 964 and 19280"),
        "{wrong}"
    );
    let runs = evaluation
        .subset(Some(&EVALUATION_RUN_ALPHABETS), None)
        .unwrap();
    let other = evaluation
        .subset(Some(&EVALUATION_OTHER_ALPHABETS), None)
        .unwrap();
    assert_eq!((runs.num_groups(), other.num_groups()), (10, 10));
    assert_eq!(runs.num_classes() + other.num_classes(), 659);
}

#[test]
fn real_small_sets_load_and_are_part_of_the_background() {
    let (omniglot, background) = (omniglot(), background());
    for (part, alphabets, images) in [
        (Part::BackgroundSmall1, 5, 2720),
        (Part::BackgroundSmall2, 5, 3120),
    ] {
        let small = omniglot.load(part).unwrap();
        assert_counts(&small, alphabets, images / 20, images);
        part.check(&small, &omniglot.locate(part).unwrap()).unwrap();
        assert_eq!(small.name(), part.name());
        for image in (0..small.len()).step_by(37) {
            let class = background
                .class_index(small.class_name(small.class_of(image)))
                .unwrap();
            let same = background
                .image_of(class, small.instance_of(image))
                .unwrap();
            assert_eq!(
                small.image(image),
                background.image(same),
                "{part} image {image}"
            );
        }
    }
}

#[test]
fn real_zip_and_extracted_folder_give_identical_stores() {
    let omniglot = omniglot();
    let zip_path = omniglot.locate(Part::BackgroundSmall1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    archive.extract(dir.path()).unwrap();
    let from_zip = ImageSet::open(&zip_path).unwrap();
    let from_folder = Omniglot::open(dir.path())
        .unwrap()
        .load(Part::BackgroundSmall1)
        .unwrap();
    assert!(
        Omniglot::open(dir.path())
            .unwrap()
            .locate(Part::BackgroundSmall1)
            .unwrap()
            .is_dir()
    );
    assert_eq!(from_zip.len(), 2720);
    assert_eq!(from_zip, from_folder);
}

#[test]
fn real_koch_split_has_12_4_4_drawers() {
    let background = background();
    let train = background.subset(None, Some(&KOCH_TRAIN_DRAWERS)).unwrap();
    let validation = background
        .subset(None, Some(&KOCH_VALIDATION_DRAWERS))
        .unwrap();
    let test = background.subset(None, Some(&KOCH_TEST_DRAWERS)).unwrap();
    assert_eq!(
        (train.len(), validation.len(), test.len()),
        (964 * 12, 964 * 4, 964 * 4)
    );
    assert_eq!(train.num_classes(), 964);
    assert_eq!(test.instances(), KOCH_TEST_DRAWERS);
}

#[test]
fn real_pairs_are_balanced_labelled_and_reproducible() {
    let background = background();
    let n = 10_000;
    let pairs = PairDatasetConfig::training()
        .with_seed(11)
        .with_pairs_per_epoch(n)
        .init(background.clone())
        .unwrap();
    let again = PairDatasetConfig::training()
        .with_seed(11)
        .with_pairs_per_epoch(n)
        .init(background.clone())
        .unwrap();
    let other = PairDatasetConfig::training()
        .with_seed(12)
        .with_pairs_per_epoch(n)
        .init(background.clone())
        .unwrap();

    let mut same = 0;
    let mut distinct = HashSet::new();
    for i in 0..n {
        let p = pairs.indices(0, i);
        let (left, right) = (background.class_of(p.left), background.class_of(p.right));
        if p.same {
            same += 1;
            assert_eq!(left, right, "same pair {i} mixes characters");
            assert_ne!(p.left, p.right, "same pair {i} uses one image twice");
        } else {
            assert_ne!(left, right, "different pair {i} shares a character");
        }
        distinct.insert((p.left, p.right));
        assert_eq!(p, again.indices(0, i));
    }
    let share = same as f64 / n as f64;
    assert!((share - 0.5).abs() <= 0.02, "same share {share}");
    assert!(
        distinct.len() > n * 99 / 100,
        "pairs repeat: {} distinct",
        distinct.len()
    );
    let moved = (0..n)
        .filter(|&i| pairs.indices(0, i) != other.indices(0, i))
        .count();
    assert!(
        moved > n * 99 / 100,
        "another seed changed only {moved} pairs"
    );
    let next = (0..n)
        .filter(|&i| pairs.indices(0, i) != pairs.indices(1, i))
        .count();
    assert!(
        next > n * 99 / 100,
        "another epoch changed only {next} pairs"
    );

    // Same-alphabet negatives.
    let hard = PairDatasetConfig::training()
        .with_same_alphabet_negatives(true)
        .init(background.clone())
        .unwrap();
    for i in 0..2000 {
        let p = hard.indices(0, i);
        assert_eq!(background.group_of(p.left), background.group_of(p.right));
        assert_eq!(
            background.class_of(p.left) == background.class_of(p.right),
            p.same
        );
    }
}

#[test]
fn real_distortions_keep_the_size_and_move_ink() {
    let background = background();
    let plain = PairDatasetConfig::evaluation()
        .with_seed(3)
        .init(background.clone())
        .unwrap();
    let distorted = PairDatasetConfig::training()
        .with_seed(3)
        .init(background.clone())
        .unwrap();
    let mut changed = 0;
    for i in 0..200 {
        let (a, b) = (plain.get(i).unwrap(), distorted.get(i).unwrap());
        assert_eq!(
            a.indices, b.indices,
            "distortion must not change which images are drawn"
        );
        assert_eq!(a.left, background.picture(a.indices.left));
        let (a_left, a_right) = (a.left.to_luma8(), a.right.to_luma8());
        let (b_left, b_right) = (b.left.to_luma8(), b.right.to_luma8());
        for (original, warped) in [(&a_left, &b_left), (&a_right, &b_right)] {
            assert_eq!(warped.dimensions(), (NATIVE_SIZE, NATIVE_SIZE));
            let ink = |i: &GrayImage| i.iter().map(|&v| f64::from(v)).sum::<f64>();
            let ratio = ink(warped) / ink(original);
            assert!((0.5..1.6).contains(&ratio), "pair {i}: ink ratio {ratio}");
            if warped != original {
                changed += 1;
                let moved = original
                    .iter()
                    .zip(warped.iter())
                    .filter(|(x, y)| x != y)
                    .count();
                assert!(moved > 10, "pair {i}: only {moved} pixels changed");
            }
        }
    }
    // Each image stays undistorted only when all 7 components are skipped: 1/128.
    assert!(changed > 380, "{changed} of 400 images distorted");
}

#[test]
fn real_batches_have_the_encoder_shape() {
    let background = background();
    let device = siamese::device::default_device().unwrap();
    let pairs = PairDatasetConfig::training()
        .with_pairs_per_epoch(16)
        .init(background.clone())
        .unwrap();
    let items: Vec<_> = (0..16).map(|i| pairs.get(i).unwrap()).collect();
    for size in [105, 52] {
        let batch = PairBatcher::new(size)
            .unwrap()
            .batch(items.clone(), &device);
        assert_eq!(batch.left.dims(), [16, 1, size, size]);
        assert_eq!(batch.right.dims(), [16, 1, size, size]);
        let targets: Vec<f32> = batch.targets.into_data().try_into_vec().unwrap();
        assert_eq!(targets.iter().filter(|&&t| t == 1.0).count(), 8);
        let mean: f32 = batch.left.mean().into_scalar();
        assert!(mean > 0.01 && mean < 0.4, "mean ink {mean}");
    }
}
