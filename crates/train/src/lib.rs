//! hipfrac-train: the paper's recipe for DAMO-YOLO on radiographs.
//!
//! * [`config`]: a TOML config whose defaults are the paper's (1024 px, batch 64, SGD
//!   momentum 0.9 Nesterov, weight decay 5e-4, 5-epoch warmup, lr 0.01/64 per image × batch,
//!   cosine to 0.05×, EMA 0.9998 with ramp, 430 epochs, last 16 without strong augmentation).
//! * [`data`]: manifest + VOC + DICOM/PNG → letterboxed grey tensors with boxes; augmentation.
//! * [`optim`]: SGD with Nesterov momentum and decoupled-from-BN weight decay whose state is
//!   saved with the checkpoint (exact resume), the learning-rate schedule, EMA.
//! * [`trainer`]: the loop, validation mAP, checkpoints (safetensors + config.json, atomic),
//!   CSV log.
//! * [`memory`]: keeps freed memory in the allocator for the train step.

pub mod config;
pub mod data;
pub mod memory;
pub mod optim;
pub mod trainer;

pub use config::TrainConfig;
