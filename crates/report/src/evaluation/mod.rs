//! An evaluation: each manifest's cases measured the way the paper measures them (and more),
//! and rendered as report.html (self-contained), report.md, metrics.csv and cases.csv.

mod render;

pub use render::{html, markdown, metrics_csv, thresholds_table, write_report};

use crate::format::{f2, opt};
use hipfrac_core::{Case, FractureClass, Label, OperatingPoints, Preset};
use hipfrac_eval::any::{any_fracture, AnyFracture, AnyItem};
use hipfrac_eval::calibration::{reliability, Bin};
use hipfrac_eval::classification::{summarize, ImageOutcome, Summary};
use hipfrac_eval::intervals::{bootstrap_by_cluster, Estimate};
use hipfrac_eval::map::{coco_map, pr_curve, ImageBoxes};
use hipfrac_eval::roc::{auc, roc_curve, RocPoint};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the report says about the model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub dir: PathBuf,
    /// First 16 hex digits of the weights' SHA-256.
    pub hash: String,
    /// Square input size in pixels.
    pub input_size: i64,
    pub preset: Option<Preset>,
    pub points: OperatingPoints,
}

/// Extra lines for the report (the demo's timings and settings).
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    pub title: Option<String>,
    pub notes: Vec<String>,
}

/// Everything measured on one manifest.
pub struct Section {
    pub name: String,
    pub manifest: PathBuf,
    pub cases: Vec<Case>,
    /// All images simulated by the phantom.
    pub simulated: bool,
    /// At the verdict (a class is answered from its suspicious threshold up).
    pub verdict: Summary,
    /// At the high-specificity point (suspicious answers count as "no visible fracture").
    pub fracture_point: Summary,
    pub map: Option<(f64, f64)>,
    pub pr: Vec<Option<(Vec<f64>, Vec<f64>)>>,
    pub ap50: Vec<Option<f64>>,
    pub roc: Vec<Option<Vec<RocPoint>>>,
    pub auc: Vec<Option<f64>>,
    pub reliability: Vec<Bin>,
    pub ece: f64,
    /// Patient-level bootstrap intervals of micro and macro sensitivity, and of each class's
    /// mean IoU.
    pub micro_se: Estimate,
    pub macro_se: Estimate,
    pub iou: Vec<Estimate>,
    /// Fracture or not, whatever the type ([`hipfrac_eval::any`]).
    pub any: AnyFracture,
}

impl Section {
    /// Images that got no verdict (counted as "no visible fracture" in the tables), and how
    /// many of them hold a fracture.
    pub fn not_assessable(&self) -> (usize, usize) {
        let refused: Vec<&Case> = self
            .cases
            .iter()
            .filter(|c| c.prediction.not_assessable().is_some())
            .collect();
        (refused.len(), refused.iter().filter(|c| c.truth.is_fracture()).count())
    }

    /// Images whose truth is a fracture of unknown type (in the any-fracture measures only).
    pub fn untyped(&self) -> usize {
        self.cases.iter().filter(|c| c.truth == Label::UntypedFracture).count()
    }

    /// One sentence on the images not assessed, when there are any.
    pub fn not_assessable_note(&self) -> Option<String> {
        let (refused, fractures) = self.not_assessable();
        (refused > 0).then(|| {
            format!(
                "{refused} image(s) not assessable (no verdict). The tables count them as \"no visible fracture\": {fractures} fracture(s) among them are misses, the other {} are true negatives; ROC, AUC and calibration leave them out.",
                refused - fractures
            )
        })
    }
}

fn outcomes(cases: &[Case], fracture_point: bool) -> Vec<ImageOutcome> {
    cases
        .iter()
        .map(|c| ImageOutcome {
            image: c.image.clone(),
            patient: c.patient.clone(),
            truth: c.truth,
            answer: if fracture_point {
                c.prediction.label_at_fracture_point()
            } else {
                c.prediction.label_for_tables()
            },
            truth_boxes: c.truth_boxes.clone(),
            predicted_boxes: c.prediction.detections.clone(),
        })
        .collect()
}

const BOOTSTRAP_REPLICATES: usize = 1000;

/// Measures `cases` (see [`Section`]).
pub fn measure(name: &str, manifest: &Path, cases: Vec<Case>) -> Section {
    let simulated = all_simulated(&cases);
    let items = outcomes(&cases, false);
    let verdict = summarize(&items);
    let fracture_point = summarize(&outcomes(&cases, true));
    // A fracture of unknown type has no class to score against: the per-type measures
    // (mAP, PR, ROC, calibration) leave its image out; the any-fracture ones count it.
    let typed = |c: &&Case| c.truth != Label::UntypedFracture;
    let boxes: Vec<ImageBoxes> = cases
        .iter()
        .filter(typed)
        .map(|c| ImageBoxes {
            truth: c.truth_boxes.clone(),
            detections: c
                .prediction
                .detections
                .iter()
                .map(|d| (d.class, d.score, d.bbox))
                .collect(),
        })
        .collect();
    let map = coco_map(&boxes);
    let pr: Vec<_> = FractureClass::ALL.iter().map(|&c| pr_curve(&boxes, c, 0.5)).collect();
    let ap50 = FractureClass::ALL
        .iter()
        .map(|&c| hipfrac_eval::map::average_precision(&boxes, c, 0.5))
        .collect();
    // Images not assessed have no scores: ROC, AUC and calibration leave them out.
    let scores = |class: FractureClass| -> Vec<(f64, bool)> {
        cases
            .iter()
            .filter(typed)
            .filter(|c| c.prediction.verdict().is_some())
            .map(|c| {
                (
                    c.prediction.class_scores[class.index()] as f64,
                    c.truth == Label::Fracture(class),
                )
            })
            .collect()
    };
    let roc = FractureClass::ALL.iter().map(|&c| roc_curve(&scores(c))).collect();
    let auc = FractureClass::ALL.iter().map(|&c| auc(&scores(c))).collect();
    let pooled: Vec<(f64, bool)> = FractureClass::ALL.iter().flat_map(|&c| scores(c)).collect();
    let (reliability, ece) = reliability(&pooled, 10);
    let patient = |o: &ImageOutcome| o.patient.clone();
    let micro_se = bootstrap_by_cluster(
        &items,
        patient,
        |s| summarize(s).micro.sensitivity,
        BOOTSTRAP_REPLICATES,
        1,
    );
    let macro_se = bootstrap_by_cluster(
        &items,
        patient,
        |s| summarize(s).macro_average.sensitivity,
        BOOTSTRAP_REPLICATES,
        2,
    );
    let iou = FractureClass::ALL
        .iter()
        .map(|&class| {
            bootstrap_by_cluster(
                &items,
                patient,
                |s| {
                    let v = hipfrac_eval::classification::matched_ious(s, class);
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    }
                },
                BOOTSTRAP_REPLICATES,
                3 + class.index() as u64,
            )
        })
        .collect();
    let any = any_fracture(&any_items(&cases), BOOTSTRAP_REPLICATES, 9);
    Section {
        any,
        name: name.into(),
        manifest: manifest.to_path_buf(),
        cases,
        simulated,
        verdict,
        fracture_point,
        map,
        pr,
        ap50,
        roc,
        auc,
        reliability,
        ece,
        micro_se,
        macro_se,
        iou,
    }
}

/// The cases as the any-fracture measures see them: the answer's box is the most confident
/// box of the answered type.
fn any_items(cases: &[Case]) -> Vec<AnyItem> {
    cases
        .iter()
        .map(|c| {
            let verdict = c.prediction.verdict();
            let answered = verdict.and_then(|v| v.label.fracture());
            AnyItem {
                patient: c.patient.clone(),
                fractured: c.truth.is_fracture(),
                called: answered.is_some(),
                score: verdict.map(|_| c.prediction.class_scores.iter().copied().fold(0.0f32, f32::max) as f64),
                truth_boxes: c
                    .truth_boxes
                    .iter()
                    .map(|(_, b)| *b)
                    .chain(c.untyped_boxes.iter().copied())
                    .collect(),
                answer_box: answered.and_then(|class| {
                    c.prediction
                        .detections
                        .iter()
                        .filter(|d| d.class == class)
                        .max_by(|a, b| a.score.total_cmp(&b.score))
                        .map(|d| d.bbox)
                }),
            }
        })
        .collect()
}

/// The any-fracture measures in one line.
pub fn any_fracture_line(a: &AnyFracture) -> String {
    let est = |e: &Estimate| format!("{} ({}–{})", f2(e.value), f2(e.lower), f2(e.upper));
    format!(
        "any fracture ({} fractured, {} without): Se {} / Sp {} at the verdict; AUC {}; localised {}{}",
        a.fractured,
        a.clear,
        est(&a.sensitivity),
        est(&a.specificity),
        a.auc.as_ref().map_or("–".into(), est),
        a.localised
            .as_ref()
            .map_or("–".into(), |l| format!("{} of {}", est(l), a.localisable)),
        a.mean_iou.map_or(String::new(), |m| format!(", mean IoU {m:.2}")),
    )
}

/// Whether the images of `cases` carry the phantom's mark.
fn all_simulated(cases: &[Case]) -> bool {
    !cases.is_empty() && cases.iter().all(|c| c.simulated)
}

/// A short text summary of a section.
pub fn one_screen(s: &Section) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} ({} images{}):",
        s.name,
        s.cases.len(),
        if s.simulated { ", PHANTOM" } else { "" }
    );
    let _ = writeln!(t, "  class   Se     Sp     IoU    Dice");
    for (m, class) in s.verdict.per_class.iter().zip(FractureClass::ALL) {
        let _ = writeln!(
            t,
            "  {:<6} {:>5}  {:>5}  {:>5}  {:>5}",
            class.code(),
            f2(m.sensitivity.value),
            f2(m.specificity.value),
            opt(m.mean_iou),
            opt(m.mean_dice)
        );
    }
    let _ = writeln!(
        t,
        "  micro  {:>5}  {:>5}",
        f2(s.verdict.micro.sensitivity),
        f2(s.verdict.micro.specificity)
    );
    let _ = write!(
        t,
        "  macro  {:>5}  {:>5}   mAP50 {}",
        f2(s.verdict.macro_average.sensitivity),
        f2(s.verdict.macro_average.specificity),
        opt(s.map.map(|m| m.0))
    );
    let _ = write!(t, "\n  {}", any_fracture_line(&s.any));
    if s.untyped() > 0 {
        let _ = write!(
            t,
            "\n  {} image(s) of unknown fracture type: in the any-fracture line only",
            s.untyped()
        );
    }
    if let Some(note) = s.not_assessable_note() {
        let _ = write!(t, "\n  {note}");
    }
    t
}

#[cfg(test)]
mod tests;
