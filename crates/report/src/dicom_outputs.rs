//! A prediction as the DICOM objects a PACS stores (`hipfrac_dicom::outputs`): a Secondary
//! Capture of the overlay, a Grayscale Softcopy Presentation State of the boxes and a
//! Comprehensive SR of the findings (a TID 1500 measurement report) — assembled here once for every caller (`hipfrac
//! predict`, and the HTTP service or a DICOM node later), so that all of them say the same.

use hipfrac_core::{
    BBox, FractureClass, Label, Laterality, OperatingPoint, OperatingPoints, Prediction, Radiograph, RadiographMeta,
};
use hipfrac_dicom::outputs::{self, codes, Capture, Code, Finding, Mark, Report, Rgb, Side, CODING_SCHEME};
use hipfrac_imaging::overlay::{self, Marks};
use std::path::{Path, PathBuf};

/// Which objects to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomKind {
    /// Secondary Capture of the overlay (`<base>.sc.dcm`).
    Sc,
    /// Grayscale Softcopy Presentation State (`<base>.pr.dcm`).
    Gsps,
    /// Comprehensive SR, a TID 1500 measurement report (`<base>.sr.dcm`).
    Sr,
}

/// The model behind a prediction, as the objects name it.
pub struct ModelContext<'a> {
    pub points: &'a OperatingPoints,
    /// First 16 hex digits of the weights' SHA-256 (with the source's UIDs it makes the new ones).
    pub hash: &'a str,
    /// The preset and weights, for the SR's observer device.
    pub name: String,
    /// "TRAINED ON SIMULATED RADIOGRAPHS", "UNCALIBRATED", …
    pub caveats: Vec<&'static str>,
}

/// Why an object was not written.
#[derive(Debug, thiserror::Error)]
pub enum DicomOutputError {
    #[error("{}: a {what} needs a DICOM source (its study and patient); this is not DICOM", path.display())]
    NotDicom { path: PathBuf, what: &'static str },
    #[error("{}: cannot draw the overlay", path.display())]
    Draw {
        path: PathBuf,
        #[source]
        source: hipfrac_dicom::display::VoiError,
    },
    #[error(transparent)]
    Dicom(#[from] hipfrac_dicom::Error),
}

/// A fracture type as the standard (SNOMED CT) finding a PACS indexes: the femoral-neck types
/// are fractures of the neck of the femur, the intertrochanteric ones pertrochanteric fractures
/// of the proximal femur (see [`outputs::codes::PERTROCHANTERIC_FRACTURE_OF_FEMUR`]); the
/// 99HIPFRAC type beside it says which of the two in each pair.
pub fn standard_finding(class: FractureClass) -> Code<'static> {
    match class {
        FractureClass::DisplacedNeck | FractureClass::ValgusImpactedNeck => codes::FRACTURE_OF_NECK_OF_FEMUR,
        FractureClass::StableIntertrochanteric | FractureClass::UnstableIntertrochanteric => {
            codes::PERTROCHANTERIC_FRACTURE_OF_FEMUR
        }
    }
}

/// The patient's side of a box: the side of the hip the two-stage detector found around its
/// centre, else the file's laterality, else the box's position (an AP image: the patient's
/// right is on the viewer's left).
fn side_of(bbox: &BBox, prediction: &Prediction, meta: &RadiographMeta) -> Side {
    let (cx, cy) = bbox.center();
    let call = prediction
        .hips
        .iter()
        .find(|hip| hip.bbox.x_min <= cx && cx < hip.bbox.x_max && hip.bbox.y_min <= cy && cy < hip.bbox.y_max)
        .map(|hip| hip.side.side)
        .unwrap_or_else(|| match meta.laterality {
            Some(Laterality::Right) => hipfrac_core::Side::Right,
            Some(Laterality::Left) => hipfrac_core::Side::Left,
            _ => hipfrac_core::side_by_position(prediction.width, bbox).side,
        });
    match call {
        hipfrac_core::Side::Right => Side::Right,
        hipfrac_core::Side::Left => Side::Left,
    }
}

/// The verdict in words: "AI: DF 0.91 (fracture)", "AI: no visible fracture", "AI: not
/// assessable".
pub fn verdict_line(prediction: &Prediction) -> String {
    match prediction.verdict() {
        Some(v) => match v.label {
            Label::Fracture(class) => {
                let point = if v.operating_point == OperatingPoint::Fracture {
                    "fracture"
                } else {
                    "suspicious"
                };
                format!("AI: {} {:.2} ({point})", class.code(), v.confidence.unwrap_or(0.0))
            }
            Label::NoFracture => "AI: no visible fracture".to_string(),
            Label::UntypedFracture => format!("AI: fracture {:.2}", v.confidence.unwrap_or(0.0)),
        },
        None => "AI: not assessable".to_string(),
    }
}

/// Writes the `kinds` of objects for the prediction of the DICOM file `source` beside
/// `base` (e.g. `out/hip` → `out/hip.sr.dcm`). `image` holds the pixels when they could be
/// decoded; an image that was not assessed gets only its SR (there are no boxes to show).
/// Returns the files written.
#[allow(clippy::too_many_arguments)] // each is one fact about this prediction's source
pub fn write(
    source: &Path,
    base: &Path,
    meta: &RadiographMeta,
    image: Option<&Radiograph>,
    prediction: &Prediction,
    kinds: &[DicomKind],
    model: &ModelContext<'_>,
    overlay_size: u32,
) -> Result<Vec<PathBuf>, DicomOutputError> {
    let path = |suffix: &str| PathBuf::from(format!("{}.{suffix}.dcm", base.display()));
    let refused = prediction.not_assessable().is_some();
    let shown = prediction.shown_boxes(model.points);
    let caveats = |first: &str| {
        std::iter::once(first)
            .chain(model.caveats.iter().copied())
            .collect::<Vec<_>>()
            .join(" - ")
    };
    let mut written = Vec::new();
    for &kind in kinds {
        let what = match kind {
            DicomKind::Sc => "Secondary Capture",
            DicomKind::Gsps => "presentation state",
            DicomKind::Sr => "structured report",
        };
        if !hipfrac_dicom::is_dicom_file(source) {
            return Err(DicomOutputError::NotDicom {
                path: source.to_path_buf(),
                what,
            });
        }
        let capture = |series_description| Capture {
            producer: model.hash,
            series_description,
            version: env!("CARGO_PKG_VERSION"),
        };
        match kind {
            DicomKind::Sc if !refused => {
                let Some(image) = image else { continue };
                // The burned-in notice says what the picture is, and what it is not.
                let mut note = caveats("AI RESULT - NOT FOR DIAGNOSIS");
                if meta.is_simulated() {
                    note.push_str(" - SIMULATED IMAGE");
                }
                let marks = Marks {
                    detections: &shown,
                    hips: &prediction.hips,
                    answer: Some(&prediction.answer),
                    note: Some(note),
                    ..Default::default()
                };
                let picture =
                    overlay::render(image, &marks, overlay_size).map_err(|source| DicomOutputError::Draw {
                        path: base.to_path_buf(),
                        source,
                    })?;
                let rgb = Rgb {
                    width: picture.width as u32,
                    height: picture.height as u32,
                    pixels: &picture.rgb,
                };
                outputs::secondary_capture(source, &path("sc"), &rgb, &capture("hipfrac AI result (research)"))?;
                written.push(path("sc"));
            }
            DicomKind::Gsps if !refused => {
                let marks: Vec<Mark> = shown
                    .iter()
                    .map(|d| Mark {
                        bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max],
                        label: format!("{} {:.2}", d.class.code(), d.score),
                    })
                    .collect();
                let summary = format!(
                    "{} - {}",
                    verdict_line(prediction),
                    caveats("AI RESULT - NOT FOR DIAGNOSIS")
                );
                outputs::presentation_state(
                    source,
                    &path("pr"),
                    &marks,
                    &summary,
                    &capture("hipfrac AI marks (research)"),
                )?;
                written.push(path("pr"));
            }
            DicomKind::Sr => {
                let findings: Vec<Finding> = shown
                    .iter()
                    .map(|d| Finding {
                        finding: standard_finding(d.class),
                        class: (d.class.code(), CODING_SCHEME, d.class.full_name()),
                        score: d.score,
                        bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max],
                        side: Some(side_of(&d.bbox, prediction, meta)),
                    })
                    .collect();
                let (verdict, detail, reason) = match (prediction.verdict(), prediction.not_assessable()) {
                    (Some(v), _) => {
                        let code = v
                            .label
                            .fracture()
                            .map_or(("NONE", CODING_SCHEME, "No visible fracture"), |c| {
                                (c.code(), CODING_SCHEME, c.full_name())
                            });
                        (
                            code,
                            format!(
                                "operating point: {}; thresholds: {}; ",
                                v.operating_point.name(),
                                model.points.chosen_on
                            ),
                            None,
                        )
                    }
                    (None, Some(n)) => (
                        ("NOT_ASSESSABLE", CODING_SCHEME, "Not assessable"),
                        String::new(),
                        Some(n.reason.as_str()),
                    ),
                    (None, None) => unreachable!("a prediction has a verdict or a reason"),
                };
                let detail = format!("{detail}{}", caveats("AI RESULT - NOT FOR DIAGNOSIS"));
                let report = Report {
                    verdict,
                    confidence: prediction.verdict().and_then(|v| v.confidence),
                    not_assessable: reason,
                    detail: &detail,
                    findings: &findings,
                    model_name: &model.name,
                };
                outputs::structured_report(source, &path("sr"), &report, &capture("hipfrac AI report (research)"))?;
                written.push(path("sr"));
            }
            // An image not assessed has no boxes to show over it.
            DicomKind::Sc | DicomKind::Gsps => {}
        }
    }
    Ok(written)
}
