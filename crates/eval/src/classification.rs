//! Image-level classification metrics, as the paper reports them (Tables II and III).
//!
//! Definitions (stated in every report):
//! * For each fracture class c, one-vs-rest over images: TP = truth c and answer c;
//!   FN = truth c, answer not c; FP = truth not c, answer c; TN = neither.
//!   Accuracy (TP+TN)/N, sensitivity TP/(TP+FN), specificity TN/(TN+FP), each with a Wilson
//!   95 % interval. One-vs-rest accuracy is dominated by true negatives: the paper's
//!   "accuracy 1.0 beside sensitivity 0.79" is this effect, not an error.
//! * Micro average: the counts of the four classes pooled, then the ratios. Macro average:
//!   the mean of the four per-class ratios.
//! * IoU and Dice: for every true box of class c in an image answered c, the predicted box
//!   of class c with the highest IoU; per-box means. For one pair of boxes
//!   Dice = 2·IoU/(1+IoU) exactly; the mean Dice differs from 2·mean IoU/(1+mean IoU) (the
//!   mean of a concave function), which is why the paper's Dice columns do not all follow
//!   from its IoU columns. Both are reported.
//! * Confusion matrix: truth × answer over the five labels, "no visible fracture" included.
//! * An image whose truth is a fracture of unknown type ([`Label::UntypedFracture`]) is no
//!   class's positive or negative: the per-type tables and the confusion matrix leave it out
//!   (`images` counts it); the any-fracture measures ([`any_fracture`]) count it.

use crate::intervals::{wilson, Estimate, Z95};
use hipfrac_core::{dice, iou, BBox, Detection, FractureClass, Label};
use serde::{Deserialize, Serialize};

/// One image: the truth and the answer (a model's verdict or a reader's read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageOutcome {
    pub image: String,
    pub patient: String,
    pub truth: Label,
    pub answer: Label,
    #[serde(default)]
    pub truth_boxes: Vec<(FractureClass, BBox)>,
    #[serde(default)]
    pub predicted_boxes: Vec<Detection>,
}

/// One-vs-rest counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.tn += other.tn;
        self.fn_ += other.fn_;
    }
    pub fn accuracy(&self) -> Estimate {
        wilson(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn_, Z95)
    }
    pub fn sensitivity(&self) -> Estimate {
        wilson(self.tp, self.tp + self.fn_, Z95)
    }
    pub fn specificity(&self) -> Estimate {
        wilson(self.tn, self.tn + self.fp, Z95)
    }
}

/// Metrics of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: FractureClass,
    pub counts: Counts,
    pub accuracy: Estimate,
    pub sensitivity: Estimate,
    pub specificity: Estimate,
    /// Matched box pairs behind the IoU and Dice means.
    pub matched_boxes: usize,
    pub mean_iou: Option<f64>,
    pub mean_dice: Option<f64>,
    /// 2·mean IoU/(1 + mean IoU), for comparison with `mean_dice`.
    pub dice_from_mean_iou: Option<f64>,
}

/// Averages over the four fracture classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub accuracy: f64,
    pub sensitivity: f64,
    pub specificity: f64,
}

/// Everything of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub images: usize,
    pub per_class: Vec<ClassMetrics>,
    pub micro: Average,
    pub macro_average: Average,
    /// `confusion[truth][answer]`, indices in `Label::ALL` order (DF, VF, SF, UF, none).
    pub confusion: [[u64; 5]; 5],
}

/// Counts of one class.
pub fn counts(outcomes: &[ImageOutcome], class: FractureClass) -> Counts {
    let c = Label::Fracture(class);
    let mut counts = Counts::default();
    for o in outcomes.iter().filter(|o| o.truth != Label::UntypedFracture) {
        match (o.truth == c, o.answer == c) {
            (true, true) => counts.tp += 1,
            (true, false) => counts.fn_ += 1,
            (false, true) => counts.fp += 1,
            (false, false) => counts.tn += 1,
        }
    }
    counts
}

/// IoUs of matched boxes of `class` in images answered correctly.
pub fn matched_ious(outcomes: &[ImageOutcome], class: FractureClass) -> Vec<f64> {
    let c = Label::Fracture(class);
    let mut ious = Vec::new();
    for o in outcomes.iter().filter(|o| o.truth == c && o.answer == c) {
        for (_, truth) in o.truth_boxes.iter().filter(|(k, _)| *k == class) {
            let best = o
                .predicted_boxes
                .iter()
                .filter(|d| d.class == class)
                .map(|d| iou(truth, &d.bbox) as f64)
                .fold(None, |best: Option<f64>, v| Some(best.map_or(v, |b| b.max(v))));
            if let Some(best) = best {
                ious.push(best);
            }
        }
    }
    ious
}

/// The paper's table for `outcomes`.
pub fn summarize(outcomes: &[ImageOutcome]) -> Summary {
    let mut per_class = Vec::new();
    let mut pooled = Counts::default();
    for class in FractureClass::ALL {
        let c = counts(outcomes, class);
        pooled.add(&c);
        let ious = matched_ious(outcomes, class);
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let dices: Vec<f64> = ious.iter().map(|i| 2.0 * i / (1.0 + i)).collect();
        let mean_iou = mean(&ious);
        per_class.push(ClassMetrics {
            class,
            counts: c,
            accuracy: c.accuracy(),
            sensitivity: c.sensitivity(),
            specificity: c.specificity(),
            matched_boxes: ious.len(),
            mean_iou,
            mean_dice: mean(&dices),
            dice_from_mean_iou: mean_iou.map(|m| 2.0 * m / (1.0 + m)),
        });
    }
    let nan_mean = |values: Vec<f64>| {
        let defined: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if defined.is_empty() {
            f64::NAN
        } else {
            defined.iter().sum::<f64>() / defined.len() as f64
        }
    };
    let macro_average = Average {
        accuracy: nan_mean(per_class.iter().map(|m| m.accuracy.value).collect()),
        sensitivity: nan_mean(per_class.iter().map(|m| m.sensitivity.value).collect()),
        specificity: nan_mean(per_class.iter().map(|m| m.specificity.value).collect()),
    };
    let micro = Average {
        accuracy: pooled.accuracy().value,
        sensitivity: pooled.sensitivity().value,
        specificity: pooled.specificity().value,
    };
    let mut confusion = [[0u64; 5]; 5];
    for o in outcomes
        .iter()
        .filter(|o| Label::ALL.contains(&o.truth) && Label::ALL.contains(&o.answer))
    {
        confusion[o.truth.index()][o.answer.index()] += 1;
    }
    Summary {
        images: outcomes.len(),
        per_class,
        micro,
        macro_average,
        confusion,
    }
}

/// Box Dice of two boxes, re-exported for reports.
pub fn box_dice(a: &BBox, b: &BBox) -> f64 {
    dice(a, b) as f64
}
