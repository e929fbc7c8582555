//! The image-level verdict: from the detected boxes to one answer per radiograph.
//!
//! The rule, in order (stated in every report):
//! 1. Each fracture class scores the image with its most confident box (0 when it has none).
//! 2. A class is a *candidate* when its score reaches its "suspicious" threshold (the
//!    high-sensitivity operating point). No candidate → "no visible fracture" (it has no
//!    confidence: how close it came is the highest class score, written beside it).
//! 3. The candidate with the highest score wins.
//! 4. VF priority (the paper's suggestion: the DF/VF border is ambiguous and VF needs fixation
//!    sooner): when DF wins but VF's score reaches the VF-priority threshold, the answer is VF.
//! 5. The operating point is "fracture" (high specificity) when the answer's score reaches
//!    its "fracture" threshold, else "suspicious".
//!
//! **Confidence** means one thing: the detector's score for the answered class (its most
//! confident box of that class). It is a detector score, not a calibrated probability, and a
//! "no visible fracture" answer has none.
//!
//! Thresholds are chosen on a validation split ([`choose`]) and stored beside the model as
//! `operating_points.json`; a model without one uses [`OperatingPoints::uncalibrated`].

use crate::{Detection, FractureClass, Label};
use serde::{Deserialize, Serialize};

/// The two thresholds of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassThresholds {
    pub class: FractureClass,
    /// High-sensitivity point: at or above it the class is reported as suspicious.
    pub suspicious: f32,
    /// High-specificity point: at or above it the class is reported as a fracture.
    pub fracture: f32,
}

/// Every threshold of the verdict rule, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoints {
    /// In `FractureClass::ALL` order.
    pub classes: Vec<ClassThresholds>,
    /// DF yields to VF when VF's score reaches this.
    pub vf_priority: f32,
    /// The sensitivity the suspicious points aimed at, and the specificity the fracture points
    /// aimed at, on the validation images.
    pub target_sensitivity: f64,
    pub target_specificity: f64,
    /// What the thresholds were chosen on (e.g. the validation manifest and its image count),
    /// or "uncalibrated defaults".
    pub chosen_on: String,
}

impl OperatingPoints {
    /// Defaults for a model that has not been calibrated: suspicious 0.25, fracture 0.5,
    /// VF priority 0.35.
    pub fn uncalibrated() -> Self {
        OperatingPoints {
            classes: FractureClass::ALL
                .iter()
                .map(|&class| ClassThresholds {
                    class,
                    suspicious: 0.25,
                    fracture: 0.5,
                })
                .collect(),
            vf_priority: 0.35,
            target_sensitivity: 0.95,
            target_specificity: 0.98,
            chosen_on: "uncalibrated defaults".into(),
        }
    }

    pub fn get(&self, class: FractureClass) -> ClassThresholds {
        self.classes
            .iter()
            .copied()
            .find(|t| t.class == class)
            .unwrap_or(ClassThresholds {
                class,
                suspicious: 0.25,
                fracture: 0.5,
            })
    }

    /// Checks that every class (DF, VF, SF, UF) has its thresholds, that every threshold is
    /// in [0, 1] and fracture ≥ suspicious. A class left out would silently run on the
    /// uncalibrated defaults ([`OperatingPoints::get`]) in a model that says it is calibrated.
    pub fn validate(&self) -> Result<(), InvalidThresholds> {
        let missing: Vec<FractureClass> = FractureClass::ALL
            .into_iter()
            .filter(|&class| !self.classes.iter().any(|t| t.class == class))
            .collect();
        if !missing.is_empty() {
            return Err(InvalidThresholds::Missing(missing));
        }
        for t in &self.classes {
            let ok =
                (0.0..=1.0).contains(&t.suspicious) && (0.0..=1.0).contains(&t.fracture) && t.fracture >= t.suspicious;
            if !ok {
                return Err(InvalidThresholds::Class {
                    class: t.class,
                    suspicious: t.suspicious,
                    fracture: t.fracture,
                });
            }
        }
        if !(0.0..=1.0).contains(&self.vf_priority) {
            return Err(InvalidThresholds::VfPriority(self.vf_priority));
        }
        Ok(())
    }
}

/// Why a set of operating points cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidThresholds {
    #[error("{}: thresholds suspicious {suspicious} / fracture {fracture} must lie in [0, 1] with fracture ≥ suspicious", class.code())]
    Class {
        class: FractureClass,
        suspicious: f32,
        fracture: f32,
    },
    #[error("vf_priority {0} must lie in [0, 1]")]
    VfPriority(f32),
    /// Classes the points name no thresholds for, in [`FractureClass::ALL`] order.
    #[error("{} {} no thresholds: operating points must name all four classes (DF, VF, SF, UF), or a class left out would silently run on the uncalibrated defaults", codes(.0), if .0.len() == 1 { "has" } else { "have" })]
    Missing(Vec<FractureClass>),
}

/// `SF`, `SF and UF`, `VF, SF and UF`.
fn codes(classes: &[FractureClass]) -> String {
    let codes: Vec<&str> = classes.iter().map(|c| c.code()).collect();
    match codes.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How sure the answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatingPoint {
    /// The answer's score reached its high-specificity threshold.
    Fracture,
    /// The answer's score reached only its high-sensitivity threshold.
    Suspicious,
    /// No class reached its suspicious threshold.
    NoFracture,
}

impl OperatingPoint {
    /// Its serialised name: `fracture`, `suspicious`, `no_fracture`.
    pub fn name(self) -> &'static str {
        match self {
            OperatingPoint::Fracture => "fracture",
            OperatingPoint::Suspicious => "suspicious",
            OperatingPoint::NoFracture => "no_fracture",
        }
    }
}

/// The per-class image scores: each class's most confident box.
pub fn class_scores(detections: &[Detection]) -> [f32; 4] {
    let mut scores = [0f32; 4];
    for d in detections {
        let i = d.class.index();
        scores[i] = scores[i].max(d.score);
    }
    scores
}

/// Boxes shown to a reader at most (overlays, the report's gallery, the workstation).
pub const SHOWN_BOXES: usize = 5;

/// Two boxes of one class mark one finding for a reader when they overlap this much: IoU, or
/// the share of the smaller box inside the larger.
pub const SAME_FINDING_IOU: f32 = 0.3;
pub const SAME_FINDING_COVER: f32 = 0.6;

/// The boxes worth showing a reader: those at or above their class's suspicious threshold,
/// most confident first, one per finding (a box of a class that overlaps a more confident
/// box of the same class, see [`SAME_FINDING_IOU`], is merged into it: not drawn), at most
/// `limit` (callers pass [`SHOWN_BOXES`]). The JSON output keeps every box ≥ the detector's
/// score floor and marks the ones drawn.
pub fn reportable(detections: &[Detection], points: &OperatingPoints, limit: usize) -> Vec<Detection> {
    let mut candidates: Vec<Detection> = detections
        .iter()
        .copied()
        .filter(|d| d.score >= points.get(d.class).suspicious)
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut shown: Vec<Detection> = Vec::new();
    for d in candidates {
        let same_finding = |k: &Detection| {
            let inside = d.bbox.intersection_area(&k.bbox) / d.bbox.area().min(k.bbox.area()).max(f32::MIN_POSITIVE);
            k.class == d.class && (crate::iou(&k.bbox, &d.bbox) >= SAME_FINDING_IOU || inside >= SAME_FINDING_COVER)
        };
        if shown.len() < limit && !shown.iter().any(same_finding) {
            shown.push(d);
        }
    }
    shown
}

/// The answer for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub label: Label,
    /// The answered class's score; none for "no visible fracture" (see the module docs).
    pub confidence: Option<f32>,
    pub operating_point: OperatingPoint,
    /// True when DF was the top class and VF priority changed the answer to VF.
    pub vf_priority_applied: bool,
}

impl Verdict {
    /// The answer at the high-specificity point alone: suspicious answers become "no visible
    /// fracture".
    pub fn at_fracture_point(&self) -> Label {
        match self.operating_point {
            OperatingPoint::Fracture => self.label,
            _ => Label::NoFracture,
        }
    }
}

/// Applies the rule of this module to per-class scores.
pub fn decide(scores: [f32; 4], points: &OperatingPoints) -> Verdict {
    let candidate =
        |class: FractureClass| scores[class.index()] >= points.get(class).suspicious && scores[class.index()] > 0.0;
    let winner = FractureClass::ALL
        .iter()
        .copied()
        .filter(|&c| candidate(c))
        // Highest score; ties go to the earlier class in ALL order.
        .fold(None, |best: Option<FractureClass>, c| match best {
            Some(b) if scores[b.index()] >= scores[c.index()] => Some(b),
            _ => Some(c),
        });
    let Some(mut class) = winner else {
        return Verdict {
            label: Label::NoFracture,
            confidence: None,
            operating_point: OperatingPoint::NoFracture,
            vf_priority_applied: false,
        };
    };
    let mut vf_priority_applied = false;
    let vf = scores[FractureClass::ValgusImpactedNeck.index()];
    if class == FractureClass::DisplacedNeck && vf > 0.0 && vf >= points.vf_priority {
        class = FractureClass::ValgusImpactedNeck;
        vf_priority_applied = true;
    }
    let score = scores[class.index()];
    let operating_point = if score >= points.get(class).fracture {
        OperatingPoint::Fracture
    } else {
        OperatingPoint::Suspicious
    };
    Verdict {
        label: Label::Fracture(class),
        confidence: Some(score),
        operating_point,
        vf_priority_applied,
    }
}

/// Chooses the thresholds on validation images, each given as (per-class scores, truth).
///
/// Per class c (one-vs-rest, positives = images whose truth is c):
/// * suspicious = the highest threshold that keeps sensitivity ≥ `target_sensitivity`
///   (the ⌈target·P⌉-th highest positive score);
/// * fracture = the lowest threshold that keeps specificity ≥ `target_specificity` (just above
///   the ⌊(1−target)·N⌋+1-th highest negative score), never below suspicious;
/// * both clamped to [0.05, 0.95] — the detector's own floor and a margin below certainty.
///
/// Images whose fracture type is unknown ([`Label::UntypedFracture`]) are no class's
/// negatives. A class with no typed positive, on images where untyped fractures are, takes
/// the any-fracture points instead: the same rule on the strongest class score of the
/// fractured images against that of the images without a fracture.
///
/// A class without positive or negative validation images keeps the uncalibrated default.
///
/// VF priority: among the validation images' VF scores (and 1.0, "never"), the threshold
/// that maximises DF sensitivity + VF sensitivity under the whole rule; ties go to the
/// lowest threshold, the side the paper prefers (VF needs surgery sooner). Without both DF
/// and VF validation images it is the VF fracture threshold.
pub fn choose(
    images: &[([f32; 4], Label)],
    target_sensitivity: f64,
    target_specificity: f64,
    chosen_on: String,
) -> OperatingPoints {
    let defaults = OperatingPoints::uncalibrated();
    let strongest = |s: &[f32; 4]| s.iter().copied().fold(0.0f32, f32::max);
    let untyped = images.iter().any(|(_, t)| *t == Label::UntypedFracture);
    let classes = FractureClass::ALL
        .iter()
        .map(|&class| {
            let mut positives: Vec<f32> = images
                .iter()
                .filter(|(_, t)| *t == Label::Fracture(class))
                .map(|(s, _)| s[class.index()])
                .collect();
            // A fracture of unknown type is neither a positive nor a negative of one type.
            let mut negatives: Vec<f32> = images
                .iter()
                .filter(|(_, t)| *t != Label::Fracture(class) && *t != Label::UntypedFracture)
                .map(|(s, _)| s[class.index()])
                .collect();
            // A class the images never name, where fractures of unknown type are: its points
            // are the any-fracture points (the strongest class score of fractured images
            // against that of images without one), so any type reaching them is a candidate.
            if positives.is_empty() && untyped {
                positives = images
                    .iter()
                    .filter(|(_, t)| *t == Label::UntypedFracture)
                    .map(|(s, _)| strongest(s))
                    .collect();
                negatives = images
                    .iter()
                    .filter(|(_, t)| *t == Label::NoFracture)
                    .map(|(s, _)| strongest(s))
                    .collect();
            }
            if positives.is_empty() || negatives.is_empty() {
                return defaults.get(class);
            }
            positives.sort_by(|a, b| b.total_cmp(a));
            negatives.sort_by(|a, b| b.total_cmp(a));
            let k = ((target_sensitivity * positives.len() as f64).ceil() as usize).clamp(1, positives.len());
            let suspicious = positives[k - 1].clamp(0.05, 0.95);
            // At most `allowed` negatives may reach the threshold.
            let allowed = ((1.0 - target_specificity) * negatives.len() as f64).floor() as usize;
            let fracture = if allowed >= negatives.len() {
                0.05
            } else {
                next_up(negatives[allowed])
            };
            let fracture = fracture.clamp(0.05, 0.95).max(suspicious);
            ClassThresholds {
                class,
                suspicious,
                fracture,
            }
        })
        .collect::<Vec<_>>();
    let mut points = OperatingPoints {
        classes,
        vf_priority: 1.0,
        target_sensitivity,
        target_specificity,
        chosen_on,
    };
    points.vf_priority = choose_vf_priority(images, &points);
    points
}

/// One class's fate in a [`refit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Refitted {
    pub class: FractureClass,
    pub positives: usize,
    pub negatives: usize,
    /// False when the sample had too few positives or negatives: the thresholds were kept.
    pub refitted: bool,
}

/// Re-fits `base` on a small labelled sample of a new site: each class with at least
/// `min_images` positive and negative images in the sample gets thresholds chosen on it as
/// [`choose`] would; the others keep `base`'s, as does VF priority unless both DF and VF are
/// re-fitted. Few images give coarse quantiles: the sample says how far a site is from the
/// validation set, not the last digit of a threshold.
pub fn refit(
    base: &OperatingPoints,
    images: &[([f32; 4], Label)],
    target_sensitivity: f64,
    target_specificity: f64,
    min_images: usize,
    chosen_on: String,
) -> (OperatingPoints, Vec<Refitted>) {
    let chosen = choose(images, target_sensitivity, target_specificity, chosen_on.clone());
    let mut points = OperatingPoints {
        classes: Vec::new(),
        vf_priority: base.vf_priority,
        target_sensitivity,
        target_specificity,
        chosen_on,
    };
    let mut report = Vec::new();
    for &class in &FractureClass::ALL {
        let positives = images.iter().filter(|(_, t)| *t == Label::Fracture(class)).count();
        // As `choose` counts them: a fracture of unknown type is no class's negative (a site
        // sample of untyped fractures re-fits the any-fracture points only with typed ones).
        let negatives = images
            .iter()
            .filter(|(_, t)| *t != Label::Fracture(class) && *t != Label::UntypedFracture)
            .count();
        let refitted = positives >= min_images && negatives >= min_images;
        points
            .classes
            .push(if refitted { chosen.get(class) } else { base.get(class) });
        report.push(Refitted {
            class,
            positives,
            negatives,
            refitted,
        });
    }
    if report[FractureClass::DisplacedNeck.index()].refitted
        && report[FractureClass::ValgusImpactedNeck.index()].refitted
    {
        points.vf_priority = choose_vf_priority(images, &points);
    }
    (points, report)
}

/// Per class, one-vs-rest at the verdict under `points`: (sensitivity, specificity) on
/// `images`; NaN where the images hold no positive or no negative.
pub fn rates(images: &[([f32; 4], Label)], points: &OperatingPoints) -> [(f64, f64); 4] {
    let answers: Vec<(Label, Label)> = images
        .iter()
        .map(|(s, truth)| (decide(*s, points).label, *truth))
        .collect();
    let mut out = [(f64::NAN, f64::NAN); 4];
    for class in FractureClass::ALL {
        let c = Label::Fracture(class);
        let ratio = |hit: usize, n: usize| if n == 0 { f64::NAN } else { hit as f64 / n as f64 };
        let positives = answers.iter().filter(|(_, t)| *t == c);
        let negatives = answers.iter().filter(|(_, t)| *t != c && *t != Label::UntypedFracture);
        out[class.index()] = (
            ratio(positives.clone().filter(|(a, _)| *a == c).count(), positives.count()),
            ratio(negatives.clone().filter(|(a, _)| *a != c).count(), negatives.count()),
        );
    }
    out
}

fn choose_vf_priority(images: &[([f32; 4], Label)], points: &OperatingPoints) -> f32 {
    let (df, vf) = (FractureClass::DisplacedNeck, FractureClass::ValgusImpactedNeck);
    let count = |class| images.iter().filter(|(_, t)| *t == Label::Fracture(class)).count();
    let (n_df, n_vf) = (count(df), count(vf));
    if n_df == 0 || n_vf == 0 {
        return points.get(vf).fracture;
    }
    let mut candidates: Vec<f32> = images
        .iter()
        .map(|(s, _)| s[vf.index()])
        .filter(|&v| v > 0.0 && v < 1.0)
        .collect();
    candidates.push(1.0);
    candidates.sort_by(|a, b| a.total_cmp(b));
    candidates.dedup();
    let mut trial = points.clone();
    let mut best = (f64::NEG_INFINITY, 1.0f32);
    for t in candidates {
        trial.vf_priority = t;
        let hits = |class: FractureClass| {
            images
                .iter()
                .filter(|(s, truth)| *truth == Label::Fracture(class) && decide(*s, &trial).label == *truth)
                .count()
        };
        let objective = hits(df) as f64 / n_df as f64 + hits(vf) as f64 / n_vf as f64;
        // Strictly better only: equal objectives keep the lower (earlier) threshold.
        if objective > best.0 + 1e-12 {
            best = (objective, t);
        }
    }
    best.1
}

/// The smallest f32 above `x` (for x ≥ 0).
fn next_up(x: f32) -> f32 {
    f32::from_bits(x.max(0.0).to_bits() + 1)
}

/// A site's name as it goes into `operating_points.SITE.json`: letters, digits, '.', '_', '-'.
pub fn site_name(value: &str) -> Result<String, BadSiteName> {
    let ok = (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !value.starts_with('.');
    if ok {
        Ok(value.to_string())
    } else {
        Err(BadSiteName(value.to_string()))
    }
}

/// A site name that cannot go into a file name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("use 1–64 letters, digits, '.', '_' or '-' (not starting with '.')")]
pub struct BadSiteName(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use FractureClass::{
        DisplacedNeck as Df, StableIntertrochanteric as Sf, UnstableIntertrochanteric as Uf, ValgusImpactedNeck as Vf,
    };

    fn points() -> OperatingPoints {
        let mut p = OperatingPoints::uncalibrated();
        p.classes = FractureClass::ALL
            .iter()
            .map(|&class| ClassThresholds {
                class,
                suspicious: 0.3,
                fracture: 0.6,
            })
            .collect();
        p.vf_priority = 0.4;
        p
    }

    fn scores(df: f32, vf: f32, sf: f32, uf: f32) -> [f32; 4] {
        [df, vf, sf, uf]
    }

    #[test]
    fn nothing_above_suspicious_is_no_fracture() {
        let v = decide(scores(0.2, 0.1, 0.29, 0.0), &points());
        assert_eq!(v.label, Label::NoFracture);
        assert_eq!(v.operating_point, OperatingPoint::NoFracture);
        assert_eq!(v.confidence, None, "no visible fracture has no confidence");
    }

    #[test]
    fn highest_candidate_wins_with_its_operating_point() {
        let v = decide(scores(0.1, 0.0, 0.5, 0.45), &points());
        assert_eq!(
            (v.label, v.operating_point),
            (Label::Fracture(Sf), OperatingPoint::Suspicious)
        );
        let v = decide(scores(0.1, 0.0, 0.5, 0.65), &points());
        assert_eq!(
            (v.label, v.operating_point),
            (Label::Fracture(Uf), OperatingPoint::Fracture)
        );
        assert_eq!(v.at_fracture_point(), Label::Fracture(Uf));
        let v = decide(scores(0.1, 0.0, 0.5, 0.45), &points());
        assert_eq!(v.at_fracture_point(), Label::NoFracture);
    }

    #[test]
    fn vf_priority_over_df() {
        // DF wins on score, VF passes the priority threshold: VF.
        let v = decide(scores(0.9, 0.45, 0.0, 0.0), &points());
        assert_eq!(v.label, Label::Fracture(Vf));
        assert!(v.vf_priority_applied);
        assert_eq!(v.operating_point, OperatingPoint::Suspicious);
        assert!((v.confidence.unwrap() - 0.45).abs() < 1e-6);
        // VF below the priority threshold (though above suspicious): DF stays.
        let v = decide(scores(0.9, 0.35, 0.0, 0.0), &points());
        assert_eq!(v.label, Label::Fracture(Df));
        assert!(!v.vf_priority_applied);
        // Priority only overrides DF, never an intertrochanteric answer.
        let v = decide(scores(0.1, 0.45, 0.0, 0.9), &points());
        assert_eq!(v.label, Label::Fracture(Uf));
        // Priority with a threshold below suspicious still needs DF to be a candidate.
        let mut p = points();
        p.vf_priority = 0.1;
        let v = decide(scores(0.2, 0.15, 0.0, 0.0), &p);
        assert_eq!(v.label, Label::NoFracture);
        let v = decide(scores(0.5, 0.15, 0.0, 0.0), &p);
        assert_eq!(v.label, Label::Fracture(Vf));
    }

    #[test]
    fn only_boxes_above_their_suspicious_threshold_are_shown() {
        let mut p = points();
        p.classes[2].suspicious = 0.5;
        let d = |class, score| Detection {
            class,
            score,
            bbox: crate::BBox::new(0.0, 0.0, 1.0, 1.0),
        };
        let all = [d(Df, 0.2), d(Sf, 0.45), d(Df, 0.35), d(Sf, 0.55), d(Uf, 0.9)];
        let shown = reportable(&all, &p, 2);
        assert_eq!(shown, vec![d(Uf, 0.9), d(Sf, 0.55)]);
        assert_eq!(reportable(&all, &p, 10).len(), 3);
    }

    #[test]
    fn overlapping_boxes_of_one_class_are_drawn_once() {
        let p = points();
        let d = |class, score, x: f32, w: f32| Detection {
            class,
            score,
            bbox: crate::BBox::new(x, 0.0, x + w, 10.0),
        };
        // DF 0.9 and DF 0.5 overlap (IoU 0.67): one finding. A DF box inside a larger one is one
        // finding too. VF on the same spot and a distant DF are findings of their own.
        let all = [
            d(Df, 0.9, 0.0, 10.0),
            d(Df, 0.5, 2.0, 10.0),
            d(Df, 0.4, 3.0, 4.0),
            d(Vf, 0.6, 1.0, 10.0),
            d(Df, 0.45, 50.0, 10.0),
        ];
        let shown = reportable(&all, &p, 5);
        assert_eq!(
            shown,
            vec![d(Df, 0.9, 0.0, 10.0), d(Vf, 0.6, 1.0, 10.0), d(Df, 0.45, 50.0, 10.0)]
        );
    }

    #[test]
    fn thresholds_meet_their_targets_on_the_validation_images() {
        // 20 DF images with DF scores 0.05..1.0, 80 others with DF scores 0.0..0.79.
        let mut images = Vec::new();
        for i in 0..20 {
            images.push((scores(0.05 * (i + 1) as f32, 0.0, 0.0, 0.0), Label::Fracture(Df)));
        }
        for i in 0..80 {
            images.push((scores(0.01 * i as f32, 0.0, 0.0, 0.0), Label::NoFracture));
        }
        let p = choose(&images, 0.95, 0.98, "test".into());
        let t = p.get(Df);
        // Sensitivity ≥ 0.95 → 19 of 20 positives at or above: the 19th highest is 0.10.
        assert!((t.suspicious - 0.10).abs() < 1e-6, "{t:?}");
        let se = images
            .iter()
            .filter(|(s, l)| *l == Label::Fracture(Df) && s[0] >= t.suspicious)
            .count();
        assert_eq!(se, 19);
        // Specificity ≥ 0.98 → at most 1 of 80 negatives at or above: just above 0.78.
        let fp = images
            .iter()
            .filter(|(s, l)| *l != Label::Fracture(Df) && s[0] >= t.fracture)
            .count();
        assert_eq!(fp, 1);
        assert!(t.fracture > 0.78 && t.fracture < 0.7801);
        // No VF positives: VF keeps the default, and VF priority is its fracture threshold.
        assert_eq!(p.get(Vf), OperatingPoints::uncalibrated().get(Vf));
        assert_eq!(p.vf_priority, p.get(Vf).fracture);
        p.validate().unwrap();
    }

    #[test]
    fn points_that_leave_out_a_class_are_invalid() {
        assert_eq!(OperatingPoints::uncalibrated().validate(), Ok(()));
        let mut points = OperatingPoints::uncalibrated();
        points.classes.retain(|t| t.class == Df || t.class == Vf);
        let error = points.validate().unwrap_err();
        assert_eq!(error, InvalidThresholds::Missing(vec![Sf, Uf]));
        assert_eq!(
            error.to_string(),
            "SF and UF have no thresholds: operating points must name all four classes (DF, VF, SF, UF), or a class left out would silently run on the uncalibrated defaults"
        );
        // A class named twice does not stand in for one left out.
        points.classes.push(points.classes[0]);
        points.classes.push(points.classes[0]);
        let error = points.validate().unwrap_err().to_string();
        assert!(error.starts_with("SF and UF have no thresholds"), "{error}");
        points.classes = vec![points.classes[1]];
        let error = points.validate().unwrap_err().to_string();
        assert!(error.starts_with("DF, SF and UF have no thresholds"), "{error}");
        points.classes.clear();
        let error = points.validate().unwrap_err().to_string();
        assert!(error.starts_with("DF, VF, SF and UF have no thresholds"), "{error}");
        let mut points = OperatingPoints::uncalibrated();
        points.classes.remove(3);
        assert_eq!(
            points.validate().unwrap_err().to_string().split(':').next(),
            Some("UF has no thresholds")
        );
    }

    #[test]
    fn vf_priority_threshold_balances_df_and_vf_on_validation() {
        // DF images score DF 0.8 with VF 0.3; VF images score DF 0.6 with VF 0.5. Priority at
        // 0.3 would turn every DF into VF; above 0.5 every VF stays DF; (0.3, 0.5] is right,
        // and the lowest such candidate (0.5) is taken.
        let mut images = Vec::new();
        for _ in 0..10 {
            images.push((scores(0.8, 0.3, 0.0, 0.0), Label::Fracture(Df)));
            images.push((scores(0.6, 0.5, 0.0, 0.0), Label::Fracture(Vf)));
            images.push((scores(0.0, 0.0, 0.0, 0.0), Label::NoFracture));
        }
        let p = choose(&images, 0.95, 0.98, "test".into());
        assert!((p.vf_priority - 0.5).abs() < 1e-6, "{p:?}");
        for (s, truth) in &images {
            assert_eq!(decide(*s, &p).label, *truth);
        }
        // When DF and VF cannot be told apart, the tie goes to VF (the lowest threshold).
        let mut images = Vec::new();
        for _ in 0..10 {
            images.push((scores(0.8, 0.4, 0.0, 0.0), Label::Fracture(Df)));
            images.push((scores(0.8, 0.4, 0.0, 0.0), Label::Fracture(Vf)));
        }
        let p = choose(&images, 0.95, 0.98, "test".into());
        assert_eq!(decide(scores(0.8, 0.4, 0.0, 0.0), &p).label, Label::Fracture(Vf));
    }

    #[test]
    fn a_site_refit_moves_only_classes_the_sample_can_speak_for() {
        // The new site scores DF lower (0.3–0.5; validation put DF's suspicious point at 0.6);
        // it has no SF image.
        let mut base = points();
        base.classes[Df.index()] = ClassThresholds {
            class: Df,
            suspicious: 0.6,
            fracture: 0.8,
        };
        let mut sample = Vec::new();
        for i in 0..8 {
            sample.push((scores(0.3 + 0.025 * i as f32, 0.0, 0.0, 0.0), Label::Fracture(Df)));
            sample.push((scores(0.05, 0.0, 0.0, 0.7), Label::Fracture(Uf)));
            sample.push((scores(0.1, 0.0, 0.0, 0.0), Label::NoFracture));
        }
        let before = rates(&sample, &base);
        let (after_points, report) = refit(&base, &sample, 0.95, 0.98, 5, "site sample".into());
        let after = rates(&sample, &after_points);
        let df = &report[Df.index()];
        assert!(df.refitted && df.positives == 8 && df.negatives == 16);
        assert!(!report[Sf.index()].refitted, "no SF image: kept");
        assert_eq!(after_points.get(Sf), base.get(Sf));
        assert!(after_points.get(Df).suspicious < base.get(Df).suspicious);
        assert!(after[Df.index()].0 > before[Df.index()].0, "{before:?} → {after:?}");
        assert!(after[Df.index()].0 >= 0.95 - 1e-9);
        assert!(before[Sf.index()].0.is_nan());
        after_points.validate().unwrap();
    }

    #[test]
    fn untyped_fractures_set_the_any_fracture_points_and_are_no_class_negative() {
        // Ten fractures of unknown type (strongest scores 0.5–0.95, on varying classes) and ten
        // images without one (strongest 0.05–0.5): no typed positive anywhere.
        let mut images = Vec::new();
        for k in 0..10 {
            let mut s = [0.01f32; 4];
            s[k % 4] = 0.5 + 0.05 * k as f32;
            images.push((s, Label::UntypedFracture));
            images.push(([0.05 * (k + 1) as f32, 0.02, 0.02, 0.02], Label::NoFracture));
        }
        let points = choose(&images, 0.9, 0.9, "test".into());
        for class in FractureClass::ALL {
            // The 9th highest of 0.50..0.95 keeps 9 of 10 fractures.
            assert!(
                (points.get(class).suspicious - 0.55).abs() < 1e-6,
                "{class}: {points:?}"
            );
        }
        let found = images
            .iter()
            .filter(|(s, t)| *t == Label::UntypedFracture && decide(*s, &points).label != Label::NoFracture)
            .count();
        assert_eq!(found, 9);
        // Typed positives keep their own class's rule; untyped images count against no class.
        images.push(([0.9, 0.0, 0.0, 0.0], Label::Fracture(Df)));
        let typed = choose(&images, 0.9, 0.9, "test".into());
        assert!((typed.get(Df).suspicious - 0.9).abs() < 1e-6, "{typed:?}");
        let r = rates(&images, &typed);
        assert_eq!(r[Df.index()].0, 1.0);
    }

    #[test]
    fn fracture_point_never_below_suspicious() {
        // Perfectly separated: negatives all 0, positives 0.5–0.9.
        let mut images = Vec::new();
        for i in 0..10 {
            images.push((scores(0.0, 0.0, 0.5 + 0.04 * i as f32, 0.0), Label::Fracture(Sf)));
            images.push((scores(0.0, 0.0, 0.0, 0.0), Label::NoFracture));
        }
        let t = choose(&images, 0.95, 0.98, "test".into()).get(Sf);
        assert!(t.fracture >= t.suspicious);
        assert!((t.suspicious - 0.5).abs() < 1e-6);
    }
}
