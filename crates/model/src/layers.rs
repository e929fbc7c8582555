//! Building blocks: convolution + BatchNorm + activation, and RepConv (a 3×3 and a 1×1
//! branch, each with BatchNorm, summed), both foldable into one plain convolution with bias
//! for inference.

use tch::nn::{self, ModuleT};
use tch::Tensor;

/// Activation functions used by DAMO-YOLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Act {
    Relu,
    Silu,
    Identity,
}

impl Act {
    /// Applies the activation to a tensor this block owns. ReLU works in place: its input
    /// is always a fresh BatchNorm/sum/convolution output that no backward pass needs (ReLU's
    /// own backward uses its output), which saves an allocation and a pass over memory.
    pub fn apply(self, mut x: Tensor) -> Tensor {
        match self {
            Act::Relu => x.relu_(),
            Act::Silu => x.silu(),
            Act::Identity => x,
        }
    }
}

/// Folds BatchNorm statistics into a convolution: `(weight·γ/σ, β − μ·γ/σ)`.
fn fold_batch_norm(weight: &Tensor, bn: &nn::BatchNorm, eps: f64) -> (Tensor, Tensor) {
    let std = (&bn.running_var + eps).sqrt();
    let gamma = bn.ws.as_ref().expect("affine BatchNorm should have a weight");
    let beta = bn.bs.as_ref().expect("affine BatchNorm should have a bias");
    let scale = gamma / &std;
    let folded_weight = weight * scale.reshape([-1, 1, 1, 1]);
    let folded_bias = beta - &bn.running_mean * &scale;
    (folded_weight, folded_bias)
}

const BN_EPS: f64 = 1e-5;

/// Re-lays a 4-D tensor out channels-last (NHWC strides, NCHW shape) in place, keeping its
/// values and its identity as a variable.
///
/// Every convolution kernel is channels-last, so every activation after the first
/// convolution is too: oneDNN (CPU) and cuDNN (GPU) run their fastest kernels on that
/// layout. Measured with `bench/train_step.sh` on this project's 2-core CPU (DAMO-YOLO-T,
/// 512 px, batch 4): the same network in PyTorch 2.11 takes ≈ 1.1 s per train step in the
/// default layout and ≈ 0.85 s channels-last.
pub fn make_channels_last(t: &mut Tensor) {
    if t.dim() == 4 {
        let relaid = t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        tch::no_grad(|| t.set_data(&relaid));
    }
}

/// A convolution whose kernel is channels-last (see [`make_channels_last`]).
pub fn conv2d(p: &nn::Path, cin: i64, cout: i64, k: i64, config: nn::ConvConfig) -> nn::Conv2D {
    let mut conv = nn::conv2d(p, cin, cout, k, config);
    make_channels_last(&mut conv.ws);
    conv
}

/// Convolution (no bias) + BatchNorm + activation, or, fused, convolution with bias +
/// activation. Variables: `conv.weight`, `bn.{weight,bias,running_mean,running_var}`, or
/// `conv.{weight,bias}` when fused.
#[derive(Debug)]
pub struct ConvBn {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
    act: Act,
    /// A narrow strided 1×1 convolution runs as subsampling + a stride-1 convolution.
    subsample: i64,
}

/// Strided 1×1 convolutions with fewer input channels than this run as subsampling + a
/// stride-1 convolution (see [`ConvBn::new`]).
pub const NARROW_STRIDED_1X1: i64 = 16;

impl ConvBn {
    /// `k`×`k` convolution with "same" padding.
    pub fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64, act: Act, fused: bool) -> Self {
        // A 1×1 convolution of stride s reads every s-th pixel, so it equals a stride-1
        // convolution of the subsampled input, exactly. Narrow ones run that way because
        // oneDNN in libtorch 2.11 corrupts the heap computing the kernel gradient of strided
        // 1×1 channels-last convolutions with few input channels: PyTorch itself crashes with
        // 4, 8 or 12 input channels (the nano preset's first stage has 8), not with 16 or more
        // (`scripts/check_onednn_strided_1x1.py` tries the shapes). Wider ones keep the
        // strided kernel: the detour costs DAMO-YOLO-T ≈ 5 % of a CPU train step.
        let subsample = if k == 1 && cin < NARROW_STRIDED_1X1 { stride } else { 1 };
        let config = nn::ConvConfig {
            stride: stride / subsample,
            padding: (k - 1) / 2,
            bias: fused,
            ..Default::default()
        };
        let conv = conv2d(&(p / "conv"), cin, cout, k, config);
        let bn = (!fused).then(|| {
            nn::batch_norm2d(
                p / "bn",
                cout,
                nn::BatchNormConfig {
                    eps: BN_EPS,
                    ..Default::default()
                },
            )
        });
        ConvBn {
            conv,
            bn,
            act,
            subsample,
        }
    }

    /// The equivalent kernel and bias of conv + BN (inference statistics).
    pub fn equivalent(&self) -> (Tensor, Tensor) {
        match &self.bn {
            Some(bn) => fold_batch_norm(&self.conv.ws, bn, BN_EPS),
            None => (
                self.conv.ws.shallow_clone(),
                self.conv
                    .bs
                    .as_ref()
                    .expect("a fused conv should have a bias")
                    .shallow_clone(),
            ),
        }
    }

    /// Copies this block's folded weights into `target` (a fused block of the same shape).
    pub fn fold_into(&self, target: &mut ConvBn) {
        let (weight, bias) = self.equivalent();
        tch::no_grad(|| {
            target.conv.ws.copy_(&weight);
            target.conv.bs.as_mut().expect("target should be fused").copy_(&bias);
        });
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = if self.subsample > 1 {
            let s = self.subsample;
            x.slice(2, 0, None, s).slice(3, 0, None, s).apply(&self.conv)
        } else {
            x.apply(&self.conv)
        };
        let y = match &self.bn {
            Some(bn) => y.apply_t(bn, train),
            None => y,
        };
        self.act.apply(y)
    }
}

/// RepConv: `act(BN(conv3×3(x)) + BN(conv1×1(x)))` for training; one 3×3 convolution with
/// bias after re-parameterisation. Variables: `rbr_dense.*`, `rbr_1x1.*`, or `rbr_reparam.*`.
#[derive(Debug)]
pub struct RepConv {
    dense: Option<ConvBn>,
    one: Option<ConvBn>,
    reparam: Option<nn::Conv2D>,
    act: Act,
}

impl RepConv {
    pub fn new(p: &nn::Path, cin: i64, cout: i64, stride: i64, act: Act, fused: bool) -> Self {
        if fused {
            let config = nn::ConvConfig {
                stride,
                padding: 1,
                bias: true,
                ..Default::default()
            };
            RepConv {
                dense: None,
                one: None,
                reparam: Some(conv2d(&(p / "rbr_reparam"), cin, cout, 3, config)),
                act,
            }
        } else {
            RepConv {
                dense: Some(ConvBn::new(
                    &(p / "rbr_dense"),
                    cin,
                    cout,
                    3,
                    stride,
                    Act::Identity,
                    false,
                )),
                one: Some(ConvBn::new(
                    &(p / "rbr_1x1"),
                    cin,
                    cout,
                    1,
                    stride,
                    Act::Identity,
                    false,
                )),
                reparam: None,
                act,
            }
        }
    }

    /// Copies the single-kernel equivalent into a fused `target`.
    pub fn fold_into(&self, target: &mut RepConv) {
        let (dense, one) = (
            self.dense.as_ref().expect("source should be unfused"),
            self.one.as_ref().expect("source should be unfused"),
        );
        let (k3, b3) = dense.equivalent();
        let (k1, b1) = one.equivalent();
        // The 1×1 kernel sits at the centre of a 3×3 one.
        let kernel = k3 + k1.constant_pad_nd([1, 1, 1, 1]);
        let bias = b3 + b1;
        let conv = target.reparam.as_mut().expect("target should be fused");
        tch::no_grad(|| {
            conv.ws.copy_(&kernel);
            conv.bs.as_mut().expect("reparam conv has a bias").copy_(&bias);
        });
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let y = match (&self.reparam, &self.dense, &self.one) {
            (Some(conv), _, _) => x.apply(conv),
            // In place: the BatchNorm backward needs its input, not its output.
            (None, Some(dense), Some(one)) => dense.forward_t(x, train).g_add_(&one.forward_t(x, train)),
            _ => unreachable!("a RepConv is either fused or has both branches"),
        };
        self.act.apply(y)
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        ConvBn::forward_t(self, xs, train)
    }
}
