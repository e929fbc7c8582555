//! Losses and label assignment of DAMO-YOLO: AlignOTA, Quality Focal Loss, GIoU loss and
//! Distribution Focal Loss, combined as the reference ZeroHead does.

use crate::HeadOutput;
use tch::{Kind, Tensor};

/// Anchor points of all levels: `[N, 4]` rows `(x, y, stride, stride)`, with `x = column ·
/// stride` and `y = row · stride` (the reference's convention: cell corners, no half offset).
pub fn priors(level_sizes: &[(i64, i64)], strides: &[i64], device: tch::Device) -> Tensor {
    let mut all = Vec::new();
    for (&(h, w), &stride) in level_sizes.iter().zip(strides) {
        let s = stride as f64;
        let xs = (Tensor::arange(w, (Kind::Float, device)) * s).repeat([h]); // [h·w]
        let ys = (Tensor::arange(h, (Kind::Float, device)) * s).repeat_interleave_self_int(w, 0, None);
        let st = Tensor::full([h * w], s, (Kind::Float, device));
        all.push(Tensor::stack(&[xs, ys, st.shallow_clone(), st], 1));
    }
    Tensor::cat(&all, 0)
}

/// Expected distance per side from the distribution logits, in stride units.
///
/// # Shapes
/// `box_logits`: `[..., 4, bins]` → `[..., 4]`.
pub fn integral(box_logits: &Tensor) -> Tensor {
    let bins = box_logits.size()[box_logits.dim() - 1];
    let project = Tensor::arange(bins, (Kind::Float, box_logits.device()));
    (box_logits.softmax(-1, Kind::Float) * project).sum_dim_intlist(-1, false, Kind::Float)
}

/// Boxes `[x1, y1, x2, y2]` from distribution logits and priors.
///
/// # Shapes
/// `box_logits`: `[B, N, 4, bins]`, `priors`: `[N, 4]` → `[B, N, 4]`.
pub fn decode(box_logits: &Tensor, priors: &Tensor) -> Tensor {
    let distances = integral(box_logits) * priors.narrow(1, 2, 1); // [B, N, 4] in pixels
    let (x, y) = (priors.select(1, 0), priors.select(1, 1));
    Tensor::stack(
        &[
            &x - distances.select(2, 0),
            &y - distances.select(2, 1),
            &x + distances.select(2, 2),
            &y + distances.select(2, 3),
        ],
        2,
    )
}

/// IoU (or GIoU) of aligned box pairs `[n, 4]`.
pub fn aligned_iou(a: &Tensor, b: &Tensor, generalized: bool, eps: f64) -> Tensor {
    let lt = a.narrow(1, 0, 2).maximum(&b.narrow(1, 0, 2));
    let rb = a.narrow(1, 2, 2).minimum(&b.narrow(1, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let overlap = wh.select(1, 0) * wh.select(1, 1);
    let area = |t: &Tensor| (t.select(1, 2) - t.select(1, 0)) * (t.select(1, 3) - t.select(1, 1));
    let union = (area(a) + area(b) - &overlap).clamp_min(eps);
    let iou = &overlap / &union;
    if !generalized {
        return iou;
    }
    let enclose_lt = a.narrow(1, 0, 2).minimum(&b.narrow(1, 0, 2));
    let enclose_rb = a.narrow(1, 2, 2).maximum(&b.narrow(1, 2, 2));
    let enclose_wh = (enclose_rb - enclose_lt).clamp_min(0.0);
    let enclose = (enclose_wh.select(1, 0) * enclose_wh.select(1, 1)).clamp_min(eps);
    iou - (&enclose - &union) / enclose
}

/// IoU of every box in `a` `[n, 4]` with every box in `b` `[m, 4]` → `[n, m]`.
pub fn pairwise_iou(a: &Tensor, b: &Tensor, eps: f64) -> Tensor {
    let a = a.unsqueeze(1); // [n, 1, 4]
    let b = b.unsqueeze(0); // [1, m, 4]
    let lt = a.narrow(2, 0, 2).maximum(&b.narrow(2, 0, 2));
    let rb = a.narrow(2, 2, 2).minimum(&b.narrow(2, 2, 2));
    let wh = (rb - lt).clamp_min(0.0);
    let overlap = wh.select(2, 0) * wh.select(2, 1);
    let area = |t: &Tensor| (t.select(2, 2) - t.select(2, 0)) * (t.select(2, 3) - t.select(2, 1));
    let union = (area(&a) + area(&b) - &overlap).clamp_min(eps);
    overlap / union
}

/// Quality Focal Loss per anchor (summed over classes), β = 2 by default.
///
/// Negatives: `BCE(p, 0)·p^β`; the positive class of a positive anchor: `BCE(p, q)·|q − p|^β`
/// with `q` the IoU of its box with its truth. Computed from logits (the reference takes
/// sigmoid probabilities; the values are the same, the logits form is stable).
///
/// An anchor matched to a box of unknown type (label `C + 1`, a partial label) is taught
/// through its most confident class only, `BCE(p_max, q)·|q − p_max|^β`: "a fracture here",
/// without choosing a type for it or teaching any type to be absent there.
///
/// # Shapes
/// `logits`: `[N, C]`; `labels`: `[N]` (class index, C for background, C + 1 for a positive
/// of unknown type); `scores`: `[N]`.
pub fn quality_focal_loss(logits: &Tensor, labels: &Tensor, scores: &Tensor, beta: f64) -> Tensor {
    let classes = logits.size()[1];
    let p = logits.sigmoid();
    let zeros = logits.zeros_like();
    let negative = logits.binary_cross_entropy_with_logits::<Tensor>(&zeros, None, None, tch::Reduction::None)
        * p.pow_tensor_scalar(beta);
    let positive_mask = labels.lt(classes); // [N]
                                            // One-hot of positive labels (background and untyped rows all zero).
    let one_hot = labels.clamp_max(classes - 1).one_hot(classes).to_kind(Kind::Float)
        * positive_mask.unsqueeze(1).to_kind(Kind::Float);
    // Untyped positives: their most confident class stands for "a fracture".
    let untyped_rows = labels.eq(classes + 1).unsqueeze(1).to_kind(Kind::Float); // [N, 1]
    let strongest = logits.detach().argmax(1, false).one_hot(classes).to_kind(Kind::Float) * &untyped_rows;
    let taught = &one_hot + &strongest;
    let target = &taught * scores.unsqueeze(1);
    let positive = logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, tch::Reduction::None)
        * (&target - &p).abs().pow_tensor_scalar(beta);
    // Background: every class of a background anchor, the other classes of a typed one; an
    // untyped anchor's other classes are left untaught.
    let background: Tensor = (1.0 - &one_hot) * (1.0 - &untyped_rows);
    let loss: Tensor = &negative * background + positive * &taught;
    loss.sum_dim_intlist(1, false, Kind::Float)
}

/// Distribution Focal Loss: cross-entropy to the two bins around the continuous target,
/// weighted by closeness.
///
/// # Shapes
/// `logits`: `[n, bins]`, `target`: `[n]` (in bins, `0 ≤ target < bins − 1`) → `[n]`.
pub fn distribution_focal_loss(logits: &Tensor, target: &Tensor) -> Tensor {
    let left = target.to_kind(Kind::Int64);
    let right = &left + 1;
    let weight_left = right.to_kind(Kind::Float) - target;
    let weight_right = target - left.to_kind(Kind::Float);
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = |index: &Tensor| -log_p.gather(1, &index.unsqueeze(1), false).squeeze_dim(1);
    nll(&left) * weight_left + nll(&right) * weight_right
}

/// AlignOTA settings (the reference's defaults).
#[derive(Debug, Clone, Copy)]
pub struct AlignOta {
    pub center_radius: f64,
    pub candidate_topk: i64,
    pub iou_weight: f64,
    pub cls_weight: f64,
}

impl Default for AlignOta {
    fn default() -> Self {
        AlignOta {
            center_radius: 2.5,
            candidate_topk: 10,
            iou_weight: 3.0,
            cls_weight: 1.0,
        }
    }
}

/// Which truth box each anchor is assigned to (−1: background) and the IoU of the anchor's
/// predicted box with it.
#[derive(Debug)]
pub struct Assignment {
    pub gt_index: Tensor,
    pub iou: Tensor,
}

impl AlignOta {
    /// Assigns anchors of one image.
    ///
    /// Candidates lie inside a truth box or within `center_radius` strides of its centre;
    /// cost = BCE(p, IoU·onehot)·|IoU·onehot − p|² summed over classes + 3·(−log IoU), plus a
    /// large penalty unless inside both box and centre region; each truth takes its `k`
    /// cheapest candidates with `k` = the sum of its top-10 IoUs (at least 1); an anchor
    /// claimed twice goes to its cheapest truth.
    ///
    /// # Shapes
    /// `scores` (probabilities): `[N, C]`; `priors`: `[N, 4]`; `boxes`: `[N, 4]`;
    /// `gt_boxes`: `[G, 4]`; `gt_labels`: `[G]` (i64).
    pub fn assign(
        &self,
        scores: &Tensor,
        priors: &Tensor,
        boxes: &Tensor,
        gt_boxes: &Tensor,
        gt_labels: &Tensor,
    ) -> Assignment {
        const INF: f64 = 1e8;
        const EPS: f64 = 1e-7;
        let n = boxes.size()[0];
        let g = gt_boxes.size()[0];
        let device = boxes.device();
        let gt_index = Tensor::full([n], -1, (Kind::Int64, device));
        let iou_out = Tensor::zeros([n], (Kind::Float, device));
        if g == 0 || n == 0 {
            return Assignment { gt_index, iou: iou_out };
        }
        let x = priors.select(1, 0).unsqueeze(1); // [N, 1]
        let y = priors.select(1, 1).unsqueeze(1);
        let stride = priors.select(1, 2).unsqueeze(1);
        let (gx1, gy1, gx2, gy2) = (
            gt_boxes.select(1, 0),
            gt_boxes.select(1, 1),
            gt_boxes.select(1, 2),
            gt_boxes.select(1, 3),
        ); // [G]
        let in_box = (&x - &gx1)
            .gt(0.0)
            .logical_and(&(&y - &gy1).gt(0.0))
            .logical_and(&(&gx2 - &x).gt(0.0))
            .logical_and(&(&gy2 - &y).gt(0.0)); // [N, G]
        let (cx, cy) = ((&gx1 + &gx2) / 2.0, (&gy1 + &gy2) / 2.0);
        let r = &stride * self.center_radius;
        let in_center = (&x - (&cx - &r))
            .gt(0.0)
            .logical_and(&(&y - (&cy - &r)).gt(0.0))
            .logical_and(&((&cx + &r) - &x).gt(0.0))
            .logical_and(&((&cy + &r) - &y).gt(0.0));
        let valid = in_box.any_dim(1, false).logical_or(&in_center.any_dim(1, false)); // [N]
        let valid_index = valid.nonzero().squeeze_dim(1);
        let v = valid_index.size()[0];
        if v == 0 {
            return Assignment { gt_index, iou: iou_out };
        }
        let in_both = in_box
            .index_select(0, &valid_index)
            .logical_and(&in_center.index_select(0, &valid_index)); // [V, G]
        let valid_boxes = boxes.index_select(0, &valid_index);
        let valid_scores = scores.index_select(0, &valid_index); // [V, C]
        let ious = pairwise_iou(&valid_boxes, gt_boxes, 1e-6); // [V, G]
        let iou_cost = -(&ious + EPS).log();
        let classes = scores.size()[1];
        let untyped = gt_labels.lt(0); // [G]
        let one_hot = gt_labels
            .clamp_min(0)
            .one_hot(classes)
            .to_kind(Kind::Float)
            .unsqueeze(0); // [1, G, C]
                           // A diverging network gives NaN scores and boxes; the matching then stays defined (BCE
                           // refuses inputs outside [0, 1]) and the loss itself turns NaN, which the trainer stops on.
        let soft = &one_hot * ious.nan_to_num(0.0, 1.0, 0.0).unsqueeze(2); // [V, G, C]
        let p = valid_scores
            .nan_to_num(0.0, 1.0, 0.0)
            .clamp(0.0, 1.0)
            .unsqueeze(1)
            .expand([v, g, classes], false);
        let bce = p.binary_cross_entropy::<Tensor>(&soft, None, tch::Reduction::None);
        let cls_cost = (bce * (&soft - &p).abs().pow_tensor_scalar(2.0)).sum_dim_intlist(2, false, Kind::Float); // [V, G]
        let cls_cost = if untyped.any().int64_value(&[]) != 0 {
            // A truth of unknown type costs what a truth of the anchor's most confident class
            // would: the same sum over classes, with that class as the one-hot.
            let strongest = valid_scores
                .argmax(1, false)
                .one_hot(classes)
                .to_kind(Kind::Float)
                .unsqueeze(1); // [V, 1, C]
            let soft = &strongest * ious.nan_to_num(0.0, 1.0, 0.0).unsqueeze(2); // [V, G, C]
            let bce = p.binary_cross_entropy::<Tensor>(&soft, None, tch::Reduction::None);
            let untyped_cost = (bce * (&soft - &p).abs().pow_tensor_scalar(2.0)).sum_dim_intlist(2, false, Kind::Float);
            untyped_cost.where_self(&untyped.unsqueeze(0), &cls_cost)
        } else {
            cls_cost
        };
        let cost =
            cls_cost * self.cls_weight + iou_cost * self.iou_weight + in_both.logical_not().to_kind(Kind::Float) * INF;

        // Dynamic k per truth.
        let topk = self.candidate_topk.min(v);
        let (top_ious, _) = ious.topk(topk, 0, true, true);
        let ks: Vec<i64> = Vec::<f32>::try_from(
            top_ious
                .sum_dim_intlist(0, false, Kind::Float)
                .to_device(tch::Device::Cpu),
        )
        .expect("k values")
        .iter()
        .map(|s| (*s as i64).max(1))
        .collect();
        let mut matching = Tensor::zeros([v, g], (Kind::Float, device));
        for (j, &k) in ks.iter().enumerate() {
            let (_, chosen) = cost.select(1, j as i64).topk(k.min(v), 0, false, true);
            let _ = matching.select(1, j as i64).index_fill_(0, &chosen, 1.0);
        }
        // Anchors claimed by several truths keep the cheapest.
        let multiple = matching.sum_dim_intlist(1, false, Kind::Float).gt(1.0);
        if multiple.any().int64_value(&[]) != 0 {
            let rows = multiple.nonzero().squeeze_dim(1);
            let cheapest = cost.index_select(0, &rows).argmin(1, false);
            let cleared =
                Tensor::zeros([rows.size()[0], g], (Kind::Float, device)).scatter_value(1, &cheapest.unsqueeze(1), 1.0);
            let _ = matching.index_copy_(0, &rows, &cleared);
        }
        let foreground = matching.sum_dim_intlist(1, false, Kind::Float).gt(0.0); // [V]
        let fg_rows = foreground.nonzero().squeeze_dim(1);
        let matched_gt = matching.index_select(0, &fg_rows).argmax(1, false);
        let matched_iou = (&matching * &ious)
            .sum_dim_intlist(1, false, Kind::Float)
            .index_select(0, &fg_rows);
        let anchors = valid_index.index_select(0, &fg_rows);
        let _ = gt_index.shallow_clone().index_copy_(0, &anchors, &matched_gt);
        let _ = iou_out.shallow_clone().index_copy_(0, &anchors, &matched_iou);
        Assignment { gt_index, iou: iou_out }
    }
}

/// The label of a truth box whose fracture type is unknown (a partial label: one of the
/// classes, not which). Its anchors are matched and taught "a fracture here" through the
/// most confident class only; no class is taught to be absent there ([`quality_focal_loss`]).
pub const UNTYPED: i64 = -1;

/// Truth of one image: boxes `[G, 4]` in input pixels and labels `[G]` (i64: a class index,
/// or [`UNTYPED`]).
#[derive(Debug)]
pub struct Targets {
    pub boxes: Tensor,
    pub labels: Tensor,
}

/// The loss parts of a batch.
#[derive(Debug)]
pub struct LossParts {
    pub total: Tensor,
    pub qfl: Tensor,
    pub giou: Tensor,
    pub dfl: Tensor,
    /// Mean 1 − GIoU of the assigned anchors, without the score weighting (for monitoring).
    pub unweighted_giou: Tensor,
    /// Mean DFL of the assigned anchors' sides, without the score weighting.
    pub unweighted_dfl: Tensor,
    pub positives: i64,
}

impl LossParts {
    /// The loss with every assigned anchor weighted 1 instead of by its (detached) class
    /// score: `w_qfl·QFL + w_giou·mean(1 − GIoU) + w_dfl·mean(DFL)`. Training minimises
    /// [`LossParts::total`]; this is the quantity to watch for convergence. The total starts
    /// near zero with the reference's head initialisation (scores of 0.01 weight the box terms
    /// and untrained boxes give QFL targets near zero), rises as the scores do, then falls.
    pub fn unweighted_total(&self, weights: LossWeights) -> f64 {
        self.qfl.double_value(&[]) * weights.qfl
            + self.unweighted_giou.double_value(&[]) * weights.giou
            + self.unweighted_dfl.double_value(&[]) * weights.dfl
    }
}

/// Loss weights (the reference's: QFL 1.0, GIoU 2.0, DFL 0.25).
#[derive(Debug, Clone, Copy)]
pub struct LossWeights {
    pub qfl: f64,
    pub giou: f64,
    pub dfl: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            qfl: 1.0,
            giou: 2.0,
            dfl: 0.25,
        }
    }
}

/// The ZeroHead loss: assignment per image, QFL over all anchors normalised by the number of
/// positives; GIoU and DFL over positives weighted by their top class score, normalised by
/// the sum of those weights.
pub fn detection_loss(
    output: &HeadOutput,
    targets: &[Targets],
    strides: &[i64],
    assigner: &AlignOta,
    weights: LossWeights,
) -> LossParts {
    let device = output.class_logits.device();
    let priors = priors(&output.level_sizes, strides, device); // [N, 4]
    let boxes = decode(&output.box_logits, &priors); // [B, N, 4]
    let (batch, n, classes) = (
        output.class_logits.size()[0],
        output.class_logits.size()[1],
        output.class_logits.size()[2],
    );
    let bins = output.box_logits.size()[3];
    let scores = output.class_logits.sigmoid().detach();
    let mut labels = Vec::new();
    let mut quality = Vec::new();
    let mut box_targets = Vec::new();
    let mut positives = Vec::new();
    for (b, target) in targets.iter().enumerate().take(batch as usize) {
        let b = b as i64;
        let a = assigner.assign(
            &scores.get(b),
            &priors,
            &boxes.get(b).detach(),
            &target.boxes,
            &target.labels,
        );
        let positive = a.gt_index.ge(0);
        let gt = a.gt_index.clamp_min(0);
        let label = if target.labels.size()[0] > 0 {
            let matched = target.labels.index_select(0, &gt);
            // An untyped truth's anchors carry C + 1 into the QFL.
            matched
                .where_self(&matched.ge(0), &Tensor::full([n], classes + 1, (Kind::Int64, device)))
                .where_self(&positive, &Tensor::full([n], classes, (Kind::Int64, device)))
        } else {
            Tensor::full([n], classes, (Kind::Int64, device))
        };
        labels.push(label);
        quality.push(a.iou.where_self(&positive, &Tensor::zeros([n], (Kind::Float, device))));
        box_targets.push(if target.boxes.size()[0] > 0 {
            target.boxes.index_select(0, &gt)
        } else {
            Tensor::zeros([n, 4], (Kind::Float, device))
        });
        positives.push(positive);
    }
    let labels = Tensor::cat(&labels, 0); // [B·N]
    let quality = Tensor::cat(&quality, 0);
    let box_targets = Tensor::cat(&box_targets, 0); // [B·N, 4]
    let positive = Tensor::cat(&positives, 0);
    let num_positive = positive.sum(Kind::Int64).int64_value(&[]);
    let logits = output.class_logits.reshape([-1, classes]);
    let qfl = quality_focal_loss(&logits, &labels, &quality, 2.0).sum(Kind::Float) / (num_positive.max(1) as f64);
    let (giou, dfl, unweighted_giou, unweighted_dfl) = if num_positive > 0 {
        let index = positive.nonzero().squeeze_dim(1);
        let weight = scores.reshape([-1, classes]).index_select(0, &index).amax(1, false); // [P]
        let norm = weight.sum(Kind::Float).double_value(&[]).max(1.0);
        let predicted = boxes.reshape([-1, 4]).index_select(0, &index);
        let truth = box_targets.index_select(0, &index);
        let giou_loss: Tensor = 1.0 - aligned_iou(&predicted, &truth, true, 1e-7);
        let unweighted = giou_loss.mean(Kind::Float).detach();
        let giou = (giou_loss * &weight).sum(Kind::Float) / norm;
        // DFL targets: distances from the prior to the truth's sides, in strides.
        let pri = priors.repeat([batch, 1]).index_select(0, &index);
        let (px, py, ps) = (pri.select(1, 0), pri.select(1, 1), pri.select(1, 2));
        let max = (bins - 1) as f64 - 0.01;
        let distances = Tensor::stack(
            &[
                (&px - truth.select(1, 0)) / &ps,
                (&py - truth.select(1, 1)) / &ps,
                (truth.select(1, 2) - &px) / &ps,
                (truth.select(1, 3) - &py) / &ps,
            ],
            1,
        )
        .clamp(0.0, max);
        let box_logits = output
            .box_logits
            .reshape([-1, 4, bins])
            .index_select(0, &index)
            .reshape([-1, bins]);
        let side_losses = distribution_focal_loss(&box_logits, &distances.reshape([-1]));
        let unweighted_dfl = side_losses.mean(Kind::Float).detach();
        let dfl =
            (side_losses * weight.unsqueeze(1).expand([-1, 4], false).reshape([-1])).sum(Kind::Float) / (4.0 * norm);
        (giou, dfl, unweighted, unweighted_dfl)
    } else {
        let zero = output.box_logits.sum(Kind::Float) * 0.0;
        (zero.shallow_clone(), zero.shallow_clone(), zero.detach(), zero.detach())
    };
    let total = &qfl * weights.qfl + &giou * weights.giou + &dfl * weights.dfl;
    LossParts {
        total,
        qfl,
        giou,
        dfl,
        unweighted_giou,
        unweighted_dfl,
        positives: num_positive,
    }
}
