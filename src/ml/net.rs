//! The CNN that classifies rasterized doodles, small enough to answer in well under a
//! millisecond on one CPU core: three 3×3 convolution blocks (1 → 16 → 32 → 64 channels, each
//! with batch norm, ReLU and 2×2 max-pooling), an adaptive average pool to 3×3 so that any
//! input size works (28 and 64 alike), then a 128-unit hidden layer with dropout and a linear
//! layer to one logit per class. About 100 k parameters.
//!
//! Its variables live in a [`nn::VarStore`] under fixed names, so weights saved by the trainer
//! load into the classifier. Changing the layers means a new [`ARCHITECTURE`] name.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Name of this architecture, recorded in every model manifest and checked at load.
pub const ARCHITECTURE: &str = "doodlecnn-3x3-v1";

/// Channels after each convolution block.
const CHANNELS: [i64; 3] = [16, 32, 64];

/// Side of the feature map the adaptive pool produces, whatever the input size.
const POOLED_SIDE: i64 = 3;

/// Units of the hidden fully connected layer.
const HIDDEN: i64 = 128;

/// Dropout probability before each fully connected layer, during training only.
const DROPOUT: f64 = 0.3;

/// The network's layers; build it inside a `VarStore` with [`DoodleNet::new`].
#[derive(Debug)]
pub struct DoodleNet {
    /// Convolution + batch norm pairs, one per block.
    blocks: Vec<(nn::Conv2D, nn::BatchNorm)>,
    /// Pooled features → hidden units.
    hidden: nn::Linear,
    /// Hidden units → one logit per class.
    output: nn::Linear,
    /// How many classes the output layer has.
    num_classes: i64,
}

impl DoodleNet {
    /// Creates the layers (randomly initialised) under `path`.
    pub fn new(path: &nn::Path, num_classes: i64) -> DoodleNet {
        let conv = nn::ConvConfig {
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let mut blocks = Vec::with_capacity(CHANNELS.len());
        let mut input = 1;
        for (i, &channels) in CHANNELS.iter().enumerate() {
            let c = nn::conv2d(path / format!("conv{i}"), input, channels, 3, conv);
            let bn = nn::batch_norm2d(path / format!("bn{i}"), channels, Default::default());
            blocks.push((c, bn));
            input = channels;
        }
        let features = input * POOLED_SIDE * POOLED_SIDE;
        DoodleNet {
            blocks,
            hidden: nn::linear(path / "fc1", features, HIDDEN, Default::default()),
            output: nn::linear(path / "fc2", HIDDEN, num_classes, Default::default()),
            num_classes,
        }
    }

    /// Number of classes the network predicts.
    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }
}

impl ModuleT for DoodleNet {
    /// `xs`: `[batch, 1, size, size]` floats in 0..1; returns `[batch, num_classes]` logits.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        for (conv, bn) in &self.blocks {
            x = x
                .apply(conv)
                .apply_t(bn, train)
                .relu()
                .max_pool2d_default(2);
        }
        x.adaptive_avg_pool2d([POOLED_SIDE, POOLED_SIDE])
            .flat_view()
            .dropout(DROPOUT, train)
            .apply(&self.hidden)
            .relu()
            .dropout(DROPOUT, train)
            .apply(&self.output)
    }
}

/// Wraps `count` rasterized images of `size × size` (concatenated, row-major) into the
/// network's input tensor `[count, 1, size, size]` on `device`.
///
/// # Panics
/// When `pixels.len() != count * size * size`: a programming error, not bad input.
pub fn input_tensor(pixels: &[f32], count: usize, size: u32, device: Device) -> Tensor {
    let side = i64::from(size);
    assert_eq!(
        pixels.len(),
        count * (side * side) as usize,
        "pixel buffer size"
    );
    Tensor::from_slice(pixels)
        .view([count as i64, 1, side, side])
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
            let out = net.forward_t(&input_tensor(&pixels, 3, size, Device::Cpu), false);
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
}
