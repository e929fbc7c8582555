//! The AI overlay: the model is not part of the workstation (it links no libtorch). The
//! program that starts the workstation loads the model and hands it in as an [`AiModel`]; the
//! workstation predicts every case once at start-up, in small batches, and keeps only what a
//! reader is shown.

use crate::error::StudyError;
use hipfrac_core::{Answer, Label, OperatingPoint, OperatingPoints, Prediction, Radiograph};
use std::path::PathBuf;

/// Predicts a batch of radiographs, one result per image, in order.
pub type PredictFn<'a> =
    &'a mut dyn FnMut(&[Radiograph]) -> Vec<Result<Prediction, Box<dyn std::error::Error + Send + Sync>>>;

/// The model of the AI phases: its operating points (which boxes are worth showing) and a
/// way to predict.
pub struct AiModel<'a> {
    pub points: &'a OperatingPoints,
    pub predict: PredictFn<'a>,
}

/// Images per call of [`AiModel::predict`] (bounds the memory of decoded images and of the
/// model's activations).
pub const BATCH: usize = 8;

/// What a reader in an AI phase sees of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct AiOverlay {
    /// The boxes worth showing, as JSON: `[{"class":"DF","score":0.9,"bbox":[x0,y0,x1,y1]}]`
    /// in image pixels.
    pub boxes: String,
    /// One line: the verdict, its confidence and operating point.
    pub summary: String,
}

impl AiOverlay {
    /// The overlay of one prediction.
    pub fn new(prediction: &Prediction, points: &OperatingPoints) -> AiOverlay {
        let shown = prediction.shown_boxes(points);
        let boxes: Vec<serde_json::Value> = shown
            .iter()
            .map(|d| serde_json::json!({"class": d.class.code(), "score": d.score, "bbox": [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max]}))
            .collect();
        let summary = match &prediction.answer {
            Answer::Verdict(v) => match v.label {
                Label::Fracture(c) => {
                    let point = if v.operating_point == OperatingPoint::Fracture {
                        "fracture"
                    } else {
                        "suspicious"
                    };
                    format!(
                        "{} ({}), confidence {:.2}, {point}",
                        c.code(),
                        c.full_name(),
                        v.confidence.unwrap_or(0.0)
                    )
                }
                Label::NoFracture => "no visible fracture".to_string(),
                Label::UntypedFracture => format!(
                    "fracture (type not given), confidence {:.2}",
                    v.confidence.unwrap_or(0.0)
                ),
            },
            Answer::NotAssessable(n) => format!("not assessable, no verdict: {}", n.reason),
        };
        AiOverlay {
            boxes: serde_json::to_string(&boxes).expect("boxes serialise"),
            summary,
        }
    }
}

/// The overlay of every image in `paths`, predicted [`BATCH`] images at a time.
pub(crate) fn overlays(paths: &[PathBuf], ai: AiModel<'_>) -> Result<Vec<AiOverlay>, StudyError> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(BATCH) {
        let images = chunk
            .iter()
            .map(|path| {
                hipfrac_dicom::read_radiograph(path).map_err(|source| StudyError::ReadImage {
                    path: path.clone(),
                    source: Box::new(source),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let predictions = (ai.predict)(&images);
        if predictions.len() != images.len() {
            return Err(StudyError::PredictionCount {
                images: images.len(),
                returned: predictions.len(),
            });
        }
        for (path, prediction) in chunk.iter().zip(predictions) {
            let prediction = prediction.map_err(|source| StudyError::Predict {
                path: path.clone(),
                source,
            })?;
            out.push(AiOverlay::new(&prediction, ai.points));
        }
    }
    Ok(out)
}
