//! Your own pictures end to end: a labelled folder of generated colour and grey pictures
//! through loading, a few training steps, saving, loading and matching; and the real emoji
//! set where `$EMOJI_DIR` names it.

use std::path::Path;

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use siamese::data::{GroupedBatchConfig, InputSpec, LabeledFolder, Preprocess};
use siamese::eval::{EvaluatorConfig, KochProtocolConfig, SiameseScorer};
use siamese::matcher::Matcher;
use siamese::model::ConvBlockConfig;
use siamese::train::{LossConfig, OptimizerConfig, Trainer, TrainingConfig, epoch_weights};
use siamese::{EncoderConfig, Siamese, SiameseConfig};

/// The hue of class `c`: far apart for the 8 classes used.
const HUES: [[u8; 3]; 8] = [
    [220, 30, 30],
    [30, 200, 30],
    [30, 30, 220],
    [220, 200, 20],
    [200, 30, 200],
    [20, 200, 200],
    [120, 60, 20],
    [90, 90, 90],
];

/// Class `c` drawn by instance `i`: a disc of the class's colour on a transparent canvas
/// of 40 × 30 pixels, a little off centre for each instance.
fn picture(c: usize, i: u32) -> RgbaImage {
    RgbaImage::from_fn(40, 30, |x, y| {
        let (dx, dy) = (x as f32 - 18.0 - 2.0 * i as f32, y as f32 - 15.0);
        if dx * dx + dy * dy < 90.0 + 10.0 * c as f32 {
            let [r, g, b] = HUES[c];
            Rgba([r, g, b, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

/// `root/<group>/<class>/<instance>.png`: 2 groups × 4 classes × 3 instances.
fn write_folder(root: &Path) {
    for c in 0..8 {
        let dir = root
            .join(format!("group{}", c / 4))
            .join(format!("class{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, vendor) in ["google", "openmoji", "twitter"].iter().enumerate() {
            picture(c, i as u32)
                .save(dir.join(format!("{vendor}.png")))
                .unwrap();
        }
    }
}

/// A small network for `channels`: 16 × 16 input, two blocks, an 8-d embedding.
fn small(channels: usize) -> SiameseConfig {
    let encoder = EncoderConfig::new(
        16,
        vec![
            ConvBlockConfig::new(8, 3).with_padding(1),
            ConvBlockConfig::new(8, 3).with_padding(1),
        ],
    )
    .with_channels(Some(channels))
    .with_embedding(Some(8))
    .with_batch_norm(true);
    SiameseConfig::new(encoder).with_preprocess(Some(Preprocess::picture()))
}

#[test]
fn colour_and_grey_pictures_train_save_load_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    write_folder(&root);
    let folder = LabeledFolder::open(&root).unwrap();
    assert!(folder.is_grouped());
    let device = siamese::device::default_device().unwrap();
    for channels in [3, 1] {
        let config = small(channels);
        let input = config.input_spec().unwrap();
        let set = folder.load(&input).unwrap();
        assert_eq!((set.channels(), set.side(), set.len()), (channels, 16, 24));
        let validation = KochProtocolConfig::new()
            .with_n_way(4)
            .with_runs_per_alphabet(2)
            .episodes(&set, None)
            .unwrap();
        let out = dir.path().join(format!("run{channels}"));
        let training = TrainingConfig::new(config)
            .with_optimizer(OptimizerConfig::adam())
            .with_loss(Some(LossConfig::Episode {
                batch: GroupedBatchConfig::new()
                    .with_characters(4)
                    .with_alphabets(1),
                all_pairs_weight: 0.1,
            }))
            .with_epochs(6)
            .with_pairs_per_epoch(512)
            .with_output_dir(out.display().to_string());
        // Validation is solved from the first epoch on (which it would keep as the best):
        // the last epoch's weights are the trained ones.
        let outcome = Trainer::new(training, set.clone(), validation, &device)
            .unwrap()
            .with_progress(false)
            .with_epoch_weights(true)
            .fit()
            .unwrap();
        assert_eq!(outcome.history.len(), 6);
        let last = out.join(epoch_weights(5));
        let path = out.join("pictures.bpk");
        Siamese::load(&last, &device).unwrap().save(&path).unwrap();
        let loaded = Siamese::load(&path, &device).unwrap();
        assert_eq!(
            loaded.input_spec(),
            input,
            "the preprocessing is saved with the network"
        );

        // The matcher prepares what it is given as the network says: here the original
        // RGBA files, composited over white and fitted to 16 × 16.
        let mut matcher = Matcher::new(loaded);
        for c in 0..8 {
            let file = root.join(format!("group{}/class{c}/google.png", c / 4));
            matcher.add(format!("class{c}"), &file).unwrap();
        }
        for c in 0..8 {
            let query = DynamicImage::ImageRgba8(picture(c, 0));
            let best = &matcher.classify(&query).unwrap()[0];
            assert_eq!(best.label, format!("class{c}"), "{channels} channels");
        }
    }
}

#[test]
fn a_training_set_prepared_otherwise_than_the_network_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    write_folder(&root);
    let ink_set = LabeledFolder::open(&root)
        .unwrap()
        .load(&InputSpec::ink(16).unwrap())
        .unwrap();
    let validation = KochProtocolConfig::new()
        .with_n_way(4)
        .episodes(&ink_set, None)
        .unwrap();
    let device = siamese::device::default_device().unwrap();
    let message = Trainer::new(TrainingConfig::new(small(3)), ink_set, validation, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains("Ink") && message.contains("Picture"),
        "{message}"
    );
}

#[test]
fn a_grey_picture_and_its_colour_copy_prepare_alike_for_a_grey_network() {
    let grey = GrayImage::from_fn(30, 20, |x, _| Luma([(x * 8) as u8]));
    let colour = RgbImage::from_fn(30, 20, |x, _| Rgb([(x * 8) as u8; 3]));
    let input = InputSpec::new(1, 16, Preprocess::picture()).unwrap();
    assert_eq!(
        input.prepare(&grey.into()).unwrap(),
        input.prepare(&colour.into()).unwrap()
    );
}

/// The emoji set of `../shared/emoji` (its README fixes the split), by the crate's data
/// rule: `$EMOJI_DIR` names the folder holding `emoji.zip`. Unset, there is nothing to test
/// here (users have no copy); set, the data must be there: a named failure, never a skip.
#[test]
fn the_emoji_set_loads_with_its_categories_and_vendors() {
    let Some(dir) = std::env::var_os("EMOJI_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("EMOJI_DIR is not set: the emoji set is not tested");
        return;
    };
    let zip = Path::new(&dir).join("emoji.zip");
    assert!(
        zip.is_file(),
        "EMOJI_DIR names {}, which holds no emoji.zip",
        zip.display()
    );
    let folder = LabeledFolder::open(&zip).unwrap();
    assert_eq!((folder.len(), folder.is_grouped()), (5_718, true));
    let input = SiameseConfig::compact_pictures().input_spec().unwrap();
    let set = folder.load(&input).unwrap();
    assert_eq!((set.num_groups(), set.num_classes()), (9, 1_906));
    let vendors: Vec<String> = set
        .instances()
        .iter()
        .map(|&i| set.instance_name(i))
        .collect();
    assert_eq!(vendors, ["google", "openmoji", "twitter"]);
    let food = set.group_index("food-drink").unwrap();
    assert_eq!(set.classes_of_group(food).len(), 131);
    // A twitter picture is a composited RGB picture at the network's side.
    let dog = set.class_index("animals-nature/1f436_dog").unwrap();
    let twitter = set.instance_named("twitter").unwrap();
    let picture = set.picture(set.image_of(dog, twitter).unwrap());
    assert_eq!(
        (picture.width(), picture.color()),
        (52, image::ColorType::Rgb8)
    );
    // The protocol's trials: 20-way within a category, two vendors.
    let trials = KochProtocolConfig::new()
        .with_runs_per_alphabet(1)
        .episodes(
            &set,
            Some(&["smileys-emotion", "animals-nature", "food-drink"]),
        )
        .unwrap();
    assert_eq!(trials.len(), 3);
    let result = EvaluatorConfig::new()
        .with_progress(false)
        .init()
        .unwrap()
        .evaluate(
            &SiameseScorer::new(
                &SiameseConfig::compact_pictures()
                    .init(&siamese::device::default_device().unwrap()),
            ),
            &trials,
        )
        .unwrap();
    assert_eq!(result.total(), 60);
}
