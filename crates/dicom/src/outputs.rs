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
    format!("2.25.{}", u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes")))
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
    crate::prescan::check_file(source, true)?;
    let object = crate::checks::guarded(|| OpenFileOptions::new().read_until(tags::PIXEL_DATA).open_file(source))
        .map_err(|crate::checks::Panicked(panic)| Error::parse(source, crate::error::ParseFault::Panic(panic)))?
        .map_err(|e| Error::parse(source, e))?;
    let needed = |tag, name: &str| {
        crate::read::string(&object, tag).ok_or_else(|| Error::Option { path: source.to_path_buf(), reason: format!("no {name}: a Secondary Capture cannot join its study") })
    };
    // The study UID is copied with the study module; it must be there.
    let (_, series, instance) = (needed(tags::STUDY_INSTANCE_UID, "Study Instance UID")?, needed(tags::SERIES_INSTANCE_UID, "Series Instance UID")?, needed(tags::SOP_INSTANCE_UID, "SOP Instance UID")?);
    let source_class = needed(tags::SOP_CLASS_UID, "SOP Class UID")?;
    if picture.pixels.len() != picture.width as usize * picture.height as usize * 3 || picture.width > u16::MAX as u32 || picture.height > u16::MAX as u32 {
        return Err(Error::Option { path: out.to_path_buf(), reason: "the picture's size does not match its pixels".into() });
    }
    let new_series = derived_uid(&["hipfrac secondary capture series", capture.producer, &series]);
    let new_instance = derived_uid(&["hipfrac secondary capture", capture.producer, &instance]);
    let now = chrono::Utc::now();
    let (date, time) = (now.format("%Y%m%d").to_string(), now.format("%H%M%S").to_string());
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let mut sc = InMemDicomObject::new_empty();
    for tag in COPIED {
        if let Some(element) = object.element_opt(tag).ok().flatten() {
            sc.put(element.clone());
        } else if tag != tags::SPECIFIC_CHARACTER_SET && tag != tags::STUDY_DESCRIPTION {
            // Type 2 attributes of the Patient and General Study modules: present, empty.
            use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
            let vr = dicom_dictionary_std::StandardDataDictionary.by_tag(tag).map_or(VR::LO, |e| e.vr().relaxed());
            sc.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        }
    }
    // General Series: the hip's side (Laterality, type 2C; empty when the source does not say)
    // and the body part, from the source.
    let side = crate::read::string(&object, tags::IMAGE_LATERALITY).or_else(|| crate::read::string(&object, tags::LATERALITY)).filter(|s| s == "R" || s == "L");
    sc.put(text(tags::LATERALITY, VR::CS, side.as_deref().unwrap_or("")));
    if let Some(part) = crate::read::string(&object, tags::BODY_PART_EXAMINED) {
        sc.put(text(tags::BODY_PART_EXAMINED, VR::CS, &part));
    }
    let reference = InMemDicomObject::from_element_iter([text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &source_class), text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, &instance)]);
    for element in [
        text(tags::SOP_CLASS_UID, VR::UI, SECONDARY_CAPTURE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, &new_instance),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &new_series),
        text(tags::MODALITY, VR::CS, "OT"),
        text(tags::SERIES_NUMBER, VR::IS, "9901"),
        text(tags::SERIES_DESCRIPTION, VR::LO, capture.series_description),
        text(tags::MANUFACTURER, VR::LO, "hipfrac"),
        text(tags::SOFTWARE_VERSIONS, VR::LO, capture.version),
        text(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        text(tags::PATIENT_ORIENTATION, VR::CS, ""),
        text(tags::CONTENT_DATE, VR::DA, &date),
        text(tags::CONTENT_TIME, VR::TM, &time),
        text(tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, &date),
        text(tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, &time),
        text(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY"),
        text(tags::DERIVATION_DESCRIPTION, VR::ST, "AI boxes and verdict drawn over the displayed source image"),
        DataElement::new(tags::SOURCE_IMAGE_SEQUENCE, VR::SQ, DataSetSequence::new(vec![reference], Length::UNDEFINED)),
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
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::U8(picture.pixels.to_vec().into())),
    ] {
        sc.put(element);
    }
    let file = sc
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_VR_LE).media_storage_sop_class_uid(SECONDARY_CAPTURE_STORAGE).media_storage_sop_instance_uid(&new_instance))
        .map_err(|source| Error::Meta { path: out.to_path_buf(), source })?;
    write_atomic_with(out, |writer| file.write_all(writer).map_err(std::io::Error::other))
}
