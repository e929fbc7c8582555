//! From the head's outputs to boxes: the anchor grid, distribution decoding, the score floor
//! and per-class non-maximum suppression. The model owns its output format, so this lives
//! here; training (validation mAP) and inference call the same function.

use crate::loss::{decode, priors};
use crate::precision::{autocast, Precision};
use crate::{DamoYolo, ModelConfig};
use hipfrac_core::{nms_per_class, BBox, Detection, FractureClass};
use tch::{Device, Kind, Tensor};

/// The deployed score floor: boxes below it are dropped (the reference's inference setting).
pub const SCORE_FLOOR: f64 = 0.05;
/// Validation mAP is measured down to this score (the COCO convention).
pub const MAP_SCORE_FLOOR: f64 = 0.001;
/// Per-class NMS overlap (the reference's).
pub const NMS_IOU: f32 = 0.7;
/// Candidates kept before NMS, and boxes kept after it, per image.
const PRE_NMS: usize = 1000;
const MAX_BOXES: usize = 100;

/// Detections per image from head outputs: score ≥ `conf`, top 1000, per-class NMS at `iou`,
/// at most 100 — the reference's inference at [`SCORE_FLOOR`] and [`NMS_IOU`].
pub fn detections(model: &DamoYolo, images: &Tensor, conf: f64, iou: f32) -> Vec<Vec<Detection>> {
    detections_at(model, images, conf, iou, Precision::Fp32)
}

/// [`detections`] with the network computed at `precision` (an autocast region); decoding,
/// scores and NMS are fp32.
pub fn detections_at(
    model: &DamoYolo,
    images: &Tensor,
    conf: f64,
    iou: f32,
    precision: Precision,
) -> Vec<Vec<Detection>> {
    let output = tch::no_grad(|| autocast(images.device(), precision, || model.forward_t(images, false)));
    let p = priors(&output.level_sizes, &ModelConfig::STRIDES, images.device());
    let boxes = decode(&output.box_logits.to_kind(Kind::Float), &p)
        .to_device(Device::Cpu)
        .to_kind(Kind::Float);
    let mut scores = output.class_logits.to_kind(Kind::Float).sigmoid();
    if let Some(scope) = &output.scope_logits {
        // A box is as likely as its class score and the image's scope together.
        scores *= scope.to_kind(Kind::Float).sigmoid().view([-1, 1, 1]);
    }
    let scores = scores.to_device(Device::Cpu);
    let classes = scores.size()[2];
    let mut all = Vec::new();
    for b in 0..scores.size()[0] {
        let s = Vec::<f32>::try_from(scores.get(b).flatten(0, 1)).expect("scores");
        let bx = Vec::<f32>::try_from(boxes.get(b).flatten(0, 1)).expect("boxes");
        let mut candidates: Vec<(usize, f32)> = s
            .iter()
            .enumerate()
            .filter(|(_, &v)| v as f64 >= conf)
            .map(|(i, &v)| (i, v))
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
        candidates.truncate(PRE_NMS);
        let list: Vec<Detection> = candidates
            .iter()
            .map(|&(i, score)| {
                let (anchor, class) = (i / classes as usize, i % classes as usize);
                let c = &bx[anchor * 4..anchor * 4 + 4];
                Detection {
                    class: FractureClass::from_index(class).expect("4 classes"),
                    score,
                    bbox: BBox::new(c[0], c[1], c[2], c[3]),
                }
            })
            .collect();
        let mut kept = nms_per_class(&list, iou);
        kept.truncate(MAX_BOXES);
        all.push(kept);
    }
    all
}
