//! Which device a command runs its model on, as the user names it. Parsed once (by the
//! command line); the model crate turns it into a libtorch device.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceSpec {
    /// CUDA when a GPU is usable, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device {0:?}: expected auto, cpu, cuda or cuda:N")]
pub struct ParseDeviceError(pub String);

impl FromStr for DeviceSpec {
    type Err = ParseDeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| ParseDeviceError(text.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceSpec;

    #[test]
    fn parses_every_form_and_refuses_others() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceSpec::Cuda(3)));
        assert_eq!("auto".parse(), Ok(DeviceSpec::Auto));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda3", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
    }
}

/// The detector's size: `t` is the paper's DAMO-YOLO-T, `nano` a quarter-width, shallow
/// network for CPU tests and the demo. Saved with every model (config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    #[default]
    T,
    Nano,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::T => "t",
            Preset::Nano => "nano",
        }
    }

    /// How reports name it.
    pub fn description(self) -> &'static str {
        match self {
            Preset::T => "t (DAMO-YOLO-T)",
            Preset::Nano => "nano",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a detector finds, and in what view of the radiograph (`stage` in a model's
/// train.toml). The paper's system is one [`Stage::Whole`] detector; hipfrac's two-stage
/// system is a [`Stage::Hips`] localiser followed by a [`Stage::HipCrops`] detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The four fracture types on the whole radiograph (the paper's single stage).
    #[default]
    Whole,
    /// One class, the proximal femur (femoral head to lesser trochanter; VOC objects named
    /// `hip`), on the whole radiograph: the localiser.
    Hips,
    /// The four fracture types on a square crop around each hip box, at a higher resolution
    /// than the whole radiograph allows.
    HipCrops,
}

impl Stage {
    /// Classes the detector of this stage outputs.
    pub fn classes(self) -> i64 {
        match self {
            Stage::Hips => 1,
            Stage::Whole | Stage::HipCrops => crate::FractureClass::ALL.len() as i64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Whole => "whole",
            Stage::Hips => "hips",
            Stage::HipCrops => "hip_crops",
        }
    }
}

/// The network's compute type (the model crate enters libtorch's autocast for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Full precision (TF32 matrix units on GPUs that have them).
    #[default]
    Fp32,
    /// bfloat16 autocast: fp32's range with 8 bits of mantissa; no loss scaling needed.
    Bf16,
    /// float16 autocast: training scales the loss against underflow.
    Fp16,
}

impl Precision {
    /// Every compute type, as named on the command line.
    pub const NAMES: [&'static str; 3] = ["fp32", "bf16", "fp16"];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            other => Err(format!("{other:?}: expected fp32, bf16 or fp16")),
        }
    }
}
