//! hipfrac-core: the vocabulary every other hipfrac crate speaks.
//!
//! * [`Label`] and [`FractureClass`]: the paper's five labels and the four detectable classes.
//! * [`BBox`]: the ONE box convention of the project (pixel coordinates, half-open, f32).
//! * [`iou`], [`dice`], [`nms_per_class`]: overlap measures and per-class non-maximum suppression.
//! * [`Radiograph`]: stored pixel values plus the DICOM metadata that matters for reading.
//!
//! No I/O and no libtorch live here, so this crate builds and tests in seconds.

mod boxes;
mod label;
mod radiograph;

pub use boxes::{dice, iou, nms_per_class, BBox, Detection};
pub use label::{FractureClass, Label, ParseLabelError};
pub use radiograph::{
    Laterality, LutData, ModalityLut, Photometric, Pixels, Radiograph, RadiographMeta, VoiFunction,
    Window,
};
