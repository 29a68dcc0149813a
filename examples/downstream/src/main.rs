//! A crate that depends on `siamese` the way the README tells users to: the compact
//! network shipped in the crate, and a [`Matcher`] with a gallery folder of labelled
//! images.
//!
//! ```text
//! cd examples/downstream && cargo run --release
//! ```
//!
//! The images are the first of the official one-shot runs built into `siamese` (20
//! characters of alphabets the network never saw, one drawing each), written out as
//! black-on-white PNGs the way a user's own images would come: `gallery/<label>/*.png`,
//! and one query image per file.

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use siamese::eval::LakeRuns;
use siamese::matcher::Matcher;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Classifies the run's 20 queries; `Ok(false)` when fewer than 15 are right.
fn run() -> Result<bool, Box<dyn Error>> {
    let folder = std::env::temp_dir().join(format!("siamese-downstream-{}", std::process::id()));
    let result = classify(&folder);
    std::fs::remove_dir_all(&folder).ok();
    let (right, total) = result?;
    println!("{right} of {total} queries matched their character");
    Ok(right * 4 >= total * 3)
}

fn classify(folder: &Path) -> Result<(usize, usize), Box<dyn Error>> {
    let run = LakeRuns::official()?.into_episodes().swap_remove(0);
    // A label per character: `class01` from `run01/training/class01.png`.
    let labels: Vec<String> = run
        .class_names()
        .iter()
        .map(|name| {
            name.rsplit('/')
                .next()
                .unwrap_or(name)
                .trim_end_matches(".png")
                .to_string()
        })
        .collect();
    for (label, shots) in labels.iter().zip(run.supports()) {
        let dir = folder.join("gallery").join(label);
        std::fs::create_dir_all(&dir)?;
        for (shot, image) in shots.iter().enumerate() {
            black_on_white(image).save(dir.join(format!("{shot}.png")))?;
        }
    }

    let device = siamese::device::default_device()?;
    let mut matcher = Matcher::new(siamese::pretrained::compact(&device)?);
    let shots = matcher.add_folder(folder.join("gallery"))?;
    println!(
        "gallery: {shots} images of {} characters",
        matcher.num_classes()
    );

    let mut right = 0;
    for (index, (query, &label)) in run.queries().iter().zip(run.labels()).enumerate() {
        let path = folder.join(format!("query{index:02}.png"));
        black_on_white(query).save(&path)?;
        let best = matcher.top_k(path.as_path(), 3)?;
        println!(
            "query{index:02}: {} (p = {:.3}), then {}; truth {}",
            best[0].label, best[0].probability, best[1].label, labels[label]
        );
        right += usize::from(best[0].label == labels[label]);
    }
    Ok((right, run.queries().len()))
}

/// The crate's canonical image (ink 255 on 0) as Omniglot's files draw it.
fn black_on_white(image: &image::DynamicImage) -> image::GrayImage {
    let mut page = image.to_luma8();
    image::imageops::invert(&mut page);
    page
}
