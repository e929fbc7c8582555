//! Mean average precision by the COCO rules (pycocotools' `COCOeval` for boxes, area range
//! "all", at most 100 detections per image), so numbers compare with the literature:
//!
//! * per class and IoU threshold t, detections of all images are ranked by score (ties keep
//!   image order, then the image's own score order); each detection takes the unmatched
//!   true box of its class and image with the highest IoU ≥ t; precision is made
//!   monotone and read at 101 recall points (0, 0.01, …, 1); AP is their mean;
//! * a class with no true box is left out of the mean;
//! * mAP50 uses t = 0.5; mAP50-95 averages t = 0.50, 0.55, …, 0.95.

use hipfrac_core::{iou, BBox, FractureClass};

/// The boxes of one image.
#[derive(Debug, Clone, Default)]
pub struct ImageBoxes {
    pub truth: Vec<(FractureClass, BBox)>,
    /// `(class, score, box)`.
    pub detections: Vec<(FractureClass, f32, BBox)>,
}

/// The IoU thresholds of mAP50-95.
pub fn coco_thresholds() -> Vec<f64> {
    (0..10).map(|i| 0.5 + 0.05 * i as f64).collect()
}

const MAX_DETECTIONS: usize = 100;

/// The precision–recall curve of one class at IoU threshold `threshold`: `(recall,
/// precision)` after each ranked detection, precision made monotone (the COCO envelope);
/// `None` when the class has no true box.
pub fn pr_curve(images: &[ImageBoxes], class: FractureClass, threshold: f64) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut ranked: Vec<(f32, bool)> = Vec::new();
    let mut positives = 0usize;
    for image in images {
        let truths: Vec<&BBox> = image
            .truth
            .iter()
            .filter(|(c, _)| *c == class)
            .map(|(_, b)| b)
            .collect();
        positives += truths.len();
        let mut detections: Vec<&(FractureClass, f32, BBox)> =
            image.detections.iter().filter(|(c, _, _)| *c == class).collect();
        // Stable sort by descending score, as numpy's mergesort.
        detections.sort_by(|a, b| b.1.total_cmp(&a.1));
        detections.truncate(MAX_DETECTIONS);
        let mut taken = vec![false; truths.len()];
        for (_, score, bbox) in detections {
            let mut best = threshold.min(1.0 - 1e-10);
            let mut matched = None;
            for (g, truth) in truths.iter().enumerate() {
                if taken[g] {
                    continue;
                }
                let overlap = iou(bbox, truth) as f64;
                if overlap < best {
                    continue;
                }
                best = overlap;
                matched = Some(g);
            }
            if let Some(g) = matched {
                taken[g] = true;
            }
            ranked.push((*score, matched.is_some()));
        }
    }
    if positives == 0 {
        return None;
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut recall = Vec::with_capacity(ranked.len());
    let mut precision = Vec::with_capacity(ranked.len());
    for (_, hit) in &ranked {
        if *hit {
            tp += 1.0
        } else {
            fp += 1.0
        }
        recall.push(tp / positives as f64);
        precision.push(tp / (tp + fp));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    Some((recall, precision))
}

/// AP of one class at IoU threshold `threshold`; `None` when the class has no true box.
pub fn average_precision(images: &[ImageBoxes], class: FractureClass, threshold: f64) -> Option<f64> {
    let (recall, precision) = pr_curve(images, class, threshold)?;
    let total: f64 = (0..=100)
        .map(|k| {
            // numpy.linspace(0, 1, 101): k·0.01, the last exactly 1.
            let r = if k == 100 { 1.0 } else { k as f64 * 0.01 };
            // First rank whose recall reaches r (numpy searchsorted, side left).
            let index = recall.partition_point(|&x| x < r);
            precision.get(index).copied().unwrap_or(0.0)
        })
        .sum();
    Some(total / 101.0)
}

/// mAP over the classes that have true boxes, at one IoU threshold.
pub fn mean_average_precision(images: &[ImageBoxes], threshold: f64) -> Option<f64> {
    let aps: Vec<f64> = FractureClass::ALL
        .iter()
        .filter_map(|c| average_precision(images, *c, threshold))
        .collect();
    (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64)
}

/// `(mAP50, mAP50-95)`.
pub fn coco_map(images: &[ImageBoxes]) -> Option<(f64, f64)> {
    let map50 = mean_average_precision(images, 0.5)?;
    let all: Vec<f64> = coco_thresholds()
        .iter()
        .filter_map(|t| mean_average_precision(images, *t))
        .collect();
    Some((map50, all.iter().sum::<f64>() / all.len() as f64))
}
