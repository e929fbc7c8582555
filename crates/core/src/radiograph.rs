//! A radiograph in memory: stored pixel values plus the metadata that matters for reading it.
//!
//! The pixel values are the *stored values* of DICOM (before the Modality LUT), so nothing is
//! lost on the way in; the display pipeline (Modality LUT → VOI LUT → MONOCHROME1 inversion)
//! lives in `hipfrac-dicom` and works from this type.

use serde::{Deserialize, Serialize};

/// Stored pixel values, row-major, one sample per pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Pixel Representation 0.
    Unsigned(Vec<u16>),
    /// Pixel Representation 1 (two's complement), already sign-extended from Bits Stored.
    Signed(Vec<i16>),
}

impl Pixels {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        match self {
            Pixels::Unsigned(v) => v.len(),
            Pixels::Signed(v) => v.len(),
        }
    }

    /// True when there are no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for signed stored values.
    pub fn is_signed(&self) -> bool {
        matches!(self, Pixels::Signed(_))
    }

    /// The stored value at `index` widened to i32.
    pub fn get(&self, index: usize) -> i32 {
        match self {
            Pixels::Unsigned(v) => v[index] as i32,
            Pixels::Signed(v) => v[index] as i32,
        }
    }

    /// Smallest and largest stored value, or `None` when empty.
    pub fn min_max(&self) -> Option<(i32, i32)> {
        fn fold<T: Copy + Ord + Into<i32>>(v: &[T]) -> Option<(i32, i32)> {
            let min = v.iter().copied().min()?;
            let max = v.iter().copied().max()?;
            Some((min.into(), max.into()))
        }
        match self {
            Pixels::Unsigned(v) => fold(v),
            Pixels::Signed(v) => fold(v),
        }
    }

    /// The values as little-endian 16-bit words, the form the conformance checksums use.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Pixels::Unsigned(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Pixels::Signed(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// How grey values map to brightness (Photometric Interpretation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Photometric {
    /// The lowest value is displayed white (CR/DX often use it).
    #[serde(rename = "MONOCHROME1")]
    Monochrome1,
    /// The lowest value is displayed black.
    #[serde(rename = "MONOCHROME2")]
    Monochrome2,
}

/// A VOI window, as in Window Center / Window Width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Window Center, in modality units.
    pub center: f64,
    /// Window Width, in modality units (≥ 1 for LINEAR).
    pub width: f64,
    /// Window Center & Width Explanation, when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub explanation: Option<String>,
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum VoiFunction {
    /// The default, PS3.3 C.11.2.1.2.1.
    #[default]
    #[serde(rename = "LINEAR")]
    Linear,
    /// PS3.3 C.11.2.1.3.2.
    #[serde(rename = "LINEAR_EXACT")]
    LinearExact,
    /// PS3.3 C.11.2.1.3.1.
    #[serde(rename = "SIGMOID")]
    Sigmoid,
}

/// A lookup table as in a Modality or VOI LUT Sequence item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LutData {
    /// The first input value mapped (LUT Descriptor, 2nd value), in the input's units.
    pub first_mapped: i32,
    /// Bits per output entry (LUT Descriptor, 3rd value).
    pub bits: u16,
    /// The entries.
    #[serde(skip)]
    pub data: Vec<u16>,
    /// LUT Explanation, when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub explanation: Option<String>,
}

impl LutData {
    /// The output for input `x`: inputs below the first mapped value take the first entry,
    /// inputs past the last take the last (PS3.3 C.11.1.1).
    pub fn lookup(&self, x: i64) -> u16 {
        if self.data.is_empty() {
            return 0;
        }
        let last = self.data.len() as i64 - 1;
        let index = (x - self.first_mapped as i64).clamp(0, last);
        self.data[index as usize]
    }
}

/// Modality LUT: stored values → modality values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModalityLut {
    /// Rescale Slope / Intercept (identity when absent: slope 1, intercept 0).
    #[serde(rename = "rescale")]
    Rescale {
        /// Rescale Slope.
        slope: f64,
        /// Rescale Intercept.
        intercept: f64,
    },
    /// Modality LUT Sequence.
    #[serde(rename = "table")]
    Table(LutData),
}

impl Default for ModalityLut {
    fn default() -> Self {
        ModalityLut::Rescale {
            slope: 1.0,
            intercept: 0.0,
        }
    }
}

impl ModalityLut {
    /// The modality value of stored value `x`.
    pub fn apply(&self, x: i32) -> f64 {
        match self {
            ModalityLut::Rescale { slope, intercept } => x as f64 * slope + intercept,
            ModalityLut::Table(lut) => lut.lookup(x as i64) as f64,
        }
    }
}

/// Which side of the patient the image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Laterality {
    /// Right (DICOM `R`).
    #[serde(rename = "R")]
    Right,
    /// Left (DICOM `L`).
    #[serde(rename = "L")]
    Left,
    /// Both sides (DICOM `B`), e.g. an AP pelvis.
    #[serde(rename = "B")]
    Both,
    /// Unpaired body part (DICOM `U`).
    #[serde(rename = "U")]
    Unpaired,
}

impl Laterality {
    /// Parses DICOM's one-letter code.
    pub fn from_dicom(code: &str) -> Option<Self> {
        match code.trim() {
            "R" => Some(Laterality::Right),
            "L" => Some(Laterality::Left),
            "B" => Some(Laterality::Both),
            "U" => Some(Laterality::Unpaired),
            _ => None,
        }
    }
}

/// The metadata of a radiograph that reading, training and reporting need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadiographMeta {
    /// Image height in pixels.
    pub rows: u32,
    /// Image width in pixels.
    pub columns: u32,
    /// Bits Stored (significant bits per stored value).
    pub bits_stored: u16,
    /// Photometric Interpretation.
    pub photometric: Photometric,
    /// Modality LUT (rescale or table).
    pub modality_lut: ModalityLut,
    /// Rescale Type (e.g. `US`, `HU`), when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rescale_type: Option<String>,
    /// VOI windows in file order; the first is the default.
    pub windows: Vec<Window>,
    /// VOI LUT Function applying to the windows.
    pub voi_function: VoiFunction,
    /// VOI LUT Sequence items, in file order.
    pub voi_luts: Vec<LutData>,
    /// Pixel spacing `[row spacing, column spacing]` in millimetres.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// The attribute the spacing came from (`PixelSpacing` or `ImagerPixelSpacing`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pixel_spacing_source: Option<String>,
    /// Modality (CR, DX, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub modality: Option<String>,
    /// SOP Class UID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sop_class_uid: Option<String>,
    /// SOP Instance UID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sop_instance_uid: Option<String>,
    /// Study Instance UID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub study_instance_uid: Option<String>,
    /// Series Instance UID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub series_instance_uid: Option<String>,
    /// Accession Number (the order the image answers).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accession_number: Option<String>,
    /// Patient ID (the key of patient-level splits).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub patient_id: Option<String>,
    /// Image Laterality, or Laterality when the former is absent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub laterality: Option<Laterality>,
    /// Body Part Examined.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body_part: Option<String>,
    /// View Position (AP, PA, LL, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub view_position: Option<String>,
    /// Institution Name (a site for external validation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub institution: Option<String>,
    /// Transfer Syntax UID of the file it came from.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transfer_syntax: Option<String>,
    /// Image Comments (0020,4000); the phantom marks its images here.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image_comments: Option<String>,
}

impl RadiographMeta {
    /// Metadata for a plain MONOCHROME2 image with no DICOM attributes (e.g. a PNG).
    pub fn plain(rows: u32, columns: u32, bits_stored: u16) -> Self {
        Self {
            rows,
            columns,
            bits_stored,
            photometric: Photometric::Monochrome2,
            modality_lut: ModalityLut::default(),
            rescale_type: None,
            windows: Vec::new(),
            voi_function: VoiFunction::Linear,
            voi_luts: Vec::new(),
            pixel_spacing_mm: None,
            pixel_spacing_source: None,
            modality: None,
            sop_class_uid: None,
            sop_instance_uid: None,
            study_instance_uid: None,
            series_instance_uid: None,
            accession_number: None,
            patient_id: None,
            laterality: None,
            body_part: None,
            view_position: None,
            institution: None,
            transfer_syntax: None,
            image_comments: None,
        }
    }

    /// True for images the hipfrac phantom simulated (its mark in Image Comments).
    pub fn is_simulated(&self) -> bool {
        self.image_comments
            .as_deref()
            .is_some_and(|c| c.contains("hipfrac phantom"))
    }
}

/// A single-frame greyscale radiograph.
#[derive(Debug, Clone, PartialEq)]
pub struct Radiograph {
    /// What the pixels mean.
    pub meta: RadiographMeta,
    /// Stored values, `meta.rows × meta.columns`, row-major.
    pub pixels: Pixels,
}

impl Radiograph {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.meta.columns
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.meta.rows
    }
}
