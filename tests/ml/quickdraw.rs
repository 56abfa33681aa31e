//! Figures on the real Quick, Draw! sample (`../shared/quickdraw`, 16 classes, raw ndjson).
//! Ignored by default; run with
//! `cargo test --release --test ml quickdraw -- --ignored --nocapture`
//! (`DOODLEBOX_QUICKDRAW_SIZES=28,64` to train at several image sizes).
//! Each test skips with a message when the folder is absent. The data is read in place and
//! never copied.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use doodlebox::ml::classifier::Classifier;
use doodlebox::ml::dataset::{Dataset, Sample};
use doodlebox::ml::train::{self, Hooks, TrainConfig};
use doodlebox::transfer::quickdraw::QuickDrawRecord;

use crate::helpers::starter_model;

/// Seeds of the repeated real-data runs; figures are pooled over them, because one
/// validation set of ~170 drawings is too small for per-class figures.
const REAL_RUN_SEEDS: [u64; 3] = [1, 2, 3];

/// The real shapes that are also default shapes (the sample has no heart).
pub(crate) const SHARED_SHAPES: [&str; 4] = ["circle", "square", "triangle", "line"];

/// The sample's folder: `$DOODLEBOX_QUICKDRAW_DIR` or `../shared/quickdraw`.
pub(crate) fn quickdraw_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DOODLEBOX_QUICKDRAW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/quickdraw"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no Quick, Draw! sample at {}", dir.display());
        None
    }
}

/// Every drawing of every `*.ndjson` file, by category (in name order).
pub(crate) fn read_sample(dir: &PathBuf) -> BTreeMap<String, Vec<Vec<Vec<[f32; 2]>>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut by_word: BTreeMap<String, Vec<Vec<Vec<[f32; 2]>>>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable file");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let raw = QuickDrawRecord::parse_line(line).expect("a raw Quick, Draw! line");
            let strokes = raw.point_strokes();
            by_word.entry(raw.word).or_default().push(strokes);
        }
    }
    by_word
}

#[test]
#[ignore = "needs ../shared/quickdraw; prints figures"]
fn quickdraw_training_on_the_16_real_classes_reports_per_class_validation_accuracy() {
    let Some(dir) = quickdraw_dir() else { return };
    let by_word = read_sample(&dir);
    let classes: Vec<String> = by_word.keys().cloned().collect();
    let mut samples = Vec::new();
    for (label, drawings) in by_word.values().enumerate() {
        for strokes in drawings {
            // No player ids in the sample: each drawing is its own group.
            let group = samples.len() as u64;
            samples.push(Sample {
                strokes: strokes.clone(),
                label,
                group,
            });
        }
    }
    let dataset = Dataset {
        classes: classes.clone(),
        samples,
    };
    println!(
        "Quick, Draw! sample: {} drawings, {} classes",
        dataset.samples.len(),
        classes.len()
    );

    // 64 px takes about three times as long as 28 px and was not better on this little data.
    let sizes: Vec<u32> = std::env::var("DOODLEBOX_QUICKDRAW_SIZES")
        .unwrap_or_else(|_| "28".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes like 28,64"))
        .collect();
    for image_size in sizes {
        let mut right = vec![0usize; classes.len()];
        let mut support = vec![0usize; classes.len()];
        let (mut accuracy, mut top3) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for seed in REAL_RUN_SEEDS {
            let config = TrainConfig {
                epochs: 40,
                batch_size: 32,
                learning_rate: 2e-3,
                image_size,
                augment: true,
                seed,
                validation_fraction: 0.25,
                ..TrainConfig::default()
            };
            let model = train::train(&dataset, &config, Hooks::default()).expect("trains");
            for (c, class) in model.metrics.per_class.iter().enumerate() {
                right[c] += model.metrics.confusion[c][c] as usize;
                support[c] += class.support;
            }
            accuracy.push(model.metrics.accuracy);
            top3.push(model.metrics.top3_accuracy);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "\n{image_size}px, {} runs (seeds {REAL_RUN_SEEDS:?}), {:.0} s: validation accuracy {:.3} (runs {:?}), top-3 {:.3}",
            REAL_RUN_SEEDS.len(),
            started.elapsed().as_secs_f64(),
            mean(&accuracy),
            accuracy.iter().map(|a| format!("{a:.3}")).collect::<Vec<_>>(),
            mean(&top3),
        );
        for (c, class) in classes.iter().enumerate() {
            let share = right[c] as f64 / support[c].max(1) as f64;
            println!(
                "  {class:<12} {:>5.1} %  ({}/{})",
                100.0 * share,
                right[c],
                support[c]
            );
        }
    }
}

#[test]
#[ignore = "needs ../shared/quickdraw; prints figures"]
fn quickdraw_a_synthetic_only_starter_model_scores_on_real_circles_squares_triangles_and_lines() {
    let Some(dir) = quickdraw_dir() else { return };
    let by_word = read_sample(&dir);
    let (model_dir, _) = starter_model();
    let classifier = Classifier::load(model_dir).expect("the starter model loads");
    let (mut all_right, mut all) = (0, 0);
    println!("\nsynthetic-only starter model on real drawings:");
    for shape in SHARED_SHAPES {
        let drawings = &by_word[shape];
        let mut guesses: BTreeMap<String, usize> = BTreeMap::new();
        let mut in_top3 = 0;
        for strokes in drawings {
            let ranked = classifier.classify(strokes).expect("classifies");
            *guesses.entry(ranked[0].0.clone()).or_default() += 1;
            in_top3 += usize::from(ranked[..3].iter().any(|r| r.0 == shape));
        }
        let right = guesses.get(shape).copied().unwrap_or(0);
        all_right += right;
        all += drawings.len();
        println!(
            "  {shape:<9} {:>5.1} % right ({right}/{}), top-3 {:>5.1} %, guesses {guesses:?}",
            100.0 * right as f64 / drawings.len() as f64,
            drawings.len(),
            100.0 * in_top3 as f64 / drawings.len() as f64
        );
    }
    println!(
        "  overall   {:>5.1} % ({all_right}/{all})",
        100.0 * all_right as f64 / all as f64
    );
}
