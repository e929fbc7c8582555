//! Errors of the prediction path, each naming the file or image it concerns.

use std::path::{Path, PathBuf};

/// A model folder that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot load the model", path.display())]
pub struct ModelError {
    pub path: PathBuf,
    #[source]
    pub fault: ModelFault,
}

impl ModelError {
    pub fn new(path: &Path, fault: ModelFault) -> Self {
        ModelError {
            path: path.to_path_buf(),
            fault,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFault {
    #[error("cannot read it")]
    Io(#[source] std::io::Error),
    #[error("not valid JSON for it")]
    Json(#[source] serde_json::Error),
    #[error("not a usable training config (it gives the input size)")]
    Toml(#[source] toml::de::Error),
    #[error("expected 1 input channel and {expected} classes (stage {stage}), found {in_channels} and {classes}")]
    Shape {
        in_channels: i64,
        classes: i64,
        expected: i64,
        stage: &'static str,
    },
    #[error("a hip localiser (stage = \"hips\") gives no verdict by itself: it belongs in the localiser/ folder of a hip-crop detector")]
    LocaliserAlone,
    #[error("a hip-crop detector (stage = \"hip_crops\") needs its localiser (a model trained with stage = \"hips\") in localiser/")]
    NoLocaliser(#[source] Box<ModelError>),
    #[error("localiser/ holds a model of stage {0}, not a hip localiser (stage = \"hips\")")]
    NotALocaliser(&'static str),
    #[error("image_size {0} must be a multiple of 32, at least 64")]
    InputSize(i64),
    #[error("no ema.safetensors or model.safetensors")]
    NoWeights,
    #[error("the weights do not fit the config")]
    Weights(#[source] tch::TchError),
    #[error("invalid operating points")]
    Thresholds(#[source] hipfrac_core::verdict::InvalidThresholds),
    #[error("invalid hip threshold: {0}")]
    HipThreshold(String),
    #[error("no operating points for site {0:?}; fit them with `hipfrac calibrate --site {0} --data SAMPLE.csv`")]
    NoSite(String),
}

/// One image that could not be predicted.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("cannot render the image for the network")]
    Display(#[source] hipfrac_dicom::display::VoiError),
    #[error(transparent)]
    Read(#[from] hipfrac_dicom::Error),
    #[error(transparent)]
    Dataset(#[from] hipfrac_data::Error),
    #[error("{}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: Box<InferError>,
    },
    #[error("{}: the manifest lists no images", .0.display())]
    EmptyManifest(PathBuf),
    /// A manifest whose rows cannot all be true at once.
    #[error("{}: row {row}: {problem}", path.display())]
    Manifest { path: PathBuf, row: usize, problem: String },
    #[error("{}: all {images} images were found not assessable (e.g. {reason}); if it was the header check and your archive names hips otherwise, pass --accept-body-part", manifest.display())]
    NoneAssessable {
        manifest: std::path::PathBuf,
        images: usize,
        reason: String,
    },
}

impl InferError {
    /// This error, said of the image at `path`.
    pub fn at(self, path: &Path) -> InferError {
        InferError::Image {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}
