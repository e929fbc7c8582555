//! hipfrac-eval: how well a detector (or a reader) did, measured the way the paper does, and
//! better. Pure Rust, no libtorch: it runs wherever results can be read.
//!
//! * [`classification`]: per class one-vs-rest over images — accuracy, sensitivity,
//!   specificity with Wilson intervals; micro and macro averages; the 5×5 confusion matrix
//!   including "no visible fracture"; IoU and Dice of the matched boxes.
//! * [`any`]: fracture or not, whatever the type — sensitivity, specificity, AUC with
//!   intervals and localisation, for data sets that label only "fractured".
//! * [`map`]: mAP50 and mAP50-95 by the COCO rules (checked against pycocotools).
//! * [`intervals`]: Wilson score intervals; percentile bootstrap by patient.
//! * [`roc`]: ROC curves and AUC from image-level scores.
//! * [`calibration`]: reliability curve and expected calibration error.

pub mod any;
pub mod calibration;
pub mod classification;
pub mod intervals;
pub mod map;
pub mod roc;
pub mod study;
