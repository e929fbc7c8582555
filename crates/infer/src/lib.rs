//! hipfrac-infer: the one prediction path. The command line, the evaluation report and the
//! server all call it, so a radiograph gets the same answer wherever it is read.
//!
//! A model folder (what `hipfrac train` writes as `best/` or `last/`) holds `config.json`
//! (architecture), `train.toml` (input size), the weights (`ema.safetensors` when present,
//! else `model.safetensors`) and optionally `operating_points.json` (from `hipfrac calibrate`).
//! Loading folds every RepConv and BatchNorm into plain convolutions.
//!
//! A prediction: the radiograph is rendered for display (its own window, or an automatic one),
//! letterboxed exactly as in training, run through the fused network; boxes with score ≥ 0.05
//! are kept after per-class NMS (IoU 0.7), mapped back to the image's pixels; then the
//! [`verdict`] rule gives one answer per image, and [`side`] says which hip it concerns.

pub mod cases;
pub mod overlay;
pub mod verdict;

use hipfrac_core::{Detection, Laterality, Radiograph};
use hipfrac_model::{DamoYolo, ModelConfig};
pub use hipfrac_train::data::{Letterbox, Preprocess};
use hipfrac_train::data::letterbox;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};
pub use verdict::{decide, OperatingPoint, OperatingPoints, Verdict};

/// The detector's confidence floor and NMS overlap (the reference's inference settings).
pub const SCORE_FLOOR: f64 = 0.05;
pub const NMS_IOU: f32 = 0.7;

/// Errors, each naming the file and the fault.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Image { path: PathBuf, message: String },
}

fn model_error(path: &Path, message: impl ToString) -> InferError {
    InferError::Model { path: path.to_path_buf(), message: message.to_string() }
}

/// Which hip a finding concerns, and how that was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCall {
    pub side: Side,
    pub source: SideSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Right,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideSource {
    /// The file's Image Laterality (0020,0062) or Laterality (0020,0060): R or L.
    ImageLaterality,
    /// From the box's position: on an AP radiograph the patient's right is on the viewer's
    /// left, so a box centred left of the midline is the right hip. Used for bilateral views
    /// (laterality B) and files that do not say.
    BoxPosition,
}

/// Which hip `bbox` is on in `image`.
pub fn side(image: &Radiograph, bbox: &hipfrac_core::BBox) -> SideCall {
    match image.meta.laterality {
        Some(Laterality::Right) => SideCall { side: Side::Right, source: SideSource::ImageLaterality },
        Some(Laterality::Left) => SideCall { side: Side::Left, source: SideSource::ImageLaterality },
        _ => {
            let (cx, _) = bbox.center();
            let side = if cx < image.width() as f32 / 2.0 { Side::Right } else { Side::Left };
            SideCall { side, source: SideSource::BoxPosition }
        }
    }
}

/// Everything predicted for one image. Boxes are in the image's own pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub width: u32,
    pub height: u32,
    /// Boxes with score ≥ 0.05 after NMS, most confident first.
    pub detections: Vec<Detection>,
    /// Each class's most confident box score (DF, VF, SF, UF); 0 without a box.
    pub class_scores: [f32; 4],
    pub verdict: Verdict,
    /// The hip of the verdict's most confident box (none for "no visible fracture").
    pub side: Option<SideCall>,
}

/// A loaded model, ready to predict.
pub struct Predictor {
    pub dir: PathBuf,
    pub config: ModelConfig,
    /// Square input size (letterboxed), from train.toml.
    pub size: i64,
    /// Size and intensity handling, from train.toml (as in training).
    pub preprocess: Preprocess,
    pub device: Device,
    pub points: OperatingPoints,
    /// First 16 hex digits of the weights file's SHA-256.
    pub model_hash: String,
    pub weights: PathBuf,
    model: DamoYolo,
    _vs: nn::VarStore,
}

#[derive(Deserialize)]
struct InputSection {
    image_size: i64,
    #[serde(default)]
    equalize: bool,
}

impl Predictor {
    /// Loads the model folder `dir` onto `device` (see the crate docs for its files).
    pub fn load(dir: &Path, device: Device) -> Result<Predictor, InferError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read(&config_path).map_err(|e| model_error(&config_path, format!("cannot read the model config: {e}")))?;
        let config: ModelConfig = serde_json::from_slice(&text).map_err(|e| model_error(&config_path, format!("not a model config: {e}")))?;
        if config.num_classes != 4 || config.in_channels != 1 {
            return Err(model_error(&config_path, format!("expected 1 input channel and 4 classes, found {} and {}", config.in_channels, config.num_classes)));
        }
        let train_path = dir.join("train.toml");
        let text = std::fs::read_to_string(&train_path).map_err(|e| model_error(&train_path, format!("cannot read the training config (it gives the input size): {e}")))?;
        // Only the input keys are needed; the others are the training run's business.
        let input = toml::from_str::<toml::Table>(&text)
            .map_err(|e| model_error(&train_path, e))
            .and_then(|t| t.try_into::<InputSection>().map_err(|e| model_error(&train_path, e)))?;
        let size = input.image_size;
        if size < 64 || size % 32 != 0 {
            return Err(model_error(&train_path, format!("image_size {size} must be a multiple of 32, at least 64")));
        }
        let weights = ["ema.safetensors", "model.safetensors"].iter().map(|n| dir.join(n)).find(|p| p.exists()).ok_or_else(|| model_error(dir, "no ema.safetensors or model.safetensors"))?;
        let bytes = std::fs::read(&weights).map_err(|e| model_error(&weights, e))?;
        let model_hash = hex::encode(&sha2::Sha256::digest(&bytes)[..8]);
        let mut train_vs = nn::VarStore::new(device);
        let training = DamoYolo::new(&train_vs.root(), &config, false);
        train_vs.load(&weights).map_err(|e| model_error(&weights, format!("weights do not fit the config: {e}")))?;
        let vs = nn::VarStore::new(device);
        let mut model = DamoYolo::new(&vs.root(), &config, true);
        training.fold_into(&mut model);
        let points_path = dir.join("operating_points.json");
        let points = if points_path.exists() {
            let text = std::fs::read(&points_path).map_err(|e| model_error(&points_path, e))?;
            let points: OperatingPoints = serde_json::from_slice(&text).map_err(|e| model_error(&points_path, format!("not an operating-points file: {e}")))?;
            points.validate().map_err(|e| model_error(&points_path, e))?;
            points
        } else {
            OperatingPoints::uncalibrated()
        };
        let preprocess = Preprocess { size, equalize: input.equalize };
        Ok(Predictor { dir: dir.to_path_buf(), config, size, preprocess, device, points, model_hash, weights, model, _vs: vs })
    }

    /// Images per forward pass: 16 on a GPU, 2 on the CPU.
    pub fn batch_size(&self) -> usize {
        if self.device.is_cuda() { 16 } else { 2 }
    }

    /// Letterboxes `image` to the model's size.
    pub fn prepare(&self, image: &Radiograph) -> Result<Letterbox, String> {
        letterbox(image, &self.preprocess)
    }

    /// Detections per prepared image, in the original images' pixels.
    pub fn detect(&self, prepared: &[&Letterbox]) -> Vec<Vec<Detection>> {
        if prepared.is_empty() {
            return Vec::new();
        }
        let s = self.size;
        let flat: Vec<f32> = prepared.iter().flat_map(|l| l.pixels.iter().map(|&p| p as f32 / 255.0)).collect();
        let images = Tensor::from_slice(&flat).reshape([prepared.len() as i64, 1, s, s]).to_device(self.device);
        let found = hipfrac_train::trainer::detections(&self.model, &images, SCORE_FLOOR, NMS_IOU);
        found
            .into_iter()
            .zip(prepared)
            .map(|(list, l)| {
                list.into_iter()
                    .map(|d| Detection { bbox: l.to_original(&d.bbox), ..d })
                    .filter(|d| !d.bbox.is_degenerate())
                    .collect()
            })
            .collect()
    }

    /// The verdict and side for an image's detections.
    pub fn conclude(&self, image: &Radiograph, detections: Vec<Detection>) -> Prediction {
        let class_scores = verdict::class_scores(&detections);
        let verdict = decide(class_scores, &self.points);
        let side = match verdict.label {
            hipfrac_core::Label::Fracture(class) => detections.iter().find(|d| d.class == class).map(|d| side(image, &d.bbox)),
            hipfrac_core::Label::NoFracture => None,
        };
        Prediction { width: image.width(), height: image.height(), detections, class_scores, verdict, side }
    }

    /// Predicts a batch of radiographs.
    pub fn predict(&self, images: &[&Radiograph]) -> Result<Vec<Prediction>, String> {
        let prepared = images.iter().map(|i| self.prepare(i)).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Letterbox> = prepared.iter().collect();
        let found = self.detect(&refs);
        Ok(images.iter().zip(found).map(|(image, d)| self.conclude(image, d)).collect())
    }
}

/// Writes an untrained model folder (`config.json`, `train.toml`, `model.safetensors`) for
/// smoke tests of the prediction path. With `class_bias` the class logits' biases are set to it
/// (0.0 gives scores near 0.5, so an untrained model still draws boxes).
pub fn write_untrained(dir: &Path, config: &ModelConfig, size: i64, class_bias: Option<f64>) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = DamoYolo::new(&vs.root(), config, false);
    if let Some(bias) = class_bias {
        tch::no_grad(|| {
            for (name, mut tensor) in vs.variables() {
                if name.contains("gfl_cls") && name.ends_with("bias") {
                    let _ = tensor.fill_(bias);
                }
            }
        });
    }
    hipfrac_model::save_weights(&vs, &dir.join("model.safetensors")).map_err(|e| e.to_string())?;
    let json = serde_json::to_vec_pretty(config).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config.json"), json).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("train.toml"), format!("image_size = {size}\n")).map_err(|e| e.to_string())
}
