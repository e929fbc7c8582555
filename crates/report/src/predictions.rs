//! What `hipfrac predict` writes: one JSON [`Record`] per image and a `summary.csv` of
//! [`SummaryRow`]s (a prediction, or the error of an input that failed). The HTTP service and
//! the DICOM outputs describe a prediction with the same record.
//!
//! The record's layout is versioned ([`SCHEMA_VERSION`]) and described by the JSON Schema
//! `docs/prediction.schema.json`; a test validates records against it.

use hipfrac_core::{
    FractureClass, NotAssessable, OperatingPoint, OperatingPoints, Prediction, RadiographMeta, SideCall, NOTICE,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The model that made a prediction, as a record names it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRecord {
    pub dir: String,
    /// First 16 hex digits of the weights' SHA-256.
    pub hash: String,
    /// What the operating points were chosen on.
    pub operating_points: String,
    /// What trained it, from its model card (none when the folder has no card).
    pub trained_on: Option<String>,
    /// What a reader must know: "TRAINED ON SIMULATED RADIOGRAPHS", "UNCALIBRATED", …
    pub caveats: Vec<&'static str>,
}

/// One box of a record.
#[derive(Debug, Clone, Serialize)]
pub struct BoxRecord {
    pub class: &'static str,
    pub name: &'static str,
    pub score: f32,
    /// `[x_min, y_min, x_max, y_max)` in the image's pixels.
    pub bbox: [f32; 4],
    /// Drawn on the overlay: at or above its class's suspicious threshold, and not merged into
    /// a more confident box of its class (`hipfrac_core::verdict::reportable`).
    pub drawn: bool,
}

/// One hip the two-stage detector read (`hipfrac_core::HipCall`).
#[derive(Debug, Clone, Serialize)]
pub struct HipRecord {
    pub side: SideCall,
    /// The localiser's box, `[x_min, y_min, x_max, y_max)` in the image's pixels.
    pub bbox: [f32; 4],
    /// The localiser's confidence that this is a proximal femur.
    pub score: f32,
    /// This hip's own answer: `DF`, `VF`, `SF`, `UF` or `none`.
    pub verdict: &'static str,
    pub verdict_name: &'static str,
    pub confidence: Option<f32>,
    pub operating_point: OperatingPoint,
    pub class_scores: BTreeMap<&'static str, f32>,
}

/// The version of [`Record`]'s layout: raised when a field changes meaning or goes away.
///
/// Version 3: `hips`, the two-stage detector's answer per hip (empty for the single stage).
///
/// Version 2: `verdict` may be `not_assessable` (with `not_assessable` saying why; then
/// `class_scores` and `max_fracture_score` are null); `confidence` is the answered class's
/// score and null for `none`; `max_fracture_score`, `header_verified`, `boxes[].drawn`,
/// `model.trained_on` and `model.caveats` are new.
pub const SCHEMA_VERSION: u32 = 3;

/// The JSON written per image.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub schema_version: u32,
    /// The hipfrac that wrote it.
    pub hipfrac_version: &'static str,
    /// When, in UTC (RFC 3339).
    pub predicted_at: String,
    pub input: String,
    pub sop_instance_uid: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub accession_number: Option<String>,
    pub width: u32,
    pub height: u32,
    /// `DF`, `VF`, `SF`, `UF`, `none` or `not_assessable`.
    pub verdict: &'static str,
    pub verdict_name: &'static str,
    /// Why the image got no verdict (null when it got one).
    pub not_assessable: Option<NotAssessable>,
    /// The answered class's score; null for `none` and `not_assessable`.
    pub confidence: Option<f32>,
    /// The highest class score (how close a `none` came to a fracture); null when the image
    /// was not assessed.
    pub max_fracture_score: Option<f32>,
    /// The header named the body part or view (`false`: a PNG, or a DICOM file that leaves
    /// both empty, passed the header check unverified).
    pub header_verified: bool,
    pub operating_point: Option<OperatingPoint>,
    pub vf_priority_applied: bool,
    pub side: Option<SideCall>,
    /// Null when the image was not assessed (no score was computed).
    pub class_scores: Option<BTreeMap<&'static str, f32>>,
    pub boxes: Vec<BoxRecord>,
    /// The two-stage detector's answer per hip it found; empty for the single-stage detector
    /// and for images not assessed.
    pub hips: Vec<HipRecord>,
    pub model: ModelRecord,
    pub notice: &'static str,
}

impl Record {
    /// The record of prediction `p` of the image `input` (whose header is `meta`), made now;
    /// `points` are the model's (they decide which boxes are drawn).
    pub fn new(
        input: String,
        meta: &RadiographMeta,
        p: &Prediction,
        points: &OperatingPoints,
        model: ModelRecord,
    ) -> Record {
        let drawn = p.shown_boxes(points);
        Record {
            schema_version: SCHEMA_VERSION,
            hipfrac_version: env!("CARGO_PKG_VERSION"),
            predicted_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            input,
            sop_instance_uid: meta.sop_instance_uid.clone(),
            study_instance_uid: meta.study_instance_uid.clone(),
            series_instance_uid: meta.series_instance_uid.clone(),
            accession_number: meta.accession_number.clone(),
            width: p.width,
            height: p.height,
            verdict: p.code(),
            verdict_name: p.verdict().map_or("Not assessable", |v| v.label.full_name()),
            not_assessable: p.not_assessable().cloned(),
            confidence: p.verdict().and_then(|v| v.confidence),
            max_fracture_score: p.verdict().map(|_| p.max_fracture_score()),
            header_verified: hipfrac_core::assess::header_verified(meta),
            operating_point: p.verdict().map(|v| v.operating_point),
            vf_priority_applied: p.verdict().is_some_and(|v| v.vf_priority_applied),
            side: p.side,
            class_scores: p.verdict().map(|_| {
                FractureClass::ALL
                    .iter()
                    .map(|c| (c.code(), p.class_scores[c.index()]))
                    .collect()
            }),
            boxes: p
                .detections
                .iter()
                .map(|d| BoxRecord {
                    class: d.class.code(),
                    name: d.class.full_name(),
                    score: d.score,
                    bbox: [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max],
                    drawn: drawn.contains(d),
                })
                .collect(),
            hips: p
                .hips
                .iter()
                .map(|h| HipRecord {
                    side: h.side,
                    bbox: [h.bbox.x_min, h.bbox.y_min, h.bbox.x_max, h.bbox.y_max],
                    score: h.score,
                    verdict: h.verdict.label.code(),
                    verdict_name: h.verdict.label.full_name(),
                    confidence: h.verdict.confidence,
                    operating_point: h.verdict.operating_point,
                    class_scores: FractureClass::ALL
                        .iter()
                        .map(|c| (c.code(), h.class_scores[c.index()]))
                        .collect(),
                })
                .collect(),
            model,
            notice: NOTICE,
        }
    }
}

/// One row of summary.csv: a prediction, or the error of an input that failed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SummaryRow {
    pub input: String,
    pub sop_instance_uid: String,
    pub verdict: String,
    /// Why the image got no verdict (empty when it got one).
    pub not_assessable: String,
    pub confidence: String,
    pub max_fracture_score: String,
    pub operating_point: String,
    pub vf_priority_applied: String,
    pub side: String,
    pub side_source: String,
    #[serde(rename = "DF")]
    pub df: String,
    #[serde(rename = "VF")]
    pub vf: String,
    #[serde(rename = "SF")]
    pub sf: String,
    #[serde(rename = "UF")]
    pub uf: String,
    pub boxes: String,
    pub error: String,
}

impl SummaryRow {
    /// The row of a prediction.
    pub fn of(r: &Record) -> SummaryRow {
        let score = |c: &str| {
            r.class_scores
                .as_ref()
                .map(|s| format!("{:.4}", s.get(c).copied().unwrap_or(0.0)))
                .unwrap_or_default()
        };
        SummaryRow {
            input: r.input.clone(),
            sop_instance_uid: r.sop_instance_uid.clone().unwrap_or_default(),
            verdict: r.verdict.to_string(),
            not_assessable: r.not_assessable.as_ref().map(|n| n.reason.clone()).unwrap_or_default(),
            confidence: r.confidence.map(|c| format!("{c:.4}")).unwrap_or_default(),
            max_fracture_score: r.max_fracture_score.map(|m| format!("{m:.4}")).unwrap_or_default(),
            operating_point: r.operating_point.map(|p| p.name().to_string()).unwrap_or_default(),
            vf_priority_applied: r.vf_priority_applied.to_string(),
            side: r.side.map(|s| s.side.name().to_string()).unwrap_or_default(),
            side_source: r.side.map(|s| s.source.name().to_string()).unwrap_or_default(),
            df: score("DF"),
            vf: score("VF"),
            sf: score("SF"),
            uf: score("UF"),
            boxes: r.boxes.len().to_string(),
            error: String::new(),
        }
    }

    /// The row of an input that failed, with its error (causes included).
    pub fn failed(input: String, error: String) -> SummaryRow {
        SummaryRow {
            input,
            error,
            ..Default::default()
        }
    }

    pub fn is_failure(&self) -> bool {
        !self.error.is_empty()
    }
}

/// summary.csv's bytes.
pub fn summary_csv(rows: &[SummaryRow]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("a summary row serialises to memory");
    }
    hipfrac_core::csv_safe::neutralise(&writer.into_inner().expect("writing to memory cannot fail"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::{AbstentionSource, Answer, BBox, Detection, Side, SideSource};

    /// A prediction built by hand (no model): one VF box on the right hip, one weak DF box.
    fn prediction() -> Prediction {
        let detections = vec![
            Detection {
                class: FractureClass::ValgusImpactedNeck,
                score: 0.8125,
                bbox: BBox {
                    x_min: 100.0,
                    y_min: 120.0,
                    x_max: 180.0,
                    y_max: 210.5,
                },
            },
            Detection {
                class: FractureClass::DisplacedNeck,
                score: 0.25,
                bbox: BBox {
                    x_min: 104.0,
                    y_min: 118.0,
                    x_max: 176.0,
                    y_max: 200.0,
                },
            },
        ];
        let points = OperatingPoints::uncalibrated();
        let class_scores = [0.25, 0.8125, 0.0, 0.0];
        let verdict = hipfrac_core::verdict::decide(class_scores, &points);
        Prediction {
            width: 512,
            height: 400,
            detections,
            class_scores,
            answer: Answer::Verdict(verdict),
            side: Some(SideCall {
                side: Side::Right,
                source: SideSource::ImageLaterality,
            }),
            hips: Vec::new(),
        }
    }

    /// The two-stage detector's reading of a pelvis: a VF in the right hip, the left hip clear.
    fn two_hips() -> Prediction {
        let mut p = prediction();
        let points = OperatingPoints::uncalibrated();
        let hip = |x: f32, scores: [f32; 4], side: Side| hipfrac_core::HipCall {
            bbox: BBox {
                x_min: x,
                y_min: 80.0,
                x_max: x + 160.0,
                y_max: 260.0,
            },
            score: 0.9375,
            side: SideCall {
                side,
                source: SideSource::BoxPosition,
            },
            verdict: hipfrac_core::verdict::decide(scores, &points),
            class_scores: scores,
        };
        p.hips = vec![
            hip(60.0, [0.25, 0.8125, 0.0, 0.0], Side::Right),
            hip(300.0, [0.0; 4], Side::Left),
        ];
        p
    }

    /// A chest film the header check refused.
    fn refused() -> Prediction {
        let not = NotAssessable {
            reason: "Body Part Examined is CHEST, not one of HIP, PELVIS, FEMUR".into(),
            source: AbstentionSource::Header,
        };
        Prediction {
            width: 512,
            height: 400,
            detections: Vec::new(),
            class_scores: [0.0; 4],
            answer: Answer::NotAssessable(not),
            side: None,
            hips: Vec::new(),
        }
    }

    fn points() -> OperatingPoints {
        OperatingPoints::uncalibrated()
    }

    fn model() -> ModelRecord {
        ModelRecord {
            dir: "runs/best".into(),
            hash: "0123456789abcdef".into(),
            operating_points: "uncalibrated defaults".into(),
            trained_on: Some(
                "trained on 10 simulated radiographs of 5 patients (site-a 10), 2 epochs at 320 px".into(),
            ),
            caveats: vec!["TRAINED ON SIMULATED RADIOGRAPHS", "UNCALIBRATED"],
        }
    }

    fn meta() -> RadiographMeta {
        let mut meta = RadiographMeta::plain(400, 512, 12);
        meta.sop_instance_uid = Some("1.2.3".into());
        meta.study_instance_uid = Some("1.2".into());
        meta.accession_number = Some("A-77".into());
        meta
    }

    #[test]
    fn the_record_keeps_its_shape() {
        let record = Record::new("hip.dcm".into(), &meta(), &prediction(), &points(), model());
        insta::assert_json_snapshot!(record, { ".predicted_at" => "[time]", ".hipfrac_version" => "[version]" });
        let record = Record::new("chest.dcm".into(), &meta(), &refused(), &points(), model());
        insta::assert_json_snapshot!("not_assessable", record, { ".predicted_at" => "[time]", ".hipfrac_version" => "[version]" });
        let record = Record::new("pelvis.dcm".into(), &meta(), &two_hips(), &points(), model());
        insta::assert_json_snapshot!("two_hips", record.hips, {});
    }

    /// Every record validates against docs/prediction.schema.json (a JSON Schema validator,
    /// not hand checks), and the schema refuses what it should.
    #[test]
    fn records_validate_against_the_published_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/prediction.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
        let mut without = meta();
        without.sop_instance_uid = None;
        for record in [
            Record::new("hip.dcm".into(), &meta(), &prediction(), &points(), model()),
            Record::new("b.png".into(), &without, &prediction(), &points(), model()),
            Record::new("chest.dcm".into(), &meta(), &refused(), &points(), model()),
            Record::new("pelvis.dcm".into(), &meta(), &two_hips(), &points(), model()),
        ] {
            let value = serde_json::to_value(&record).unwrap();
            let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
        let mut bad = serde_json::to_value(Record::new(
            "hip.dcm".into(),
            &meta(),
            &prediction(),
            &points(),
            model(),
        ))
        .unwrap();
        bad["verdict"] = "XF".into();
        assert!(!validator.is_valid(&bad), "an unknown verdict must not validate");
        let mut bad = serde_json::to_value(Record::new(
            "hip.dcm".into(),
            &meta(),
            &prediction(),
            &points(),
            model(),
        ))
        .unwrap();
        bad.as_object_mut().unwrap().remove("schema_version");
        assert!(!validator.is_valid(&bad));
        let mut bad =
            serde_json::to_value(Record::new("chest.dcm".into(), &meta(), &refused(), &points(), model())).unwrap();
        bad["confidence"] = 0.5.into();
        assert!(!validator.is_valid(&bad), "an image not assessed has no confidence");
        bad["confidence"] = serde_json::Value::Null;
        bad["not_assessable"] = serde_json::Value::Null;
        assert!(!validator.is_valid(&bad), "not_assessable says why");
    }

    #[test]
    fn summary_rows_keep_their_shape() {
        let mut meta = meta();
        meta.sop_instance_uid = None;
        let record = Record::new("hip.dcm".into(), &meta, &prediction(), &points(), model());
        let chest = Record::new("chest.dcm".into(), &meta, &refused(), &points(), model());
        let rows = [
            SummaryRow::of(&record),
            SummaryRow::of(&chest),
            SummaryRow::failed("bad.dcm".into(), "bad.dcm: not a DICOM file".into()),
        ];
        insta::assert_snapshot!(String::from_utf8(summary_csv(&rows)).unwrap());
    }
}
