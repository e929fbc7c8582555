//! The AI overlay: the model is not part of the workstation (it links no libtorch). The
//! program that starts the workstation loads the model and hands it in as an [`AiModel`]; the
//! workstation predicts every case once at start-up, in small batches, and keeps only what a
//! reader is shown.

use crate::error::StudyError;
use hipfrac_core::{Answer, BBox, Detection, Label, OperatingPoint, OperatingPoints, Prediction, Radiograph};
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
    /// The boxes worth showing (exactly those `hipfrac predict` draws), as JSON:
    /// `[{"class":"DF","score":0.9,"bbox":[x0,y0,x1,y1]}]` in image pixels.
    pub boxes: String,
    /// What is drawn: one mark per finding, boxes of different types over the same region
    /// merged into one, as JSON `[{"bbox":[…],"findings":[{"class":"VF","score":0.57},…]}]`
    /// (findings by score, highest first; the bbox covers the merged boxes).
    pub marks: String,
    /// One line per mark for the side panel (numbered like the marks): `VF 0.57 · DF 0.29`.
    pub mark_lines: Vec<String>,
    /// The headline in a surgeon's words: "AI: likely fracture", "AI: possible fracture — low
    /// confidence", "AI: no visible fracture" or "AI: not assessable — no verdict".
    pub headline: String,
    /// The line under the headline: the type and score, or why there is no verdict.
    pub detail: String,
    /// How the headline is styled: `likely`, `possible`, `none` or `not-assessable`.
    pub kind: &'static str,
}

/// Two boxes mark one finding when they overlap this much (intersection over the smaller box).
pub const SAME_FINDING: f32 = 0.5;

/// Groups boxes (highest score first) into marks: a box joins the first mark it overlaps by
/// [`SAME_FINDING`] of the smaller of the two.
fn marks(shown: &[Detection]) -> Vec<(BBox, Vec<&Detection>)> {
    let mut marks: Vec<(BBox, Vec<&Detection>)> = Vec::new();
    for d in shown {
        let same = marks.iter_mut().find(|(_, members)| {
            members.iter().any(|m| {
                let inter = m.bbox.intersection_area(&d.bbox);
                inter > 0.0 && inter >= SAME_FINDING * m.bbox.area().min(d.bbox.area())
            })
        });
        match same {
            Some((bbox, members)) => {
                *bbox = BBox::new(
                    bbox.x_min.min(d.bbox.x_min),
                    bbox.y_min.min(d.bbox.y_min),
                    bbox.x_max.max(d.bbox.x_max),
                    bbox.y_max.max(d.bbox.y_max),
                );
                members.push(d);
            }
            None => marks.push((d.bbox, vec![d])),
        }
    }
    marks
}

impl AiOverlay {
    /// The overlay of one prediction.
    pub fn new(prediction: &Prediction, points: &OperatingPoints) -> AiOverlay {
        let mut shown = prediction.shown_boxes(points);
        shown.sort_by(|a, b| b.score.total_cmp(&a.score));
        let boxes: Vec<serde_json::Value> = shown
            .iter()
            .map(|d| serde_json::json!({"class": d.class.code(), "score": d.score, "bbox": [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max]}))
            .collect();
        let grouped = marks(&shown);
        let mark_json: Vec<serde_json::Value> = grouped
            .iter()
            .map(|(b, members)| {
                let findings: Vec<serde_json::Value> = members
                    .iter()
                    .map(|d| serde_json::json!({"class": d.class.code(), "score": d.score}))
                    .collect();
                serde_json::json!({"bbox": [b.x_min, b.y_min, b.x_max, b.y_max], "findings": findings})
            })
            .collect();
        let mark_lines = grouped
            .iter()
            .map(|(_, members)| {
                let findings: Vec<String> = members
                    .iter()
                    .map(|d| format!("{} {:.2}", d.class.code(), d.score))
                    .collect();
                findings.join(" · ")
            })
            .collect();
        let (headline, detail, kind) = match &prediction.answer {
            Answer::Verdict(v) => {
                let what = match v.label {
                    Label::Fracture(c) => format!("{} — {}", c.code(), c.full_name()),
                    Label::UntypedFracture => "fracture (type not given)".to_string(),
                    Label::NoFracture => String::new(),
                };
                let score = v.confidence.unwrap_or(0.0);
                match (v.label, v.operating_point) {
                    (Label::NoFracture, _) | (_, OperatingPoint::NoFracture) => (
                        "AI: no visible fracture".to_string(),
                        "No finding reached the AI's threshold for a possible fracture.".to_string(),
                        "none",
                    ),
                    (_, OperatingPoint::Fracture) => (
                        "AI: likely fracture".to_string(),
                        format!("{what}, score {score:.2}"),
                        "likely",
                    ),
                    (_, OperatingPoint::Suspicious) => (
                        "AI: possible fracture — low confidence".to_string(),
                        format!("{what}, score {score:.2}: below the AI's threshold for a likely fracture"),
                        "possible",
                    ),
                }
            }
            Answer::NotAssessable(n) => (
                "AI: not assessable — no verdict".to_string(),
                n.reason.clone(),
                "not-assessable",
            ),
        };
        AiOverlay {
            boxes: serde_json::to_string(&boxes).expect("boxes serialise"),
            marks: serde_json::to_string(&mark_json).expect("marks serialise"),
            mark_lines,
            headline,
            detail,
            kind,
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
