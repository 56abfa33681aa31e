//! Model artifacts: written with a complete manifest, refused when corrupt or unfit.

use std::path::Path;

use doodlebox::ml::artifact::{self, ArtifactError, Manifest, MANIFEST_FILE, WEIGHTS_FILE};
use doodlebox::ml::classifier::Classifier;
use doodlebox::ml::geometry::FeatureSet;
use doodlebox::ml::net::{
    geometry_tensor, input_tensor, Architecture, ARCHITECTURE, WIDE_ARCHITECTURE,
};
use doodlebox::ml::raster::{self, RasterStyle, PREPROCESSING_VERSION};
use doodlebox::ml::synth;
use doodlebox::ml::train::{self, Hooks, TrainConfig};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::helpers::{scratch_dir, tiny_model};

/// Writes the tiny model into a fresh directory named `name`.
fn written(name: &str) -> (std::path::PathBuf, Manifest) {
    let dir = scratch_dir(name);
    let manifest = artifact::write(&dir, &tiny_model()).expect("written");
    (dir, manifest)
}

/// Rewrites the manifest's weight hash to match the file, as a careless tool might.
fn rehash(dir: &Path, manifest: &Manifest) {
    let fixed = Manifest {
        weights_sha256: artifact::sha256_file(&dir.join(WEIGHTS_FILE)).unwrap(),
        ..manifest.clone()
    };
    artifact::write_manifest(dir, &fixed).unwrap();
}

#[test]
fn a_written_artifact_has_a_complete_manifest_and_loads() {
    let (dir, manifest) = written("artifact-complete");
    assert_eq!(manifest.architecture, ARCHITECTURE);
    assert_eq!(manifest.preprocessing_version, PREPROCESSING_VERSION);
    assert_eq!(manifest.classes.len(), 5);
    assert_eq!(manifest.input_size, 28);
    assert_eq!(manifest.weights_sha256.len(), 64);
    assert!(manifest.created_at.ends_with('Z'));
    assert_eq!(manifest.dataset_size, 50);
    let loaded = artifact::load(&dir, Device::Cpu).expect("loads");
    assert_eq!(loaded.manifest, manifest);
    assert_eq!(artifact::read_manifest(&dir).unwrap(), manifest);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    for key in [
        "classes",
        "input_size",
        "training",
        "dataset_hash",
        "metrics",
        "device",
    ] {
        assert!(json.get(key).is_some(), "manifest has {key}");
    }
}

#[test]
fn a_wide_model_records_its_architecture_loads_and_classifies() {
    let config = TrainConfig {
        epochs: 1,
        batch_size: 16,
        validation_fraction: 0.3,
        architecture: Architecture::Wide,
        ..TrainConfig::default()
    };
    let dataset = synth::starter_dataset(10, 3);
    let model = train::train(&dataset, &config, Hooks::default()).expect("trains");
    let dir = scratch_dir("artifact-wide");
    let manifest = artifact::write(&dir, &model).expect("written");
    assert_eq!(manifest.architecture, WIDE_ARCHITECTURE);
    let classifier = Classifier::load(&dir).expect("loads");
    let ranked = classifier
        .classify(&dataset.samples[0].strokes)
        .expect("classifies");
    assert_eq!(ranked.len(), 5);
    // A manifest that names one architecture but was trained as another is refused.
    let small = Manifest {
        architecture: ARCHITECTURE.into(),
        ..manifest
    };
    artifact::write_manifest(&dir, &small).unwrap();
    assert!(matches!(
        artifact::load(&dir, Device::Cpu),
        Err(ArtifactError::InvalidManifest(_))
    ));
}

/// The calibrated probabilities, in class order, of the network loaded from `dir` on the
/// `channels` images in `pixels` (one drawing), computed here rather than by the classifier.
fn probabilities_of(dir: &Path, pixels: &[f32], channels: usize) -> Vec<f32> {
    let loaded = artifact::load(dir, Device::Cpu).expect("loads");
    let temperature = loaded
        .manifest
        .metrics
        .calibration
        .as_ref()
        .map_or(1.0, |c| c.temperature);
    let xs = input_tensor(pixels, 1, channels, 28, Device::Cpu);
    let p = tch::no_grad(|| {
        loaded
            .net
            .forward_t(&xs, false)
            .divide_scalar(temperature)
            .softmax(-1, Kind::Float)
    });
    Vec::<Vec<f32>>::try_from(&p).unwrap().remove(0)
}

/// The classifier's probabilities for `strokes`, in class order.
fn classified(classifier: &Classifier, strokes: &[Vec<[f32; 2]>]) -> Vec<f32> {
    let ranked = classifier.classify(strokes).expect("classifies");
    classifier
        .classes()
        .iter()
        .map(|c| ranked.iter().find(|(name, _)| name == c).unwrap().1)
        .collect()
}

#[test]
fn a_manifest_without_a_raster_style_is_read_as_the_one_channel_pixels_of_before() {
    let (dir, _) = written("artifact-before-styles");
    // What every earlier build wrote, and this one still writes for the default style.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert!(json["training"].get("raster").is_none());
    // Nor geometric features: the network and its weights are those of before.
    assert!(json["training"].get("geometry").is_none());
    let stored = Tensor::read_safetensors(dir.join(WEIGHTS_FILE)).unwrap();
    assert!(stored.iter().all(|(name, _)| !name.starts_with("geo")));
    let fc1 = &stored
        .iter()
        .find(|(name, _)| name == "fc1.weight")
        .unwrap()
        .1;
    assert_eq!(
        fc1.size(),
        [128, 64 * 9],
        "the hidden layer reads the image alone"
    );
    let classifier = Classifier::load(&dir).expect("loads");
    assert_eq!(classifier.raster_style(), &RasterStyle::default());
    assert_eq!(classifier.geometry(), None);
    for seed in 0..5 {
        let strokes = synth::doodle(synth::Shape::ALL[seed % 5], 2_000_000 + seed as u64);
        let plain = raster::rasterize(&strokes, 28).unwrap();
        let expected = probabilities_of(&dir, &plain, 1);
        let got = classified(&classifier, &strokes);
        for (e, g) in expected.iter().zip(&got) {
            assert!((e - g).abs() < 1e-6, "{expected:?} against {got:?}");
        }
    }
}

#[test]
fn a_model_drawn_in_another_style_records_it_and_is_classified_on_its_own_pixels() {
    let style = RasterStyle {
        stroke_width_fraction: 0.05,
        order_channel: true,
    };
    let config = TrainConfig {
        epochs: 1,
        batch_size: 16,
        validation_fraction: 0.3,
        raster: style,
        ..TrainConfig::default()
    };
    let dataset = synth::starter_dataset(10, 3);
    let model = train::train(&dataset, &config, Hooks::default()).expect("trains");
    let dir = scratch_dir("artifact-styled");
    let manifest = artifact::write(&dir, &model).expect("written");
    assert_eq!(manifest.training.raster, style);
    let classifier = Classifier::load(&dir).expect("loads");
    assert_eq!(classifier.raster_style(), &style);
    let strokes = &dataset.samples[0].strokes;
    let mut pixels = vec![0.0; 2 * 28 * 28];
    raster::rasterize_styled_into(strokes, 28, &style, &mut pixels).unwrap();
    let expected = probabilities_of(&dir, &pixels, 2);
    let got = classified(&classifier, strokes);
    for (e, g) in expected.iter().zip(&got) {
        assert!((e - g).abs() < 1e-6, "{expected:?} against {got:?}");
    }
    // Without its style the manifest describes a one-channel network: the weights do not
    // fit it, and the model is refused rather than fed the wrong pixels.
    let unstyled = Manifest {
        training: TrainConfig {
            raster: RasterStyle::default(),
            ..manifest.training.clone()
        },
        ..manifest
    };
    artifact::write_manifest(&dir, &unstyled).unwrap();
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::WeightsMismatch(_))),
        "{result:?}"
    );
}

#[test]
fn a_model_that_reads_geometric_features_round_trips_and_classifies_with_them() {
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        validation_fraction: 0.3,
        architecture: Architecture::Wide,
        geometry: Some(FeatureSet::StrokesV1),
        ..TrainConfig::default()
    };
    let dataset = synth::starter_dataset(10, 3);
    let model = train::train(&dataset, &config, Hooks::default()).expect("trains");
    let dir = scratch_dir("artifact-geometry");
    let manifest = artifact::write(&dir, &model).expect("written");
    assert_eq!(manifest.training.geometry, Some(FeatureSet::StrokesV1));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()).unwrap();
    assert_eq!(json["training"]["geometry"], "strokes-v1");
    let classifier = Classifier::load(&dir).expect("loads");
    assert_eq!(classifier.geometry(), Some(FeatureSet::StrokesV1));
    let temperature = classifier.temperature();
    for sample in dataset.samples.iter().take(6) {
        let strokes = &sample.strokes;
        let pixels = raster::rasterize(strokes, 28).unwrap();
        let mut features = vec![0.0; FeatureSet::StrokesV1.count()];
        FeatureSet::StrokesV1.compute_into(strokes, &mut features);
        // The trained network in memory, fed here: the loaded one answers the same.
        let xs = input_tensor(&pixels, 1, 1, 28, Device::Cpu);
        let geometry = geometry_tensor(&features, 1, features.len(), Device::Cpu);
        let p = tch::no_grad(|| {
            model
                .net
                .forward_with(&xs, geometry.as_ref(), false)
                .divide_scalar(temperature)
                .softmax(-1, Kind::Float)
        });
        let expected = Vec::<Vec<f32>>::try_from(&p).unwrap().remove(0);
        let got = classified(&classifier, strokes);
        for (e, g) in expected.iter().zip(&got) {
            assert!((e - g).abs() < 1e-6, "{expected:?} against {got:?}");
        }
        // And the features matter: other features, another answer.
        let zeros = geometry_tensor(&vec![0.0; features.len()], 1, features.len(), Device::Cpu);
        let other = tch::no_grad(|| model.net.forward_with(&xs, zeros.as_ref(), false));
        let plain = tch::no_grad(|| model.net.forward_with(&xs, geometry.as_ref(), false));
        assert!(!other.allclose(&plain, 1e-6, 1e-6, false));
    }
    // Without its feature set the manifest describes the image-only network: the weights do
    // not fit it, and the model is refused rather than fed no features.
    let without = Manifest {
        training: TrainConfig {
            geometry: None,
            ..manifest.training.clone()
        },
        ..manifest
    };
    artifact::write_manifest(&dir, &without).unwrap();
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::WeightsMismatch(_))),
        "{result:?}"
    );
}

#[test]
fn a_corrupted_weights_file_is_refused_by_its_hash() {
    let (dir, _) = written("artifact-corrupt");
    let path = dir.join(WEIGHTS_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::HashMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn a_truncated_weights_file_with_a_matching_hash_is_refused_as_unreadable() {
    let (dir, manifest) = written("artifact-truncated");
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    rehash(&dir, &manifest);
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::UnreadableWeights(_))),
        "{result:?}"
    );
}

#[test]
fn a_nan_weight_is_refused_even_with_a_matching_hash() {
    let (dir, manifest) = written("artifact-nan");
    let path = dir.join(WEIGHTS_FILE);
    let mut tensors = Tensor::read_safetensors(&path).unwrap();
    let (name, tensor) = tensors.iter_mut().find(|(n, _)| n.contains("fc2")).unwrap();
    let name = name.clone();
    *tensor = tensor.fill(f64::NAN);
    Tensor::write_safetensors(&tensors, &path).unwrap();
    rehash(&dir, &manifest);
    match artifact::load(&dir, Device::Cpu) {
        Err(ArtifactError::NonFiniteWeights(tensor)) => assert_eq!(tensor, name),
        other => panic!("expected NonFiniteWeights, got {other:?}"),
    }
}

#[test]
fn weights_for_another_number_of_classes_are_refused() {
    let (dir, manifest) = written("artifact-classes");
    let mut more = manifest.clone();
    more.classes.push("star".into());
    artifact::write_manifest(&dir, &more).unwrap();
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::WeightsMismatch(_))),
        "{result:?}"
    );
}

#[test]
fn another_architecture_or_preprocessing_version_or_input_size_is_refused() {
    let (dir, manifest) = written("artifact-versions");
    let cases = [
        Manifest {
            architecture: "resnet".into(),
            ..manifest.clone()
        },
        Manifest {
            preprocessing_version: PREPROCESSING_VERSION + 1,
            ..manifest.clone()
        },
        Manifest {
            input_size: 4,
            ..manifest.clone()
        },
    ];
    for case in cases {
        artifact::write_manifest(&dir, &case).unwrap();
        let result = artifact::load(&dir, Device::Cpu);
        assert!(
            matches!(
                result,
                Err(ArtifactError::UnsupportedArchitecture { .. }
                    | ArtifactError::PreprocessingMismatch { .. }
                    | ArtifactError::InputShape { .. })
            ),
            "{result:?}"
        );
    }
}

#[test]
fn a_missing_directory_or_a_garbled_manifest_is_refused_clearly() {
    let nowhere = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-model");
    assert!(matches!(
        artifact::load(&nowhere, Device::Cpu),
        Err(ArtifactError::Missing(_))
    ));
    let (dir, _) = written("artifact-garbled");
    std::fs::write(dir.join(MANIFEST_FILE), "{not json").unwrap();
    let result = artifact::load(&dir, Device::Cpu);
    assert!(
        matches!(result, Err(ArtifactError::InvalidManifest(_))),
        "{result:?}"
    );
}
