//! hipfrac-core: the vocabulary every other hipfrac crate speaks.
//!
//! * [`Label`] and [`FractureClass`]: the paper's five labels and the four detectable classes.
//! * [`BBox`]: the ONE box convention of the project (pixel coordinates, half-open, f32).
//! * [`iou`], [`dice`], [`nms_per_class`]: overlap measures and per-class non-maximum suppression.
//! * [`Radiograph`]: stored pixel values plus the DICOM metadata that matters for reading.
//! * [`verdict`]: the image-level verdict rule and its operating points; [`prediction`]: what
//!   the detector concluded about an image ([`Prediction`]), beside the truth ([`Case`]).
//! * [`assess`]: which radiographs get no verdict at all (not an AP hip or pelvis), and why.
//! * [`card`]: the model card, what trained a model.
//! * [`DeviceSpec`]: the device a user asked for (`auto`, `cpu`, `cuda[:N]`).
//!
//! No I/O and no libtorch live here, so this crate builds and tests in seconds.

pub mod assess;
mod boxes;
pub mod card;
pub mod csv_safe;
pub mod cuda;
mod device;
mod label;
pub mod outcome;
pub mod prediction;
mod radiograph;
pub mod verdict;

pub use assess::{AbstentionSource, Acceptance, NotAssessable};
pub use boxes::{dice, iou, nms_per_class, BBox, Detection};
pub use device::{DeviceSpec, ParseDeviceError, Precision, Preset, Stage};
pub use label::{FractureClass, Label, ParseLabelError};
pub use outcome::Outcome;
pub use prediction::{
    escape_html, side, side_by_position, Answer, Case, HipCall, Prediction, Side, SideCall, SideSource, NOTICE,
    NOT_ASSESSABLE,
};
pub use radiograph::{
    Laterality, LutData, ModalityLut, Photometric, Pixels, Radiograph, RadiographMeta, VoiFunction, Window,
};
pub use verdict::{OperatingPoint, OperatingPoints, Verdict};

/// An error and its causes on one line (`outer: cause: root cause`), for logs and CSV
/// columns. A cause whose text the outer message already ends with is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}
