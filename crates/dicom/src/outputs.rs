//! DICOM objects a PACS stores beside the source image: the Secondary Capture of the AI's
//! overlay. It joins the source's study (patient and study modules copied), in a new series
//! whose UIDs are derived from the source and the model, so a second run makes the same
//! instance (a PACS keeps one copy); the source file is never modified.

use crate::atomic::write_atomic_with;
use crate::{Error, Result};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use sha2::Digest;
use std::path::Path;

/// Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Attributes copied from the source: Patient and General Study modules, the character set.
const COPIED: [Tag; 12] = [
    tags::SPECIFIC_CHARACTER_SET,
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::STUDY_DESCRIPTION,
];

/// A UID from `parts`: `2.25.` + 128 bits of their SHA-256 (the same parts, the same UID).
pub fn derived_uid(parts: &[&str]) -> String {
    let mut digest = sha2::Sha256::new();
    for part in parts {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let bytes = digest.finalize();
    format!(
        "2.25.{}",
        u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"))
    )
}

fn text(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

/// The source image of an output: its header (no pixels) and the UIDs an output references.
struct Source {
    object: dicom_object::FileDicomObject<InMemDicomObject>,
    series: String,
    instance: String,
    class: String,
}

impl Source {
    /// Reads `path`'s header; it needs Study, Series and SOP Instance UIDs and a SOP Class.
    fn open(path: &Path) -> Result<Source> {
        crate::prescan::check_file(path, true)?;
        let object = crate::checks::guarded(|| OpenFileOptions::new().read_until(tags::PIXEL_DATA).open_file(path))
            .map_err(|crate::checks::Panicked(panic)| Error::parse(path, crate::error::ParseFault::Panic(panic)))?
            .map_err(|e| Error::parse(path, e))?;
        let needed = |tag, name: &str| {
            crate::read::string(&object, tag).ok_or_else(|| Error::Option {
                path: path.to_path_buf(),
                reason: format!("no {name}: an output object cannot join its study"),
            })
        };
        // The study UID is copied with the study module; it must be there.
        needed(tags::STUDY_INSTANCE_UID, "Study Instance UID")?;
        let (series, instance, class) = (
            needed(tags::SERIES_INSTANCE_UID, "Series Instance UID")?,
            needed(tags::SOP_INSTANCE_UID, "SOP Instance UID")?,
            needed(tags::SOP_CLASS_UID, "SOP Class UID")?,
        );
        Ok(Source {
            object,
            series,
            instance,
            class,
        })
    }

    /// A new object with the source's Patient and General Study modules (type 2 attributes
    /// the source lacks are present and empty), its laterality and body part.
    fn study_copy(&self) -> InMemDicomObject {
        let object = &self.object;
        let mut new = InMemDicomObject::new_empty();
        for tag in COPIED {
            if let Some(element) = object.element_opt(tag).ok().flatten() {
                new.put(element.clone());
            } else if tag != tags::SPECIFIC_CHARACTER_SET && tag != tags::STUDY_DESCRIPTION {
                use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
                let vr = dicom_dictionary_std::StandardDataDictionary
                    .by_tag(tag)
                    .map_or(VR::LO, |e| e.vr().relaxed());
                new.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            }
        }
        // General Series: the hip's side (Laterality, type 2C; empty when the source does not
        // say) and the body part, from the source.
        let side = crate::read::string(object, tags::IMAGE_LATERALITY)
            .or_else(|| crate::read::string(object, tags::LATERALITY))
            .filter(|s| s == "R" || s == "L");
        new.put(text(tags::LATERALITY, VR::CS, side.as_deref().unwrap_or("")));
        if let Some(part) = crate::read::string(object, tags::BODY_PART_EXAMINED) {
            new.put(text(tags::BODY_PART_EXAMINED, VR::CS, &part));
        }
        new
    }

    fn string(&self, tag: Tag) -> Option<String> {
        crate::read::string(&self.object, tag)
    }

    /// A new object of `class` for this source: the study copy plus what every output carries
    /// (SOP, series and equipment), its UIDs derived from `kind` ("secondary capture", …), the
    /// producer and the source's UIDs, so a rerun makes the same instance.
    fn new_object(
        &self,
        kind: &str,
        class: &str,
        modality: &str,
        series_number: &str,
        capture: &Capture<'_>,
    ) -> (InMemDicomObject, NewObject) {
        let series = derived_uid(&[&format!("hipfrac {kind} series"), capture.producer, &self.series]);
        let instance = derived_uid(&[&format!("hipfrac {kind}"), capture.producer, &self.instance]);
        let now = chrono::Utc::now();
        let made = NewObject {
            class: class.to_string(),
            instance,
            date: now.format("%Y%m%d").to_string(),
            time: now.format("%H%M%S").to_string(),
        };
        let mut object = self.study_copy();
        for element in [
            text(tags::SOP_CLASS_UID, VR::UI, class),
            text(tags::SOP_INSTANCE_UID, VR::UI, &made.instance),
            text(tags::SERIES_INSTANCE_UID, VR::UI, &series),
            text(tags::MODALITY, VR::CS, modality),
            text(tags::SERIES_NUMBER, VR::IS, series_number),
            text(tags::SERIES_DESCRIPTION, VR::LO, capture.series_description),
            text(tags::MANUFACTURER, VR::LO, "hipfrac"),
            text(tags::SOFTWARE_VERSIONS, VR::LO, capture.version),
            text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        ] {
            object.put(element);
        }
        (object, made)
    }
}

/// The identity of a new output object.
struct NewObject {
    class: String,
    instance: String,
    /// When it was made (DICOM DA and TM).
    date: String,
    time: String,
}

impl NewObject {
    /// Writes `object` as a Part 10 file (explicit VR little endian) to `out`, atomically.
    fn write(&self, object: InMemDicomObject, out: &Path) -> Result<()> {
        let file = object
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(EXPLICIT_VR_LE)
                    .media_storage_sop_class_uid(&self.class)
                    .media_storage_sop_instance_uid(&self.instance),
            )
            .map_err(|source| Error::Meta {
                path: out.to_path_buf(),
                source: Box::new(source),
            })?;
        write_atomic_with(out, |writer| file.write_all(writer).map_err(std::io::Error::other))
    }
}

/// An RGB picture (row-major, 3 bytes a pixel).
pub struct Rgb<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a [u8],
}

/// What the Secondary Capture says about itself.
pub struct Capture<'a> {
    /// Names the producer of the series (e.g. the model hash): with the source UIDs it
    /// makes the new UIDs.
    pub producer: &'a str,
    pub series_description: &'a str,
    /// Software version for the equipment module.
    pub version: &'a str,
}

/// Writes the Secondary Capture of `picture` (already carrying its burned-in notice) for the
/// DICOM image `source`, into `out` (atomically). The source needs a Study Instance UID, a
/// Series Instance UID and a SOP Instance UID.
pub fn secondary_capture(source: &Path, out: &Path, picture: &Rgb<'_>, capture: &Capture<'_>) -> Result<()> {
    let src = Source::open(source)?;
    if picture.pixels.len() != picture.width as usize * picture.height as usize * 3
        || picture.width > u16::MAX as u32
        || picture.height > u16::MAX as u32
    {
        return Err(Error::Option {
            path: out.to_path_buf(),
            reason: "the picture's size does not match its pixels".into(),
        });
    }
    let (instance, source_class) = (&src.instance, &src.class);
    let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let (mut sc, made) = src.new_object("secondary capture", SECONDARY_CAPTURE_STORAGE, "OT", "9901", capture);
    let (date, time) = (&made.date, &made.time);
    let reference = InMemDicomObject::from_element_iter([
        text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, source_class),
        text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance),
    ]);
    for element in [
        text(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        text(tags::PATIENT_ORIENTATION, VR::CS, ""),
        text(tags::CONTENT_DATE, VR::DA, date),
        text(tags::CONTENT_TIME, VR::TM, time),
        text(tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, date),
        text(tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, time),
        text(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"),
        text(
            tags::DERIVATION_DESCRIPTION,
            VR::ST,
            "AI boxes and verdict drawn over the displayed source image",
        ),
        DataElement::new(
            tags::SOURCE_IMAGE_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![reference], Length::UNDEFINED),
        ),
        text(tags::BURNED_IN_ANNOTATION, VR::CS, "YES"),
        us(tags::SAMPLES_PER_PIXEL, 3),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"),
        us(tags::PLANAR_CONFIGURATION, 0),
        us(tags::ROWS, picture.height as u16),
        us(tags::COLUMNS, picture.width as u16),
        us(tags::BITS_ALLOCATED, 8),
        us(tags::BITS_STORED, 8),
        us(tags::HIGH_BIT, 7),
        us(tags::PIXEL_REPRESENTATION, 0),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(picture.pixels.to_vec().into()),
        ),
    ] {
        sc.put(element);
    }
    made.write(sc, out)
}

/// Grayscale Softcopy Presentation State Storage.
pub const PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.1";

/// One box a presentation state draws: `[x_min, y_min, x_max, y_max)` in the source's pixels
/// and its label.
pub struct Mark {
    pub bbox: [f32; 4],
    pub label: String,
}

/// Writes a Grayscale Softcopy Presentation State for the DICOM image `source` into `out`
/// (atomically): the source shown with its own window (or none), the AI's boxes as polylines
/// with their labels and `summary` (the verdict) as text on one graphic layer, so a viewer
/// shows the original with the AI's marks or without them. Same study, new series; UIDs derived
/// as for the Secondary Capture.
pub fn presentation_state(
    source: &Path,
    out: &Path,
    marks: &[Mark],
    summary: &str,
    capture: &Capture<'_>,
) -> Result<()> {
    let src = Source::open(source)?;
    let dimension = |tag| {
        src.object
            .element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u32>().ok())
            .filter(|&v| v > 0)
    };
    let (Some(rows), Some(columns)) = (dimension(tags::ROWS), dimension(tags::COLUMNS)) else {
        return Err(Error::Option {
            path: source.to_path_buf(),
            reason: "no Rows/Columns: a presentation state cannot place its marks".into(),
        });
    };
    let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let fl = |tag, values: &[f32]| DataElement::new(tag, VR::FL, PrimitiveValue::F32(values.iter().copied().collect()));
    let sq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    };
    let image_reference = || {
        sq(
            tags::REFERENCED_IMAGE_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &src.class),
                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &src.instance),
            ])],
        )
    };
    const LAYER: &str = "HIPFRAC_AI";
    let (w, h) = (columns as f32, rows as f32);
    // Text a thirtieth of the image high, above its box (below it when there is no room).
    let line = (h / 30.0).max(8.0);
    let text_object = |x0: f32, y0: f32, value: &str| {
        let width = (value.chars().count() as f32 * line * 0.6).min(w - x0).max(1.0);
        InMemDicomObject::from_element_iter([
            text(tags::BOUNDING_BOX_ANNOTATION_UNITS, VR::CS, "PIXEL"),
            text(tags::UNFORMATTED_TEXT_VALUE, VR::ST, value),
            fl(tags::BOUNDING_BOX_TOP_LEFT_HAND_CORNER, &[x0, y0]),
            fl(
                tags::BOUNDING_BOX_BOTTOM_RIGHT_HAND_CORNER,
                &[(x0 + width).min(w), (y0 + line).min(h)],
            ),
            text(tags::BOUNDING_BOX_TEXT_HORIZONTAL_JUSTIFICATION, VR::CS, "LEFT"),
        ])
    };
    let mut texts = vec![text_object(0.0, 0.0, summary)];
    let mut graphics = Vec::new();
    for mark in marks {
        let [x0, y0, x1, y1] = mark.bbox.map(|v| v.max(0.0));
        let (x1, y1) = (x1.min(w), y1.min(h));
        if !(x1 > x0 && y1 > y0) {
            continue;
        }
        graphics.push(InMemDicomObject::from_element_iter([
            text(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, "PIXEL"),
            us(tags::GRAPHIC_DIMENSIONS, 2),
            us(tags::NUMBER_OF_GRAPHIC_POINTS, 5),
            fl(tags::GRAPHIC_DATA, &[x0, y0, x1, y0, x1, y1, x0, y1, x0, y0]),
            text(tags::GRAPHIC_TYPE, VR::CS, "POLYLINE"),
            text(tags::GRAPHIC_FILLED, VR::CS, "N"),
        ]));
        let label_y = if y0 >= line {
            y0 - line
        } else {
            (y1).min(h - line).max(0.0)
        };
        texts.push(text_object(x0, label_y, &mark.label));
    }
    let mut annotation = InMemDicomObject::from_element_iter([
        image_reference(),
        text(tags::GRAPHIC_LAYER, VR::CS, LAYER),
        sq(tags::TEXT_OBJECT_SEQUENCE, texts),
    ]);
    if !graphics.is_empty() {
        annotation.put(sq(tags::GRAPHIC_OBJECT_SEQUENCE, graphics));
    }
    let monochrome1 = src
        .string(tags::PHOTOMETRIC_INTERPRETATION)
        .is_some_and(|p| p == "MONOCHROME1");
    let (mut ps, made) = src.new_object("presentation state", PRESENTATION_STATE_STORAGE, "PR", "9902", capture);
    for element in [
        text(tags::CONTENT_LABEL, VR::CS, "HIPFRAC_AI"),
        text(
            tags::CONTENT_DESCRIPTION,
            VR::LO,
            "AI boxes and verdict (research, not for diagnosis)",
        ),
        text(tags::PRESENTATION_CREATION_DATE, VR::DA, &made.date),
        text(tags::PRESENTATION_CREATION_TIME, VR::TM, &made.time),
        DataElement::new(tags::CONTENT_CREATOR_NAME, VR::PN, PrimitiveValue::Empty),
        sq(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::SERIES_INSTANCE_UID, VR::UI, &src.series),
                image_reference(),
            ])],
        ),
        sq(
            tags::DISPLAYED_AREA_SELECTION_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                DataElement::new(
                    tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER,
                    VR::SL,
                    PrimitiveValue::I32([1i32, 1].into_iter().collect()),
                ),
                DataElement::new(
                    tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER,
                    VR::SL,
                    PrimitiveValue::I32([columns as i32, rows as i32].into_iter().collect()),
                ),
                text(tags::PRESENTATION_SIZE_MODE, VR::CS, "SCALE TO FIT"),
                text(tags::PRESENTATION_PIXEL_ASPECT_RATIO, VR::IS, "1\\1"),
            ])],
        ),
        sq(
            tags::GRAPHIC_LAYER_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::GRAPHIC_LAYER, VR::CS, LAYER),
                text(tags::GRAPHIC_LAYER_ORDER, VR::IS, "1"),
                text(tags::GRAPHIC_LAYER_DESCRIPTION, VR::LO, "hipfrac AI boxes (research)"),
            ])],
        ),
        sq(tags::GRAPHIC_ANNOTATION_SEQUENCE, vec![annotation]),
        // MONOCHROME1 sources are shown with their lowest values white, as their own pipeline does.
        text(
            tags::PRESENTATION_LUT_SHAPE,
            VR::CS,
            if monochrome1 { "INVERSE" } else { "IDENTITY" },
        ),
    ] {
        ps.put(element);
    }
    // The source's own window, when it has one (Softcopy VOI LUT), and its rescale (Modality LUT).
    if let (Some(center), Some(width)) = (src.string(tags::WINDOW_CENTER), src.string(tags::WINDOW_WIDTH)) {
        let first = |v: &str| v.split('\\').next().unwrap_or("").trim().to_string();
        ps.put(sq(
            tags::SOFTCOPY_VOILUT_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::WINDOW_CENTER, VR::DS, &first(&center)),
                text(tags::WINDOW_WIDTH, VR::DS, &first(&width)),
            ])],
        ));
    }
    if let (Some(slope), Some(intercept)) = (src.string(tags::RESCALE_SLOPE), src.string(tags::RESCALE_INTERCEPT)) {
        ps.put(text(tags::RESCALE_SLOPE, VR::DS, &slope));
        ps.put(text(tags::RESCALE_INTERCEPT, VR::DS, &intercept));
        ps.put(text(
            tags::RESCALE_TYPE,
            VR::LO,
            &src.string(tags::RESCALE_TYPE).unwrap_or_else(|| "US".into()),
        ));
    }
    // The boxes once more as an overlay plane on the same layer: viewers and renderers that
    // draw overlays but not graphic annotations (dcmtk's dcmp2pgm, many web viewers) show them
    // too, at the same pixels.
    for element in box_overlay(rows, columns, marks, LAYER) {
        ps.put(element);
    }
    made.write(ps, out)
}

/// The boxes' outlines as a 1-bit graphics overlay (group 6000) of the image's size, bit-packed
/// row by row, least significant bit first (PS3.5 8.1.2), activated on `layer`. Lines are
/// about a 500th of the image's shorter side thick (at least 2 pixels), inside each box.
fn box_overlay(rows: u32, columns: u32, marks: &[Mark], layer: &str) -> Vec<DataElement<InMemDicomObject>> {
    let (w, h) = (columns as usize, rows as usize);
    let mut bits = vec![0u8; (w * h).div_ceil(16) * 2];
    let thick = (w.min(h) / 500).max(2);
    let mut set = |x: usize, y: usize| {
        let i = y * w + x;
        bits[i / 8] |= 1 << (i % 8);
    };
    for mark in marks {
        let [x0, y0, x1, y1] = mark.bbox;
        let clamp = |v: f32, max: usize| (v.max(0.0) as usize).min(max);
        let (x0, y0, x1, y1) = (clamp(x0, w), clamp(y0, h), clamp(x1.ceil(), w), clamp(y1.ceil(), h));
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        for y in y0..y1 {
            for x in x0..x1 {
                let edge = x < x0 + thick || x + thick >= x1 || y < y0 + thick || y + thick >= y1;
                if edge {
                    set(x, y);
                }
            }
        }
    }
    let words: Vec<u16> = bits.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    let overlay = |element: u16| Tag(0x6000, element);
    vec![
        DataElement::new(overlay(0x0010), VR::US, PrimitiveValue::from(rows as u16)),
        DataElement::new(overlay(0x0011), VR::US, PrimitiveValue::from(columns as u16)),
        text(
            overlay(0x0022),
            VR::LO,
            "hipfrac AI boxes (research, not for diagnosis)",
        ),
        text(overlay(0x0040), VR::CS, "G"),
        DataElement::new(
            overlay(0x0050),
            VR::SS,
            PrimitiveValue::I16([1i16, 1].into_iter().collect()),
        ),
        DataElement::new(overlay(0x0100), VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(overlay(0x0102), VR::US, PrimitiveValue::from(0u16)),
        text(overlay(0x1001), VR::CS, layer),
        text(overlay(0x1500), VR::LO, "HIPFRAC AI"),
        DataElement::new(
            overlay(0x3000),
            VR::OW,
            PrimitiveValue::U16(words.into_iter().collect()),
        ),
    ]
}

/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.33";

/// The coding scheme of hipfrac's own concepts (a private scheme, "99" prefix, PS3.16 8.2):
/// its four fracture types, its verdicts and its score, written beside the standard codes.
pub const CODING_SCHEME: &str = "99HIPFRAC";

/// A coded concept: (code value, coding scheme designator, code meaning).
pub type Code<'a> = (&'a str, &'a str, &'a str);

/// The standard concepts of the measurement report. The DCM, SCT, UCUM and RFC5646 codes
/// below marked "PS3.16" are DICOM's own: checked against pydicom 3.0.2's
/// `pydicom/sr/_concepts_dict.py`, which is generated from PS3.16 (the context group that lists
/// each is named). The two fracture codes are SNOMED CT disorders that PS3.16 does not list; where
/// each was checked is said beside it (no terminology server was reachable from here).
pub mod codes {
    use super::Code;

    /// PS3.16 CID 7021 (Measurement Report Document Title); TID 1500's root concept.
    pub const IMAGING_MEASUREMENT_REPORT: Code<'static> = ("126000", "DCM", "Imaging Measurement Report");
    /// PS3.16 TID 1204.
    pub const LANGUAGE: Code<'static> = ("121049", "DCM", "Language of Content Item and Descendants");
    /// An RFC 5646 language tag, as TID 1204 asks (and as highdicom 0.28 writes it).
    pub const ENGLISH_US: Code<'static> = ("en-US", "RFC5646", "English (United States)");
    /// PS3.16 TID 1001/1002 observer context.
    pub const OBSERVER_TYPE: Code<'static> = ("121005", "DCM", "Observer Type");
    pub const DEVICE: Code<'static> = ("121007", "DCM", "Device");
    /// PS3.16 TID 1004 (Device Observer Identifying Attributes).
    pub const DEVICE_OBSERVER_UID: Code<'static> = ("121012", "DCM", "Device Observer UID");
    pub const DEVICE_OBSERVER_NAME: Code<'static> = ("121013", "DCM", "Device Observer Name");
    pub const DEVICE_OBSERVER_MANUFACTURER: Code<'static> = ("121014", "DCM", "Device Observer Manufacturer");
    pub const DEVICE_OBSERVER_MODEL_NAME: Code<'static> = ("121015", "DCM", "Device Observer Model Name");
    /// PS3.16 TID 1500 row 4 (CIDs 6052, 6053).
    pub const PROCEDURE_REPORTED: Code<'static> = ("121058", "DCM", "Procedure reported");
    /// PS3.16 CID 10005.
    pub const PLAIN_RADIOGRAPHY: Code<'static> = ("168537006", "SCT", "Plain radiography");
    /// PS3.16 TID 1500 row 6.
    pub const IMAGING_MEASUREMENTS: Code<'static> = ("126010", "DCM", "Imaging Measurements");
    /// PS3.16 (TID 1410's container).
    pub const MEASUREMENT_GROUP: Code<'static> = ("125007", "DCM", "Measurement Group");
    /// PS3.16 TID 1500's container of qualitative evaluations of the report's whole subject
    /// (its rows 12 to 14 as dcmtk's TID1500_MeasurementReport numbers them: the CONTAINER,
    /// then CONTAINS CODE and CONTAINS TEXT items); a UMLS concept.
    pub const QUALITATIVE_EVALUATIONS: Code<'static> = ("C0034375", "UMLS", "Qualitative Evaluations");
    /// PS3.16 TID 4108.
    pub const TRACKING_IDENTIFIER: Code<'static> = ("112039", "DCM", "Tracking Identifier");
    pub const TRACKING_UID: Code<'static> = ("112040", "DCM", "Tracking Unique Identifier");
    /// PS3.16 (CIDs 3419, 6053, 7002, 9000).
    pub const FINDING: Code<'static> = ("121071", "DCM", "Finding");
    /// PS3.16 CID 9000.
    pub const FINDING_SITE: Code<'static> = ("363698007", "SCT", "Finding Site");
    /// PS3.16 CID 4 (Anatomic Region) and others.
    pub const HIP: Code<'static> = ("29836001", "SCT", "Hip");
    /// PS3.16 CID 210.
    pub const LATERALITY: Code<'static> = ("272741003", "SCT", "Laterality");
    /// PS3.16 CIDs 244, 245 (Laterality).
    pub const RIGHT: Code<'static> = ("24028007", "SCT", "Right");
    pub const LEFT: Code<'static> = ("7771000", "SCT", "Left");
    /// PS3.16 (TID 1410's region).
    pub const IMAGE_REGION: Code<'static> = ("111030", "DCM", "Image Region");
    /// PS3.16 ("Source (attribute)"; TID 1410's SELECTED FROM image).
    pub const SOURCE: Code<'static> = ("260753009", "SCT", "Source");
    /// PS3.16 CIDs 7003, 7551, 7552: the image the verdict was inferred from.
    pub const SOURCE_OF_MEASUREMENT: Code<'static> = ("121112", "DCM", "Source of Measurement");
    /// UCUM's unity, PS3.16 CID 7181 ("no units"): the score is a number in [0, 1].
    pub const NO_UNITS: Code<'static> = ("1", "UCUM", "no units");
    /// SNOMED CT 5913000 |Fracture of neck of femur (disorder)|: hipfrac's DF and VF. Not in
    /// PS3.16; checked in public code that maps ICD-10 S72.0 "Fracture of neck of femur" to
    /// SNOMED CT (an ICD-10-CM S72.001A → 5913000 "Fracture of neck of femur (disorder)" map and
    /// a MedCAT annotation of "femoral neck fracture" with concept 5913000).
    pub const FRACTURE_OF_NECK_OF_FEMUR: Code<'static> = ("5913000", "SCT", "Fracture of neck of femur");
    /// SNOMED CT 208548007 |Closed fracture of proximal femur, pertrochanteric (disorder)|:
    /// hipfrac's SF and UF (the paper's intertrochanteric fractures are AO/OTA 31A, the
    /// pertrochanteric region). Checked in NLM VSAC's "Lower Body Fracture" value set (OID
    /// 2.16.840.1.113883.3.464.1003.113.12.1037, code system 2.16.840.1.113883.6.96). It is the
    /// closed fracture: a film cannot show whether the skin is broken, and the low-energy hip
    /// fractures hipfrac reads are closed; no concept without "closed" could be checked from here.
    pub const PERTROCHANTERIC_FRACTURE_OF_FEMUR: Code<'static> =
        ("208548007", "SCT", "Closed fracture of proximal femur, pertrochanteric");

    /// hipfrac's own concepts (99HIPFRAC).
    pub const VERDICT: Code<'static> = ("VERDICT", super::CODING_SCHEME, "Image-level verdict");
    pub const FRACTURE_TYPE: Code<'static> = ("TYPE", super::CODING_SCHEME, "Hip fracture type");
    pub const SCORE: Code<'static> = ("SCORE", super::CODING_SCHEME, "Detector score");
    pub const DETAIL: Code<'static> = ("DETAIL", super::CODING_SCHEME, "Verdict detail");
    pub const NOT_ASSESSABLE_REASON: Code<'static> = ("NA_REASON", super::CODING_SCHEME, "Reason not assessable");
}

/// The patient's side of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Right,
    Left,
}

/// One finding of a structured report: a box of a class with its score.
pub struct Finding<'a> {
    /// The finding as a standard code (SNOMED CT, [`codes::FRACTURE_OF_NECK_OF_FEMUR`] …).
    pub finding: Code<'a>,
    /// hipfrac's type as a code of [`CODING_SCHEME`] (`DF`, `VF`, `SF`, `UF`).
    pub class: Code<'a>,
    pub score: f32,
    /// `[x_min, y_min, x_max, y_max)` in the source's pixels.
    pub bbox: [f32; 4],
    /// The hip the box is on, when known.
    pub side: Option<Side>,
}

/// What a structured report says about the image.
pub struct Report<'a> {
    /// The verdict as a code (a class, or `NONE` / `NOT_ASSESSABLE` of [`CODING_SCHEME`]).
    pub verdict: Code<'a>,
    /// The answered class's score, when there is one.
    pub confidence: Option<f32>,
    /// Why the image was not assessed (with a `NOT_ASSESSABLE` verdict).
    pub not_assessable: Option<&'a str>,
    /// The operating point and caveats, in words.
    pub detail: &'a str,
    pub findings: &'a [Finding<'a>],
    /// The observer device's model (e.g. the preset and the weights' hash).
    pub model_name: &'a str,
}

/// The TID a content item's ContentTemplateSequence names (mapping resource DCMR).
fn template(identifier: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tags::CONTENT_TEMPLATE_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(
            vec![InMemDicomObject::from_element_iter([
                text(tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
                text(tags::TEMPLATE_IDENTIFIER, VR::CS, identifier),
            ])],
            Length::UNDEFINED,
        ),
    )
}

/// Writes the structured report for the DICOM image `source` into `out` (atomically): a
/// Comprehensive SR that is a PS3.16 TID 1500 Measurement Report —
///
/// ```text
/// CONTAINER Imaging Measurement Report [TID 1500, DCMR]
///   HAS CONCEPT MOD  Language = en-US
///   HAS OBS CONTEXT  Observer Type = Device; Device Observer UID, Name (hipfrac),
///                    Manufacturer, Model Name (model, weights' hash, hipfrac version)
///   HAS CONCEPT MOD  Procedure reported = Plain radiography
///   CONTAINS CONTAINER Imaging Measurements (when there is a box)
///     CONTAINER Measurement Group [TID 1410], one per box:
///       Tracking Identifier, Tracking UID; CODE Finding (SNOMED CT);
///       HAS CONCEPT MOD Finding Site = Hip (HAS CONCEPT MOD Laterality = Right/Left);
///       NUM Detector score; CODE Hip fracture type = DF/VF/SF/UF (99HIPFRAC);
///       SCOORD Image Region (closed POLYLINE) SELECTED FROM IMAGE Source
///   CONTAINS CONTAINER Qualitative Evaluations (UMLS C0034375): the image-level verdict
///     CODE Image-level verdict (99HIPFRAC)
///       INFERRED FROM NUM Detector score (UCUM 1), when there is one
///       INFERRED FROM IMAGE Source of Measurement (the source instance)
///     TEXT Reason not assessable, when not assessed; TEXT Verdict detail
/// ```
///
/// The verdict is an evaluation of the whole image, so it is TID 1500's report-level
/// qualitative evaluation, not a measurement group: every measurement group is a box with its
/// SCOORD, which is what viewers draw (the OHIF Viewer 3.13.2 fails on a measurement group
/// without one and opens its SR viewport on the first group). Without a box there is no
/// Imaging Measurements container; the qualitative evaluations stand for it (dcmtk's
/// TID1500_MeasurementReport is valid with either, and TID 1500 is extensible, which the
/// verdict's INFERRED FROM children rely on).
///
/// Same study, new series, derived UIDs as for the Secondary Capture.
pub fn structured_report(source: &Path, out: &Path, report: &Report<'_>, capture: &Capture<'_>) -> Result<()> {
    let src = Source::open(source)?;
    let device_uid = derived_uid(&["hipfrac observer device", capture.producer]);
    let sq = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    };
    let code = |(value, scheme, meaning): Code<'_>| {
        InMemDicomObject::from_element_iter([
            text(tags::CODE_VALUE, VR::SH, value),
            text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
            text(tags::CODE_MEANING, VR::LO, meaning),
        ])
    };
    let item =
        |relationship: &str, value_type: &str, name: Option<Code<'_>>, mut rest: Vec<DataElement<InMemDicomObject>>| {
            let mut elements = vec![
                text(tags::RELATIONSHIP_TYPE, VR::CS, relationship),
                text(tags::VALUE_TYPE, VR::CS, value_type),
            ];
            if let Some(name) = name {
                elements.push(sq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![code(name)]));
            }
            elements.append(&mut rest);
            InMemDicomObject::from_element_iter(elements)
        };
    let coded = |relationship: &str, name: Code<'_>, value: Code<'_>, children: Vec<InMemDicomObject>| {
        let mut rest = vec![sq(tags::CONCEPT_CODE_SEQUENCE, vec![code(value)])];
        if !children.is_empty() {
            rest.push(sq(tags::CONTENT_SEQUENCE, children));
        }
        item(relationship, "CODE", Some(name), rest)
    };
    let text_item = |relationship: &str, name: Code<'_>, value: &str| {
        item(
            relationship,
            "TEXT",
            Some(name),
            vec![text(tags::TEXT_VALUE, VR::UT, value)],
        )
    };
    let container = |name: Code<'_>, tid: Option<&str>, children: Vec<InMemDicomObject>| {
        let mut rest = vec![text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")];
        if let Some(tid) = tid {
            rest.push(template(tid));
        }
        rest.push(sq(tags::CONTENT_SEQUENCE, children));
        item("CONTAINS", "CONTAINER", Some(name), rest)
    };
    let referenced_sop = || {
        sq(
            tags::REFERENCED_SOP_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &src.class),
                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &src.instance),
            ])],
        )
    };
    let score_item = |relationship: &str, score: f32| {
        let measured = InMemDicomObject::from_element_iter([
            text(tags::NUMERIC_VALUE, VR::DS, &format!("{score:.4}")),
            sq(tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![code(codes::NO_UNITS)]),
        ]);
        item(
            relationship,
            "NUM",
            Some(codes::SCORE),
            vec![sq(tags::MEASURED_VALUE_SEQUENCE, vec![measured])],
        )
    };
    // TID 4108: a name for people and a UID for machines, the same on a rerun.
    let tracking = |identifier: &str, key: &str| {
        vec![
            text_item("HAS OBS CONTEXT", codes::TRACKING_IDENTIFIER, identifier),
            item(
                "HAS OBS CONTEXT",
                "UIDREF",
                Some(codes::TRACKING_UID),
                vec![text(
                    tags::UID,
                    VR::UI,
                    &derived_uid(&["hipfrac tracking", key, capture.producer, &src.instance]),
                )],
            ),
        ]
    };

    // The image-level verdict: TID 1500's qualitative evaluation of the whole image, inferred
    // from the detector's score and the source image; then why not assessed, and the detail.
    let mut inferred_from = Vec::new();
    if let Some(confidence) = report.confidence {
        inferred_from.push(score_item("INFERRED FROM", confidence));
    }
    inferred_from.push(item(
        "INFERRED FROM",
        "IMAGE",
        Some(codes::SOURCE_OF_MEASUREMENT),
        vec![referenced_sop()],
    ));
    let mut evaluations = vec![coded("CONTAINS", codes::VERDICT, report.verdict, inferred_from)];
    if let Some(reason) = report.not_assessable {
        evaluations.push(text_item("CONTAINS", codes::NOT_ASSESSABLE_REASON, reason));
    }
    evaluations.push(text_item("CONTAINS", codes::DETAIL, report.detail));

    let mut groups = Vec::new();

    // One planar ROI group (TID 1410) per box.
    for (index, finding) in report.findings.iter().enumerate() {
        let [x0, y0, x1, y1] = finding.bbox;
        let side = finding.side.map(|side| match side {
            Side::Right => codes::RIGHT,
            Side::Left => codes::LEFT,
        });
        let identifier = format!(
            "box {} {}{}",
            index + 1,
            finding.class.0,
            side.map_or(String::new(), |s| format!(" {}", s.2.to_lowercase()))
        );
        let mut group = tracking(&identifier, &format!("box {index}"));
        group.push(coded("CONTAINS", codes::FINDING, finding.finding, vec![]));
        let laterality = side
            .map(|side| coded("HAS CONCEPT MOD", codes::LATERALITY, side, vec![]))
            .into_iter()
            .collect();
        group.push(coded("HAS CONCEPT MOD", codes::FINDING_SITE, codes::HIP, laterality));
        group.push(score_item("CONTAINS", finding.score));
        group.push(coded("CONTAINS", codes::FRACTURE_TYPE, finding.class, vec![]));
        group.push(item(
            "CONTAINS",
            "SCOORD",
            Some(codes::IMAGE_REGION),
            vec![
                DataElement::new(
                    tags::GRAPHIC_DATA,
                    VR::FL,
                    PrimitiveValue::F32([x0, y0, x1, y0, x1, y1, x0, y1, x0, y0].into_iter().collect()),
                ),
                text(tags::GRAPHIC_TYPE, VR::CS, "POLYLINE"),
                sq(
                    tags::CONTENT_SEQUENCE,
                    vec![item(
                        "SELECTED FROM",
                        "IMAGE",
                        Some(codes::SOURCE),
                        vec![referenced_sop()],
                    )],
                ),
            ],
        ));
        groups.push(container(codes::MEASUREMENT_GROUP, Some("1410"), group));
    }

    let mut content = vec![
        coded("HAS CONCEPT MOD", codes::LANGUAGE, codes::ENGLISH_US, vec![]),
        coded("HAS OBS CONTEXT", codes::OBSERVER_TYPE, codes::DEVICE, vec![]),
        item(
            "HAS OBS CONTEXT",
            "UIDREF",
            Some(codes::DEVICE_OBSERVER_UID),
            vec![text(tags::UID, VR::UI, &device_uid)],
        ),
        text_item("HAS OBS CONTEXT", codes::DEVICE_OBSERVER_NAME, "hipfrac"),
        text_item(
            "HAS OBS CONTEXT",
            codes::DEVICE_OBSERVER_MANUFACTURER,
            "hipfrac (research software, not a medical device)",
        ),
        text_item(
            "HAS OBS CONTEXT",
            codes::DEVICE_OBSERVER_MODEL_NAME,
            &format!("{}, hipfrac {}", report.model_name, capture.version),
        ),
        coded(
            "HAS CONCEPT MOD",
            codes::PROCEDURE_REPORTED,
            codes::PLAIN_RADIOGRAPHY,
            vec![],
        ),
    ];
    if !groups.is_empty() {
        content.push(container(codes::IMAGING_MEASUREMENTS, None, groups));
    }
    content.push(container(codes::QUALITATIVE_EVALUATIONS, None, evaluations));
    let evidence = InMemDicomObject::from_element_iter([
        text(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            &src.string(tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        ),
        sq(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::SERIES_INSTANCE_UID, VR::UI, &src.series),
                referenced_sop(),
            ])],
        ),
    ]);
    let (mut sr, made) = src.new_object("structured report", COMPREHENSIVE_SR_STORAGE, "SR", "9903", capture);
    // An SR has no General Series module: no laterality or body part there.
    sr.remove_element(tags::LATERALITY);
    sr.remove_element(tags::BODY_PART_EXAMINED);
    for element in [
        DataElement::new(
            tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(Vec::<InMemDicomObject>::new(), Length::UNDEFINED),
        ),
        text(tags::COMPLETION_FLAG, VR::CS, "COMPLETE"),
        text(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"),
        text(tags::CONTENT_DATE, VR::DA, &made.date),
        text(tags::CONTENT_TIME, VR::TM, &made.time),
        DataElement::new(
            tags::PERFORMED_PROCEDURE_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(Vec::<InMemDicomObject>::new(), Length::UNDEFINED),
        ),
        sq(tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, vec![evidence]),
        text(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        sq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code(codes::IMAGING_MEASUREMENT_REPORT)],
        ),
        text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"),
        template("1500"),
        sq(tags::CONTENT_SEQUENCE, content),
    ] {
        sr.put(element);
    }
    made.write(sr, out)
}
