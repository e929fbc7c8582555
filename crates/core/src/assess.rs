//! Whether a radiograph is one the detector may answer at all.
//!
//! The detector learned AP radiographs of the hip and pelvis. Shown anything else (a chest
//! film, a lateral hip, a CT slice, a test pattern) it still finds the boxes it finds best, and
//! "no visible fracture" on a chest film is an answer no one should read. So before the
//! network runs, the header is checked, and an image it rules out gets the answer
//! *not assessable* with the reason, never a verdict.
//!
//! The header rule ([`check_header`]), each step only where the attribute is present and
//! not empty. A PNG has no header, and a DICOM file may leave Body Part Examined and View
//! Position empty: such images pass unverified ([`header_verified`] says so, and the record
//! carries it). A two-stage model (hip localiser, then the fracture detector on each hip)
//! also checks the pixels: an image where the localiser finds no proximal femur is not
//! assessable ([`AbstentionSource::Image`]; `hipfrac_infer::Predictor::predict_batch`). A
//! single-stage model has no image-based check.
//! 1. **SOP Class**: Computed Radiography, Digital X-Ray *for presentation*, or a Secondary
//!    Capture (a scanned film, when step 3 holds). DX *for processing* is raw detector data,
//!    not the image a reader sees; every other class (CT, MR, mammography, intra-oral,
//!    angiography, ultrasound…) is not a radiograph of this kind.
//! 2. **Modality**: CR, DX or RG (radiographic imaging); OT and SC only as in step 3.
//! 3. **Secondary Capture** (its SOP class, or Modality OT/SC): only when Body Part Examined
//!    names an accepted body part. Test patterns, screenshots and documents say nothing of
//!    the kind and are refused.
//! 4. **Body Part Examined**: one of [`Acceptance::body_parts`] (by default the six of
//!    [`DEFAULT_BODY_PARTS`]: HIP, PELVIS, FEMUR, HIP JOINT, HIPS, BOTH HIPS; compared ignoring
//!    case, spaces and underscores). Archives that name hips in their own words (HUEFTE,
//!    BECKEN, …) add them (`--accept-body-part`).
//! 5. **View Position**: AP or PA. A lateral or oblique view is not the paper's view.

use crate::RadiographMeta;
use serde::{Deserialize, Serialize};

/// Why an image gets no verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAssessable {
    /// What ruled it out, in a sentence a reader understands.
    pub reason: String,
    pub source: AbstentionSource,
}

/// What looked at the image and refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbstentionSource {
    /// The DICOM header ([`check_header`]).
    Header,
    /// The pixels (no proximal femur found).
    Image,
}

impl AbstentionSource {
    pub fn name(self) -> &'static str {
        match self {
            AbstentionSource::Header => "header",
            AbstentionSource::Image => "image",
        }
    }
}

/// What the header check lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    /// Accepted Body Part Examined values, in [`normalise`]d form.
    pub body_parts: Vec<String>,
}

impl Default for Acceptance {
    fn default() -> Self {
        Acceptance {
            body_parts: DEFAULT_BODY_PARTS.iter().map(|s| normalise(s)).collect(),
        }
    }
}

impl Acceptance {
    /// The defaults plus `extra` body parts (as a user typed them).
    pub fn with_body_parts<S: AsRef<str>>(extra: &[S]) -> Self {
        let mut acceptance = Acceptance::default();
        for part in extra {
            let part = normalise(part.as_ref());
            if !part.is_empty() && !acceptance.body_parts.contains(&part) {
                acceptance.body_parts.push(part);
            }
        }
        acceptance
    }

    fn accepts_body_part(&self, value: &str) -> bool {
        self.body_parts.contains(&normalise(value))
    }
}

/// Body Part Examined values (PS3.16 CID 4031, and common spellings) of radiographs that show
/// the proximal femur.
pub const DEFAULT_BODY_PARTS: [&str; 6] = ["HIP", "PELVIS", "FEMUR", "HIP JOINT", "HIPS", "BOTH HIPS"];

/// True when the header says what the image shows (Body Part Examined or View Position
/// present): an image that passes [`check_header`] without either passed unverified.
pub fn header_verified(meta: &RadiographMeta) -> bool {
    present(&meta.body_part).is_some() || present(&meta.view_position).is_some()
}

/// Upper case, spaces and underscores dropped: "Hip joint" and "HIP_JOINT" are "HIPJOINT".
pub fn normalise(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_uppercase)
        .collect()
}

const CR: &str = "1.2.840.10008.5.1.4.1.1.1";
const DX_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.1.1";
const DX_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.1.1.1";
/// Secondary Capture and its multi-frame greyscale forms (single-frame content only reaches here).
const SECONDARY_CAPTURE: [&str; 3] = [
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
];

/// Names of storage SOP classes a user is likely to send by mistake.
fn sop_class_name(uid: &str) -> Option<&'static str> {
    Some(match uid {
        "1.2.840.10008.5.1.4.1.1.1.2" | "1.2.840.10008.5.1.4.1.1.1.2.1" => "Digital Mammography X-Ray",
        "1.2.840.10008.5.1.4.1.1.1.3" | "1.2.840.10008.5.1.4.1.1.1.3.1" => "Digital Intra-Oral X-Ray",
        "1.2.840.10008.5.1.4.1.1.2" | "1.2.840.10008.5.1.4.1.1.2.1" => "CT",
        "1.2.840.10008.5.1.4.1.1.4" | "1.2.840.10008.5.1.4.1.1.4.1" => "MR",
        "1.2.840.10008.5.1.4.1.1.6.1" => "Ultrasound",
        "1.2.840.10008.5.1.4.1.1.12.1" => "X-Ray Angiographic",
        "1.2.840.10008.5.1.4.1.1.12.2" => "X-Ray Radiofluoroscopic",
        "1.2.840.10008.5.1.4.1.1.13.1.1" | "1.2.840.10008.5.1.4.1.1.13.1.3" => "Breast Tomosynthesis / X-Ray 3D",
        "1.2.840.10008.5.1.4.1.1.20" => "Nuclear Medicine",
        "1.2.840.10008.5.1.4.1.1.128" => "PET",
        "1.2.840.10008.5.1.4.1.1.77.1.4" => "VL Photographic",
        _ => return None,
    })
}

/// Modalities of projection radiographs.
const RADIOGRAPHY: [&str; 3] = ["CR", "DX", "RG"];

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Applies the header rule of this module; `Err` says why the image is not assessed.
pub fn check_header(meta: &RadiographMeta, acceptance: &Acceptance) -> Result<(), NotAssessable> {
    let refuse = |reason: String| {
        Err(NotAssessable {
            reason,
            source: AbstentionSource::Header,
        })
    };
    let body_part = present(&meta.body_part);
    let sop_class = present(&meta.sop_class_uid);
    let modality = present(&meta.modality).map(str::to_ascii_uppercase);
    let accepted_parts = || acceptance.body_parts.join(", ");
    let mut secondary_capture = false;
    match sop_class {
        None | Some(CR) | Some(DX_PRESENTATION) => {}
        Some(DX_PROCESSING) => {
            return refuse(
                "a Digital X-Ray image for processing (raw detector data); send the image for presentation".into(),
            )
        }
        Some(uid) if SECONDARY_CAPTURE.contains(&uid) => secondary_capture = true,
        Some(uid) => {
            let what = sop_class_name(uid).map_or_else(
                || format!("SOP class {uid}"),
                |name| format!("a {name} image (SOP class {uid})"),
            );
            return refuse(format!("{what} is not a projection radiograph"));
        }
    }
    match modality.as_deref() {
        None => {}
        Some(m) if RADIOGRAPHY.contains(&m) => {}
        Some("OT") | Some("SC") => secondary_capture = true,
        Some(m) => return refuse(format!("Modality {m} is not radiography (CR, DX or RG)")),
    }
    match body_part {
        Some(part) if !acceptance.accepts_body_part(part) => {
            return refuse(format!(
                "Body Part Examined is {part}, not one of {}; the detector reads AP hip and pelvis radiographs",
                accepted_parts()
            ));
        }
        None if secondary_capture => {
            return refuse(format!(
                "a secondary capture (Modality {}) that does not name its body part; only captures of a {} radiograph are assessed",
                modality.as_deref().unwrap_or("not given"),
                accepted_parts()
            ));
        }
        _ => {}
    }
    if let Some(view) = present(&meta.view_position) {
        if !matches!(view.to_ascii_uppercase().as_str(), "AP" | "PA") {
            return refuse(format!(
                "View Position is {view}, not AP or PA; the detector reads anteroposterior views"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(sop: Option<&str>, modality: Option<&str>, body: Option<&str>, view: Option<&str>) -> RadiographMeta {
        let mut m = RadiographMeta::plain(10, 10, 8);
        m.sop_class_uid = sop.map(Into::into);
        m.modality = modality.map(Into::into);
        m.body_part = body.map(Into::into);
        m.view_position = view.map(Into::into);
        m
    }

    fn check(m: &RadiographMeta) -> Result<(), String> {
        check_header(m, &Acceptance::default()).map_err(|n| n.reason)
    }

    #[test]
    fn hips_and_files_without_a_header_pass() {
        assert_eq!(check(&RadiographMeta::plain(10, 10, 8)), Ok(()));
        assert_eq!(check(&meta(Some(CR), Some("CR"), Some("HIP"), None)), Ok(()));
        assert_eq!(
            check(&meta(Some(DX_PRESENTATION), Some("dx"), Some("Pelvis"), Some("AP"))),
            Ok(())
        );
        assert_eq!(
            check(&meta(Some(CR), Some("CR"), Some("  "), Some(""))),
            Ok(()),
            "empty values say nothing"
        );
        // A scanned hip film.
        assert_eq!(
            check(&meta(Some(SECONDARY_CAPTURE[0]), Some("OT"), Some("HIP"), None)),
            Ok(())
        );
    }

    #[test]
    fn other_body_parts_views_and_modalities_are_refused_with_the_reason() {
        let chest = check(&meta(Some(CR), Some("CR"), Some("CHEST"), Some("PA"))).unwrap_err();
        assert!(chest.contains("Body Part Examined is CHEST"), "{chest}");
        let lateral = check(&meta(Some(CR), Some("CR"), Some("HIP"), Some("LL"))).unwrap_err();
        assert!(lateral.contains("View Position is LL"), "{lateral}");
        let ct = check(&meta(Some("1.2.840.10008.5.1.4.1.1.2"), Some("CT"), Some("HIP"), None)).unwrap_err();
        assert!(ct.contains("a CT image"), "{ct}");
        let mr = check(&meta(None, Some("MR"), Some("HIP"), None)).unwrap_err();
        assert!(mr.contains("Modality MR"), "{mr}");
        let raw = check(&meta(Some(DX_PROCESSING), Some("DX"), Some("HIP"), None)).unwrap_err();
        assert!(raw.contains("for processing"), "{raw}");
        let pattern = check(&meta(Some(SECONDARY_CAPTURE[0]), Some("OT"), None, None)).unwrap_err();
        assert!(pattern.contains("secondary capture"), "{pattern}");
        let unknown = check(&meta(Some("1.2.3.4"), None, None, None)).unwrap_err();
        assert!(unknown.contains("SOP class 1.2.3.4"), "{unknown}");
    }

    #[test]
    fn an_archive_may_name_its_hips_in_its_own_words() {
        let m = meta(Some(CR), Some("CR"), Some("Hüfte links"), Some("AP"));
        assert!(check(&m).is_err());
        let acceptance = Acceptance::with_body_parts(&["HÜFTE_LINKS", "becken"]);
        assert_eq!(check_header(&m, &acceptance), Ok(()));
        assert_eq!(normalise("hip joint"), "HIPJOINT");
        assert_eq!(check(&meta(Some(CR), Some("CR"), Some("Hip joint"), None)), Ok(()));
        assert!(header_verified(&meta(None, Some("CR"), Some("HIP"), None)));
        assert!(!header_verified(&meta(Some(CR), Some("CR"), None, Some(" "))));
    }
}
