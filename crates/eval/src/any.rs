//! Any-fracture measures: fracture or not, whatever the type — what a data set that labels
//! only "fractured" (FracAtlas, most public sets) can measure, reported beside the per-type
//! tables.
//!
//! Definitions (stated in every report):
//! * Sensitivity and specificity at the verdict: an image is called fractured when the verdict
//!   is any fracture type; an image not assessable is called "no fracture" (a miss when it
//!   holds one), as in the per-type tables. Wilson 95 % intervals.
//! * AUC of the image's fracture score (the highest class score, `max_fracture_score`) over
//!   the assessed images, with a 95 % interval from a bootstrap by patient.
//! * Localisation: of the fractured images called fractured that carry a true box, the share
//!   whose answer's box (the most confident box of the answered type) holds the centre of a
//!   true fracture box (the "pointing" rule), with its Wilson interval; and the mean IoU of the
//!   answer's box with its best-matching true box.

use crate::intervals::{bootstrap_by_cluster, wilson, Estimate, Z95};
use crate::roc::auc;
use hipfrac_core::BBox;
use serde::{Deserialize, Serialize};

/// One image as the any-fracture measures see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyItem {
    pub patient: String,
    /// The truth holds a fracture (of any type, or of unknown type).
    pub fractured: bool,
    /// The verdict is a fracture (of any type).
    pub called: bool,
    /// The fracture score; `None` when the image was not assessed.
    pub score: Option<f64>,
    /// True fracture boxes, typed or not.
    pub truth_boxes: Vec<BBox>,
    /// The box behind the answer, when the verdict is a fracture.
    pub answer_box: Option<BBox>,
}

/// The any-fracture measures of a set of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnyFracture {
    pub fractured: usize,
    pub clear: usize,
    /// Images assessed (a verdict given), fractured and not.
    pub assessed_fractured: usize,
    pub assessed_clear: usize,
    pub sensitivity: Estimate,
    pub specificity: Estimate,
    /// `None` without both fractured and clear assessed images.
    pub auc: Option<Estimate>,
    /// Fractured images called fractured that carry a true box.
    pub localisable: usize,
    /// Share of them whose answer's box holds a true box's centre.
    pub localised: Option<Estimate>,
    /// Mean IoU of the answer's box with its best true box over those images.
    pub mean_iou: Option<f64>,
}

fn scored(items: &[AnyItem]) -> Vec<(f64, bool)> {
    items.iter().filter_map(|i| Some((i.score?, i.fractured))).collect()
}

/// Measures `items` (see the module docs). The AUC interval resamples patients `replicates`
/// times from `seed`.
pub fn any_fracture(items: &[AnyItem], replicates: usize, seed: u64) -> AnyFracture {
    let count = |f: &dyn Fn(&AnyItem) -> bool| items.iter().filter(|i| f(i)).count() as u64;
    let fractured = count(&|i| i.fractured);
    let clear = items.len() as u64 - fractured;
    let hits = count(&|i| i.fractured && i.called);
    let rejections = count(&|i| !i.fractured && !i.called);
    let scores = scored(items);
    let auc_estimate = auc(&scores).map(|value| {
        let interval = bootstrap_by_cluster(
            items,
            |i| i.patient.clone(),
            |sample| auc(&scored(sample)).unwrap_or(f64::NAN),
            replicates,
            seed,
        );
        Estimate { value, ..interval }
    });
    let centre = |b: &BBox| ((b.x_min + b.x_max) / 2.0, (b.y_min + b.y_max) / 2.0);
    let holds = |a: &BBox, (x, y): (f32, f32)| a.x_min <= x && x <= a.x_max && a.y_min <= y && y <= a.y_max;
    let localisable: Vec<(&BBox, &[BBox])> = items
        .iter()
        .filter(|i| i.fractured && i.called && !i.truth_boxes.is_empty())
        .filter_map(|i| Some((i.answer_box.as_ref()?, i.truth_boxes.as_slice())))
        .collect();
    let pointed = localisable
        .iter()
        .filter(|(answer, truths)| truths.iter().any(|t| holds(answer, centre(t))))
        .count() as u64;
    let ious: Vec<f64> = localisable
        .iter()
        .map(|(answer, truths)| {
            truths
                .iter()
                .map(|t| hipfrac_core::iou(answer, t) as f64)
                .fold(0.0, f64::max)
        })
        .collect();
    AnyFracture {
        fractured: fractured as usize,
        clear: clear as usize,
        assessed_fractured: items.iter().filter(|i| i.fractured && i.score.is_some()).count(),
        assessed_clear: items.iter().filter(|i| !i.fractured && i.score.is_some()).count(),
        sensitivity: wilson(hits, fractured, Z95),
        specificity: wilson(rejections, clear, Z95),
        auc: auc_estimate,
        localisable: localisable.len(),
        localised: (!localisable.is_empty()).then(|| wilson(pointed, localisable.len() as u64, Z95)),
        mean_iou: (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(patient: &str, fractured: bool, called: bool, score: Option<f64>) -> AnyItem {
        AnyItem {
            patient: patient.into(),
            fractured,
            called,
            score,
            truth_boxes: if fractured {
                vec![BBox::new(10.0, 10.0, 20.0, 20.0)]
            } else {
                vec![]
            },
            answer_box: called.then(|| BBox::new(12.0, 8.0, 30.0, 22.0)),
        }
    }

    #[test]
    fn counts_rates_auc_and_pointing() {
        let items = vec![
            item("a", true, true, Some(0.9)),
            item("b", true, false, Some(0.4)),
            // Not assessed: a miss at the verdict, out of the AUC.
            item("c", true, false, None),
            item("d", false, false, Some(0.1)),
            item("e", false, true, Some(0.5)),
            item("f", false, false, Some(0.3)),
        ];
        let m = any_fracture(&items, 200, 1);
        assert_eq!(
            (m.fractured, m.clear, m.assessed_fractured, m.assessed_clear),
            (3, 3, 2, 3)
        );
        assert!((m.sensitivity.value - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.specificity.value - 2.0 / 3.0).abs() < 1e-12);
        // Scores: fractured 0.9, 0.4; clear 0.1, 0.5, 0.3 → 5 of 6 pairs ordered.
        let auc = m.auc.unwrap();
        assert!((auc.value - 5.0 / 6.0).abs() < 1e-12, "{auc:?}");
        assert!(auc.lower <= auc.value && auc.value <= auc.upper);
        assert_eq!(m.localisable, 1);
        assert_eq!(
            m.localised.unwrap().value,
            1.0,
            "the answer's box holds the true box's centre"
        );
        // IoU of [12,8,30,22] with [10,10,20,20]: 80 / (252 + 100 − 80).
        assert!((m.mean_iou.unwrap() - 80.0 / 272.0).abs() < 1e-6);
    }

    #[test]
    fn no_clear_images_leave_the_auc_undefined() {
        let m = any_fracture(&[item("a", true, true, Some(0.9))], 10, 1);
        assert!(m.auc.is_none() && m.specificity.value.is_nan());
    }
}
