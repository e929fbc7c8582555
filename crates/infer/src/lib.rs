//! hipfrac-infer: the one prediction path. `predict`, `evaluate`, `calibrate`, the demo and
//! the reading workstation all call [`Predictor::predict_batch`], so a radiograph gets the
//! same answer wherever it is read.
//!
//! A model folder (what `hipfrac train` writes as `best/` or `last/`) holds `config.json`
//! (architecture and preset), `train.toml` (input size, equalisation), the weights
//! (`ema.safetensors` when present, else `model.safetensors`) and optionally
//! `operating_points.json` (from [`calibrate`]). Loading folds every RepConv and BatchNorm
//! into plain convolutions.
//!
//! A prediction: the radiograph is rendered for display (its own window, or an automatic one),
//! letterboxed exactly as in training (`hipfrac_imaging::preprocess`), run through the fused
//! network; boxes at or above the score floor are kept after per-class NMS
//! (`hipfrac_model::decode`), mapped back to the image's pixels; then the verdict rule
//! (`hipfrac_core::verdict`) gives one answer per image and [`side`] says which hip.
//!
//! Before any of that, the header is checked ([`hipfrac_core::assess`]): a radiograph that
//! is not an AP hip or pelvis (a chest film, a lateral view, a CT slice, a test pattern) is
//! answered *not assessable* with the reason, and the network does not see it. So is an
//! image the display pipeline shows nothing of: its window is not a usable number (NaN,
//! infinite), or every pixel is one value.

pub mod calibrate;
pub mod cases;
mod error;

pub use error::{InferError, ModelError, ModelFault};
pub use hipfrac_core::verdict::{self, OperatingPoint, OperatingPoints, Verdict};
pub use hipfrac_core::{side, Prediction, Side, SideCall, SideSource};

use hipfrac_core::assess::{check_header, Acceptance};
use hipfrac_core::card::ModelCard;
use hipfrac_core::{AbstentionSource, BBox, HipCall, NotAssessable, Stage};
use hipfrac_core::{Answer, Detection, Preset, Radiograph};
use hipfrac_dicom::display::VoiError;
use hipfrac_imaging::{hip_region, letterbox, letterbox_regions, Letterbox, Preprocess};
use hipfrac_model::decode::{detections_at, NMS_IOU, SCORE_FLOOR};
use hipfrac_model::precision::Precision;
use hipfrac_model::{DamoYolo, ModelConfig};
use rayon::prelude::*;
use serde::Deserialize;
use sha2::Digest;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// A loaded model, ready to predict.
pub struct Predictor {
    pub dir: PathBuf,
    pub config: ModelConfig,
    /// Size and intensity handling, from train.toml (as in training).
    pub preprocess: Preprocess,
    pub device: Device,
    pub points: OperatingPoints,
    /// First 16 hex digits of the weights file's SHA-256.
    pub model_hash: String,
    /// What trained the model (`model_card.json`), when the folder has one.
    pub card: Option<ModelCard>,
    /// What the header check lets through (callers may add body parts).
    pub acceptance: Acceptance,
    /// Images per forward pass; `None`: 16 on a GPU, 2 on the CPU.
    pub batch: Option<usize>,
    /// The network's compute type (fp32, or a bf16/fp16 autocast region).
    pub precision: Precision,
    /// What the network finds ([`Stage`]); a [`Stage::HipCrops`] detector reads the hips its
    /// [`Predictor::localiser`] finds.
    pub stage: Stage,
    /// The hip localiser of a two-stage model (`localiser/` in its folder).
    pub localiser: Option<Box<Predictor>>,
    /// The localiser score a box needs to count as a hip; an image with none is not
    /// assessable: chosen on validation images by `hipfrac calibrate`
    /// (`localiser/hip_threshold.json`), else [`HIP_MIN_SCORE`].
    pub hip_min_score: f32,
    model: DamoYolo,
    _vs: nn::VarStore,
}

#[derive(Deserialize)]
struct InputSection {
    image_size: i64,
    #[serde(default)]
    equalize: bool,
    #[serde(default)]
    stage: Stage,
}

/// Per image, what a step of the prediction path made of it.
enum Prepared<T> {
    /// What the next step needs.
    Ready(T),
    /// The image is answered already: its refusal (a prediction that is not assessable).
    Refused(Prediction),
    /// The image cannot be predicted: its error.
    Failed(InferError),
}

impl<T> Prepared<T> {
    /// What the next step needs, if the image is ready for it.
    fn ready(&self) -> Option<&T> {
        match self {
            Prepared::Ready(t) => Some(t),
            Prepared::Refused(_) | Prepared::Failed(_) => None,
        }
    }

    /// The next step applied to a ready image; a refusal or an error is kept.
    fn then<U>(self, next: impl FnOnce(T) -> Prepared<U>) -> Prepared<U> {
        match self {
            Prepared::Ready(t) => next(t),
            Prepared::Refused(p) => Prepared::Refused(p),
            Prepared::Failed(e) => Prepared::Failed(e),
        }
    }

    /// What a rendering fault of `image` makes of it: an image the display pipeline shows
    /// nothing of (its window is not a usable number, it is constant) is answered not
    /// assessable with the reason, a window fault being the header's; any other fault is
    /// the image's error.
    fn unrendered(image: &Radiograph, error: VoiError) -> Prepared<T> {
        let source = match &error {
            VoiError::BadWindow(_) => AbstentionSource::Header,
            VoiError::Blank(_) => AbstentionSource::Image,
            VoiError::Choice(_) => return Prepared::Failed(InferError::Display(error)),
        };
        let why = NotAssessable {
            reason: error.to_string(),
            source,
        };
        Prepared::Refused(Prediction::refused(image.width(), image.height(), why))
    }

    /// The image's answer: `conclude` makes the prediction of a ready image.
    fn answer(self, conclude: impl FnOnce(T) -> Prediction) -> Result<Prediction, InferError> {
        match self {
            Prepared::Ready(t) => Ok(conclude(t)),
            Prepared::Refused(p) => Ok(p),
            Prepared::Failed(e) => Err(e),
        }
    }
}

/// The localiser score a box needs to count as a proximal femur when calibration has not
/// chosen one (`hipfrac calibrate` does, on validation hips and out-of-scope films).
pub const HIP_MIN_SCORE: f32 = 0.3;

/// At most this many hips are read per radiograph (an AP pelvis shows two).
pub const MAX_HIPS: usize = 2;

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| ModelError::new(path, ModelFault::Io(e)))
}

impl Predictor {
    /// Loads the model folder `dir` onto `device` (see the crate docs for its files). A
    /// two-stage model ([`Stage::HipCrops`]) loads its localiser from `dir/localiser`; a
    /// localiser by itself is refused (it gives no verdict).
    pub fn load(dir: &Path, device: Device) -> Result<Predictor, ModelError> {
        let mut predictor = Predictor::load_one(dir, device)?;
        match predictor.stage {
            Stage::Whole => {}
            Stage::Hips => return Err(ModelError::new(dir, ModelFault::LocaliserAlone)),
            Stage::HipCrops => {
                let at = dir.join("localiser");
                let localiser = Predictor::load_one(&at, device)
                    .map_err(|e| ModelError::new(dir, ModelFault::NoLocaliser(Box::new(e))))?;
                if localiser.stage != Stage::Hips {
                    return Err(ModelError::new(&at, ModelFault::NotALocaliser(localiser.stage.name())));
                }
                let threshold_path = calibrate::hip_threshold_path(dir);
                if threshold_path.exists() {
                    let chosen: calibrate::HipThreshold = serde_json::from_slice(&read(&threshold_path)?)
                        .map_err(|e| ModelError::new(&threshold_path, ModelFault::Json(e)))?;
                    if !(chosen.hip_min_score > 0.0 && chosen.hip_min_score < 1.0) {
                        return Err(ModelError::new(
                            &threshold_path,
                            ModelFault::HipThreshold(format!(
                                "hip_min_score {} is not in (0, 1)",
                                chosen.hip_min_score
                            )),
                        ));
                    }
                    predictor.hip_min_score = chosen.hip_min_score;
                }
                predictor.localiser = Some(Box::new(localiser));
            }
        }
        Ok(predictor)
    }

    fn load_one(dir: &Path, device: Device) -> Result<Predictor, ModelError> {
        let config_path = dir.join("config.json");
        let config: ModelConfig = serde_json::from_slice(&read(&config_path)?)
            .map_err(|e| ModelError::new(&config_path, ModelFault::Json(e)))?;
        let train_path = dir.join("train.toml");
        let text = std::fs::read_to_string(&train_path).map_err(|e| ModelError::new(&train_path, ModelFault::Io(e)))?;
        // Only the input keys are needed; the others are the training run's business.
        let input = toml::from_str::<toml::Table>(&text)
            .and_then(|t| t.try_into::<InputSection>())
            .map_err(|e| ModelError::new(&train_path, ModelFault::Toml(e)))?;
        let (size, stage) = (input.image_size, input.stage);
        if config.num_classes != stage.classes() || config.in_channels != 1 {
            let shape = ModelFault::Shape {
                in_channels: config.in_channels,
                classes: config.num_classes,
                expected: stage.classes(),
                stage: stage.name(),
            };
            return Err(ModelError::new(&config_path, shape));
        }
        if size < 64 || size % 32 != 0 {
            return Err(ModelError::new(&train_path, ModelFault::InputSize(size)));
        }
        let weights = ["ema.safetensors", "model.safetensors"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists())
            .ok_or_else(|| ModelError::new(dir, ModelFault::NoWeights))?;
        let model_hash = hex::encode(&sha2::Sha256::digest(read(&weights)?)[..8]);
        let mut train_vs = nn::VarStore::new(device);
        let training = DamoYolo::new(&train_vs.root(), &config, false);
        train_vs
            .load(&weights)
            .map_err(|e| ModelError::new(&weights, ModelFault::Weights(e)))?;
        let vs = nn::VarStore::new(device);
        let mut model = DamoYolo::new(&vs.root(), &config, true);
        training.fold_into(&mut model);
        let points_path = dir.join("operating_points.json");
        let points = if points_path.exists() {
            calibrate::read_points(&points_path)?
        } else {
            OperatingPoints::uncalibrated()
        };
        let card_path = dir.join(ModelCard::FILE);
        let card = if card_path.exists() {
            Some(
                serde_json::from_slice(&read(&card_path)?)
                    .map_err(|e| ModelError::new(&card_path, ModelFault::Json(e)))?,
            )
        } else {
            None
        };
        let preprocess = Preprocess {
            size,
            equalize: input.equalize,
        };
        Ok(Predictor {
            dir: dir.to_path_buf(),
            config,
            preprocess,
            device,
            points,
            model_hash,
            card,
            acceptance: Acceptance::default(),
            batch: None,
            precision: Precision::Fp32,
            stage,
            localiser: None,
            hip_min_score: HIP_MIN_SCORE,
            model,
            _vs: vs,
        })
    }

    /// The preset the weights were trained as (none for a hand-made configuration).
    pub fn preset(&self) -> Option<Preset> {
        self.config.preset()
    }

    /// Square input size of the network (letterboxed).
    pub fn input_size(&self) -> i64 {
        self.preprocess.size
    }

    /// Images per forward pass: [`Predictor::batch`], else 16 on a GPU and 2 on the CPU.
    pub fn batch_size(&self) -> usize {
        self.batch.unwrap_or(if self.device.is_cuda() { 16 } else { 2 }).max(1)
    }

    /// Predicts radiographs: the header check first; each image it lets through is prepared
    /// on the CPU in parallel, the network runs [`Predictor::batch_size`] images at a time, then
    /// the verdict and side are decided. One result per image, in order. An image the display
    /// pipeline shows nothing of (a Window Center/Width that is not a usable number, a
    /// constant image) is answered not assessable with the reason; an image that cannot be
    /// rendered otherwise gets its error; the others go on either way.
    pub fn predict_batch(&self, images: &[Radiograph]) -> Vec<Result<Prediction, InferError>> {
        if let Some(localiser) = &self.localiser {
            return self.predict_hips(localiser, images);
        }
        self.detect_whole(images, &self.acceptance)
            .into_iter()
            .zip(images)
            .map(|(found, image)| found.answer(|boxes| self.conclude(image, boxes)))
            .collect()
    }

    /// The two-stage path: the header check, the localiser on each whole image, then the
    /// fracture detector on a square crop around each hip found ([`hip_region`]), its boxes
    /// mapped back to the image; a verdict per hip, and the image's from all hips' boxes. An
    /// image where no box reaches [`Predictor::hip_min_score`] is not assessable.
    fn predict_hips(&self, localiser: &Predictor, images: &[Radiograph]) -> Vec<Result<Prediction, InferError>> {
        let located = localiser.detect_whole(images, &self.acceptance);
        let (preprocess, min_score) = (self.preprocess, self.hip_min_score);
        let crops: Vec<Prepared<(Vec<Detection>, Vec<Letterbox>)>> = images
            .par_iter()
            .zip(located)
            .map(|(image, located)| {
                located.then(|hips| {
                    let best = hips.first().map_or(0.0, |d| d.score);
                    let hips: Vec<Detection> = hips
                        .into_iter()
                        .filter(|d| d.score >= min_score)
                        .fold(Vec::new(), |mut kept, d| {
                            if kept.len() < MAX_HIPS && kept.iter().all(|k| hipfrac_core::iou(&k.bbox, &d.bbox) < 0.1) {
                                kept.push(d);
                            }
                            kept
                        });
                    if hips.is_empty() {
                        let reason = format!(
                            "no proximal femur found in the image (the hip localiser's best score is {best:.2}, below {min_score:.2})"
                        );
                        let why = NotAssessable {
                            reason,
                            source: AbstentionSource::Image,
                        };
                        return Prepared::Refused(Prediction::refused(image.width(), image.height(), why));
                    }
                    let regions: Vec<BBox> = hips
                        .iter()
                        .map(|h| hip_region(&h.bbox, image.width(), image.height()))
                        .collect();
                    match letterbox_regions(image, &preprocess, &regions) {
                        Ok(crops) => Prepared::Ready((hips, crops)),
                        Err(e) => Prepared::unrendered(image, e),
                    }
                })
            })
            .collect();
        let ready: Vec<&Letterbox> = crops
            .iter()
            .filter_map(Prepared::ready)
            .flat_map(|(_, crops)| crops)
            .collect();
        let mut found = ready
            .chunks(self.batch_size())
            .flat_map(|chunk| self.detect(chunk))
            .collect::<Vec<_>>()
            .into_iter();
        images
            .iter()
            .zip(crops)
            .map(|(image, crops)| {
                crops.answer(|(hips, _)| {
                    let per_hip: Vec<Vec<Detection>> = hips
                        .iter()
                        .map(|_| found.next().expect("the detector should return one result per crop"))
                        .collect();
                    self.conclude_hips(image, &hips, per_hip)
                })
            })
            .collect()
    }

    /// The header check, then this network's boxes on each whole image (in its pixels, most
    /// confident first); an image the check refuses gets its refusal.
    fn detect_whole(&self, images: &[Radiograph], acceptance: &Acceptance) -> Vec<Prepared<Vec<Detection>>> {
        let preprocess = self.preprocess;
        let prepared: Vec<Prepared<Letterbox>> = images
            .par_iter()
            .map(|image| match check_header(&image.meta, acceptance) {
                Err(refused) => Prepared::Refused(Prediction::refused(image.width(), image.height(), refused)),
                Ok(()) => match letterbox(image, &preprocess) {
                    Ok(prepared) => Prepared::Ready(prepared),
                    Err(e) => Prepared::unrendered(image, e),
                },
            })
            .collect();
        let ready: Vec<&Letterbox> = prepared.iter().filter_map(Prepared::ready).collect();
        let mut found = ready
            .chunks(self.batch_size())
            .flat_map(|chunk| self.detect(chunk))
            .collect::<Vec<_>>()
            .into_iter();
        prepared
            .into_iter()
            .map(|p| {
                p.then(|_| {
                    Prepared::Ready(
                        found
                            .next()
                            .expect("the network should return one result per prepared image"),
                    )
                })
            })
            .collect()
    }

    /// The hip localiser's best score on each image (0 when it finds nothing), or `None` for
    /// an image refused before the network (by the header check, or as one the display
    /// pipeline shows nothing of); only for a two-stage model (`None` for every image
    /// otherwise).
    pub fn best_hip_scores(&self, images: &[Radiograph]) -> Vec<Result<Option<f32>, InferError>> {
        let Some(localiser) = &self.localiser else {
            return images.iter().map(|_| Ok(None)).collect();
        };
        localiser
            .detect_whole(images, &self.acceptance)
            .into_iter()
            .map(|found| match found {
                Prepared::Ready(hips) => Ok(Some(hips.first().map_or(0.0, |d| d.score))),
                Prepared::Refused(_) => Ok(None),
                Prepared::Failed(e) => Err(e),
            })
            .collect()
    }

    /// The verdict of each hip from the boxes in its crop, and the image's from them all.
    fn conclude_hips(&self, image: &Radiograph, hips: &[Detection], per_hip: Vec<Vec<Detection>>) -> Prediction {
        let calls: Vec<HipCall> = hips
            .iter()
            .zip(&per_hip)
            .map(|(hip, found)| {
                let class_scores = verdict::class_scores(found);
                // One hip in a file that names its side: that side; two: their positions.
                let side = if hips.len() == 1 {
                    side(image, &hip.bbox)
                } else {
                    hipfrac_core::side_by_position(image.width(), &hip.bbox)
                };
                HipCall {
                    bbox: hip.bbox,
                    score: hip.score,
                    side,
                    verdict: verdict::decide(class_scores, &self.points),
                    class_scores,
                }
            })
            .collect();
        let mut all: Vec<Detection> = per_hip.into_iter().flatten().collect();
        all = hipfrac_core::nms_per_class(&all, NMS_IOU);
        let mut prediction = self.conclude(image, all);
        if let (Some(class), true) = (prediction.verdict().and_then(|v| v.label.fracture()), calls.len() > 1) {
            // The side is that of the hip whose crop gave the answer's best box.
            let hip = calls
                .iter()
                .max_by(|a, b| a.class_scores[class.index()].total_cmp(&b.class_scores[class.index()]));
            prediction.side = hip.map(|h| h.side);
        }
        prediction.hips = calls;
        prediction
    }

    /// Uses the operating points re-fitted for `site` (`operating_points.<site>.json`, from
    /// `calibrate::refit_site`) instead of the model's own.
    pub fn use_site(&mut self, site: &str) -> Result<(), ModelError> {
        let path = calibrate::site_points_path(&self.dir, site);
        if !path.exists() {
            return Err(ModelError::new(&path, ModelFault::NoSite(site.to_string())));
        }
        self.points = calibrate::read_points(&path)?;
        Ok(())
    }

    /// True when the thresholds are the uncalibrated defaults (no `operating_points.json`).
    pub fn is_uncalibrated(&self) -> bool {
        self.points.chosen_on == OperatingPoints::uncalibrated().chosen_on
    }

    /// What a reader of this model's output must know, for overlays and captures: trained on
    /// simulated radiographs, training data unknown (no model card), uncalibrated.
    pub fn caveats(&self) -> Vec<&'static str> {
        let mut caveats = Vec::new();
        match &self.card {
            Some(card) if card.training.simulated_images > 0 => caveats.push("TRAINED ON SIMULATED RADIOGRAPHS"),
            Some(_) => {}
            None => caveats.push("TRAINING DATA UNKNOWN"),
        }
        if self.is_uncalibrated() {
            caveats.push("UNCALIBRATED");
        }
        caveats
    }

    /// Detections per prepared image, in the original images' pixels.
    fn detect(&self, prepared: &[&Letterbox]) -> Vec<Vec<Detection>> {
        let s = self.preprocess.size;
        let flat: Vec<f32> = prepared
            .iter()
            .flat_map(|l| l.pixels.iter().map(|&p| p as f32 / 255.0))
            .collect();
        let images = Tensor::from_slice(&flat)
            .reshape([prepared.len() as i64, 1, s, s])
            .to_device(self.device);
        detections_at(&self.model, &images, SCORE_FLOOR, NMS_IOU, self.precision)
            .into_iter()
            .zip(prepared)
            .map(|(list, l)| {
                list.into_iter()
                    .map(|d| Detection {
                        bbox: l.to_original(&d.bbox),
                        ..d
                    })
                    .filter(|d| !d.bbox.is_degenerate())
                    .collect()
            })
            .collect()
    }

    /// The verdict and side for an image's detections.
    fn conclude(&self, image: &Radiograph, detections: Vec<Detection>) -> Prediction {
        let class_scores = verdict::class_scores(&detections);
        let verdict = verdict::decide(class_scores, &self.points);
        let answer = Answer::Verdict(verdict);
        let side = match verdict.label {
            hipfrac_core::Label::Fracture(class) => detections
                .iter()
                .find(|d| d.class == class)
                .map(|d| side(image, &d.bbox)),
            // `decide` answers a type or none, never an untyped fracture.
            hipfrac_core::Label::NoFracture | hipfrac_core::Label::UntypedFracture => None,
        };
        Prediction {
            width: image.width(),
            height: image.height(),
            detections,
            class_scores,
            answer,
            side,
            hips: Vec::new(),
        }
    }
}

/// Writes an untrained model folder (`config.json`, `train.toml`, `model.safetensors`) for
/// tests of the prediction path. With `class_bias` the class logits' biases are set to it
/// (0.0 gives scores near 0.5, so an untrained model still draws boxes). Only with the
/// `test-support` feature.
#[cfg(feature = "test-support")]
pub fn write_untrained(dir: &Path, config: &ModelConfig, size: i64, class_bias: Option<f64>) -> Result<(), ModelError> {
    fn io(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
        move |e| ModelError::new(path, ModelFault::Io(e))
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
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
    let weights = dir.join("model.safetensors");
    hipfrac_model::save_weights(&vs, &weights).map_err(|e| ModelError::new(&weights, ModelFault::Weights(e)))?;
    let json = serde_json::to_vec_pretty(config).expect("a model config serialises");
    let (config_path, train_path) = (dir.join("config.json"), dir.join("train.toml"));
    std::fs::write(&config_path, json).map_err(io(&config_path))?;
    std::fs::write(&train_path, format!("image_size = {size}\n")).map_err(io(&train_path))
}
