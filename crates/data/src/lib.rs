//! hipfrac-data: annotations and datasets.
//!
//! * [`voc`]: LabelImg Pascal VOC XML, read and written in LabelImg's own layout.
//! * [`yolo`]: YOLO txt (one file per image) with `classes.txt`.
//! * [`coco`]: COCO detection json.
//! * [`LabelMap`]: other label names → the five labels.
//! * [`check`]: `hipfrac dataset check` — a dataset folder checked and counted (Table I).
//! * [`split`]: patient-level, class-stratified train/validation/test split with an optional
//!   external-site hold-out.
//! * [`manifest`]: the CSV manifest the split writes and later steps read.
//!
//! All formats meet in [`Annotation`], whose boxes follow `hipfrac_core::BBox`'s convention.

pub mod check;
pub mod coco;
mod error;
pub mod images;
mod label_map;
pub mod manifest;
pub mod split;
pub mod voc;
pub mod yolo;

pub use error::{Error, Result};
pub use images::{image_info, is_image_file, ImageInfo};
pub use label_map::LabelMap;

use hipfrac_core::{BBox, Label};
use serde::{Deserialize, Serialize};

/// One labelled box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// What it is.
    pub label: Label,
    /// Where, `[x_min, y_min, x_max, y_max)` in image pixels.
    pub bbox: BBox,
    /// VOC `truncated`.
    #[serde(default)]
    pub truncated: bool,
    /// VOC `difficult` (e.g. an uncertain type).
    #[serde(default)]
    pub difficult: bool,
}

/// The annotation of one image, whatever format it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Image file name (a plain name, no folders).
    pub filename: String,
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Channels (1 for radiographs).
    pub depth: u32,
    /// The boxes; none means "no visible fracture".
    pub objects: Vec<Object>,
    /// Proximal femur boxes (femoral head to lesser trochanter), one per hip in view, for the
    /// two-stage detector's localiser: VOC objects named [`HIP`]. Optional; datasets without
    /// them train the single-stage detector only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hips: Vec<BBox>,
}

/// The VOC object name of a proximal femur box (not a label: it says where a hip is, not
/// what it shows).
pub const HIP: &str = "hip";

impl Annotation {
    /// The image-level label: the label of the first typed fracture box, else "fracture"
    /// (type unknown) when the image has only untyped boxes, else "no visible fracture".
    pub fn image_label(&self) -> Label {
        let labels = || self.objects.iter().map(|o| o.label);
        labels()
            .find(|l| l.fracture().is_some())
            .or_else(|| labels().find(|l| l.is_fracture()))
            .unwrap_or(Label::NoFracture)
    }
}

/// Checks annotations read from `source` before they are converted: every box is a
/// fracture type (an image without a fracture has no boxes; a box labelled "no visible
/// fracture" is refused), finite, not empty and inside its image; and no two images would
/// write the same output file (`x.png` and `x.dcm` both become `x.txt` / `x.xml`).
pub fn validate(source: &std::path::Path, annotations: &[Annotation]) -> Result<()> {
    let mut stems: std::collections::HashMap<String, &str> = Default::default();
    for a in annotations {
        let stem = std::path::Path::new(&a.filename)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&a.filename)
            .to_lowercase();
        if let Some(other) = stems.insert(stem, &a.filename) {
            return Err(Error::invalid(
                source,
                format!(
                    "{} and {other} would be written to the same file (same name, different extension)",
                    a.filename
                ),
            ));
        }
        for (k, o) in a.objects.iter().enumerate() {
            let what = |why: &str| {
                Error::invalid(
                    source,
                    format!("{}: box {} ({}): {why}", a.filename, k + 1, o.label.code()),
                )
            };
            if !o.label.is_fracture() {
                return Err(what(
                    "a box cannot be \"no visible fracture\": an image without a fracture has no boxes",
                ));
            }
            if o.bbox.is_degenerate() {
                return Err(what("empty or not finite"));
            }
            if !o.bbox.is_inside(a.width, a.height) {
                return Err(what(&format!("lies outside the {}×{} image", a.width, a.height)));
            }
        }
        for (k, hip) in a.hips.iter().enumerate() {
            if hip.is_degenerate() || !hip.is_inside(a.width, a.height) {
                return Err(Error::invalid(
                    source,
                    format!(
                        "{}: hip box {}: empty, not finite or outside the {}×{} image",
                        a.filename,
                        k + 1,
                        a.width,
                        a.height
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Rejects names that are not a plain file name (folders, `..`, absolute paths, NUL), so an
/// annotation (the file `path`) can never point outside its dataset folder.
pub(crate) fn check_plain_filename(path: &std::path::Path, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('~')
        || (name.len() >= 2 && name.as_bytes()[1] == b':');
    if bad {
        Err(Error::Filename {
            path: path.to_path_buf(),
            name: name.to_string(),
        })
    } else {
        Ok(())
    }
}

/// A number as VOC/YOLO text: integers without a decimal point, other values with up to
/// nine decimals, so integer boxes survive a trip through normalised YOLO coordinates.
pub(crate) fn format_number(value: f64) -> String {
    let rounded = (value * 1e9).round() / 1e9;
    if (rounded - rounded.round()).abs() < 1e-6 {
        format!("{}", rounded.round() as i64)
    } else {
        format!("{rounded}")
    }
}
