//! The trainer on real data (`$OMNIGLOT_DIR`) and on tiny runs.

use std::path::PathBuf;

use burn::module::{Module, Param};
use burn::prelude::*;
use siamese::data::{ImageSet, Omniglot, Part};
use siamese::eval::{Episode, EvaluatorConfig, RandomEpisodesConfig, SiameseScorer};
use siamese::train::{OptimizerConfig, Trainer, TrainingConfig, checkpoint_path};
use siamese::{Error, SiameseConfig};

fn omniglot() -> Option<Omniglot> {
    match std::env::var_os("OMNIGLOT_DIR") {
        Some(dir) => Some(Omniglot::open(PathBuf::from(dir)).expect("OMNIGLOT_DIR holds Omniglot")),
        None => {
            println!("skipped: OMNIGLOT_DIR not set");
            None
        }
    }
}

/// 5-way one-shot episodes on alphabets of small2 (never seen by a run trained on small1).
fn five_way(set: &ImageSet, episodes: usize, seed: u64) -> Vec<Episode> {
    RandomEpisodesConfig::new(5, 1)
        .with_queries_per_class(1)
        .with_episodes(episodes)
        .with_seed(seed)
        .episodes(set, None)
        .unwrap()
}

fn tiny(output: &std::path::Path, seed: u64) -> TrainingConfig {
    TrainingConfig::new(SiameseConfig::compact())
        .with_optimizer(OptimizerConfig::adam())
        .with_epochs(2)
        .with_pairs_per_epoch(64)
        .with_batch_size(16)
        .with_seed(seed)
        .with_output_dir(output.display().to_string())
}

#[test]
fn a_short_run_learns_one_shot_on_unseen_alphabets() {
    let Some(omniglot) = omniglot() else { return };
    let train = omniglot.load(Part::BackgroundSmall1).unwrap();
    let test_set = omniglot.load(Part::BackgroundSmall2).unwrap();
    let validation = five_way(&test_set, 20, 1);
    let test = five_way(&test_set, 200, 2);
    let dir = tempfile::tempdir().unwrap();
    let config = TrainingConfig::new(SiameseConfig::compact())
        .with_optimizer(OptimizerConfig::adam())
        .with_epochs(4)
        .with_pairs_per_epoch(2048)
        .with_batch_size(64)
        .with_seed(3)
        .with_output_dir(dir.path().display().to_string());
    let device = siamese::device::default_device().unwrap();
    let outcome = Trainer::new(config, train, validation, &device)
        .unwrap()
        .with_progress(false)
        .fit()
        .unwrap();
    let losses: Vec<f64> = outcome.history.iter().map(|r| r.train_loss).collect();
    println!("losses {losses:?}");
    assert!(
        losses[3] < losses[0] - 0.05,
        "the loss did not fall: {losses:?}"
    );
    let accuracy = EvaluatorConfig::new()
        .with_progress(false)
        .init()
        .unwrap()
        .evaluate(&SiameseScorer::new(&outcome.model), &test)
        .unwrap()
        .accuracy();
    println!(
        "5-way one-shot accuracy on small2: {:.1}%",
        100.0 * accuracy
    );
    assert!(
        accuracy > 0.45,
        "5-way accuracy {accuracy} is not well above chance (0.2)"
    );
    for file in [
        "checkpoint.zip",
        "best.bpk",
        "best.json",
        "history.csv",
        "learning_curve.png",
        "config.json",
    ] {
        assert!(dir.path().join(file).exists(), "{file} was not written");
    }
}

fn small_data() -> Option<(ImageSet, Vec<Episode>)> {
    let omniglot = omniglot()?;
    let train = omniglot
        .load(Part::BackgroundSmall1)
        .unwrap()
        .subset(Some(&["Latin"]), None)
        .unwrap();
    let validation = five_way(&train, 2, 9);
    Some((train, validation))
}

fn weights(model: &siamese::Siamese) -> Vec<f32> {
    let mut all = Vec::new();
    for block in &model.encoder.blocks {
        all.extend(block.conv.weight.val().into_data().iter::<f32>());
    }
    all.extend(model.head.weight.val().into_data().iter::<f32>());
    all
}

#[test]
fn resuming_gives_the_weights_of_an_unbroken_run() {
    let Some((train, validation)) = small_data() else {
        return;
    };
    let device = siamese::device::default_device().unwrap();
    let start = SiameseConfig::compact().init(&device);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let straight = Trainer::new(
        tiny(a.path(), 5),
        train.clone(),
        validation.clone(),
        &device,
    )
    .unwrap()
    .with_model(start.clone())
    .unwrap()
    .with_progress(false)
    .fit()
    .unwrap();

    // The same run, stopped after its first epoch, then resumed.
    Trainer::new(
        tiny(b.path(), 5).with_epochs(1),
        train.clone(),
        validation.clone(),
        &device,
    )
    .unwrap()
    .with_model(start)
    .unwrap()
    .with_progress(false)
    .fit()
    .unwrap();
    let resumed = Trainer::new(tiny(b.path(), 5), train, validation, &device)
        .unwrap()
        .with_progress(false)
        .resume()
        .unwrap();

    assert_eq!(resumed.history.len(), 2);
    let straight_last = siamese::Siamese::load(a.path().join("best.bpk"), &device).unwrap();
    let resumed_last = siamese::Siamese::load(b.path().join("best.bpk"), &device).unwrap();
    assert_eq!(straight.best_epoch, resumed.best_epoch);
    assert_eq!(weights(&straight_last), weights(&resumed_last));
    assert!(
        (straight.history[1].train_loss - resumed.history[1].train_loss).abs() < 1e-9,
        "{:?} vs {:?}",
        straight.history,
        resumed.history
    );
}

#[test]
fn a_corrupted_checkpoint_is_named() {
    let Some((train, validation)) = small_data() else {
        return;
    };
    let device = siamese::device::default_device().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trainer = Trainer::new(
        tiny(dir.path(), 1).with_epochs(1),
        train,
        validation,
        &device,
    )
    .unwrap()
    .with_progress(false);
    trainer.fit().unwrap();
    let path = checkpoint_path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = trainer.resume().unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("checkpoint.zip"), "{err}");

    std::fs::write(&path, &bytes[..100]).unwrap();
    let err = trainer.resume().unwrap_err();
    assert!(err.to_string().contains("checkpoint.zip"), "{err}");
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_checkpoint() {
    let Some((train, validation)) = small_data() else {
        return;
    };
    let device = siamese::device::default_device().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One good epoch, then a model whose head bias is NaN.
    let good = Trainer::new(
        tiny(dir.path(), 2).with_epochs(1),
        train.clone(),
        validation.clone(),
        &device,
    )
    .unwrap()
    .with_progress(false)
    .fit()
    .unwrap();
    let before = std::fs::read(checkpoint_path(dir.path())).unwrap();
    let mut poisoned = good.model.clone();
    poisoned.head.bias = Param::from_tensor(Tensor::from_data([f32::NAN], &device));
    let err = Trainer::new(tiny(dir.path(), 2), train, validation, &device)
        .unwrap()
        .with_model(poisoned)
        .unwrap()
        .with_progress(false)
        .fit()
        .unwrap_err();
    match err {
        Error::Training {
            epoch,
            step,
            reason,
        } => {
            assert_eq!((epoch, step), (0, 0));
            assert!(
                reason.contains("NaN") && reason.contains("checkpoint.zip"),
                "{reason}"
            );
        }
        other => panic!("expected a training error, got {other:?}"),
    }
    assert_eq!(std::fs::read(checkpoint_path(dir.path())).unwrap(), before);
    let _ = good.model.valid();
}

siamese::device_tests! {
    fn tiny_training_runs_on_every_device(device) {
        let Some((train, validation)) = small_data() else { return };
        let dir = tempfile::tempdir().unwrap();
        let outcome = Trainer::new(tiny(dir.path(), 4).with_epochs(1).with_pairs_per_epoch(32), train, validation, &device)
            .unwrap()
            .with_progress(false)
            .fit()
            .unwrap();
        assert_eq!(outcome.history.len(), 1);
        assert!(outcome.history[0].train_loss.is_finite());
    }
}
