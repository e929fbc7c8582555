//! Boxes, overlap measures and non-maximum suppression.
//!
//! # Convention
//! A [`BBox`] is `[x_min, y_min, x_max, y_max)` in pixel coordinates of the image that was
//! read: x to the right, y down, origin at the top-left corner of the top-left pixel, max
//! edges exclusive, as f32. A box covering exactly pixel (0, 0) is `[0, 0, 1, 1)`.
//! Every other convention is converted at the edges: Pascal VOC is 1-based inclusive
//! (`xmin_voc = x_min + 1`, `xmax_voc = x_max`), YOLO is normalised centre/size, COCO is
//! `[x, y, width, height]` with the same origin as here.

use crate::FractureClass;
use serde::{Deserialize, Serialize};

/// An axis-aligned box, `[x_min, y_min, x_max, y_max)` in pixels (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge, inclusive.
    pub x_min: f32,
    /// Top edge, inclusive.
    pub y_min: f32,
    /// Right edge, exclusive.
    pub x_max: f32,
    /// Bottom edge, exclusive.
    pub y_max: f32,
}

impl BBox {
    /// A box from its edges.
    pub fn new(x_min: f32, y_min: f32, x_max: f32, y_max: f32) -> Self {
        Self {
            x_min,
            y_min,
            x_max,
            y_max,
        }
    }

    /// Width in pixels (0 when degenerate).
    pub fn width(&self) -> f32 {
        (self.x_max - self.x_min).max(0.0)
    }

    /// Height in pixels (0 when degenerate).
    pub fn height(&self) -> f32 {
        (self.y_max - self.y_min).max(0.0)
    }

    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Centre point `(x, y)`.
    pub fn center(&self) -> (f32, f32) {
        (0.5 * (self.x_min + self.x_max), 0.5 * (self.y_min + self.y_max))
    }

    /// True when the box has no area or holds a non-finite edge.
    pub fn is_degenerate(&self) -> bool {
        !(self.x_min.is_finite() && self.y_min.is_finite() && self.x_max.is_finite() && self.y_max.is_finite())
            || self.x_max <= self.x_min
            || self.y_max <= self.y_min
    }

    /// True when the box lies inside an image of `width` × `height` pixels.
    pub fn is_inside(&self, width: u32, height: u32) -> bool {
        self.x_min >= 0.0 && self.y_min >= 0.0 && self.x_max <= width as f32 && self.y_max <= height as f32
    }

    /// The part of the box inside an image of `width` × `height` pixels.
    pub fn clip(&self, width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        Self::new(
            self.x_min.clamp(0.0, w),
            self.y_min.clamp(0.0, h),
            self.x_max.clamp(0.0, w),
            self.y_max.clamp(0.0, h),
        )
    }

    /// Area shared with `other`.
    pub fn intersection_area(&self, other: &BBox) -> f32 {
        let w = (self.x_max.min(other.x_max) - self.x_min.max(other.x_min)).max(0.0);
        let h = (self.y_max.min(other.y_max) - self.y_min.max(other.y_min)).max(0.0);
        w * h
    }

    /// Pascal VOC corners, 1-based inclusive: `(xmin, ymin, xmax, ymax)`.
    pub fn to_voc(&self) -> (f64, f64, f64, f64) {
        (
            self.x_min as f64 + 1.0,
            self.y_min as f64 + 1.0,
            self.x_max as f64,
            self.y_max as f64,
        )
    }

    /// From Pascal VOC corners (1-based inclusive).
    pub fn from_voc(xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> Self {
        Self::new((xmin - 1.0) as f32, (ymin - 1.0) as f32, xmax as f32, ymax as f32)
    }

    /// COCO `[x, y, width, height]`.
    pub fn to_coco(&self) -> [f64; 4] {
        [
            self.x_min as f64,
            self.y_min as f64,
            (self.x_max - self.x_min) as f64,
            (self.y_max - self.y_min) as f64,
        ]
    }

    /// From COCO `[x, y, width, height]`.
    pub fn from_coco(xywh: [f64; 4]) -> Self {
        let [x, y, w, h] = xywh;
        Self::new(x as f32, y as f32, (x + w) as f32, (y + h) as f32)
    }

    /// YOLO `(cx, cy, w, h)`, each normalised by the image size.
    pub fn to_yolo(&self, width: u32, height: u32) -> [f64; 4] {
        let (w, h) = (width as f64, height as f64);
        let (x0, y0, x1, y1) = (
            self.x_min as f64,
            self.y_min as f64,
            self.x_max as f64,
            self.y_max as f64,
        );
        [(x0 + x1) / 2.0 / w, (y0 + y1) / 2.0 / h, (x1 - x0) / w, (y1 - y0) / h]
    }

    /// From YOLO `(cx, cy, w, h)` normalised by the image size.
    pub fn from_yolo(cxcywh: [f64; 4], width: u32, height: u32) -> Self {
        let [cx, cy, bw, bh] = cxcywh;
        let (w, h) = (width as f64, height as f64);
        Self::new(
            ((cx - bw / 2.0) * w) as f32,
            ((cy - bh / 2.0) * h) as f32,
            ((cx + bw / 2.0) * w) as f32,
            ((cy + bh / 2.0) * h) as f32,
        )
    }

    /// The box with every edge rounded to the nearest whole pixel.
    pub fn rounded(&self) -> Self {
        Self::new(
            self.x_min.round(),
            self.y_min.round(),
            self.x_max.round(),
            self.y_max.round(),
        )
    }
}

/// Intersection over union; 0 when both boxes are empty.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let inter = a.intersection_area(b);
    let union = a.area() + b.area() - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Dice coefficient 2|A∩B| / (|A| + |B|) of two boxes; equals 2·IoU / (1 + IoU).
pub fn dice(a: &BBox, b: &BBox) -> f32 {
    let total = a.area() + b.area();
    if total <= 0.0 {
        0.0
    } else {
        2.0 * a.intersection_area(b) / total
    }
}

/// One detected box with its class and confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Fracture type.
    pub class: FractureClass,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Where, in pixels of the image that was read.
    pub bbox: BBox,
}

/// Greedy non-maximum suppression within each class: a box is dropped when it overlaps a
/// higher-scoring box of the same class with IoU above `iou_threshold`. The result is sorted
/// by descending score (ties keep input order).
pub fn nms_per_class(detections: &[Detection], iou_threshold: f32) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..detections.len()).collect();
    order.sort_by(|&a, &b| detections[b].score.total_cmp(&detections[a].score).then(a.cmp(&b)));
    let mut kept: Vec<Detection> = Vec::new();
    for index in order {
        let candidate = detections[index];
        let suppressed = kept
            .iter()
            .any(|k| k.class == candidate.class && iou(&k.bbox, &candidate.bbox) > iou_threshold);
        if !suppressed {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: f32 = 1e-6;

    #[test]
    fn iou_and_dice_by_hand() {
        // Two 10×10 squares offset by 5 in x: overlap 50, union 150.
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((iou(&a, &b) - 50.0 / 150.0).abs() < TOLERANCE);
        assert!((dice(&a, &b) - 100.0 / 200.0).abs() < TOLERANCE);
        let i = iou(&a, &b);
        assert!((dice(&a, &b) - 2.0 * i / (1.0 + i)).abs() < TOLERANCE);
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let empty = BBox::new(3.0, 3.0, 3.0, 3.0);
        assert_eq!(iou(&empty, &empty), 0.0);
        assert!(empty.is_degenerate());
        assert!(BBox::new(0.0, 0.0, f32::NAN, 1.0).is_degenerate());
    }

    #[test]
    fn conversions_round_trip() {
        let b = BBox::new(12.0, 30.0, 112.0, 95.0);
        let (x0, y0, x1, y1) = b.to_voc();
        assert_eq!((x0, y0, x1, y1), (13.0, 31.0, 112.0, 95.0));
        assert_eq!(BBox::from_voc(x0, y0, x1, y1), b);
        assert_eq!(BBox::from_coco(b.to_coco()), b);
        let back = BBox::from_yolo(b.to_yolo(1024, 768), 1024, 768);
        assert!((back.x_min - b.x_min).abs() < 1e-3 && (back.y_max - b.y_max).abs() < 1e-3);
        assert!(b.is_inside(112, 95));
        assert!(!b.is_inside(111, 95));
        assert_eq!(
            BBox::new(-5.0, 2.0, 300.0, 9.0).clip(100, 100),
            BBox::new(0.0, 2.0, 100.0, 9.0)
        );
    }

    #[test]
    fn nms_suppresses_within_class_only() {
        let d = |class, score, x: f32| Detection {
            class,
            score,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
        };
        let df = FractureClass::DisplacedNeck;
        let vf = FractureClass::ValgusImpactedNeck;
        let detections = [
            d(df, 0.5, 1.0), // overlaps the 0.9 DF box (IoU 9/11) → dropped
            d(df, 0.9, 0.0),
            d(vf, 0.8, 0.0),  // same place, other class → kept
            d(df, 0.7, 50.0), // elsewhere → kept
        ];
        let kept = nms_per_class(&detections, 0.7);
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.7]);
        // With a threshold above their IoU both DF boxes survive.
        assert_eq!(nms_per_class(&detections, 0.95).len(), 4);
    }
}
