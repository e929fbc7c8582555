//! Writing a radiograph as a DICOM CR image (explicit VR little endian, native pixels).

use crate::atomic::write_atomic_with;
use crate::{Error, Result};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use hipfrac_core::{Laterality, ModalityLut, Photometric, Pixels, Radiograph};
use std::path::Path;

/// CR Image Storage.
pub const CR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Attributes that are not in [`hipfrac_core::RadiographMeta`].
#[derive(Debug, Clone, Default)]
pub struct DicomAttributes {
    pub patient_name: String,
    pub patient_sex: String,
    pub patient_age: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_description: String,
    pub series_description: String,
    pub manufacturer: String,
    pub model: String,
    pub kvp: Option<f64>,
    pub view_position: String,
    /// Free text (e.g. "SIMULATED IMAGE").
    pub image_comments: String,
}

/// Writes `image` as a CR DICOM file, atomically. UIDs, patient ID, institution, body
/// part, laterality, pixel spacing, windows and photometric come from `image.meta`.
pub fn write_cr(path: &Path, image: &Radiograph, attributes: &DicomAttributes) -> Result<()> {
    let meta = &image.meta;
    let missing = |what: &str| Error::Option {
        path: path.to_path_buf(),
        reason: format!("cannot write DICOM without {what}"),
    };
    let sop_instance = meta
        .sop_instance_uid
        .clone()
        .ok_or_else(|| missing("a SOP Instance UID"))?;
    let study = meta
        .study_instance_uid
        .clone()
        .ok_or_else(|| missing("a Study Instance UID"))?;
    let series = meta
        .series_instance_uid
        .clone()
        .ok_or_else(|| missing("a Series Instance UID"))?;
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let ds = |values: Vec<f64>| values.iter().map(|v| format_ds(*v)).collect::<Vec<_>>().join("\\");
    let mut elements = vec![
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        text(tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY"),
        text(tags::SOP_CLASS_UID, VR::UI, CR_IMAGE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, &sop_instance),
        text(tags::STUDY_DATE, VR::DA, &attributes.study_date),
        text(tags::STUDY_TIME, VR::TM, &attributes.study_time),
        text(tags::ACCESSION_NUMBER, VR::SH, &attributes.accession_number),
        text(tags::MODALITY, VR::CS, meta.modality.as_deref().unwrap_or("CR")),
        text(tags::MANUFACTURER, VR::LO, &attributes.manufacturer),
        text(
            tags::INSTITUTION_NAME,
            VR::LO,
            meta.institution.as_deref().unwrap_or(""),
        ),
        text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
        text(tags::STUDY_DESCRIPTION, VR::LO, &attributes.study_description),
        text(tags::SERIES_DESCRIPTION, VR::LO, &attributes.series_description),
        text(tags::MANUFACTURER_MODEL_NAME, VR::LO, &attributes.model),
        text(tags::PATIENT_NAME, VR::PN, &attributes.patient_name),
        text(tags::PATIENT_ID, VR::LO, meta.patient_id.as_deref().unwrap_or("")),
        text(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        text(tags::PATIENT_SEX, VR::CS, &attributes.patient_sex),
        text(tags::PATIENT_AGE, VR::AS, &attributes.patient_age),
        text(
            tags::BODY_PART_EXAMINED,
            VR::CS,
            meta.body_part.as_deref().unwrap_or("HIP"),
        ),
        text(tags::VIEW_POSITION, VR::CS, &attributes.view_position),
        text(tags::STUDY_INSTANCE_UID, VR::UI, &study),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &series),
        text(tags::STUDY_ID, VR::SH, "1"),
        text(tags::SERIES_NUMBER, VR::IS, "1"),
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        text(tags::PATIENT_ORIENTATION, VR::CS, ""),
        text(tags::IMAGE_COMMENTS, VR::LT, &attributes.image_comments),
        us(tags::SAMPLES_PER_PIXEL, 1),
        text(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            match meta.photometric {
                Photometric::Monochrome1 => "MONOCHROME1",
                Photometric::Monochrome2 => "MONOCHROME2",
            },
        ),
        us(tags::ROWS, meta.rows as u16),
        us(tags::COLUMNS, meta.columns as u16),
        us(tags::BITS_ALLOCATED, 16),
        us(tags::BITS_STORED, meta.bits_stored),
        us(tags::HIGH_BIT, meta.bits_stored - 1),
        us(tags::PIXEL_REPRESENTATION, u16::from(image.pixels.is_signed())),
        text(tags::BURNED_IN_ANNOTATION, VR::CS, "NO"),
    ];
    if let Some(kvp) = attributes.kvp {
        elements.push(text(tags::KVP, VR::DS, &format_ds(kvp)));
    }
    if let Some(laterality) = meta.laterality {
        let code = match laterality {
            Laterality::Right => "R",
            Laterality::Left => "L",
            Laterality::Both => "B",
            Laterality::Unpaired => "U",
        };
        elements.push(text(tags::IMAGE_LATERALITY, VR::CS, code));
    }
    if let Some([row, column]) = meta.pixel_spacing_mm {
        elements.push(text(tags::PIXEL_SPACING, VR::DS, &ds(vec![row, column])));
        elements.push(text(tags::IMAGER_PIXEL_SPACING, VR::DS, &ds(vec![row, column])));
    }
    if !meta.windows.is_empty() {
        elements.push(text(
            tags::WINDOW_CENTER,
            VR::DS,
            &ds(meta.windows.iter().map(|w| w.center).collect()),
        ));
        elements.push(text(
            tags::WINDOW_WIDTH,
            VR::DS,
            &ds(meta.windows.iter().map(|w| w.width).collect()),
        ));
    }
    if let ModalityLut::Rescale { slope, intercept } = meta.modality_lut {
        if slope != 1.0 || intercept != 0.0 {
            elements.push(text(tags::RESCALE_INTERCEPT, VR::DS, &format_ds(intercept)));
            elements.push(text(tags::RESCALE_SLOPE, VR::DS, &format_ds(slope)));
            elements.push(text(tags::RESCALE_TYPE, VR::LO, "US"));
        }
    }
    let pixels: Vec<u16> = match &image.pixels {
        Pixels::Unsigned(v) => v.clone(),
        Pixels::Signed(v) => v.iter().map(|&x| x as u16).collect(),
    };
    if pixels.len() != meta.rows as usize * meta.columns as usize {
        return Err(missing("as many pixels as rows × columns"));
    }
    elements.push(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let object = InMemDicomObject::from_element_iter(elements);
    let file = object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .media_storage_sop_class_uid(CR_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(&sop_instance),
        )
        .map_err(|source| Error::Meta {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    write_atomic_with(path, |writer| file.write_all(writer).map_err(std::io::Error::other))
}

/// A decimal string of at most 16 characters.
fn format_ds(value: f64) -> String {
    let mut text = format!("{value}");
    if text.len() > 16 {
        text = format!("{value:.6}");
        text.truncate(16);
    }
    text
}
