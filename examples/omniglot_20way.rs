//! The main job: 20-way one-shot classification of Omniglot characters from alphabets the
//! network never saw.
//!
//! ```text
//! cargo run --release --example omniglot_20way                 # the shipped compact model
//! cargo run --release --example omniglot_20way -- --download   # fetch the data set once
//! cargo run --release --example omniglot_20way -- --train      # train one (about 6.5 min on 2 cores)
//! ```
//!
//! Without `--train` it evaluates a trained network (the compact one shipped in the crate,
//! or `--weights PATH`) on the 20 official runs of Lake et al. (`all_runs.zip`, built into
//! the crate) and, when the data folder has `images_evaluation`, on Koch's protocol (400
//! seeded 20-way trials on the same 10 alphabets); it runs the pixel nearest-neighbour and
//! modified-Hausdorff baselines on the same trials, and prints one table. The data folder
//! is `--data`, else `$OMNIGLOT_DIR`, else the per-user cache that `--download` fills. It writes `learning_curve.png` (the model's training history) and
//! `episodes.png` (solved and missed trials) to `--out`.
//!
//! With `--train` it first trains a network on `images_background` (30 alphabets), choosing
//! the epoch by one-shot accuracy on the 10 evaluation alphabets that the official runs do
//! not use, then evaluates it the same way. The compact network trains with the N-way
//! episode loss by default (`--loss pairs` gives Koch's recipe; the README's "Training
//! recipes" compares them at equal wall time).

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use clap::{Parser, ValueEnum};
use siamese::data::{
    DistortionConfig, EVALUATION_OTHER_ALPHABETS, EVALUATION_RUN_ALPHABETS, GroupedBatchConfig,
    ImageSet, OMNIGLOT_DIR, Omniglot, Part, download, download_to_cache,
};
use siamese::eval::{
    Episode, EpisodeSheetConfig, Evaluation, EvaluatorConfig, KochProtocolConfig, LakeRuns,
    ModifiedHausdorff, PixelNearestNeighbour, SiameseScorer,
};
use siamese::train::{
    LossConfig, LrSchedule, OptimizerConfig, Trainer, TrainingConfig, epoch_weights,
};
use siamese::{Error, Result, Siamese, SiameseConfig};

mod common;

#[derive(Parser, Debug)]
#[command(about = "20-way one-shot Omniglot with a Siamese network (Koch et al. 2015)")]
struct Args {
    /// The Omniglot folder (the official zips or their extracted folders). Default:
    /// $OMNIGLOT_DIR, then the download cache. Without any, the shipped network is
    /// evaluated on the official runs built into the crate.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Download images_background and images_evaluation (`--download all`: the two small
    /// background sets too, which the tests read) into --data, or into the per-user cache
    /// folder, unless they are there already; then run as usual.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "main")]
    download: Option<Download>,
    /// Network to train (with --train).
    #[arg(long, value_enum, default_value_t = Preset::Compact)]
    preset: Preset,
    /// Backend: flex, ndarray, wgpu or cuda (those compiled in), with a GPU's index where
    /// there are several (`cuda:1`). A comma-separated list trains on every device named
    /// (`cuda:0,cuda:1`: one whole batch each a step; evaluation on the first).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Train a network from scratch instead of evaluating trained weights.
    #[arg(long)]
    train: bool,
    /// Continue the training run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// Epochs to train (default: 12 with the episode loss, under 10 minutes of compact
    /// training on 2 cores; 4 with all pairs; 5 for compact with pairs; 200 for koch with
    /// pairs).
    #[arg(long)]
    epochs: Option<usize>,
    /// Pairs drawn per epoch; grouped losses encode as many images (twice this) an epoch.
    /// Default: 8,000 with a grouped loss (about 35 s of compact training on 2 cores),
    /// 30,000 with pairs.
    #[arg(long)]
    pairs_per_epoch: Option<usize>,
    /// The loss (default: episode for compact, Koch's pairs for koch).
    #[arg(long, value_enum)]
    loss: Option<Loss>,
    /// Grouped losses: characters in a batch (the N of its N-way episodes).
    #[arg(long, default_value_t = 32)]
    characters: usize,
    /// Grouped losses: drawings of each character in a batch (at least 2).
    #[arg(long, default_value_t = 2)]
    drawings: usize,
    /// Grouped losses: alphabets the characters of a batch come from.
    #[arg(long, default_value_t = 2)]
    alphabets: usize,
    /// Grouped losses: train on upright characters only. By default every character is
    /// also drawn turned by 90, 180 and 270 degrees, each as a character of its own (four
    /// times the characters; 1.5-2 points of validation over 14 epochs, see the README).
    #[arg(long)]
    upright: bool,
    /// Grouped losses: the quarter turns, now the default (kept so that older commands
    /// run unchanged).
    #[arg(long, hide = true, conflicts_with = "upright")]
    quarter_turns: bool,
    /// Grouped losses: also train on every character mirrored left to right, as a
    /// character of its own (twice the characters; with the turns, 8 poses of each).
    #[arg(long)]
    mirrors: bool,
    /// The episode loss: weight of the balanced all-pairs loss added to it (it alone
    /// trains the head's bias, keeping the sigmoid a probability).
    #[arg(long, default_value_t = 0.1)]
    all_pairs_weight: f64,
    /// Pairs per step with the pair loss (default: 32 for compact, 128 for koch).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimiser (default: adam for compact, Koch's SGD for koch).
    #[arg(long, value_enum)]
    optimizer: Option<Optimizer>,
    /// Learning rate of the first epoch (default: the optimiser's).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Learning-rate factor per epoch.
    #[arg(long)]
    lr_decay: Option<f64>,
    /// Also lower the rate step by step along half a cosine, to 0 at the run's end.
    #[arg(long)]
    cosine: bool,
    /// L2 penalty on every weight (default: the optimiser's, 1e-5 for Adam).
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Train without Koch's affine distortions.
    #[arg(long)]
    no_distortions: bool,
    /// Where different-character pairs come from: one alphabet (the hard negatives that
    /// one-shot trials are made of; better after 5 epochs, see the README) or any two.
    #[arg(long, value_enum, default_value_t = Negatives::SameAlphabet)]
    negatives: Negatives,
    /// With --train: Koch-protocol runs per validation alphabet after each epoch (20
    /// trials each, 10 alphabets: 4 gives 800 trials). On a long run whose curve is flat,
    /// 800 trials (about ±1.5 points) pick among epochs by chance; 20 (4,000 trials) cost
    /// about 2 s more an epoch for the compact network.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=20))]
    validation_runs: u16,
    /// Epochs without validation gain before stopping.
    #[arg(long, default_value_t = 20)]
    patience: usize,
    /// Seed of the weights, the training pairs and Koch's protocol trials.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output folder: training run, learning curve and episode sheet.
    #[arg(long, default_value = "runs/omniglot_20way")]
    out: PathBuf,
    /// Trained weights to evaluate (a .bpk with its .json beside it).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// With --train: start from these weights (a .bpk with its .json beside it, of the
    /// network trained: the preset's or --model's) instead of a fresh initialisation, to
    /// fine-tune with other settings.
    #[arg(long)]
    init: Option<PathBuf>,
    /// With --train: the network to train, a `SiameseConfig` JSON (as saved beside
    /// weights), instead of the preset's; the preset still sets the other defaults.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Test-time views: each embedding is the mean over the image and this many Koch
    /// distortions of it (seeded by --seed). 0, the default, is the plain network; at most
    /// 64 (each view costs one more encoder pass of every image).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    views: u16,
    /// With --train: keep every epoch's weights in the training folder (epoch-001.bpk, ...)
    /// to evaluate the run at every point afterwards.
    #[arg(long)]
    keep_epochs: bool,
    /// With --train: write the checkpoint every this many steps within an epoch too, so
    /// that a run killed mid-epoch resumes (--resume) from there (default: 50 for compact,
    /// about 25 s on 2 cores; 500 for koch).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_steps: Option<u64>,
    /// With --train: train on the 10 validation alphabets too (40 alphabets in all), for a
    /// number of epochs chosen beforehand by a run without this flag. Validation then
    /// measures alphabets seen in training, so it chooses nothing: the last epoch is kept
    /// (written as epoch-NNN.bpk like --keep-epochs) and evaluated.
    #[arg(long)]
    with_validation_alphabets: bool,
    /// Skip the baselines (pixel nearest neighbour, modified Hausdorff).
    #[arg(long)]
    no_baselines: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Preset {
    /// 52x52 input, 4 conv blocks with batch norm, 384-d embedding: trains on a CPU.
    Compact,
    /// The paper's 105x105 network (38.9 M parameters): meant for a GPU.
    Koch,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Negatives {
    /// Two characters of one alphabet.
    SameAlphabet,
    /// Two characters drawn from all of them, mostly of different alphabets.
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Loss {
    /// Koch's: binary cross-entropy on same / different pairs.
    Pairs,
    /// Binary cross-entropy over every pair of a grouped batch, positives and negatives
    /// weighted equally.
    AllPairs,
    /// Every drawing of a grouped batch is the query of an N-way episode against the
    /// batch's other drawings: softmax cross-entropy over its logits.
    Episode,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Download {
    /// images_background and images_evaluation.
    Main,
    /// Those and images_background_small1 and _small2.
    All,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Optimizer {
    /// Adam, learning rate 1e-3.
    Adam,
    /// Koch's SGD with momentum rising from 0.5 to 0.9, learning rate 0.01.
    Sgd,
}

/// What the table and log call the network trained: the preset or the `--model` file.
fn network_name(args: &Args) -> String {
    match &args.model {
        Some(path) => path.display().to_string(),
        None => format!("{:?}", args.preset),
    }
}

fn training_config(args: &Args) -> Result<TrainingConfig> {
    let (model, loss, optimizer) = match args.preset {
        Preset::Compact => (SiameseConfig::compact(), Loss::Episode, Optimizer::Adam),
        Preset::Koch => (SiameseConfig::koch(), Loss::Pairs, Optimizer::Sgd),
    };
    let loss = args.loss.unwrap_or(loss);
    let batch = GroupedBatchConfig::new()
        .with_characters(args.characters)
        .with_drawings(args.drawings)
        .with_alphabets(args.alphabets)
        .with_quarter_turns((args.quarter_turns || !args.upright).then_some(true))
        .with_mirrors(args.mirrors.then_some(true));
    let (loss, epochs, pairs_per_epoch, batch_size) = match (loss, args.preset) {
        (Loss::Pairs, Preset::Compact) => (LossConfig::Pairs, 5, 30_000, 32),
        (Loss::Pairs, Preset::Koch) => (LossConfig::Pairs, 200, 30_000, 128),
        (Loss::AllPairs, _) => (
            LossConfig::AllPairs {
                batch,
                positive_share: 0.5,
            },
            4,
            8_000,
            32,
        ),
        (Loss::Episode, _) => (
            LossConfig::Episode {
                batch,
                all_pairs_weight: args.all_pairs_weight,
            },
            12,
            8_000,
            32,
        ),
    };
    let model = match &args.model {
        Some(path) => SiameseConfig::read(path)?,
        None => model,
    };
    let optimizer = match args.optimizer.unwrap_or(optimizer) {
        Optimizer::Adam => OptimizerConfig::adam(),
        Optimizer::Sgd => OptimizerConfig::koch(),
    }
    .with_schedule(args.learning_rate, args.lr_decay)
    .with_weight_decay(args.weight_decay);
    Ok(TrainingConfig::new(model)
        .with_optimizer(optimizer)
        .with_schedule(args.cosine.then(LrSchedule::cosine))
        .with_loss(Some(loss))
        .with_epochs(args.epochs.unwrap_or(epochs))
        .with_pairs_per_epoch(args.pairs_per_epoch.unwrap_or(pairs_per_epoch))
        .with_batch_size(args.batch_size.unwrap_or(batch_size))
        .with_seed(args.seed)
        .with_distortions(!args.no_distortions)
        .with_same_alphabet_negatives(args.negatives == Negatives::SameAlphabet)
        .with_patience(args.patience)
        .with_checkpoint_steps(Some(args.checkpoint_steps.unwrap_or(match args.preset {
            Preset::Compact => 50,
            Preset::Koch => 500,
        }) as usize))
        .with_output_dir(args.out.join("training").display().to_string()))
}

/// Trains (or resumes) on images_background, validating on the evaluation alphabets that
/// the official runs do not use.
fn train(args: &Args, omniglot: &Omniglot, devices: &[burn::tensor::Device]) -> Result<Siamese> {
    let device = &devices[0];
    let config = training_config(args)?;
    eprintln!("loading images_background and the validation alphabets ...");
    let evaluation = omniglot.evaluation()?;
    let background = match args.with_validation_alphabets {
        false => omniglot.background()?,
        true => ImageSet::union(
            "images_background + validation alphabets",
            &[
                &omniglot.background()?,
                &evaluation.subset(Some(&EVALUATION_OTHER_ALPHABETS), None)?,
            ],
        )?,
    };
    let validation = KochProtocolConfig::new()
        .with_runs_per_alphabet(usize::from(args.validation_runs))
        .with_seed(1_000)
        .episodes(&evaluation, Some(&EVALUATION_OTHER_ALPHABETS))?;
    if args.with_validation_alphabets {
        eprintln!(
            "training on the validation alphabets too: their figures below measure alphabets \
             seen in training and choose nothing; the last epoch is kept"
        );
    }
    eprintln!(
        "training {} with the {} loss on {} images of {} characters ({} alphabets{}); validation: {} \
         20-way trials on {} other evaluation alphabets; output in {}",
        network_name(args),
        config.loss().name(),
        background.len(),
        background.num_classes(),
        background.num_groups(),
        match config.loss().batch().map_or(1, GroupedBatchConfig::poses) {
            1 => String::new(),
            poses => format!(", each character in {poses} poses"),
        },
        validation.iter().map(Episode::n_queries).sum::<usize>(),
        EVALUATION_OTHER_ALPHABETS.len(),
        config.output_dir
    );
    let started = Instant::now();
    let output_dir = PathBuf::from(&config.output_dir);
    let mut trainer = Trainer::new(config, background, validation, device)?
        .with_devices(devices)?
        .with_epoch_weights(args.keep_epochs || args.with_validation_alphabets);
    if let Some(init) = &args.init {
        trainer = trainer.with_model(Siamese::load(init, device)?)?;
    }
    let outcome = if args.resume {
        trainer.resume()?
    } else {
        trainer.fit()?
    };
    eprintln!(
        "trained {} epochs in {:.1} min; best validation one-shot accuracy {:.1}% (epoch {}){}",
        outcome.history.len(),
        started.elapsed().as_secs_f64() / 60.0,
        100.0 * outcome.best_accuracy,
        outcome.best_epoch + 1,
        if outcome.stopped_early {
            ", stopped early"
        } else {
            ""
        }
    );
    if args.with_validation_alphabets {
        let last = output_dir.join(epoch_weights(outcome.history.len() - 1));
        eprintln!("keeping the last epoch: {}", last.display());
        return Siamese::load(&last, device);
    }
    Ok(outcome.model)
}

/// The data folder by the crate's rule (`--data`, `$OMNIGLOT_DIR`, the download cache),
/// downloaded first with `--download`; `None` when nothing was named and nothing is cached,
/// which the flag-less evaluation can do without (training cannot: then it is an error).
fn omniglot(args: &Args) -> Result<Option<Omniglot>> {
    if let Some(which) = args.download {
        let parts = match which {
            Download::Main => &[Part::Background, Part::Evaluation][..],
            Download::All => &Part::ALL[..],
        };
        eprintln!("downloading the Omniglot parts that are not there yet ...");
        let omniglot = match &args.data {
            Some(dir) => download(dir, parts)?,
            None => download_to_cache(parts)?,
        };
        eprintln!("Omniglot in {}", omniglot.root().display());
        return Ok(Some(omniglot));
    }
    let optional = !(args.train || args.resume)
        && args.data.is_none()
        && std::env::var_os(OMNIGLOT_DIR).is_none_or(|v| v.is_empty());
    match Omniglot::find(args.data.as_deref()) {
        Ok(omniglot) => Ok(Some(omniglot)),
        Err(Error::NoData { .. }) if optional => Ok(None),
        Err(e) => Err(e),
    }
}

fn row(name: &str, source: &str, result: &Evaluation) {
    println!(
        "| {:<34} | {:<14} | {:>5.1}% | {:<15} | {:>7.2} s |",
        name,
        source,
        100.0 * result.accuracy(),
        result.interval().to_string(),
        result.elapsed.as_secs_f64()
    );
}

fn main() -> std::process::ExitCode {
    common::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.init.is_some() && (!args.train || args.resume) {
        return Err(Error::invalid(
            "init",
            "starts a training run: use it with --train, not alone or with --resume",
        ));
    }
    if args.model.is_some() && !(args.train || args.resume) {
        return Err(Error::invalid(
            "model",
            "sets the network to train: use it with --train or --resume",
        ));
    }
    // Settings are checked before any data is read or written.
    if args.train || args.resume {
        training_config(&args)?.validate()?;
        // What the data offers is known before it is read: images_background holds 30
        // alphabets (and the validation alphabets 10 more).
        let alphabets = if args.with_validation_alphabets {
            40
        } else {
            30
        };
        if args.alphabets > alphabets {
            return Err(siamese::Error::invalid(
                "alphabets",
                format!(
                    "{} is more than the {alphabets} alphabets training draws from",
                    args.alphabets
                ),
            ));
        }
        let checkpoint = siamese::train::checkpoint_path(&args.out.join("training"));
        if args.resume && !checkpoint.is_file() {
            return Err(siamese::Error::invalid(
                "resume",
                format!(
                    "there is no checkpoint at {} to resume: --resume continues the run \
                     that --out names",
                    checkpoint.display()
                ),
            ));
        }
    }
    let devices = siamese::device::by_names(&args.device)?;
    let device = devices[0].clone();
    let out = common::OutDir::prepare(
        &args.out,
        &["episodes.png", "learning_curve.png", "training/"],
    )?;
    let started = Instant::now();
    let omniglot = omniglot(&args)?;

    let (model, name, history) = if args.train || args.resume {
        let omniglot = omniglot
            .as_ref()
            .expect("training requires the data folder");
        let model = train(&args, omniglot, &devices)?;
        let history = siamese::train::read_csv(&args.out.join("training/history.csv"))?;
        (
            model,
            format!("{} (trained now)", network_name(&args)),
            history,
        )
    } else if let Some(weights) = &args.weights {
        let model = Siamese::load(weights, &device)?;
        // A history saved beside the weights (`NAME-history.csv`) gives the learning curve.
        let history_path = weights.with_file_name(format!(
            "{}-history.csv",
            weights.file_stem().unwrap_or_default().to_string_lossy()
        ));
        let history = if history_path.exists() {
            siamese::train::read_csv(&history_path)?
        } else {
            Vec::new()
        };
        (model, weights.display().to_string(), history)
    } else {
        let model = siamese::pretrained::compact(&device)?;
        let history = siamese::pretrained::compact_history()?;
        (model, "compact (shipped weights)".to_string(), history)
    };
    let model = model.valid();

    let runs = LakeRuns::official()?;
    let koch = match &omniglot {
        Some(omniglot) => KochProtocolConfig::new()
            .with_seed(args.seed)
            .episodes(&omniglot.evaluation()?, Some(&EVALUATION_RUN_ALPHABETS))?,
        None => Vec::new(),
    };
    let evaluator = EvaluatorConfig::new().init()?;
    let scorer = SiameseScorer::new(&model)
        .with_views(DistortionConfig::koch().views(usize::from(args.views), args.seed));
    let name = match args.views {
        0 => name,
        n => format!("{name}, {n} views"),
    };
    let on_runs = evaluator.evaluate(&scorer, runs.episodes())?;
    let on_koch = (!koch.is_empty())
        .then(|| evaluator.evaluate(&scorer, &koch))
        .transpose()?;
    let mut sources: Vec<(&str, &[Episode])> = vec![("official runs", runs.episodes())];
    if !koch.is_empty() {
        sources.push(("Koch protocol", &koch));
    }

    println!();
    println!(
        "20-way one-shot accuracy (95% Wilson interval; {} trials in the official runs{})",
        on_runs.total(),
        match &on_koch {
            Some(on_koch) => format!(", {} in Koch's protocol", on_koch.total()),
            None => String::new(),
        }
    );
    println!();
    println!(
        "| {:<34} | {:<14} | {:>6} | {:<15} | {:>9} |",
        "method", "trials", "acc", "95% interval", "time"
    );
    println!(
        "|{:-<36}|{:-<16}|{:-<8}|{:-<17}|{:-<11}|",
        "", "", "", "", ""
    );
    row(&name, "official runs", &on_runs);
    if let Some(on_koch) = &on_koch {
        row(&name, "Koch protocol", on_koch);
    }
    if !args.no_baselines {
        for &(label, episodes) in &sources {
            row(
                "pixel nearest neighbour",
                label,
                &evaluator.evaluate(&PixelNearestNeighbour, episodes)?,
            );
            row(
                "modified Hausdorff (Lake et al.)",
                label,
                &evaluator.evaluate(&ModifiedHausdorff, episodes)?,
            );
        }
    }
    println!(
        "| {:<34} | {:<14} | {:>5.1}% | {:<15} | {:>9} |",
        "Koch et al. 2015 (quoted)", "Koch protocol", 92.0, "not measured", "-"
    );
    println!(
        "| {:<34} | {:<14} | {:>5.1}% | {:<15} | {:>9} |",
        "people, Lake et al. 2015 (quoted)", "official runs", 95.5, "not measured", "-"
    );
    println!();
    match on_koch {
        Some(_) => println!(
            "Koch protocol: 2 runs x 10 alphabets x 20 trials, seed {}",
            args.seed
        ),
        None => println!(
            "Koch protocol: needs images_evaluation, which is not here; \
             `cargo run --release --example omniglot_20way -- --download` fetches it"
        ),
    }

    if !history.is_empty() {
        let path = out.path().join("learning_curve.png");
        siamese::train::plot_learning_curve(&history, &format!("{name}: training history"), &path)?;
        println!("wrote {}", path.display());
    }
    let path = out.path().join("episodes.png");
    EpisodeSheetConfig::new().init()?.save(
        runs.episodes(),
        &on_runs,
        &format!(
            "{name}, official runs: {:.1}% of {} 20-way trials",
            100.0 * on_runs.accuracy(),
            on_runs.total()
        ),
        &path,
    )?;
    println!("wrote {}", path.display());
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
