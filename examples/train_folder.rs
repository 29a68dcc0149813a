//! Your own pictures: train a one-shot network on a labelled folder (or zip), evaluate it
//! on groups it never saw against two baselines, and save it for `match_images`.
//!
//! ```text
//! cargo run --release --example train_folder -- --data ../shared/emoji/emoji.zip \
//!     --eval-groups smileys-emotion,animals-nature,food-drink --out runs/emoji
//! cargo run --release --example match_images -- --weights runs/emoji/model.bpk \
//!     --gallery GALLERY --query QUERY
//! ```
//!
//! The data is laid out `root/<group>/<class>/<picture>` (or `root/<class>/<picture>`, one
//! group); each picture is named by its instance (a vendor, a drawer, a session), so that a
//! trial takes its supports from one instance and its queries from another. The
//! `--eval-groups` are held out: nothing is trained or chosen on them. Of every other
//! group a share of the classes (`--validation-share`) is held out to pick the epoch; the
//! rest trains the network with the N-way episode loss on grouped batches.
//!
//! The evaluation is N-way one-shot within one held-out group: N classes, two instances
//! that drew them all, supports from one and queries from the other (every ordered pair of
//! instances is drawn alike). The table compares the network trained now with pixel
//! nearest neighbour and the compact Omniglot network shipped in the crate, on the same
//! trials. `--out` gets the network (`model.bpk`, `model.json`: its configuration holds
//! the preprocessing), the training run, `learning_curve.png` and `episodes.png`.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::{Parser, ValueEnum};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use siamese::data::{GroupedBatchConfig, ImageSet, LabeledFolder, Preprocess};
use siamese::eval::{
    Episode, EpisodeSheetConfig, Evaluation, EvaluatorConfig, KochProtocolConfig,
    PixelNearestNeighbour, SiameseScorer,
};
use siamese::train::{LossConfig, OptimizerConfig, Trainer, TrainingConfig};
use siamese::{EncoderConfig, Error, Result, Siamese, SiameseConfig};

mod common;

#[derive(Parser, Debug)]
#[command(about = "Train and evaluate a one-shot Siamese network on a labelled picture folder")]
struct Args {
    /// The pictures: a folder or a zip laid out <group>/<class>/<picture> or
    /// <class>/<picture>, any format the `image` crate reads.
    #[arg(long)]
    data: PathBuf,
    /// Groups held out for the final evaluation (comma-separated): never trained on, never
    /// used to choose anything.
    #[arg(long, value_delimiter = ',', required = true)]
    eval_groups: Vec<String>,
    /// Instances (file stems) to train on, comma-separated; default: all. Validation and
    /// evaluation use every instance.
    #[arg(long, value_delimiter = ',')]
    train_instances: Vec<String>,
    /// Colour (3 channels) or grey (1) input.
    #[arg(long, value_enum, default_value_t = Colour::Rgb)]
    colour: Colour,
    /// Side of the network's square input, in pixels.
    #[arg(long, default_value_t = 52)]
    side: usize,
    /// Fine-tune the compact Omniglot network shipped in the crate (its first kernel shared
    /// out over three channels for colour), or start from scratch. Fine-tuning led on
    /// validation at nearly every epoch of the emoji runs (README, "Your own pictures").
    #[arg(long, value_enum, default_value_t = Init::Pretrained)]
    init: Init,
    /// Epochs to train (an epoch of the default size takes about 40 s for the compact
    /// network on 2 cores: 18 fit in 15 minutes with loading and evaluation).
    #[arg(long, default_value_t = 18)]
    epochs: usize,
    /// Images encoded per epoch, halved (as `pairs_per_epoch` counts them).
    #[arg(long, default_value_t = 6_000)]
    pairs_per_epoch: usize,
    /// Classes in a grouped batch: the N of its N-way episodes.
    #[arg(long, default_value_t = 32)]
    classes: usize,
    /// Groups the classes of a batch come from.
    #[arg(long, default_value_t = 2)]
    groups: usize,
    /// Also train on every class mirrored left to right, as a class of its own.
    #[arg(long)]
    mirrors: bool,
    /// Mirror each training picture left to right at random, as another view of its class.
    #[arg(long)]
    flips: bool,
    /// Also average the weights of the last K epochs (Izmailov et al. 2018) and keep the
    /// average where validation prefers it to the best epoch; 0: the best epoch. On the
    /// emoji split the mean of epochs 11-18 led the best epoch on validation (README, "Your
    /// own pictures").
    #[arg(long, default_value_t = 8)]
    average_last: usize,
    /// Train without Koch's affine distortions.
    #[arg(long)]
    no_distortions: bool,
    /// Share of each training group's classes held out for validation (picks the epoch).
    #[arg(long, default_value_t = 0.15)]
    validation_share: f64,
    /// Trials per validation group after each epoch (rounded up to whole N-way episodes).
    #[arg(long, default_value_t = 100)]
    validation_trials: usize,
    /// N of the N-way one-shot trials.
    #[arg(long, default_value_t = 20)]
    n_way: usize,
    /// Evaluation trials (at least), shared out evenly over the held-out groups.
    #[arg(long, default_value_t = 2_400)]
    trials: usize,
    /// Seed of the weights, the batches, the validation split and the trials.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Backend: flex, ndarray, wgpu or cuda (those compiled in), with a GPU's index where
    /// there are several (`cuda:1`). A comma-separated list trains on every device named
    /// (one whole batch each a step; evaluation on the first).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Evaluate these trained weights (a .bpk with its .json beside it) instead of
    /// training.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "runs/train_folder")]
    out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Colour {
    /// Three channels.
    Rgb,
    /// One channel (luminance).
    Grey,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Init {
    /// A fresh initialisation.
    Scratch,
    /// The shipped compact Omniglot network.
    Pretrained,
}

fn main() -> std::process::ExitCode {
    common::exit(run(&Args::parse()))
}

/// The network to train: compact, in the chosen colour, on pictures over white.
fn network(args: &Args, device: &burn::tensor::Device) -> Result<(SiameseConfig, Option<Siamese>)> {
    let channels = match args.colour {
        Colour::Rgb => 3,
        Colour::Grey => 1,
    };
    let preprocess = Preprocess::picture();
    match args.init {
        Init::Scratch => {
            let mut encoder = EncoderConfig::compact().with_channels(Some(channels));
            encoder.input_size = args.side;
            let config = SiameseConfig::new(encoder).with_preprocess(Some(preprocess));
            Ok((config, None))
        }
        Init::Pretrained => {
            let shipped = siamese::pretrained::compact(device)?;
            if args.side != shipped.input_shape()[0] {
                return Err(Error::invalid(
                    "side",
                    format!(
                        "the shipped network reads {} pixels a side; --init pretrained keeps it",
                        shipped.input_shape()[0]
                    ),
                ));
            }
            let model = match args.colour {
                Colour::Rgb => shipped.to_colour(preprocess)?,
                Colour::Grey => shipped.with_preprocess(preprocess),
            };
            Ok((model.config.clone(), Some(model)))
        }
    }
}

/// The classes of the training groups, split into training and validation: a seeded
/// `share` of each group's classes is held out.
fn split(set: &ImageSet, groups: &[&str], share: f64, seed: u64) -> Result<(ImageSet, ImageSet)> {
    let set = set.subset(Some(groups), None)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut held = vec![false; set.num_classes()];
    for group in 0..set.num_groups() {
        let mut classes: Vec<usize> = set.classes_of_group(group).collect();
        classes.shuffle(&mut rng);
        let n = (share * classes.len() as f64).round() as usize;
        classes[..n].iter().for_each(|&c| held[c] = true);
    }
    Ok((
        set.subset_classes(|c| !held[c])?,
        set.subset_classes(|c| held[c])?,
    ))
}

fn run(args: &Args) -> Result<()> {
    if !(0.0..1.0).contains(&args.validation_share) || args.validation_share == 0.0 {
        return Err(Error::invalid(
            "validation_share",
            format!("{} is not in (0, 1)", args.validation_share),
        ));
    }
    if args.n_way < 2 {
        return Err(Error::invalid(
            "n_way",
            format!(
                "{} classes make no choice: an N-way trial needs N ≥ 2",
                args.n_way
            ),
        ));
    }
    let devices = siamese::device::by_names(&args.device)?;
    let device = devices[0].clone();
    let out = common::OutDir::prepare(
        &args.out,
        &[
            "model.bpk",
            "model.json",
            "learning_curve.png",
            "episodes.png",
            "training/",
        ],
    )?;
    let started = Instant::now();

    let folder = LabeledFolder::open(&args.data)?;
    let (config, init) = match &args.weights {
        Some(path) => {
            let model = Siamese::load(path, &device)?;
            (model.config.clone(), Some(model))
        }
        None => network(args, &device)?,
    };
    // The run's settings are checked before any picture is read.
    if args.weights.is_none() {
        training_config(args, config.clone(), args.groups).validate()?;
    }
    let input = config.input_spec()?;
    eprintln!(
        "loading {} pictures of {} for a {}×{}×{} input ...",
        folder.len(),
        folder.path().display(),
        input.channels(),
        input.side(),
        input.side()
    );
    let set = folder.load(&input)?;
    eprintln!("{set}");
    let eval_groups: Vec<&str> = args.eval_groups.iter().map(String::as_str).collect();
    set.group_indices(Some(&eval_groups))?; // names every group that is not there
    let train_groups: Vec<&str> = set
        .group_names()
        .iter()
        .map(String::as_str)
        .filter(|g| !eval_groups.contains(g))
        .collect();
    if train_groups.is_empty() {
        return Err(Error::invalid(
            "eval_groups",
            "they are every group: nothing is left to train on",
        ));
    }
    let runs_per_group = args.trials.div_ceil(args.n_way * eval_groups.len()).max(1);
    let trials = KochProtocolConfig::new()
        .with_n_way(args.n_way)
        .with_runs_per_alphabet(runs_per_group)
        .with_seed(args.seed);
    let episodes = trials.episodes(&set, Some(&eval_groups))?;

    let (model, name) = match (&args.weights, init) {
        (Some(path), Some(model)) => (model, path.display().to_string()),
        (_, init) => {
            let model = train(args, config, init, &set, &train_groups, &devices)?;
            let path = out.path().join("model.bpk");
            model.save(&path)?;
            eprintln!("wrote {} (and its configuration beside it)", path.display());
            let history = siamese::train::read_csv(&args.out.join("training/history.csv"))?;
            let curve = out.path().join("learning_curve.png");
            siamese::train::plot_learning_curve(
                &history,
                "train_folder: training history",
                &curve,
            )?;
            eprintln!("wrote {}", curve.display());
            (
                model,
                format!("compact {:?} ({:?}, trained now)", args.colour, args.init).to_lowercase(),
            )
        }
    };
    let model = model.valid();

    // The shipped Omniglot network reads ink: the same trials, its own preprocessing.
    let shipped = siamese::pretrained::compact(&device)?;
    let shipped_set = folder.load(&shipped.input_spec())?;
    let shipped_episodes = trials.episodes(&shipped_set, Some(&eval_groups))?;
    let same_trials = episodes
        .iter()
        .zip(&shipped_episodes)
        .all(|(a, b)| a.class_names() == b.class_names());
    assert!(same_trials, "both loads index the folder alike");

    let evaluator = EvaluatorConfig::new().init()?;
    let trained = evaluator.evaluate(&SiameseScorer::new(&model), &episodes)?;
    let pixels = evaluator.evaluate(&PixelNearestNeighbour, &episodes)?;
    let omniglot = evaluator.evaluate(&SiameseScorer::new(&shipped), &shipped_episodes)?;

    println!();
    println!(
        "{}-way one-shot accuracy on {} held-out groups ({}), support and query from two \
         different instances: {} trials, seed {}",
        args.n_way,
        eval_groups.len(),
        eval_groups.join(", "),
        trained.total(),
        args.seed
    );
    println!();
    println!(
        "| {:<40} | {:>6} | {:<15} | {:>9} |",
        "method", "acc", "95% interval", "time"
    );
    println!("|{:-<42}|{:-<8}|{:-<17}|{:-<11}|", "", "", "", "");
    row(&name, &trained);
    row("pixel nearest neighbour", &pixels);
    row("compact Omniglot network (shipped)", &omniglot);
    println!();
    per_group(&episodes, &trained, &eval_groups);

    let sheet = out.path().join("episodes.png");
    EpisodeSheetConfig::new().init()?.save(
        &episodes,
        &trained,
        &format!(
            "{name}: {:.1}% of {} {}-way trials",
            100.0 * trained.accuracy(),
            trained.total(),
            args.n_way
        ),
        &sheet,
    )?;
    println!("wrote {}", sheet.display());
    eprintln!("done in {:.1} min", started.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

/// Trains on the training groups (less the validation classes), validating on the
/// validation classes, and returns the epoch that validation picks.
fn train(
    args: &Args,
    model: SiameseConfig,
    init: Option<Siamese>,
    set: &ImageSet,
    groups: &[&str],
    devices: &[burn::tensor::Device],
) -> Result<Siamese> {
    let device = &devices[0];
    let (train, validation) = split(set, groups, args.validation_share, args.seed)?;
    let train = match args.train_instances.as_slice() {
        [] => train,
        names => {
            let ids = names
                .iter()
                .map(|name| train.instance_named(name))
                .collect::<Result<Vec<_>>>()?;
            train.subset(None, Some(&ids))?
        }
    };
    // A class of one picture can be a support, but gives a batch no pair to learn from.
    let paired = train.subset_classes(|c| train.images_of_class(c).len() >= 2)?;
    if paired.num_classes() < train.num_classes() {
        eprintln!(
            "leaving {} classes with a single picture out of training",
            train.num_classes() - paired.num_classes()
        );
    }
    let train = paired;
    // Validation trials on the groups with enough held-out classes.
    let validation_groups: Vec<&str> = (0..validation.num_groups())
        .filter(|&g| validation.classes_of_group(g).len() >= args.n_way)
        .map(|g| validation.group_names()[g].as_str())
        .collect();
    if validation_groups.is_empty() {
        return Err(Error::invalid(
            "validation_share",
            format!(
                "no training group holds {} validation classes: raise the share or lower --n-way",
                args.n_way
            ),
        ));
    }
    let validation_episodes = KochProtocolConfig::new()
        .with_n_way(args.n_way)
        .with_runs_per_alphabet(args.validation_trials.div_ceil(args.n_way).max(1))
        .with_seed(args.seed + 1_000)
        .episodes(&validation, Some(&validation_groups))?;
    let config = training_config(args, model, args.groups.min(train.num_groups()));
    eprintln!(
        "training on {} pictures of {} classes ({} groups, instances {}); validation: {} \
         {}-way trials on held-out classes of {} groups",
        train.len(),
        train.num_classes(),
        train.num_groups(),
        train
            .instances()
            .iter()
            .map(|&i| train.instance_name(i))
            .collect::<Vec<_>>()
            .join(", "),
        validation_episodes
            .iter()
            .map(Episode::n_queries)
            .sum::<usize>(),
        args.n_way,
        validation_groups.len()
    );
    let started = Instant::now();
    let mut trainer = Trainer::new(config, train, validation_episodes.clone(), device)?
        .with_devices(devices)?
        .with_epoch_weights(args.average_last > 0);
    if let Some(init) = init {
        trainer = trainer.with_model(init)?;
    }
    let outcome = trainer.fit()?;
    eprintln!(
        "trained {} epochs in {:.1} min; validation picked epoch {} ({:.1}%)",
        outcome.history.len(),
        started.elapsed().as_secs_f64() / 60.0,
        outcome.best_epoch + 1,
        100.0 * outcome.best_accuracy
    );
    if args.average_last == 0 {
        return Ok(outcome.model);
    }
    let epochs = outcome.history.len();
    let first = epochs.saturating_sub(args.average_last);
    let dir = args.out.join("training");
    let models = (first..epochs)
        .map(|e| Siamese::load(dir.join(siamese::train::epoch_weights(e)), device))
        .collect::<Result<Vec<_>>>()?;
    let mean = Siamese::average(&models)?;
    let accuracy = EvaluatorConfig::new()
        .init()?
        .evaluate(
            &SiameseScorer::new(&mean.clone().valid()),
            &validation_episodes,
        )?
        .accuracy();
    let keep = accuracy > outcome.best_accuracy;
    eprintln!(
        "mean of epochs {}-{epochs}: validation {:.1}% against {:.1}% for the best epoch; \
         keeping {}",
        first + 1,
        100.0 * accuracy,
        100.0 * outcome.best_accuracy,
        if keep { "the mean" } else { "the best epoch" }
    );
    Ok(if keep { mean } else { outcome.model })
}

/// The training run: the episode loss on grouped batches of `--classes` classes × 2
/// pictures from `groups` groups, Adam, Koch's distortions.
fn training_config(args: &Args, model: SiameseConfig, groups: usize) -> TrainingConfig {
    let batch = GroupedBatchConfig::new()
        .with_characters(args.classes)
        .with_drawings(2)
        .with_alphabets(groups)
        .with_mirrors(args.mirrors.then_some(true))
        .with_flips(args.flips.then_some(true));
    TrainingConfig::new(model)
        .with_optimizer(OptimizerConfig::adam())
        .with_loss(Some(LossConfig::Episode {
            batch,
            all_pairs_weight: 0.1,
        }))
        .with_epochs(args.epochs)
        .with_pairs_per_epoch(args.pairs_per_epoch)
        .with_seed(args.seed)
        .with_distortions(!args.no_distortions)
        .with_patience(args.epochs)
        .with_checkpoint_steps(Some(50))
        .with_output_dir(args.out.join("training").display().to_string())
}

fn row(name: &str, result: &Evaluation) {
    println!(
        "| {:<40} | {:>5.1}% | {:<15} | {:>7.2} s |",
        name,
        100.0 * result.accuracy(),
        result.interval().to_string(),
        result.elapsed.as_secs_f64()
    );
}

/// The trained network's accuracy group by group.
fn per_group(episodes: &[Episode], result: &Evaluation, groups: &[&str]) {
    for group in groups {
        let prefix = format!("{group}/");
        let (mut right, mut total) = (0, 0);
        for (episode, outcome) in episodes.iter().zip(&result.episodes) {
            if episode.class_names()[0].starts_with(&prefix) {
                total += outcome.labels.len();
                right += outcome.correct();
            }
        }
        println!(
            "  {group}: {:.1}% of {total} queries",
            100.0 * right as f64 / total.max(1) as f64
        );
    }
}
