//! De-identification after the DICOM PS3.15 Basic Application Level Confidentiality Profile
//! (Annex E, Table E.1-1), with keyed pseudonyms.
//!
//! * Attributes of the profile's table are removed (X), emptied (Z), or have their UIDs
//!   replaced (U), at every nesting level; all private attributes are removed; overlays and
//!   curves are removed.
//! * Patient ID and Patient's Name become one pseudonym, `HF` + 16 hex digits of
//!   HMAC-SHA256(key, Patient ID): the same patient keeps the same pseudonym in every file
//!   de-identified with the same key, so patient-level splits still work, and nobody without
//!   the key can recompute it.
//! * Every replaced UID becomes `2.25.<128 bits of HMAC-SHA256(key, UID)>`: consistent across
//!   files (a series stays a series), and a valid UID.
//! * Pixel Data is carried over untouched (byte-identical, encapsulated fragments included).
//! * Patient Identity Removed = YES, De-identification Method and its code sequence
//!   (DCM 113100, plus 113108 with the Retain Patient Characteristics Option) are recorded.
//!
//! Where the table offers a choice (e.g. X/Z/D) this module takes the stricter X, except for
//! the type 2 attributes of the image IODs a CR/DX carries (study date/time, accession
//! number, referring physician, study ID, patient birth date and sex), which are emptied.

use crate::atomic::write_atomic_with;
use crate::read::string;
use crate::{Error, Result};
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::header::Header;
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// The secret that makes pseudonyms and UIDs unguessable and repeatable.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

impl Key {
    /// A key from bytes (at least 16).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= 16).then(|| Key(bytes.to_vec()))
    }

    /// Loads the key file (64 hex digits), or creates one with a fresh random key (mode 0600)
    /// when it does not exist. An existing file is never overwritten.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool)> {
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let bytes = hex::decode(text.trim()).ok().and_then(|b| Key::from_bytes(&b));
            return bytes.map(|k| (k, false)).ok_or_else(|| Error::Option {
                path: path.to_path_buf(),
                reason: "key file must hold at least 32 hex digits (it is made by `hipfrac deid` when absent)".into(),
            });
        }
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        use std::io::Write;
        writeln!(file, "{}", hex::encode(bytes)).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        Ok((Key(bytes.to_vec()), true))
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The pseudonym of a Patient ID.
    pub fn pseudonym(&self, patient_id: &str) -> String {
        format!("HF{}", hex::encode_upper(&self.mac("patient", patient_id.trim())[..8]))
    }

    /// The replacement of a UID: `2.25.` + a 128-bit decimal.
    pub fn uid(&self, uid: &str) -> String {
        let digest = self.mac("uid", uid.trim_end_matches(['\0', ' ']));
        let value = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
        format!("2.25.{value}")
    }
}

/// What to do with an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Remove.
    X,
    /// Replace with an empty value.
    Z,
    /// Replace the UID.
    U,
}

/// The profile's table for the attributes a radiograph may carry (PS3.15 Table E.1-1).
#[rustfmt::skip]
const PROFILE: &[(u16, u16, Action)] = {
    use Action::*;
    &[
        // Identification of the instance, study and series: UIDs.
        (0x0008, 0x0014, U), // Instance Creator UID
        (0x0008, 0x0018, U), // SOP Instance UID
        (0x0008, 0x1155, U), // Referenced SOP Instance UID
        (0x0008, 0x1195, U), // Transaction UID
        (0x0008, 0x3010, U), // Irradiation Event UID
        (0x0018, 0x1002, U), // Device UID
        (0x0020, 0x000D, U), // Study Instance UID
        (0x0020, 0x000E, U), // Series Instance UID
        (0x0020, 0x0052, U), // Frame of Reference UID
        (0x0020, 0x0200, U), // Synchronization Frame of Reference UID
        (0x0020, 0x9161, U), // Concatenation UID
        (0x0020, 0x9164, U), // Dimension Organization UID
        (0x0040, 0xA124, U), // UID
        (0x0088, 0x0140, U), // Storage Media File-set UID
        (0x3006, 0x0024, U), // Referenced Frame of Reference UID
        // Dates and times, study identification (type 2 in CR/DX: emptied).
        (0x0008, 0x0020, Z), // Study Date
        (0x0008, 0x0030, Z), // Study Time
        (0x0008, 0x0050, Z), // Accession Number
        (0x0008, 0x0090, Z), // Referring Physician's Name
        (0x0020, 0x0010, Z), // Study ID
        (0x0008, 0x0023, Z), // Content Date
        (0x0008, 0x0033, Z), // Content Time
        (0x0040, 0x2016, Z), // Placer Order Number / Imaging Service Request
        (0x0040, 0x2017, Z), // Filler Order Number / Imaging Service Request
        (0x0070, 0x0084, Z), // Content Creator's Name
        (0x0008, 0x0012, X), // Instance Creation Date
        (0x0008, 0x0013, X), // Instance Creation Time
        (0x0008, 0x0021, X), // Series Date
        (0x0008, 0x0022, X), // Acquisition Date
        (0x0008, 0x002A, X), // Acquisition DateTime
        (0x0008, 0x0031, X), // Series Time
        (0x0008, 0x0032, X), // Acquisition Time
        (0x0008, 0x0024, X), // Overlay Date
        (0x0008, 0x0025, X), // Curve Date
        (0x0008, 0x0034, X), // Overlay Time
        (0x0008, 0x0035, X), // Curve Time
        // Institution, staff, devices.
        (0x0008, 0x0080, X), // Institution Name
        (0x0008, 0x0081, X), // Institution Address
        (0x0008, 0x0082, X), // Institution Code Sequence
        (0x0008, 0x0092, X), // Referring Physician's Address
        (0x0008, 0x0094, X), // Referring Physician's Telephone Numbers
        (0x0008, 0x0096, X), // Referring Physician Identification Sequence
        (0x0008, 0x009C, X), // Consulting Physician's Name
        (0x0008, 0x009D, X), // Consulting Physician Identification Sequence
        (0x0008, 0x1010, X), // Station Name
        (0x0008, 0x1030, X), // Study Description
        (0x0008, 0x103E, X), // Series Description
        (0x0008, 0x1040, X), // Institutional Department Name
        (0x0008, 0x1048, X), // Physician(s) of Record
        (0x0008, 0x1049, X), // Physician(s) of Record Identification Sequence
        (0x0008, 0x1050, X), // Performing Physician's Name
        (0x0008, 0x1052, X), // Performing Physician Identification Sequence
        (0x0008, 0x1060, X), // Name of Physician(s) Reading Study
        (0x0008, 0x1062, X), // Physician(s) Reading Study Identification Sequence
        (0x0008, 0x1070, X), // Operators' Name
        (0x0008, 0x1072, X), // Operator Identification Sequence
        (0x0008, 0x1080, X), // Admitting Diagnoses Description
        (0x0008, 0x1084, X), // Admitting Diagnoses Code Sequence
        (0x0008, 0x1110, X), // Referenced Study Sequence
        (0x0008, 0x1111, X), // Referenced Performed Procedure Step Sequence
        (0x0008, 0x1120, X), // Referenced Patient Sequence
        (0x0008, 0x2111, X), // Derivation Description
        (0x0018, 0x1000, X), // Device Serial Number
        (0x0018, 0x1004, X), // Plate ID
        (0x0018, 0x1005, X), // Generator ID
        (0x0018, 0x1007, X), // Cassette ID
        (0x0018, 0x1008, X), // Gantry ID
        (0x0018, 0x1030, X), // Protocol Name
        (0x0018, 0x700A, X), // Detector ID
        (0x0018, 0x4000, X), // Acquisition Comments
        (0x0020, 0x4000, X), // Image Comments
        (0x0020, 0x9158, X), // Frame Comments
        // Patient.
        (0x0010, 0x0021, X), // Issuer of Patient ID
        (0x0010, 0x0030, Z), // Patient's Birth Date
        (0x0010, 0x0032, X), // Patient's Birth Time
        (0x0010, 0x0050, X), // Patient's Insurance Plan Code Sequence
        (0x0010, 0x1000, X), // Other Patient IDs
        (0x0010, 0x1001, X), // Other Patient Names
        (0x0010, 0x1002, X), // Other Patient IDs Sequence
        (0x0010, 0x1005, X), // Patient's Birth Name
        (0x0010, 0x1040, X), // Patient's Address
        (0x0010, 0x1060, X), // Patient's Mother's Birth Name
        (0x0010, 0x1080, X), // Military Rank
        (0x0010, 0x1081, X), // Branch of Service
        (0x0010, 0x1090, X), // Medical Record Locator
        (0x0010, 0x2000, X), // Medical Alerts
        (0x0010, 0x2110, X), // Allergies
        (0x0010, 0x2150, X), // Country of Residence
        (0x0010, 0x2152, X), // Region of Residence
        (0x0010, 0x2154, X), // Patient's Telephone Numbers
        (0x0010, 0x2160, X), // Ethnic Group
        (0x0010, 0x2180, X), // Occupation
        (0x0010, 0x21A0, X), // Smoking Status
        (0x0010, 0x21B0, X), // Additional Patient History
        (0x0010, 0x21C0, X), // Pregnancy Status
        (0x0010, 0x21D0, X), // Last Menstrual Date
        (0x0010, 0x21F0, X), // Patient's Religious Preference
        (0x0010, 0x2203, X), // Patient's Sex Neutered
        (0x0010, 0x2297, X), // Responsible Person
        (0x0010, 0x2299, X), // Responsible Organization
        (0x0010, 0x4000, X), // Patient Comments
        (0x0038, 0x0010, X), // Admission ID
        (0x0038, 0x0060, X), // Service Episode ID
        (0x0038, 0x0300, X), // Current Patient Location
        (0x0038, 0x0400, X), // Patient's Institution Residence
        (0x0038, 0x0500, X), // Patient State
        (0x0038, 0x4000, X), // Visit Comments
        // Requests and procedure steps.
        (0x0032, 0x1032, X), // Requesting Physician
        (0x0032, 0x1033, X), // Requesting Service
        (0x0032, 0x1060, X), // Requested Procedure Description
        (0x0032, 0x4000, X), // Study Comments
        (0x0040, 0x0006, X), // Scheduled Performing Physician's Name
        (0x0040, 0x0010, X), // Scheduled Station Name
        (0x0040, 0x0011, X), // Scheduled Procedure Step Location
        (0x0040, 0x0241, X), // Performed Station AE Title
        (0x0040, 0x0242, X), // Performed Station Name
        (0x0040, 0x0243, X), // Performed Location
        (0x0040, 0x0244, X), // Performed Procedure Step Start Date
        (0x0040, 0x0245, X), // Performed Procedure Step Start Time
        (0x0040, 0x0253, X), // Performed Procedure Step ID
        (0x0040, 0x0254, X), // Performed Procedure Step Description
        (0x0040, 0x0275, X), // Request Attributes Sequence
        (0x0040, 0x0280, X), // Comments on the Performed Procedure Step
        (0x0040, 0x1001, X), // Requested Procedure ID
        (0x0040, 0x1002, X), // Reason for the Requested Procedure
        (0x0040, 0x1400, X), // Requested Procedure Comments
        (0x0040, 0x2008, X), // Order Entered By
        (0x0040, 0x2009, X), // Order Enterer's Location
        (0x0040, 0x2010, X), // Order Callback Phone Number
        (0x0040, 0x2400, X), // Imaging Service Request Comments
        (0x0040, 0xA730, X), // Content Sequence
        (0x0400, 0x0561, X), // Original Attributes Sequence
        (0x4000, 0x0010, X), // Arbitrary
        (0x4000, 0x4000, X), // Text Comments
        (0x4008, 0x0114, X), // Physician Approving Interpretation
        (0xFFFA, 0xFFFA, X), // Digital Signatures Sequence
        (0xFFFC, 0xFFFC, X), // Data Set Trailing Padding
    ]
};

/// Patient characteristics that the Retain Patient Characteristics Option keeps.
const PATIENT_CHARACTERISTICS: &[(u16, u16)] = &[
    (0x0010, 0x0040), // Patient's Sex
    (0x0010, 0x1010), // Patient's Age
    (0x0010, 0x1020), // Patient's Size
    (0x0010, 0x1030), // Patient's Weight
];

fn action(tag: Tag, keep_characteristics: bool) -> Option<Action> {
    let Tag(group, element) = tag;
    // Private attributes (odd groups) are removed by the basic profile.
    if group % 2 == 1 {
        return Some(Action::X);
    }
    // Overlays (60xx,3000 data and 60xx,4000 comments) and curves (50xx,xxxx).
    if (0x6000..=0x60FF).contains(&group) && (element == 0x3000 || element == 0x4000) {
        return Some(Action::X);
    }
    if (0x5000..=0x50FF).contains(&group) {
        return Some(Action::X);
    }
    if PATIENT_CHARACTERISTICS.contains(&(group, element)) {
        return Some(if keep_characteristics {
            return None;
        } else if element == 0x0040 {
            Action::Z // Patient's Sex is type 2
        } else {
            Action::X
        });
    }
    PROFILE
        .iter()
        .find(|(g, e, _)| *g == group && *e == element)
        .map(|(_, _, a)| *a)
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct DeidOptions {
    /// The secret.
    pub key: Key,
    /// Retain Patient Characteristics Option.
    pub keep_patient_characteristics: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq)]
pub struct DeidReport {
    /// The pseudonym given to the patient.
    pub pseudonym: String,
    /// The file says Burned In Annotation = YES: text in the pixels is not removed.
    pub burned_in_annotation: bool,
    /// The file had no Patient ID; the pseudonym was derived from the Study Instance UID.
    pub missing_patient_id: bool,
}

type Element = DataElement<InMemDicomObject, dicom_object::mem::InMemFragment>;

fn clean(object: &InMemDicomObject, options: &DeidOptions) -> InMemDicomObject {
    let mut out = InMemDicomObject::new_empty();
    for element in object.iter() {
        let tag = element.tag();
        match action(tag, options.keep_patient_characteristics) {
            Some(Action::X) => {}
            Some(Action::Z) => {
                out.put(Element::new(tag, element.vr(), PrimitiveValue::Empty));
            }
            Some(Action::U) => match element.value() {
                Value::Primitive(_) => {
                    let text = element.to_str().unwrap_or_default();
                    let replaced: Vec<String> = text
                        .split('\\')
                        .map(|uid| uid.trim_matches(|c: char| c == '\0' || c == ' '))
                        .filter(|uid| !uid.is_empty())
                        .map(|uid| options.key.uid(uid))
                        .collect();
                    let value = if replaced.is_empty() {
                        PrimitiveValue::Empty
                    } else {
                        PrimitiveValue::Strs(replaced.into())
                    };
                    out.put(Element::new(tag, VR::UI, value));
                }
                _ => {}
            },
            None => match element.value() {
                Value::Sequence(sequence) => {
                    let items: Vec<InMemDicomObject> =
                        sequence.items().iter().map(|item| clean(item, options)).collect();
                    out.put(Element::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED)));
                }
                _ => {
                    out.put(element.clone());
                }
            },
        }
    }
    out
}

/// De-identifies `input` into `output` (written atomically; an existing output is replaced
/// only when `overwrite`).
pub fn deidentify_file(input: &Path, output: &Path, options: &DeidOptions, overwrite: bool) -> Result<DeidReport> {
    if output.exists() && !overwrite {
        return Err(Error::Option {
            path: output.to_path_buf(),
            reason: "output exists; pass --overwrite to replace it".into(),
        });
    }
    if input.canonicalize().ok() == output.canonicalize().ok() && output.exists() {
        return Err(Error::Option { path: output.to_path_buf(), reason: "output would replace the input".into() });
    }
    crate::prescan::check_file(input, false)?;
    let file = OpenFileOptions::new().open_file(input).map_err(|e| Error::parse(input, e))?;
    let burned_in_annotation = string(&file, tags::BURNED_IN_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    let patient_id = string(&file, tags::PATIENT_ID);
    let missing_patient_id = patient_id.is_none();
    let basis = patient_id
        .clone()
        .or_else(|| string(&file, tags::STUDY_INSTANCE_UID).map(|uid| format!("study:{uid}")))
        .unwrap_or_else(|| format!("file:{}", input.display()));
    let pseudonym = options.key.pseudonym(&basis);

    let mut meta = file.meta().clone();
    let mut object = clean(&file, options);
    object.put(Element::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from(pseudonym.as_str())));
    object.put(Element::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from(pseudonym.as_str())));
    object.put(Element::new(tags::PATIENT_IDENTITY_REMOVED, VR::CS, PrimitiveValue::from("YES")));
    object.put(Element::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from(format!("hipfrac {} PS3.15 Basic Profile, keyed pseudonyms", env!("CARGO_PKG_VERSION"))),
    ));
    object.put(Element::new(
        Tag(0x0028, 0x0303), // Longitudinal Temporal Information Modified
        VR::CS,
        PrimitiveValue::from("REMOVED"),
    ));
    let code = |value: &str, meaning: &str| {
        InMemDicomObject::from_element_iter([
            Element::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
            Element::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("DCM")),
            Element::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
        ])
    };
    let mut codes = vec![code("113100", "Basic Application Confidentiality Profile")];
    if options.keep_patient_characteristics {
        codes.push(code("113108", "Retain Patient Characteristics Option"));
    }
    object.put(Element::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(codes, Length::UNDEFINED),
    ));

    let new_sop_instance = string(&object, tags::SOP_INSTANCE_UID)
        .unwrap_or_else(|| options.key.uid(&meta.media_storage_sop_instance_uid));
    meta.media_storage_sop_instance_uid = new_sop_instance;
    meta.source_application_entity_title = None;
    meta.sending_application_entity_title = None;
    meta.receiving_application_entity_title = None;
    meta.private_information_creator_uid = None;
    meta.private_information = None;
    meta.update_information_group_length();
    let out = object.with_exact_meta(meta);
    write_atomic_with(output, |writer| out.write_all(writer).map_err(std::io::Error::other))?;
    Ok(DeidReport { pseudonym, burned_in_annotation, missing_patient_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_and_uids_are_keyed_and_stable() {
        let a = Key::from_bytes(&[1; 32]).unwrap();
        let b = Key::from_bytes(&[2; 32]).unwrap();
        assert_eq!(a.pseudonym("12345"), a.pseudonym("12345 "));
        assert_ne!(a.pseudonym("12345"), b.pseudonym("12345"));
        assert_ne!(a.pseudonym("12345"), a.pseudonym("12346"));
        let uid = a.uid("1.2.840.113619.2.1");
        assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
        assert!(uid[5..].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(uid, a.uid("1.2.840.113619.2.1\0"));
        assert!(Key::from_bytes(&[0; 8]).is_none());
    }

    #[test]
    fn profile_actions() {
        assert_eq!(action(tags::PATIENT_BIRTH_DATE, false), Some(Action::Z));
        assert_eq!(action(tags::INSTITUTION_NAME, false), Some(Action::X));
        assert_eq!(action(tags::SOP_INSTANCE_UID, false), Some(Action::U));
        assert_eq!(action(Tag(0x0009, 0x0010), false), Some(Action::X));
        assert_eq!(action(Tag(0x6000, 0x3000), false), Some(Action::X));
        assert_eq!(action(tags::PATIENT_AGE, false), Some(Action::X));
        assert_eq!(action(tags::PATIENT_AGE, true), None);
        assert_eq!(action(tags::SOP_CLASS_UID, false), None);
        assert_eq!(action(tags::PIXEL_DATA, false), None);
    }
}
