//! hipfrac-model: DAMO-YOLO-T on libtorch through tch — one definition for CPU and CUDA.
//!
//! * [`layers`]: conv-BN-activation and RepConv blocks, with BatchNorm/branch folding.
//! * [`damo`]: TinyNAS-L20 backbone (Focus stem, residual K1KX blocks with RepConv, SPP),
//!   GiraffeNeckV2 (RepGFPN) and the ZeroHead outputs, built from a [`ModelConfig`].
//!
//! The architecture follows tinyvision/DAMO-YOLO (Apache-2.0) `damoyolo_tinynasL20_T`;
//! parameter counts equal the official model's (see the tests).

pub mod damo;
pub mod layers;
pub mod loss;

pub use damo::{DamoYolo, HeadOutput, ModelConfig};

/// Trainable parameters of a variable store (BatchNorm weight and bias count, running
/// statistics do not).
pub fn trainable_parameters(vs: &tch::nn::VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}
