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

/// The coding scheme of hipfrac's findings (a private scheme, "99" prefix, PS3.16 8.2).
pub const CODING_SCHEME: &str = "99HIPFRAC";

/// A coded concept: (code value, coding scheme designator, code meaning).
pub type Code<'a> = (&'a str, &'a str, &'a str);

/// One finding of a structured report: a box of a class with its score.
pub struct Finding<'a> {
    /// The class as a code of [`CODING_SCHEME`] (`DF`, `VF`, `SF`, `UF`).
    pub class: Code<'a>,
    pub score: f32,
    /// `[x_min, y_min, x_max, y_max)` in the source's pixels.
    pub bbox: [f32; 4],
}

/// What a structured report says about the image.
pub struct Report<'a> {
    /// The verdict as a code (a class, or `NONE` / `NOT_ASSESSABLE` of [`CODING_SCHEME`]).
    pub verdict: Code<'a>,
    /// The answered class's score, when there is one.
    pub confidence: Option<f32>,
    /// The operating point or the reason the image was not assessed, in words.
    pub detail: &'a str,
    pub findings: &'a [Finding<'a>],
    /// The observer device: name and model (e.g. the weights' hash).
    pub model_name: &'a str,
}

/// Writes a Comprehensive SR for the DICOM image `source` into `out` (atomically): the verdict
/// as a coded finding, each box as a finding with its score and an image-referenced SCOORD
/// polyline on the source instance, the model as the observer device. Same study, new series,
/// derived UIDs as for the Secondary Capture.
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
    let referenced_sop = || {
        sq(
            tags::REFERENCED_SOP_SEQUENCE,
            vec![InMemDicomObject::from_element_iter([
                text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &src.class),
                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &src.instance),
            ])],
        )
    };
    let score_item = |score: f32| {
        let measured = InMemDicomObject::from_element_iter([
            text(tags::NUMERIC_VALUE, VR::DS, &format!("{score:.4}")),
            sq(
                tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
                vec![code(("1", "UCUM", "no units"))],
            ),
        ]);
        item(
            "HAS PROPERTIES",
            "NUM",
            Some(("SCORE", CODING_SCHEME, "Detector score")),
            vec![sq(tags::MEASURED_VALUE_SEQUENCE, vec![measured])],
        )
    };
    let finding_name: Code<'_> = ("121071", "DCM", "Finding");
    let mut content = vec![
        item(
            "HAS OBS CONTEXT",
            "CODE",
            Some(("121005", "DCM", "Observer Type")),
            vec![sq(tags::CONCEPT_CODE_SEQUENCE, vec![code(("121007", "DCM", "Device"))])],
        ),
        item(
            "HAS OBS CONTEXT",
            "UIDREF",
            Some(("121012", "DCM", "Device Observer UID")),
            vec![text(tags::UID, VR::UI, &device_uid)],
        ),
        item(
            "HAS OBS CONTEXT",
            "TEXT",
            Some(("121013", "DCM", "Device Observer Name")),
            vec![text(tags::TEXT_VALUE, VR::UT, "hipfrac")],
        ),
        item(
            "HAS OBS CONTEXT",
            "TEXT",
            Some(("121014", "DCM", "Device Observer Manufacturer")),
            vec![text(
                tags::TEXT_VALUE,
                VR::UT,
                "hipfrac (research software, not a medical device)",
            )],
        ),
        item(
            "HAS OBS CONTEXT",
            "TEXT",
            Some(("121015", "DCM", "Device Observer Model Name")),
            vec![text(tags::TEXT_VALUE, VR::UT, report.model_name)],
        ),
    ];
    let mut verdict_children = vec![item(
        "HAS PROPERTIES",
        "TEXT",
        Some(("DETAIL", CODING_SCHEME, "Verdict detail")),
        vec![text(tags::TEXT_VALUE, VR::UT, report.detail)],
    )];
    if let Some(confidence) = report.confidence {
        verdict_children.insert(0, score_item(confidence));
    }
    content.push(item(
        "CONTAINS",
        "CODE",
        Some(("VERDICT", CODING_SCHEME, "Image-level verdict")),
        vec![
            sq(tags::CONCEPT_CODE_SEQUENCE, vec![code(report.verdict)]),
            sq(tags::CONTENT_SEQUENCE, verdict_children),
        ],
    ));
    for finding in report.findings {
        let [x0, y0, x1, y1] = finding.bbox;
        let region = item(
            "INFERRED FROM",
            "SCOORD",
            Some(("111030", "DCM", "Image Region")),
            vec![
                DataElement::new(
                    tags::GRAPHIC_DATA,
                    VR::FL,
                    PrimitiveValue::F32([x0, y0, x1, y0, x1, y1, x0, y1, x0, y0].into_iter().collect()),
                ),
                text(tags::GRAPHIC_TYPE, VR::CS, "POLYLINE"),
                sq(
                    tags::CONTENT_SEQUENCE,
                    vec![item("SELECTED FROM", "IMAGE", None, vec![referenced_sop()])],
                ),
            ],
        );
        content.push(item(
            "CONTAINS",
            "CODE",
            Some(finding_name),
            vec![
                sq(tags::CONCEPT_CODE_SEQUENCE, vec![code(finding.class)]),
                sq(tags::CONTENT_SEQUENCE, vec![score_item(finding.score), region]),
            ],
        ));
    }
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
            vec![code(("18748-4", "LN", "Diagnostic imaging report"))],
        ),
        text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"),
        sq(tags::CONTENT_SEQUENCE, content),
    ] {
        sr.put(element);
    }
    made.write(sr, out)
}
