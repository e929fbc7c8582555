//! The training config (TOML). Every default is the paper's.

use hipfrac_core::{Preset, Stage};
use hipfrac_model::precision::Precision;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Model section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// `t` (DAMO-YOLO-T, the paper's) or `nano` (CPU tests and the demo).
    pub preset: Preset,
    /// 1 for radiographs.
    pub in_channels: i64,
    /// A localiser (`stage = "hips"`) also learns whether the whole image is an AP hip or
    /// pelvis film: an image-level head whose probability scales every hip score. Images with
    /// a hip box are in scope; those without (out-of-scope films: hands, knees, chests…) and,
    /// while augmentation is strong, a fifth of the images cut to a band without a hip, are
    /// not. Ignored for the other stages.
    pub scope_head: bool,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            preset: Preset::T,
            in_channels: 1,
            scope_head: true,
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Training manifest (CSV: image, annotation, patient, site, label), e.g. from
    /// `hipfrac dataset split`.
    pub train: PathBuf,
    /// Validation manifest.
    pub val: PathBuf,
    /// Output folder: checkpoints, config.json, log.csv.
    pub out: PathBuf,
    /// A trained model folder whose weights (`ema.safetensors`, else `model.safetensors`)
    /// start the run instead of random ones: fine-tuning, e.g. on real films after phantom
    /// pre-training. Its preset and stage must be this run's. None (the default): from scratch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
    pub model: ModelSection,
    /// Square input size in pixels (letterboxed), a multiple of 32.
    pub image_size: i64,
    /// Histogram-equalise each displayed radiograph before letterboxing (training and, through
    /// the saved train.toml, inference). Off by default (the paper does not).
    pub equalize: bool,
    pub batch_size: i64,
    pub epochs: i64,
    pub warmup_epochs: f64,
    /// Learning rate per image; the rate used is this × batch size (0.01/64 per image).
    pub base_lr_per_image: f64,
    /// The cosine ends at this fraction of the base rate.
    pub min_lr_ratio: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub ema_decay: f64,
    /// Updates over which the EMA's decay ramps up to `ema_decay`:
    /// `ema_decay·(1 − e^(−updates/ema_ramp_updates))` (DAMO-YOLO's and YOLOX's 2000). A run
    /// of not many more updates than this hardly averages: the demo's 20-epoch localiser (414
    /// films in batches of 16, 520 updates) ends at a decay of 0.23, its EMA about its last
    /// weights.
    pub ema_ramp_updates: f64,
    /// The last epochs run without strong augmentation.
    pub no_aug_epochs: i64,
    /// Probability that a training image is a mosaic of four (off in the last epochs).
    pub mosaic: f64,
    /// Probability that a mosaic is mixed with another (off in the last epochs).
    pub mixup: f64,
    /// Horizontal flip probability.
    pub flip: f64,
    /// Strength of brightness/contrast/gamma jitter (radiographs differ by site).
    pub intensity_jitter: f64,
    /// Probability that a training image is re-acquired at random (`data::reacquire`: window
    /// and tone curve, edge enhancement or blur, lost resolution, noise, collimation borders,
    /// burned-in text and markers, photometric inversion), so that a model does not learn one
    /// site's look. 0 (the paper's recipe) leaves images as they are.
    pub acquisition: f64,
    /// Probability that a training image is turned by 90° (either way, boxes with it): films
    /// stored turned, as some archives and public sets hold them. For the hip localiser; 0
    /// (the paper's recipe) never turns.
    pub rotate90: f64,
    /// Random scale (±) and translation (± fraction of the size) of the letterboxed image.
    pub scale_jitter: f64,
    pub translate: f64,
    /// Validate every this many epochs (and at the last).
    pub val_interval: i64,
    pub seed: u64,
    /// The network's compute type in training: `fp32` (the paper's) or `bf16` (autocast; the
    /// assigner and the losses stay fp32), or `fp16` (autocast with dynamic loss scaling,
    /// `optim::LossScaler`: for GPUs without bf16).
    pub precision: Precision,
    /// What the detector learns: `whole` (the paper's single stage: the four fracture types on
    /// the whole radiograph), `hips` (the two-stage system's localiser: proximal femur boxes,
    /// VOC objects named `hip`) or `hip_crops` (its fracture detector, on a square crop around
    /// each hip box).
    pub stage: Stage,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            train: PathBuf::from("splits/train.csv"),
            val: PathBuf::from("splits/val.csv"),
            out: PathBuf::from("runs/damo-t"),
            init: None,
            model: ModelSection::default(),
            image_size: 1024,
            equalize: false,
            batch_size: 64,
            epochs: 430,
            warmup_epochs: 5.0,
            base_lr_per_image: 0.01 / 64.0,
            min_lr_ratio: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            ema_decay: 0.9998,
            ema_ramp_updates: 2000.0,
            no_aug_epochs: 16,
            mosaic: 1.0,
            mixup: 0.15,
            flip: 0.5,
            intensity_jitter: 0.2,
            acquisition: 0.0,
            rotate90: 0.0,
            scale_jitter: 0.2,
            translate: 0.1,
            val_interval: 1,
            seed: 0,
            precision: Precision::Fp32,
            stage: Stage::Whole,
        }
    }
}

impl TrainConfig {
    /// The CPU demo's schedule, sized to finish in under 10 minutes on 2 cores
    /// (bench/learn_nano.sh's settings, fewer epochs): nano preset at 320 px, batch 16,
    /// SGD/EMA/warmup/cosine as the paper; no mosaic at this resolution (it shrinks the
    /// fracture signs below a pixel). The default (the paper's recipe) is for a GPU.
    pub fn cpu_demo() -> Self {
        TrainConfig {
            model: ModelSection {
                preset: hipfrac_core::Preset::Nano,
                ..ModelSection::default()
            },
            // A 40-epoch cosine leaves little time at a high rate: at the paper's 0.01/64 per
            // image the validation mAP50 after 40 epochs was 0.21, at 4× 0.72, at 8× 0.77
            // (phantom site-a, 413 training images, 2026-11-27).
            base_lr_per_image: 8.0 * 0.01 / 64.0,
            // Histogram equalisation evens out the sites' tone curves (hipfrac's addition, not
            // the paper's): on the same data and schedule it raised validation mAP50 from 0.82
            // to 0.88 and the external site's micro sensitivity from 0.27 to 0.72 (2026-11-27).
            equalize: true,
            image_size: 320,
            batch_size: 16,
            // 60 epochs: 434 s for the whole demo, validation mAP50 0.88; 40 epochs took
            // 288 s for 0.82 (2026-11-27).
            epochs: 60,
            warmup_epochs: 3.0,
            no_aug_epochs: 6,
            val_interval: 10,
            mosaic: 0.0,
            mixup: 0.0,
            ..TrainConfig::default()
        }
    }

    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let fail = |fault| ConfigError {
            path: path.to_path_buf(),
            fault,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(ConfigFault::Io(e)))?;
        Self::parse(&text, path)
    }

    /// Parses the text of the config file `path` (named in errors; relative paths in the
    /// config are relative to its folder) and checks every field ([`TrainConfig::validate`]).
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ConfigError> {
        let fail = |fault| ConfigError {
            path: path.to_path_buf(),
            fault,
        };
        let mut config: TrainConfig = toml::from_str(text).map_err(|e| fail(ConfigFault::Toml(e)))?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        for p in [&mut config.train, &mut config.val, &mut config.out]
            .into_iter()
            .chain(config.init.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.validate().map_err(|e| fail(ConfigFault::Invalid(e)))?;
        Ok(config)
    }

    /// Checks every field against its range ([`RANGES`]); the first value outside its range
    /// (NaN and infinities included) is the error.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        if self.image_size % 32 != 0 || !(64..=4096).contains(&self.image_size) {
            return Err(InvalidConfig::ImageSize(self.image_size));
        }
        let checks: [(&'static str, f64, f64, f64); 22] = [
            ("batch_size", self.batch_size as f64, 1.0, 1024.0),
            ("epochs", self.epochs as f64, 1.0, 100_000.0),
            ("warmup_epochs", self.warmup_epochs, 0.0, 100_000.0),
            ("base_lr_per_image", self.base_lr_per_image, 1e-9, 0.01),
            ("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0),
            ("momentum", self.momentum, 0.0, 0.999),
            ("weight_decay", self.weight_decay, 0.0, 0.1),
            ("ema_decay", self.ema_decay, 0.0, 0.99999),
            ("ema_ramp_updates", self.ema_ramp_updates, 1.0, 1e7),
            ("no_aug_epochs", self.no_aug_epochs as f64, 0.0, 100_000.0),
            ("mosaic", self.mosaic, 0.0, 1.0),
            ("mixup", self.mixup, 0.0, 1.0),
            ("flip", self.flip, 0.0, 1.0),
            ("intensity_jitter", self.intensity_jitter, 0.0, 1.0),
            ("acquisition", self.acquisition, 0.0, 1.0),
            ("rotate90", self.rotate90, 0.0, 1.0),
            ("scale_jitter", self.scale_jitter, 0.0, 0.9),
            ("translate", self.translate, 0.0, 0.5),
            ("val_interval", self.val_interval as f64, 1.0, 100_000.0),
            ("model.in_channels", self.model.in_channels as f64, 1.0, 1.0),
            // The rate actually used (per image × batch) stays below where SGD diverges.
            ("base_lr_per_image × batch_size", self.base_lr(), 1e-9, 1.0),
            (
                "image_size × batch_size (pixels per step, millions)",
                (self.image_size * self.image_size) as f64 * self.batch_size as f64 / 1e6,
                0.0,
                268.0,
            ),
        ];
        for (field, value, low, high) in checks {
            if !(value.is_finite() && low <= value && value <= high) {
                return Err(InvalidConfig::OutOfRange {
                    field,
                    value,
                    low,
                    high,
                });
            }
        }
        Ok(())
    }

    pub fn model_config(&self) -> hipfrac_model::ModelConfig {
        hipfrac_model::ModelConfig::of(self.model.preset, self.model.in_channels, self.stage.classes())
            .with_scope_head(self.stage == Stage::Hips && self.model.scope_head)
    }

    /// How images become network input.
    pub fn preprocess(&self) -> hipfrac_imaging::Preprocess {
        hipfrac_imaging::Preprocess {
            size: self.image_size,
            equalize: self.equalize,
        }
    }

    /// The learning rate at full speed: per-image rate × batch.
    pub fn base_lr(&self) -> f64 {
        self.base_lr_per_image * self.batch_size as f64
    }
}

/// A training config that cannot be used, naming its file.
#[derive(Debug, thiserror::Error)]
#[error("{}: not a usable training config", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    #[source]
    pub fault: ConfigFault,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFault {
    #[error("cannot read it")]
    Io(#[source] std::io::Error),
    #[error("not valid TOML for a training config")]
    Toml(#[source] toml::de::Error),
    #[error(transparent)]
    Invalid(InvalidConfig),
}

/// A value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("image_size {0} must be a multiple of 32 from 64 to 4096")]
    ImageSize(i64),
    #[error("{field} = {value} is outside its range [{low}, {high}]")]
    OutOfRange {
        field: &'static str,
        value: f64,
        low: f64,
        high: f64,
    },
}

/// `config` as TOML with a comment naming each key's range (`hipfrac train --init-config`).
pub fn commented(config: &TrainConfig) -> String {
    let text = toml::to_string(config).expect("a config serialises");
    let mut out = String::from(
        "# hipfrac training config. Defaults are the paper's (DAMO-YOLO-T, 1024 px, batch 64, 430 epochs,\n\
         # SGD momentum 0.9, weight decay 5e-4, 5-epoch warmup, lr 0.01/64 per image, cosine, EMA).\n\
         # Paths are relative to this file. Values outside a key's range are refused before any work.\n",
    );
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let range = RANGES.iter().find(|(names, _)| {
            names
                .split(", ")
                .any(|n| n == key || n.strip_prefix("model.") == Some(key))
        });
        if let Some((_, range)) = range {
            out.push_str(&format!("# {key}: {range}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The documented range of each field, as `validate` checks it (README, "Training config").
pub const RANGES: &[(&str, &str)] = &[
    ("image_size", "multiple of 32, 64–4096"),
    ("batch_size", "1–1024"),
    ("epochs", "1–100000"),
    ("warmup_epochs", "0–100000 (longer than the run: it never reaches the full rate)"),
    ("base_lr_per_image", "1e-9–0.01 (and × batch_size ≤ 1)"),
    ("min_lr_ratio", "0–1"),
    ("momentum", "0–0.999"),
    ("weight_decay", "0–0.1"),
    ("ema_decay", "0–0.99999"),
    ("ema_ramp_updates", "1–10000000"),
    ("no_aug_epochs", "0–100000 (at least epochs: no strong augmentation at all)"),
    ("mosaic, mixup, flip, intensity_jitter, acquisition, rotate90", "0–1"),
    ("scale_jitter", "0–0.9"),
    ("translate", "0–0.5"),
    ("val_interval", "1–100000"),
    ("stage", "whole (the paper's single stage), hips (the two-stage localiser) or hip_crops (the two-stage fracture detector)"),
    ("precision", "fp32, bf16 (autocast on the network, assigner and losses in fp32) or fp16 (the same with dynamic loss scaling)"),
    ("model.in_channels", "1 (radiographs are grey)"),
    ("model.scope_head", "true or false (stage = hips only: the localiser also learns whether the whole film is an AP hip or pelvis view)"),
    ("image_size² × batch_size", "at most 268 million pixels a step (1024² × 256)"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<TrainConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        std::fs::write(&path, extra).unwrap();
        TrainConfig::from_file(&path)
    }

    /// Every config the project ships parses and passes its range checks.
    #[test]
    fn the_shipped_configs_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                TrainConfig::from_file(&path).unwrap_or_else(|e| panic!("{}", hipfrac_core::error_chain(&e)));
                seen += 1;
            }
        }
        assert!(seen >= 4, "{seen} configs in {}", dir.display());
    }

    #[test]
    fn every_field_out_of_range_is_refused_before_any_work() {
        parse("").unwrap();
        parse("epochs = 10\nbatch_size = 8\nema_decay = 0.999\n").unwrap();
        for (line, field) in [
            ("ema_decay = nan", "ema_decay"),
            ("ema_decay = 2.0", "ema_decay"),
            ("ema_ramp_updates = 0.0", "ema_ramp_updates"),
            ("ema_ramp_updates = nan", "ema_ramp_updates"),
            ("base_lr_per_image = nan", "base_lr_per_image"),
            ("base_lr_per_image = inf", "base_lr_per_image"),
            ("base_lr_per_image = -0.001", "base_lr_per_image"),
            ("flip = nan", "flip"),
            ("mosaic = 2.0", "mosaic"),
            ("momentum = 5.0", "momentum"),
            ("weight_decay = -10.0", "weight_decay"),
            ("val_interval = 0", "val_interval"),
            ("batch_size = 1000000", "batch_size"),
            ("batch_size = 0", "batch_size"),
            ("warmup_epochs = -1.0", "warmup_epochs"),
            ("translate = inf", "translate"),
            ("[model]\nin_channels = 0", "model.in_channels"),
            ("[model]\nin_channels = 3", "model.in_channels"),
            ("[model]\nin_channels = -1", "model.in_channels"),
            ("image_size = 1048576", "image_size"),
            ("image_size = 100", "image_size"),
            ("image_size = 4096\nbatch_size = 64", "pixels per step"),
        ] {
            let error = parse(line).unwrap_err();
            let chain = hipfrac_core::error_chain(&error);
            assert!(chain.contains(field), "{line:?}: {chain}");
        }
    }
}
