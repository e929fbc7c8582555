//! hipfrac-model: DAMO-YOLO-T on libtorch through tch — one definition for CPU and CUDA.
//!
//! * [`layers`]: conv-BN-activation and RepConv blocks, with BatchNorm/branch folding.
//! * [`damo`]: TinyNAS-L20 backbone (Focus stem, residual K1KX blocks with RepConv, SPP),
//!   GiraffeNeckV2 (RepGFPN) and the ZeroHead outputs, built from a [`ModelConfig`].
//!
//! * [`decode`]: head outputs → boxes (score floor, per-class NMS), for training's validation
//!   and for inference alike.
//! * [`device`]: `auto` / `cpu` / `cuda[:N]` → a libtorch device; CUDA is loaded at run time, so
//!   one binary serves both.
//! * [`precision`]: fp32, or bf16/fp16 autocast regions (a C++ shim over libtorch's autocast).
//!
//! The architecture follows tinyvision/DAMO-YOLO (Apache-2.0) `damoyolo_tinynasL20_T`;
//! parameter counts equal the official model's (see the tests).

pub mod damo;
pub mod decode;
pub mod device;
pub mod distributed;
pub mod layers;
pub mod loss;
pub mod precision;

pub use damo::{DamoYolo, HeadOutput, ModelConfig};

/// Trainable parameters of a variable store (BatchNorm weight and bias count, running
/// statistics do not).
pub fn trainable_parameters(vs: &tch::nn::VarStore) -> i64 {
    vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
}

/// Writes every variable of `vs` to a safetensors file. Kernels live channels-last in
/// memory ([`layers::make_channels_last`]); the file holds the usual contiguous layout, so
/// any safetensors reader (and `VarStore::load`) reads it back.
pub fn save_weights(vs: &tch::nn::VarStore, path: &std::path::Path) -> Result<(), tch::TchError> {
    let mut named: Vec<(String, tch::Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    tch::Tensor::write_safetensors(&named, path)
}
