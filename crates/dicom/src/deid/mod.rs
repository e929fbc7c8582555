//! De-identification after the DICOM PS3.15 Basic Application Level Confidentiality Profile
//! (Annex E), driven by Table E.1-1 held as data ([`table`], edition [`EDITION`]).
//!
//! * Each attribute the table lists is removed (X), emptied (Z), given a dummy value (D) or
//!   a keyed UID (U), at every nesting level; where a cell offers a choice hipfrac takes the
//!   strictest the IOD allows ([`table::decide`]). Private attributes, curves and overlay
//!   data and comments are removed (rows of the table too). Attributes the table does not
//!   list are kept, as the profile says.
//! * Options that keep attributes (Retain UIDs, Device Identity, Institution Identity,
//!   Patient Characteristics, Longitudinal Full Dates) follow their K cells; Retain
//!   Longitudinal Temporal Information with Modified Dates follows its C cells by moving each
//!   patient's dates by the same keyed number of days ([`date_shift_days`]). The options in
//!   force are recorded in the De-identification Method Code Sequence.
//! * Patient ID and Patient's Name become one pseudonym, `HF` + 16 hex digits of
//!   HMAC-SHA256(key, Patient ID): the same patient keeps the same pseudonym in every file
//!   de-identified with the same key, so patient-level splits still work, and nobody without
//!   the key can recompute it.
//! * Every replaced UID becomes `2.25.<128 bits of HMAC-SHA256(key, UID)>`: consistent across
//!   files (a series stays a series), and a valid UID.
//! * Pixel Data is carried over untouched (byte-identical, encapsulated fragments included).
//! * Patient Identity Removed = YES, De-identification Method and its code sequence
//!   (DCM 113100 and one code per option) are recorded; [`DeidReport::changes`] lists what
//!   was done to each attribute.

use crate::atomic::write_atomic_with;
use crate::read::string;
use crate::{Error, Result};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
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

    pub(crate) fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
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

pub mod records;
pub mod table;

pub use table::{Action, ProfileOption, EDITION};

/// Options of one run.
#[derive(Debug, Clone)]
pub struct DeidOptions {
    /// The secret.
    pub key: Key,
    /// The profile's options in force (see [`ProfileOption::is_supported`]).
    pub options: Vec<ProfileOption>,
}

impl DeidOptions {
    /// Days to shift dates by for `patient`, when the modified-dates option is on.
    fn shift(&self, patient: &str) -> Option<i64> {
        self.options
            .contains(&ProfileOption::RetainLongModifiedDates)
            .then(|| date_shift_days(&self.key, patient))
    }
}

impl ProfileOption {
    /// Whether hipfrac implements the option. It implements those that keep attributes (K)
    /// and the modified-dates option, whose clean (C) is a keyed per-patient date shift; the
    /// other cleaning options (safe private attributes, descriptors, structured content,
    /// graphics) need a judgement of content that it does not make.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            ProfileOption::RetainUids
                | ProfileOption::RetainDeviceIdentity
                | ProfileOption::RetainInstitutionIdentity
                | ProfileOption::RetainPatientCharacteristics
                | ProfileOption::RetainLongFullDates
                | ProfileOption::RetainLongModifiedDates
        )
    }
}

/// The whole days a patient's dates move under the modified-dates option: 1 to 3,650 days
/// into the past, from HMAC(key, patient) — the same for every file of the patient (so
/// intervals are kept exactly), unguessable without the key.
pub fn date_shift_days(key: &Key, patient: &str) -> i64 {
    let digest = key.mac("dateshift", patient.trim());
    -(1 + (u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 3650) as i64)
}

/// A DA, DT or TM value with its dates moved by `days` (times of day unchanged); `None` when
/// a value does not parse as its VR (it is then removed).
fn shift_dates(text: &str, vr: VR, days: i64) -> Option<String> {
    let shift_date = |date: &str| -> Option<String> {
        let day = chrono::NaiveDate::parse_from_str(date.get(..8)?, "%Y%m%d").ok()?;
        Some((day + chrono::Duration::days(days)).format("%Y%m%d").to_string())
    };
    let values: Option<Vec<String>> = text
        .split('\\')
        .map(|v| v.trim_matches(|c: char| c == '\0' || c == ' '))
        .filter(|v| !v.is_empty())
        .map(|v| match vr {
            VR::TM => Some(v.to_string()),
            VR::DA if v.len() == 8 => shift_date(v),
            // DT: the date part moves, the time and offset stay.
            VR::DT if v.len() >= 8 => Some(format!("{}{}", shift_date(v)?, &v[8..])),
            _ => None,
        })
        .collect();
    values.map(|v| v.join("\\"))
}

/// What was done to one attribute of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Where: `(GGGG,EEEE)` at the top level, `(0040,0275)[1]/(0040,0009)` in a sequence item
    /// (items counted from 1).
    pub path: String,
    pub tag: Tag,
    /// The table's name of the attribute.
    pub name: &'static str,
    pub action: Action,
    /// The table's cell that decided it (e.g. `X/Z/D`, or the option that kept it).
    pub rule: String,
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
    /// Every attribute the profile acted on, in file order.
    pub changes: Vec<Change>,
    /// The Patient ID as it was (for the linking table; never written into the output).
    pub original_patient_id: Option<String>,
    /// Days the dates moved (modified-dates option).
    pub date_shift_days: Option<i64>,
}

type Element = DataElement<InMemDicomObject, dicom_object::mem::InMemFragment>;

fn tag_text(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.0, tag.1)
}

/// A non-zero-length dummy value for `vr` (action D); `None` for a sequence (its items are
/// cleaned instead).
fn dummy(vr: VR) -> Option<PrimitiveValue> {
    Some(match vr {
        VR::SQ => return None,
        VR::PN => PrimitiveValue::from("ANONYMOUS"),
        VR::DA => PrimitiveValue::from("19000101"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::AS => PrimitiveValue::from("000Y"),
        VR::IS | VR::DS => PrimitiveValue::from("0"),
        VR::US => PrimitiveValue::from(0_u16),
        VR::SS => PrimitiveValue::from(0_i16),
        VR::UL => PrimitiveValue::from(0_u32),
        VR::SL => PrimitiveValue::from(0_i32),
        VR::UV => PrimitiveValue::from(0_u64),
        VR::SV => PrimitiveValue::from(0_i64),
        VR::FL => PrimitiveValue::from(0_f32),
        VR::FD => PrimitiveValue::from(0_f64),
        VR::AT => PrimitiveValue::Tags(std::iter::once(Tag(0, 0)).collect()),
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN => PrimitiveValue::U8([0, 0].into()),
        _ => PrimitiveValue::from("REMOVED"),
    })
}

/// The attribute's UIDs replaced by keyed ones.
fn replace_uids(element: &Element, key: &Key) -> PrimitiveValue {
    let text = element.to_str().unwrap_or_default();
    let replaced: Vec<String> = text
        .split('\\')
        .map(|uid| uid.trim_matches(|c: char| c == '\0' || c == ' '))
        .filter(|uid| !uid.is_empty())
        .map(|uid| key.uid(uid))
        .collect();
    if replaced.is_empty() {
        PrimitiveValue::Empty
    } else {
        PrimitiveValue::Strs(replaced.into())
    }
}

fn clean(
    object: &InMemDicomObject,
    sop_class: &str,
    options: &DeidOptions,
    shift: Option<i64>,
    at: &str,
    changes: &mut Vec<Change>,
) -> InMemDicomObject {
    let table = table::Table::get();
    let mut out = InMemDicomObject::new_empty();
    for element in object.iter() {
        let tag = element.tag();
        let path = format!("{at}{}", tag_text(tag));
        let decided = table.rule(tag).map(|rule| {
            // Type 2 applies to the data set's own attributes, not to those inside items.
            let type_2 = at.is_empty() && table::is_type_2(tag, sop_class);
            (rule.name, table::decide(rule, &options.options, type_2))
        });
        let mut action = decided.as_ref().map(|(_, (action, _))| *action);
        // A clean (date shift) that cannot be made removes the attribute instead.
        let shifted = match (action, shift) {
            (Some(Action::Clean), Some(days)) => element
                .to_str()
                .ok()
                .and_then(|text| shift_dates(&text, element.vr(), days)),
            _ => None,
        };
        if action == Some(Action::Clean) && shifted.is_none() {
            action = Some(Action::Remove);
        }
        if let Some((name, (_, rule))) = decided {
            changes.push(Change {
                path: path.clone(),
                tag,
                name,
                action: action.expect("decided"),
                rule,
            });
        }
        let kept: Option<Element> = match action {
            Some(Action::Remove) => None,
            Some(Action::Clean) => Some(Element::new(
                tag,
                element.vr(),
                PrimitiveValue::from(shifted.clone().expect("a shifted value")),
            )),
            // An emptied sequence has no items (type 2: present, zero length).
            Some(Action::Empty) if element.vr() == VR::SQ => Some(Element::new(
                tag,
                VR::SQ,
                DataSetSequence::new(Vec::<InMemDicomObject>::new(), Length::defined(0)),
            )),
            Some(Action::Empty) => Some(Element::new(tag, element.vr(), PrimitiveValue::Empty)),
            Some(Action::Uid) if element.vr() != VR::SQ => {
                Some(Element::new(tag, VR::UI, replace_uids(element, &options.key)))
            }
            Some(Action::Dummy) if element.vr() == VR::UI => {
                Some(Element::new(tag, VR::UI, replace_uids(element, &options.key)))
            }
            Some(Action::Dummy) if element.vr() != VR::SQ => Some(Element::new(
                tag,
                element.vr(),
                dummy(element.vr()).expect("not a sequence"),
            )),
            // Kept, not in the table, or a sequence replaced by its cleaned items (D, U*):
            // the profile applies again inside every item.
            _ => match element.value() {
                Value::Sequence(sequence) => {
                    let items: Vec<InMemDicomObject> = sequence
                        .items()
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            clean(item, sop_class, options, shift, &format!("{path}[{}]/", i + 1), changes)
                        })
                        .collect();
                    Some(Element::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::new(items, Length::UNDEFINED),
                    ))
                }
                _ => Some(element.clone()),
            },
        };
        if let Some(element) = kept {
            out.put(element);
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
        return Err(Error::Option {
            path: output.to_path_buf(),
            reason: "output would replace the input".into(),
        });
    }
    if options.options.contains(&ProfileOption::RetainLongFullDates)
        && options.options.contains(&ProfileOption::RetainLongModifiedDates)
    {
        return Err(Error::Option {
            path: input.to_path_buf(),
            reason: "full dates and modified dates exclude each other".into(),
        });
    }
    if let Some(option) = options.options.iter().find(|o| !o.is_supported()) {
        return Err(Error::Option {
            path: input.to_path_buf(),
            reason: format!(
                "{} is not implemented (it cleans content hipfrac cannot judge)",
                option.code().1
            ),
        });
    }
    crate::prescan::check_file(input, false)?;
    let file = crate::checks::guarded(|| OpenFileOptions::new().open_file(input))
        .map_err(|crate::checks::Panicked(panic)| Error::parse(input, crate::error::ParseFault::Panic(panic)))?
        .map_err(|e| Error::parse(input, e))?;
    let burned_in_annotation = string(&file, tags::BURNED_IN_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    let patient_id = string(&file, tags::PATIENT_ID);
    let missing_patient_id = patient_id.is_none();
    let basis = patient_id
        .clone()
        .or_else(|| string(&file, tags::STUDY_INSTANCE_UID).map(|uid| format!("study:{uid}")))
        .unwrap_or_else(|| format!("file:{}", input.display()));
    let pseudonym = options.key.pseudonym(&basis);

    let mut meta = file.meta().clone();
    let mut changes = Vec::new();
    let date_shift_days = options.shift(&basis);
    let sop_class = file
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let mut object = clean(&file, &sop_class, options, date_shift_days, "", &mut changes);
    // Patient ID (Z/D) and Patient's Name (Z) get the keyed pseudonym: a dummy value that keeps
    // patient-level splits possible.
    for (tag, name) in [(tags::PATIENT_ID, "Patient ID"), (tags::PATIENT_NAME, "Patient's Name")] {
        let rule = table::Table::get().rule(tag).map_or("", |r| r.basic_cell);
        changes.retain(|c| c.path != tag_text(tag));
        changes.push(Change {
            path: tag_text(tag),
            tag,
            name,
            action: Action::Dummy,
            rule: format!("{rule} (keyed pseudonym)"),
        });
    }
    object.put(Element::new(
        tags::PATIENT_ID,
        VR::LO,
        PrimitiveValue::from(pseudonym.as_str()),
    ));
    object.put(Element::new(
        tags::PATIENT_NAME,
        VR::PN,
        PrimitiveValue::from(pseudonym.as_str()),
    ));
    object.put(Element::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    let mut method = format!(
        "hipfrac {} PS3.15 {EDITION} Basic Profile, keyed pseudonyms",
        env!("CARGO_PKG_VERSION")
    );
    for option in &options.options {
        method.push_str(", ");
        method.push_str(option.code().1);
    }
    object.put(Element::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from(method),
    ));
    let temporal = if options.options.contains(&ProfileOption::RetainLongFullDates) {
        "UNMODIFIED"
    } else if date_shift_days.is_some() {
        "MODIFIED"
    } else {
        "REMOVED"
    };
    object.put(Element::new(
        Tag(0x0028, 0x0303), // Longitudinal Temporal Information Modified
        VR::CS,
        PrimitiveValue::from(temporal),
    ));
    let code = |value: &str, meaning: &str| {
        InMemDicomObject::from_element_iter([
            Element::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
            Element::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, PrimitiveValue::from("DCM")),
            Element::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
        ])
    };
    let mut codes = vec![code("113100", "Basic Application Confidentiality Profile")];
    codes.extend(options.options.iter().map(|o| code(o.code().0, o.code().1)));
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
    let uids_kept = options.options.contains(&ProfileOption::RetainUids);
    changes.push(Change {
        path: "(0002,0003)".into(),
        tag: tags::MEDIA_STORAGE_SOP_INSTANCE_UID,
        name: "Media Storage SOP Instance UID",
        action: if uids_kept { Action::Keep } else { Action::Uid },
        rule: if uids_kept {
            "K (Retain UIDs Option)".into()
        } else {
            "U".into()
        },
    });
    Ok(DeidReport {
        pseudonym,
        burned_in_annotation,
        missing_patient_id,
        changes,
        original_patient_id: patient_id,
        date_shift_days,
    })
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
}
