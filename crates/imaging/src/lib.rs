//! hipfrac-imaging: everything hipfrac does to pixels after a file is read, without libtorch.
//!
//! * [`preprocess`]: the display rendering, optional histogram equalisation and the letterbox
//!   that turn a radiograph into network input — shared by training and inference.
//! * [`canvas`] and [`font`]: a small RGB canvas with a 5×7 bitmap font, and the Okabe–Ito
//!   class palette used by contact sheets, overlays, report plots and the workstation.
//! * [`overlay`]: a radiograph with predicted (and true) boxes and the verdict drawn over it.

pub mod canvas;
pub mod font;
pub mod overlay;
pub mod preprocess;

pub use canvas::{class_colour, css_colour, Canvas};
pub use preprocess::{hip_region, letterbox, letterbox_regions, Letterbox, Preprocess, HIP_CROP_SCALE};
