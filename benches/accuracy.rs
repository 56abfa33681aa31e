//! Prints how much each training recipe gets out of little data (issue #14 item 6): every
//! recipe is trained on the real Quick, Draw! sample (16 classes, 709 drawings) for each seed,
//! with the product's class-stratified split (a quarter held out; the sample has no players,
//! so each drawing is its own group), and measured on the held-out drawings through the
//! product's [`Classifier`]. One row per recipe: mean accuracy, the accuracy of each seed,
//! the pooled Wilson 95 % interval, the weakest classes and the single-drawing classify p50.
//! An ensemble row (`xK`) trains K models per seed on that seed's split, with different
//! training seeds, and averages their probabilities (its p50 covers all K). A `pretrained+`
//! row starts every layer but the output layer from one wide net trained first on generated
//! doodles (the five default shapes and scribbles; a line says its cost, apart from the
//! rows' fine-tuning cost). No assertions.
//!
//! `cargo bench --bench accuracy`; `DOODLEBOX_QUICKDRAW_DIR` (default `../shared/quickdraw`),
//! `DOODLEBOX_ACCURACY_SEEDS` (default `1,2,3`), `DOODLEBOX_ACCURACY_RECIPES` (names, comma
//! separated; default all), `DOODLEBOX_ACCURACY_THREADS` (torch threads per run, default 1),
//! `DOODLEBOX_ACCURACY_CLASSES` (class names, comma separated, default octagon, squiggle,
//! moon and hexagon: each row is followed by a line with their pooled right answers).
//! Without the sample it says so and prints nothing else. The data is read in place.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use doodlebox::jobs::{JobConfig, JobConfigInput};
use doodlebox::ml::artifact;
use doodlebox::ml::augment::{augment, AugmentParams};
use doodlebox::ml::classifier::Classifier;
use doodlebox::ml::dataset::{self, Dataset, Sample};
use doodlebox::ml::evaluation::wilson_interval;
use doodlebox::ml::geometry::FeatureSet;
use doodlebox::ml::net::Architecture;
use doodlebox::ml::raster::RasterStyle;
use doodlebox::ml::synth;
use doodlebox::ml::train::{self, Hooks, TrainConfig};
use doodlebox::ml::types::LrSchedule;
use doodlebox::transfer::quickdraw::QuickDrawRecord;

/// Share of each class held out for validation (the earlier runs' figure).
const VALIDATION_FRACTION: f64 = 0.25;

/// Single-drawing classifications timed per recipe for the latency p50.
const LATENCY_DRAWINGS: usize = 100;

/// Augmented copies of a drawing classified with it under test-time augmentation.
const TTA_COPIES: usize = 4;

/// Classes whose pooled right answers follow each row unless `DOODLEBOX_ACCURACY_CLASSES`
/// says otherwise: the geometric ones, the weakest so far.
const WATCHED_CLASSES: &str = "octagon,squiggle,moon,hexagon";

/// Classes listed as the weakest in a row.
const WEAKEST: usize = 3;

/// How strongly test-time augmentation varies a drawing: milder than training's.
const TTA_PARAMS: AugmentParams = AugmentParams {
    max_rotation_deg: 8.0,
    max_scale: 0.08,
    max_shear: 0.08,
    jitter: 0.0,
    stroke_drop: 0.0,
};

/// One way to train and classify.
struct Recipe {
    /// Short name, for the table and `DOODLEBOX_ACCURACY_RECIPES`.
    name: &'static str,
    /// The training configuration for a seed and the number of drawings.
    config: fn(u64, usize) -> TrainConfig,
    /// Whether to measure the same models again with test-time augmentation (a second row,
    /// `+tta4`: [`TTA_COPIES`] augmented copies averaged with the drawing itself).
    tta: bool,
    /// Models trained per seed, all on that seed's split, and their probabilities averaged
    /// (an ensemble when above 1): member `k` trains with seed `seed + ENSEMBLE_SEED_STEP *
    /// k`, so member 0 is the recipe's single model.
    members: u64,
    /// Whether training starts from the network pretrained on generated doodles (see
    /// [`pretrain`]) instead of random weights: every layer but the output layer.
    pretrained: bool,
}

/// Distance between the training seeds of an ensemble's members (their split seed is the
/// row's seed).
const ENSEMBLE_SEED_STEP: u64 = 1000;

/// The product's default for a job on collected drawings, with the benchmark's split.
fn product_default(seed: u64) -> TrainConfig {
    TrainConfig {
        seed,
        validation_fraction: VALIDATION_FRACTION,
        ..TrainConfig::default()
    }
}

/// What the real-data test and the earlier attempt started from: 40 epochs of batch 32.
fn long(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 40,
        batch_size: 32,
        ..product_default(seed)
    }
}

/// Stronger stroke-level augmentation (what a small collection's job now trains with).
fn strong_augment() -> AugmentParams {
    AugmentParams::STRONG
}

fn long_strong(seed: u64) -> TrainConfig {
    TrainConfig {
        augment_params: strong_augment(),
        ..long(seed)
    }
}

/// Many more epochs: the strong augmentation keeps showing new variants.
fn longer_strong(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 120,
        ..long_strong(seed)
    }
}

fn long_strong_40px(seed: u64) -> TrainConfig {
    TrainConfig {
        image_size: 40,
        ..long_strong(seed)
    }
}

/// Cosine decay, label smoothing and weight decay on top of the strong augmentation.
fn regularised(seed: u64) -> TrainConfig {
    TrainConfig {
        lr_schedule: LrSchedule::Cosine,
        label_smoothing: 0.1,
        weight_decay: 0.05,
        ..long_strong(seed)
    }
}

fn regularised_wide(seed: u64) -> TrainConfig {
    TrainConfig {
        architecture: Architecture::Wide,
        ..regularised(seed)
    }
}

/// What a training job on collected drawings that leaves everything out now trains: on a
/// small collection the epochs raised (120 for the sample since 2026-12-03 11:00, 113
/// before) with the small-collection recipe (strong augmentation, cosine decay, label
/// smoothing, weight decay, batch 32; since 2026-12-03 10:30 also the geometric features and
/// no point jitter), on the wide net.
fn job_default(seed: u64, drawings: usize) -> TrainConfig {
    job_asking(JobConfigInput::default(), true, seed, drawings)
}

/// What such a job trained until 2026-12-03 (a job stored then): the default settings with
/// the epochs raised, on the wide net, without the small-collection recipe.
fn job_default_before_recipe(seed: u64, drawings: usize) -> TrainConfig {
    job_asking(JobConfigInput::default(), false, seed, drawings)
}

/// What such a job trained when it asked for the small net, before the small-collection
/// recipe (the job default before the wide net became it).
fn job_default_small(seed: u64, drawings: usize) -> TrainConfig {
    let input = JobConfigInput {
        architecture: Some(Architecture::Small),
        ..JobConfigInput::default()
    };
    job_asking(input, false, seed, drawings)
}

/// What a job with the request `input` trains on `drawings` drawings, with the benchmark's
/// seed and split; `recipe`: whether it was queued with the small-collection recipe (false:
/// as jobs stored before it existed).
fn job_asking(input: JobConfigInput, recipe: bool, seed: u64, drawings: usize) -> TrainConfig {
    // The requests above are valid: the product's own tests parse them.
    let job = JobConfig {
        small_collection_recipe: recipe,
        ..JobConfig::parse(input).expect("the job request is valid")
    };
    TrainConfig {
        seed,
        validation_fraction: VALIDATION_FRACTION,
        ..job.train_config_for(drawings)
    }
}

/// The regularised recipe for as many epochs as the longest run.
fn longer_regularised(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 120,
        ..regularised(seed)
    }
}

/// The longest recipe on the wide net.
fn longer_strong_wide(seed: u64) -> TrainConfig {
    TrainConfig {
        architecture: Architecture::Wide,
        ..longer_strong(seed)
    }
}

/// The longest regularised recipe on the wide net.
fn longer_regularised_wide(seed: u64) -> TrainConfig {
    TrainConfig {
        architecture: Architecture::Wide,
        ..longer_regularised(seed)
    }
}

/// The best single recipe drawn in `raster` (issue 14 item 6: what the net sees).
fn longer_regularised_wide_drawn(seed: u64, raster: RasterStyle) -> TrainConfig {
    TrainConfig {
        raster,
        ..longer_regularised_wide(seed)
    }
}

/// The best single recipe reading the strokes' geometric features beside its image (issue
/// 14 item 6: what the 28 px raster loses).
fn longer_regularised_wide_geometry(seed: u64) -> TrainConfig {
    TrainConfig {
        geometry: Some(FeatureSet::StrokesV1),
        ..longer_regularised_wide(seed)
    }
}

/// The same on the small net.
fn longer_regularised_geometry(seed: u64) -> TrainConfig {
    TrainConfig {
        geometry: Some(FeatureSet::StrokesV1),
        ..longer_regularised(seed)
    }
}

/// The strong augmentation without its point jitter: jitter of 2 % of the larger side on
/// every point turns the fine geometry of a training drawing into noise (corners, turns, ink
/// length) that the drawings classified later do not have, so the geometric features of
/// training and of validation drawings differ (the finest corner-count feature averages 0.33
/// over the sample as drawn, 0.80 augmented); the raster hardly sees it.
fn without_jitter(config: TrainConfig) -> TrainConfig {
    TrainConfig {
        augment_params: AugmentParams {
            jitter: 0.0,
            ..config.augment_params
        },
        ..config
    }
}

/// The 40-epoch regularised recipe on the small net with the geometric features: a quick
/// look (about a minute a seed).
fn regularised_geometry(seed: u64) -> TrainConfig {
    TrainConfig {
        geometry: Some(FeatureSet::StrokesV1),
        ..regularised(seed)
    }
}

/// Strokes `fraction` of the side wide (the default is 8 %), one channel.
fn thin(fraction: f32) -> RasterStyle {
    RasterStyle {
        stroke_width_fraction: fraction,
        ..RasterStyle::default()
    }
}

/// The default strokes with the drawing order as a second channel.
fn ordered() -> RasterStyle {
    RasterStyle {
        order_channel: true,
        ..RasterStyle::default()
    }
}

/// The product's ten epochs of batch 64 with the regularisation, on the small net.
fn default_regularised(seed: u64) -> TrainConfig {
    TrainConfig {
        architecture: Architecture::Small,
        ..default_improved(seed)
    }
}

/// The product's ten epochs of batch 64 with everything that does not cost more epochs.
fn default_improved(seed: u64) -> TrainConfig {
    TrainConfig {
        augment_params: strong_augment(),
        lr_schedule: LrSchedule::Cosine,
        label_smoothing: 0.1,
        weight_decay: 0.05,
        architecture: Architecture::Wide,
        ..product_default(seed)
    }
}

fn recipes() -> Vec<Recipe> {
    vec![
        Recipe {
            name: "default",
            config: |seed, _| product_default(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long",
            config: |seed, _| long(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long+strong",
            config: |seed, _| long_strong(seed),
            tta: true,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long+strong@40px",
            config: |seed, _| long_strong_40px(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long+strong+cos+ls+wd",
            config: |seed, _| regularised(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long+strong+cos+ls+wd+wide",
            config: |seed, _| regularised_wide(seed),
            tta: true,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong",
            config: |seed, _| longer_strong(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd",
            config: |seed, _| longer_regularised(seed),
            tta: true,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+wide",
            config: |seed, _| longer_strong_wide(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide",
            config: |seed, _| longer_regularised_wide(seed),
            tta: true,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "job default@small",
            config: job_default_small,
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "job default@2026-12-03",
            config: job_default_before_recipe,
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "job default",
            config: job_default,
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "default+strong+cos+ls+wd",
            config: |seed, _| default_regularised(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "default+strong+cos+ls+wd+wide",
            config: |seed, _| default_improved(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd x3",
            config: |seed, _| longer_regularised(seed),
            tta: true,
            members: 3,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide+thin5",
            config: |seed, _| longer_regularised_wide_drawn(seed, thin(0.05)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide+thin3.5",
            config: |seed, _| longer_regularised_wide_drawn(seed, thin(0.035)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide+order",
            config: |seed, _| longer_regularised_wide_drawn(seed, ordered()),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "long+strong+cos+ls+wd+geo",
            config: |seed, _| regularised_geometry(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+geo",
            config: |seed, _| longer_regularised_geometry(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide+geo",
            config: |seed, _| longer_regularised_wide_geometry(seed),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong-jitter+cos+ls+wd",
            config: |seed, _| without_jitter(longer_regularised(seed)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong-jitter+cos+ls+wd+geo",
            config: |seed, _| without_jitter(longer_regularised_geometry(seed)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong-jitter+cos+ls+wd+wide",
            config: |seed, _| without_jitter(longer_regularised_wide(seed)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong-jitter+cos+ls+wd+wide+geo",
            config: |seed, _| without_jitter(longer_regularised_wide_geometry(seed)),
            tta: false,
            members: 1,
            pretrained: false,
        },
        Recipe {
            name: "120ep+strong+cos+ls+wd+wide x3",
            config: |seed, _| longer_regularised_wide(seed),
            tta: false,
            members: 3,
            pretrained: false,
        },
        Recipe {
            name: "pretrained+job default",
            config: job_default,
            tta: false,
            members: 1,
            pretrained: true,
        },
        Recipe {
            name: "pretrained+long+strong+cos+ls+wd+wide",
            config: |seed, _| regularised_wide(seed),
            tta: false,
            members: 1,
            pretrained: true,
        },
    ]
}

/// Generated doodles of each class the pretraining sees (the five default shapes and
/// scribbles).
const PRETRAIN_PER_CLASS: usize = 2000;

/// The pretraining's seed (data, split and weights), fixed: one pretrained network serves
/// every seed of every recipe, as a shipped one would.
const PRETRAIN_SEED: u64 = 7;

/// How the network is pretrained on generated doodles: the wide net, five epochs with the
/// default augmentation and cosine decay.
fn pretrain_config() -> TrainConfig {
    TrainConfig {
        epochs: 5,
        seed: PRETRAIN_SEED,
        validation_fraction: 0.1,
        lr_schedule: LrSchedule::Cosine,
        architecture: Architecture::Wide,
        ..TrainConfig::default()
    }
}

/// Trains the wide net on what `synth` can draw: [`PRETRAIN_PER_CLASS`] doodles of each
/// default shape and as many scribbles, as a sixth class (the classes of no real collection:
/// the product's classes are its users'). Prints its cost and its accuracy on held-out
/// generated drawings.
fn pretrain(threads: usize) -> Result<train::TrainedModel, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut dataset = synth::starter_dataset(PRETRAIN_PER_CLASS, PRETRAIN_SEED);
    let label = dataset.classes.len();
    dataset.classes.push("scribble".into());
    for i in 0..PRETRAIN_PER_CLASS {
        dataset.samples.push(Sample {
            strokes: synth::scribble(i as u64),
            label,
            // Five scribbles per synthetic player, as the doodles.
            group: (i / 5) as u64,
        });
    }
    let hooks = Hooks {
        threads: Some(threads),
        raster_workers: Some(1),
        ..Hooks::default()
    };
    let config = pretrain_config();
    let model = train::train(&dataset, &config, hooks)?;
    println!(
        "pretraining: {} generated drawings ({} classes), {} epochs, {:.0} s, {:.1} % on held-out generated drawings",
        dataset.samples.len(),
        dataset.classes.len(),
        config.epochs,
        started.elapsed().as_secs_f64(),
        100.0 * model.metrics.accuracy
    );
    Ok(model)
}

/// The measurements of one recipe on one seed.
struct SeedResult {
    /// Right answers and drawings, per class.
    per_class: Vec<(usize, usize)>,
    /// Classify latencies of single drawings, in milliseconds.
    latencies_ms: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("DOODLEBOX_QUICKDRAW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/quickdraw"));
    if !dir.is_dir() {
        println!(
            "skipped: no Quick, Draw! sample at {} (set DOODLEBOX_QUICKDRAW_DIR)",
            dir.display()
        );
        return Ok(());
    }
    let dataset = read_sample(&dir)?;
    let seeds: Vec<u64> = list_env("DOODLEBOX_ACCURACY_SEEDS", "1,2,3")
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let wanted = list_env("DOODLEBOX_ACCURACY_RECIPES", "");
    let threads: usize =
        std::env::var("DOODLEBOX_ACCURACY_THREADS").map_or(Ok(1), |t| t.parse())?;
    let watched: Vec<usize> = list_env("DOODLEBOX_ACCURACY_CLASSES", WATCHED_CLASSES)
        .iter()
        .filter_map(|name| dataset.classes.iter().position(|c| c == name))
        .collect();
    println!(
        "Quick, Draw! sample: {} drawings, {} classes; seeds {seeds:?}, {:.0} % held out",
        dataset.samples.len(),
        dataset.classes.len(),
        100.0 * VALIDATION_FRACTION
    );
    println!(
        "{:<32} {:>7} {:<20} {:>15} {:>8} {:>7}  weakest classes (pooled)",
        "recipe", "mean %", "per seed %", "Wilson 95 %", "p50 ms", "train s"
    );
    let chosen: Vec<Recipe> = recipes()
        .into_iter()
        .filter(|r| wanted.is_empty() || wanted.iter().any(|w| w == r.name))
        .collect();
    let pretrained = match chosen.iter().any(|r| r.pretrained) {
        true => Some(pretrain(threads)?),
        false => None,
    };
    for recipe in chosen {
        let initial = pretrained
            .as_ref()
            .filter(|_| recipe.pretrained)
            .map(|m| &m.var_store);
        let started = Instant::now();
        let (mut plain, mut tta) = (Vec::new(), Vec::new());
        for &seed in &seeds {
            let seed_started = Instant::now();
            let [p, t] = run(&dataset, &recipe, seed, threads, initial)?;
            // Runs take minutes on a loaded machine: say where it is, apart from the table.
            let (right, all) = p
                .iter()
                .flat_map(|r| &r.per_class)
                .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
            eprintln!(
                "{} seed {seed}: {:.1} % in {:.0} s",
                recipe.name,
                100.0 * right as f64 / all.max(1) as f64,
                seed_started.elapsed().as_secs_f64()
            );
            plain.extend(p);
            tta.extend(t);
        }
        let seconds = started.elapsed().as_secs_f64() / seeds.len() as f64;
        print_row(recipe.name, &dataset.classes, &plain, seconds);
        print_classes(&dataset.classes, &plain, &watched);
        if recipe.tta {
            let name = format!("{}+tta{TTA_COPIES}", recipe.name);
            print_row(&name, &dataset.classes, &tta, seconds);
            print_classes(&dataset.classes, &tta, &watched);
        }
    }
    Ok(())
}

/// Trains `recipe` with `seed` and measures it on that seed's validation drawings: as it is,
/// and with test-time augmentation when the recipe asks for it.
fn run(
    dataset: &Dataset,
    recipe: &Recipe,
    seed: u64,
    threads: usize,
    initial: Option<&tch::nn::VarStore>,
) -> Result<[Option<SeedResult>; 2], Box<dyn std::error::Error>> {
    let config = (recipe.config)(seed, dataset.samples.len());
    let (mut classifiers, mut dirs) = (Vec::new(), Vec::new());
    for k in 0..recipe.members {
        let member = TrainConfig {
            seed: seed + ENSEMBLE_SEED_STEP * k,
            split_seed: Some(seed),
            ..config.clone()
        };
        let hooks = Hooks {
            threads: Some(threads),
            raster_workers: Some(1),
            initial_weights: initial,
            ..Hooks::default()
        };
        let model = train::train(dataset, &member, hooks)?;
        let dir = std::env::temp_dir().join(format!(
            "doodlebox-bench-accuracy-{}-{seed}-{k}",
            std::process::id()
        ));
        artifact::write(&dir, &model)?;
        classifiers.push(Classifier::load(&dir)?);
        dirs.push(dir);
    }
    // The same split the trainer made: the product's code, the same seed and fraction.
    let split = dataset::split(dataset, config.validation_fraction, seed)?;
    let plain = measure(dataset, &split.validation, &classifiers, 0)?;
    let tta = match recipe.tta {
        true => Some(measure(
            dataset,
            &split.validation,
            &classifiers,
            TTA_COPIES,
        )?),
        false => None,
    };
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok([Some(plain), tta])
}

/// Right answers per class on the drawings at `validation`, and single-drawing latencies
/// (every classifier's), with `tta` augmented copies per drawing.
fn measure(
    dataset: &Dataset,
    validation: &[usize],
    classifiers: &[Classifier],
    tta: usize,
) -> Result<SeedResult, Box<dyn std::error::Error>> {
    let mut per_class = vec![(0, 0); dataset.classes.len()];
    for &i in validation {
        let sample = &dataset.samples[i];
        let guess = classify(classifiers, &sample.strokes, tta)?;
        per_class[sample.label].0 += usize::from(guess == sample.label);
        per_class[sample.label].1 += 1;
    }
    let mut latencies_ms = Vec::new();
    for &i in validation.iter().cycle().take(LATENCY_DRAWINGS) {
        let started = Instant::now();
        std::hint::black_box(classify(classifiers, &dataset.samples[i].strokes, tta)?);
        latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(SeedResult {
        per_class,
        latencies_ms,
    })
}

/// The class index `classifiers` pick for `strokes`, averaging their probabilities over the
/// drawing and `tta` augmented copies of it (fixed seeds, so every run sees the same copies).
/// The classifiers were all trained on the same classes.
fn classify(
    classifiers: &[Classifier],
    strokes: &[Vec<[f32; 2]>],
    tta: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut variants = vec![strokes.to_vec()];
    variants.extend((0..tta as u64).map(|k| augment(strokes, k, &TTA_PARAMS)));
    let mut mean = Vec::new();
    for classifier in classifiers {
        let classes = classifier.classes();
        mean.resize(classes.len(), 0.0f32);
        for ranked in classifier.classify_batch(&variants)? {
            for (name, p) in ranked {
                // Every answer ranks every class of this classifier.
                let c = classes
                    .iter()
                    .position(|n| *n == name)
                    .expect("a known class");
                mean[c] += p;
            }
        }
    }
    Ok((0..mean.len())
        .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
        .unwrap_or(0))
}

/// Prints one table row: `results` holds one entry per seed; `seconds` is the mean wall time
/// of a seed (training and measuring).
fn print_row(name: &str, classes: &[String], results: &[SeedResult], seconds: f64) {
    let share = |pc: &[(usize, usize)]| {
        let (r, n) = pc.iter().fold((0, 0), |(r, n), &(cr, cn)| (r + cr, n + cn));
        (r, n)
    };
    let per_seed: Vec<f64> = results
        .iter()
        .map(|s| {
            let (r, n) = share(&s.per_class);
            100.0 * r as f64 / n.max(1) as f64
        })
        .collect();
    let mean = per_seed.iter().sum::<f64>() / per_seed.len().max(1) as f64;
    let mut pooled = vec![(0, 0); classes.len()];
    for s in results {
        for (p, &(r, n)) in pooled.iter_mut().zip(&s.per_class) {
            p.0 += r;
            p.1 += n;
        }
    }
    let (right, all) = share(&pooled);
    let [low, high] = wilson_interval(right, all);
    let mut latencies: Vec<f64> = results
        .iter()
        .flat_map(|s| s.latencies_ms.clone())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    let mut weakest: Vec<(f64, usize)> = pooled
        .iter()
        .enumerate()
        .map(|(c, &(r, n))| (r as f64 / n.max(1) as f64, c))
        .collect();
    weakest.sort_by(|a, b| a.0.total_cmp(&b.0));
    let weakest: Vec<String> = weakest
        .iter()
        .take(WEAKEST)
        .map(|&(_, c)| format!("{} {}/{}", classes[c], pooled[c].0, pooled[c].1))
        .collect();
    let seeds: Vec<String> = per_seed.iter().map(|a| format!("{a:.1}")).collect();
    println!(
        "{:<32} {mean:>7.1} {:<20} {:>15} {p50:>8.2} {seconds:>7.0}  {}",
        name,
        seeds.join(" / "),
        format!("{:.1}–{:.1}", 100.0 * low, 100.0 * high),
        weakest.join(", ")
    );
}

/// Prints the pooled right answers of the `watched` classes (indices into `classes`) over
/// `results` (one entry per seed), on one indented line; nothing when none is watched.
fn print_classes(classes: &[String], results: &[SeedResult], watched: &[usize]) {
    if watched.is_empty() {
        return;
    }
    let counts: Vec<String> = watched
        .iter()
        .map(|&c| {
            let (right, all) = results
                .iter()
                .map(|s| s.per_class[c])
                .fold((0, 0), |a, (r, n)| (a.0 + r, a.1 + n));
            format!("{} {right}/{all}", classes[c])
        })
        .collect();
    println!("    {}", counts.join(", "));
}

/// Every drawing of every `*.ndjson` file in `dir`, labelled by its word (classes in name
/// order), each drawing its own group.
fn read_sample(dir: &PathBuf) -> Result<Dataset, Box<dyn std::error::Error>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut by_word: BTreeMap<String, Vec<Vec<Vec<[f32; 2]>>>> = BTreeMap::new();
    for file in files {
        for line in std::fs::read_to_string(&file)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let record = QuickDrawRecord::parse_line(line)?;
            let strokes = record.point_strokes();
            by_word.entry(record.word).or_default().push(strokes);
        }
    }
    let classes: Vec<String> = by_word.keys().cloned().collect();
    let mut samples = Vec::new();
    for (label, drawings) in by_word.into_values().enumerate() {
        for strokes in drawings {
            let group = samples.len() as u64;
            samples.push(Sample {
                strokes,
                label,
                group,
            });
        }
    }
    Ok(Dataset { classes, samples })
}

/// A comma-separated environment variable as a list (`default` when unset).
fn list_env(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}
