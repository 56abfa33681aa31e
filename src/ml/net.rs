//! The CNNs that classify rasterized doodles, small enough to answer in about a millisecond on
//! one CPU core. Each [`Architecture`] is a stack of 3×3 convolutions (each with batch norm
//! and ReLU, some followed by 2×2 max-pooling), an adaptive average pool to 3×3 so that any
//! input size works (28 and 64 alike), then a hidden fully connected layer with dropout and a
//! linear layer to one logit per class.
//!
//! - [`Architecture::Small`] (`doodlecnn-3x3-v1`): three blocks of 16, 32 and 64 channels, 128
//!   hidden units, about 100 k parameters. What every model before the wide one was.
//! - [`Architecture::Wide`] (`doodlecnn-wide-v1`): two convolutions per block (32, 32 | 64,
//!   64 | 128), 256 hidden units, about 0.5 M parameters; more accurate on little real data
//!   (see `benches/accuracy.rs`) and still a couple of milliseconds to classify.
//!
//! A network may also read a short vector of geometric features of the strokes beside its
//! image (see `super::geometry`): batch-normalised (`geo_bn`), they are concatenated to the
//! pooled convolutional features (after their dropout) as the hidden layer's input, so one
//! net learns from both. Without the normalisation the net all but ignored them: the features
//! alone, standardised, feed a small MLP to about 80 % on the Quick, Draw! sample, but
//! concatenated raw next to the convolutional features they bought about one point. A
//! network without features has exactly the variables it had before.
//!
//! Variables live in a [`nn::VarStore`] under fixed names (`conv{i}`, `bn{i}`, `fc1`, `fc2`),
//! so weights saved by the trainer load into the classifier. Changing the layers of an
//! architecture means a new architecture name: models record theirs and are loaded with it.

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Name of the original (small) architecture, which models trained before architectures
/// could be chosen record.
pub const ARCHITECTURE: &str = "doodlecnn-3x3-v1";

/// Name of the wide architecture.
pub const WIDE_ARCHITECTURE: &str = "doodlecnn-wide-v1";

/// The small network's convolutions: (output channels, max-pool after it).
const SMALL_LAYERS: [(i64, bool); 3] = [(16, true), (32, true), (64, true)];

/// The small network's hidden units.
const SMALL_HIDDEN: i64 = 128;

/// The wide network's convolutions: (output channels, max-pool after it).
const WIDE_LAYERS: [(i64, bool); 5] = [
    (32, false),
    (32, true),
    (64, false),
    (64, true),
    (128, true),
];

/// The wide network's hidden units.
const WIDE_HIDDEN: i64 = 256;

/// Side of the feature map the adaptive pool produces, whatever the input size.
const POOLED_SIDE: i64 = 3;

/// Dropout probability before each fully connected layer, during training only.
const DROPOUT: f64 = 0.3;

/// Name of the output layer's variables (`fc2.weight`, `fc2.bias`): the one layer that is
/// sized by the classes, which [`copy_features`] leaves alone.
const OUTPUT_LAYER: &str = "fc2";

/// Name of the geometric features' batch norm (`geo_bn.weight`, ...), in networks that read
/// them.
const GEOMETRY_NORM: &str = "geo_bn";

/// A pretrained network whose feature layers do not fit the one being trained (another
/// architecture).
#[derive(Debug, thiserror::Error)]
#[error("the pretrained weights do not fit this network: {0}")]
pub struct FeaturesMismatch(String);

/// Which network a model uses; recorded (as its name) in every model manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// `doodlecnn-3x3-v1`: about 100 k parameters.
    #[default]
    Small,
    /// `doodlecnn-wide-v1`: about 0.5 M parameters.
    Wide,
}

impl Architecture {
    /// The name recorded in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Small => ARCHITECTURE,
            Architecture::Wide => WIDE_ARCHITECTURE,
        }
    }

    /// The architecture a manifest names; `None` for one this build does not know.
    pub fn from_name(name: &str) -> Option<Architecture> {
        [Architecture::Small, Architecture::Wide]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// Whether this is the default (so configurations need not spell it out).
    pub fn is_default(&self) -> bool {
        *self == Architecture::default()
    }

    /// The short name configurations use (`small`, `wide`), as opposed to the manifest's.
    pub fn config_name(self) -> &'static str {
        match self {
            Architecture::Small => "small",
            Architecture::Wide => "wide",
        }
    }

    /// The convolutions (output channels, pool after) and the hidden units.
    fn layers(self) -> (&'static [(i64, bool)], i64) {
        match self {
            Architecture::Small => (&SMALL_LAYERS, SMALL_HIDDEN),
            Architecture::Wide => (&WIDE_LAYERS, WIDE_HIDDEN),
        }
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;

    /// Reads a configuration's short name (`small`, `wide`), for the command line.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [Architecture::Small, Architecture::Wide]
            .into_iter()
            .find(|a| a.config_name() == name)
            .ok_or_else(|| format!("unknown architecture {name:?} (small or wide)"))
    }
}

/// The network's layers; build it inside a `VarStore` with [`DoodleNet::new`].
#[derive(Debug)]
pub struct DoodleNet {
    /// Convolution + batch norm pairs, and whether a max-pool follows.
    blocks: Vec<(nn::Conv2D, nn::BatchNorm, bool)>,
    /// Pooled features → hidden units.
    hidden: nn::Linear,
    /// Hidden units → one logit per class.
    output: nn::Linear,
    /// How many classes the output layer has.
    num_classes: i64,
    /// Geometric features read beside the image (0: the image alone).
    geometry: i64,
    /// Normalises the geometric features (their scales differ widely), when there are any.
    geometry_norm: Option<nn::BatchNorm>,
}

impl DoodleNet {
    /// Creates the small network's layers (randomly initialised) under `path`.
    pub fn new(path: &nn::Path, num_classes: i64) -> DoodleNet {
        DoodleNet::with_architecture(path, num_classes, Architecture::Small)
    }

    /// Creates the layers of `architecture` (randomly initialised) under `path`, for
    /// one-channel images.
    pub fn with_architecture(
        path: &nn::Path,
        num_classes: i64,
        architecture: Architecture,
    ) -> DoodleNet {
        DoodleNet::with_input(path, num_classes, architecture, 1)
    }

    /// Creates the layers of `architecture` (randomly initialised) under `path`, for images
    /// of `channels` channels (see `raster::RasterStyle::channels`).
    pub fn with_input(
        path: &nn::Path,
        num_classes: i64,
        architecture: Architecture,
        channels: i64,
    ) -> DoodleNet {
        DoodleNet::with_inputs(path, num_classes, architecture, channels, 0)
    }

    /// Creates the layers of `architecture` (randomly initialised) under `path`, for images
    /// of `channels` channels and `geometry` geometric features beside them (see
    /// `types::TrainConfig::geometry_features`).
    pub fn with_inputs(
        path: &nn::Path,
        num_classes: i64,
        architecture: Architecture,
        channels: i64,
        geometry: i64,
    ) -> DoodleNet {
        let conv = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let (layers, hidden) = architecture.layers();
        let mut blocks = Vec::with_capacity(layers.len());
        let mut input = channels;
        for (i, &(channels, pool)) in layers.iter().enumerate() {
            let c = nn::conv2d(path / format!("conv{i}"), input, channels, 3, conv);
            let bn = nn::batch_norm2d(path / format!("bn{i}"), channels, Default::default());
            blocks.push((c, bn, pool));
            input = channels;
        }
        let features = input * POOLED_SIDE * POOLED_SIDE + geometry;
        DoodleNet {
            blocks,
            hidden: nn::linear(path / "fc1", features, hidden, Default::default()),
            output: nn::linear(path / "fc2", hidden, num_classes, Default::default()),
            num_classes,
            geometry,
            geometry_norm: (geometry > 0)
                .then(|| nn::batch_norm1d(path / GEOMETRY_NORM, geometry, Default::default())),
        }
    }

    /// How many geometric features the network reads beside its image (0: none).
    pub fn geometry_features(&self) -> i64 {
        self.geometry
    }

    /// The logits `[batch, num_classes]` of images `xs` (`[batch, channels, size, size]`,
    /// floats in 0..1) with their geometric features `geometry` (`[batch, features]`), which
    /// a network without features must not be given.
    ///
    /// # Panics
    /// When `geometry` is missing for a network that reads features, or given to one that
    /// does not: a programming error (the caller reads the model's configuration).
    pub fn forward_with(&self, xs: &Tensor, geometry: Option<&Tensor>, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, bn, pool) in &self.blocks {
            x = x.apply(conv).apply_t(bn, train).relu();
            if *pool {
                x = x.max_pool2d_default(2);
            }
        }
        let pooled = x
            .adaptive_avg_pool2d([POOLED_SIDE, POOLED_SIDE])
            .flat_view()
            .dropout(DROPOUT, train);
        let features = match (geometry, self.geometry) {
            (None, 0) => pooled,
            (Some(g), n) if n > 0 => {
                let g = match &self.geometry_norm {
                    Some(norm) => g.apply_t(norm, train),
                    None => g.shallow_clone(),
                };
                Tensor::cat(&[pooled, g], 1)
            }
            _ => panic!(
                "the network reads {} geometric features; the call gave {}",
                self.geometry,
                geometry.map_or(0, |g| g.size().last().copied().unwrap_or(0))
            ),
        };
        features
            .apply(&self.hidden)
            .relu()
            .dropout(DROPOUT, train)
            .apply(&self.output)
    }

    /// Number of classes the network predicts.
    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }
}

impl ModuleT for DoodleNet {
    /// `xs`: `[batch, channels, size, size]` floats in 0..1; returns `[batch, num_classes]` logits.
    /// For a network without geometric features ([`DoodleNet::forward_with`] otherwise).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_with(xs, None, train)
    }
}

/// Copies every variable of `from` except the output layer's into `to` (same architecture,
/// any classes): the feature layers and the hidden layer of a pretrained network, batch-norm
/// statistics included, so that training starts from them with a fresh output layer for its
/// own classes. Answers how many variables it copied.
pub fn copy_features(from: &nn::VarStore, to: &nn::VarStore) -> Result<usize, FeaturesMismatch> {
    let source = from.variables();
    let mut copied = 0;
    for (name, mut target) in to.variables() {
        if name.starts_with(&format!("{OUTPUT_LAYER}.")) {
            continue;
        }
        let Some(value) = source.get(&name) else {
            return Err(FeaturesMismatch(format!("{name} is missing")));
        };
        if value.size() != target.size() {
            return Err(FeaturesMismatch(format!(
                "{name} is {:?}, not {:?}",
                value.size(),
                target.size()
            )));
        }
        tch::no_grad(|| target.copy_(&value.to_device(target.device())));
        copied += 1;
    }
    Ok(copied)
}

/// Wraps `count` feature vectors of `features` numbers each (concatenated) into the
/// network's geometry input `[count, features]` on `device`; `None` when there are none.
///
/// # Panics
/// When `values.len() != count * features`: a programming error, not bad input.
pub fn geometry_tensor(
    values: &[f32],
    count: usize,
    features: usize,
    device: Device,
) -> Option<Tensor> {
    assert_eq!(values.len(), count * features, "feature buffer size");
    (features > 0).then(|| {
        Tensor::from_slice(values)
            .view([count as i64, features as i64])
            .to_device(device)
    })
}

/// Wraps `count` rasterized images of `channels` channels of `size × size` (concatenated,
/// channel after channel, row-major) into the network's input tensor
/// `[count, channels, size, size]` on `device`.
///
/// # Panics
/// When `pixels.len() != count * channels * size * size`: a programming error, not bad input.
pub fn input_tensor(
    pixels: &[f32],
    count: usize,
    channels: usize,
    size: u32,
    device: Device,
) -> Tensor {
    let side = i64::from(size);
    assert_eq!(
        pixels.len(),
        count * channels * (side * side) as usize,
        "pixel buffer size"
    );
    Tensor::from_slice(pixels)
        .view([count as i64, channels as i64, side, side])
        .to_device(device)
        .to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_maps_28_and_64_pixel_batches_to_one_logit_per_class() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DoodleNet::new(&vs.root(), 5);
        for size in [28u32, 64] {
            let pixels = vec![0.5; 3 * (size * size) as usize];
            let out = net.forward_t(&input_tensor(&pixels, 3, 1, size, Device::Cpu), false);
            assert_eq!(out.size(), [3, 5]);
        }
        assert_eq!(net.num_classes(), 5);
    }

    #[test]
    fn the_network_is_small_enough_for_real_time_cpu_inference() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = DoodleNet::new(&vs.root(), 16);
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert!((50_000..200_000).contains(&params), "{params} parameters");
    }

    #[test]
    fn the_wide_network_maps_28_and_64_pixel_batches_and_has_about_half_a_million_parameters() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DoodleNet::with_architecture(&vs.root(), 16, Architecture::Wide);
        for size in [28u32, 64] {
            let pixels = vec![0.5; 2 * (size * size) as usize];
            let out = net.forward_t(&input_tensor(&pixels, 2, 1, size, Device::Cpu), false);
            assert_eq!(out.size(), [2, 16]);
        }
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert!((300_000..700_000).contains(&params), "{params} parameters");
    }

    #[test]
    fn copied_features_make_the_same_features_and_leave_the_output_layer_fresh() {
        let pretrained = nn::VarStore::new(Device::Cpu);
        let _ = DoodleNet::with_architecture(&pretrained.root(), 6, Architecture::Wide);
        let fresh = nn::VarStore::new(Device::Cpu);
        let _ = DoodleNet::with_architecture(&fresh.root(), 16, Architecture::Wide);
        let output_before = fresh.variables()["fc2.weight"].copy();
        let copied = copy_features(&pretrained, &fresh).unwrap();
        // Five convolutions and batch norms (weight, bias, running mean and variance, and
        // for the convolutions a weight only) and the hidden layer.
        assert_eq!(copied, fresh.variables().len() - 2);
        let (from, to) = (pretrained.variables(), fresh.variables());
        for name in ["conv0.weight", "bn4.running_mean", "fc1.weight", "fc1.bias"] {
            assert!(from[name].equal(&to[name]), "{name}");
        }
        assert!(to["fc2.weight"].equal(&output_before));
        let small = nn::VarStore::new(Device::Cpu);
        let _ = DoodleNet::new(&small.root(), 16);
        assert!(copy_features(&small, &fresh).is_err());
    }

    #[test]
    fn geometric_features_widen_the_hidden_layers_input_and_change_the_answer() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DoodleNet::with_inputs(&vs.root(), 16, Architecture::Small, 1, 5);
        assert_eq!(
            vs.variables()["fc1.weight"].size(),
            [SMALL_HIDDEN, 64 * 9 + 5]
        );
        assert_eq!(net.geometry_features(), 5);
        let pixels = vec![0.5; 2 * 28 * 28];
        let xs = input_tensor(&pixels, 2, 1, 28, Device::Cpu);
        let zeros = geometry_tensor(&[0.0; 10], 2, 5, Device::Cpu).unwrap();
        let ones = geometry_tensor(&[1.0; 10], 2, 5, Device::Cpu).unwrap();
        let a = net.forward_with(&xs, Some(&zeros), false);
        let b = net.forward_with(&xs, Some(&ones), false);
        assert_eq!(a.size(), [2, 16]);
        assert!(
            !a.allclose(&b, 1e-6, 1e-6, false),
            "the features reach the logits"
        );
        assert!(geometry_tensor(&[], 2, 0, Device::Cpu).is_none());
        let without = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            net.forward_with(&xs, None, false)
        }));
        assert!(without.is_err(), "a features net needs its features");
    }

    #[test]
    fn architectures_are_found_by_their_recorded_names_and_unknown_names_are_not() {
        for a in [Architecture::Small, Architecture::Wide] {
            assert_eq!(Architecture::from_name(a.name()), Some(a));
            // The short name is the configurations' (serde's) and the command line's.
            assert_eq!(a.config_name().parse::<Architecture>(), Ok(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.config_name());
        }
        assert!("resnet".parse::<Architecture>().is_err());
        assert_eq!(
            Architecture::from_name(ARCHITECTURE),
            Some(Architecture::Small)
        );
        assert_eq!(Architecture::from_name("resnet"), None);
    }
}
