//! cases.csv: one row per evaluated image. The evaluation writes it and the reader-study
//! report reads it back (the AI alone on the study's cases), through this one type.

use hipfrac_core::{Case, Label, OperatingPoint};
use serde::{Deserialize, Serialize, Serializer};
use std::path::Path;

/// One image of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub section: String,
    /// The manifest's image path (the case's name in a reader study).
    pub image: String,
    pub patient: String,
    pub site: String,
    pub truth: Label,
    /// The answer as the paper's tables count it (an image not assessed counts as `none`).
    pub verdict: Label,
    /// Why the image got no verdict (empty when it got one).
    #[serde(default)]
    pub not_assessable: String,
    /// The answered class's score (empty for `none` and for images not assessed).
    #[serde(serialize_with = "four_decimals_or_empty")]
    pub confidence: Option<f32>,
    pub operating_point: Option<OperatingPoint>,
    pub vf_priority_applied: bool,
    #[serde(rename = "DF", serialize_with = "four_decimals")]
    pub df: f32,
    #[serde(rename = "VF", serialize_with = "four_decimals")]
    pub vf: f32,
    #[serde(rename = "SF", serialize_with = "four_decimals")]
    pub sf: f32,
    #[serde(rename = "UF", serialize_with = "four_decimals")]
    pub uf: f32,
    /// The best IoU of a predicted box of the true class with a true box (empty without one).
    #[serde(serialize_with = "four_decimals_or_empty")]
    pub best_iou: Option<f32>,
}

fn four_decimals<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:.4}"))
}

fn four_decimals_or_empty<S: Serializer>(v: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.map(|v| format!("{v:.4}")).unwrap_or_default())
}

impl CaseRow {
    pub fn new(section: &str, case: &Case) -> CaseRow {
        let p = &case.prediction;
        let [df, vf, sf, uf] = p.class_scores;
        CaseRow {
            section: section.to_string(),
            image: case.image.clone(),
            patient: case.patient.clone(),
            site: case.site.clone(),
            truth: case.truth,
            verdict: p.label_for_tables(),
            not_assessable: p.not_assessable().map(|n| n.reason.clone()).unwrap_or_default(),
            confidence: p.verdict().and_then(|v| v.confidence),
            operating_point: p.verdict().map(|v| v.operating_point),
            vf_priority_applied: p.verdict().is_some_and(|v| v.vf_priority_applied),
            df,
            vf,
            sf,
            uf,
            best_iou: case.best_iou(),
        }
    }
}

/// A cases.csv that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: not a cases.csv written by `hipfrac evaluate`", path.display())]
pub struct CasesError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: csv::Error,
}

/// Reads a cases.csv.
pub fn read(path: &Path) -> Result<Vec<CaseRow>, CasesError> {
    let fail = |source| CasesError {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(fail)?;
    let headers = reader.headers().map_err(fail)?.clone();
    reader
        .records()
        .map(|record| hipfrac_core::csv_safe::restored(&record?).deserialize(Some(&headers)))
        .collect::<Result<_, _>>()
        .map_err(fail)
}
