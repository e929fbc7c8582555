//! The five labels of the paper (Bone Joint J 2025;107-B(2):213–220, Table I).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the four fracture types the detector draws boxes for.
///
/// The index order (DF, VF, SF, UF) is the class index of the detector's output and of YOLO
/// and COCO exports; it follows the row order of the paper's Table II.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FractureClass {
    /// Displaced femoral-neck fracture (Garden III/IV).
    #[serde(rename = "DF")]
    DisplacedNeck,
    /// Valgus-impacted femoral-neck fracture (Garden I/II).
    #[serde(rename = "VF")]
    ValgusImpactedNeck,
    /// Stable intertrochanteric fracture (Evans I / AO 31-A1).
    #[serde(rename = "SF")]
    StableIntertrochanteric,
    /// Unstable intertrochanteric fracture (Evans II / AO 31-A2/A3).
    #[serde(rename = "UF")]
    UnstableIntertrochanteric,
}

impl FractureClass {
    /// All classes in index order.
    pub const ALL: [FractureClass; 4] = [
        FractureClass::DisplacedNeck,
        FractureClass::ValgusImpactedNeck,
        FractureClass::StableIntertrochanteric,
        FractureClass::UnstableIntertrochanteric,
    ];

    /// Class index used by the detector, YOLO txt and COCO category ids (COCO adds 1).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class with this index, if any.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// The two-letter code used in the paper (DF, VF, SF, UF).
    pub fn code(self) -> &'static str {
        Label::from(self).code()
    }

    /// The full name, as the paper writes it.
    pub fn full_name(self) -> &'static str {
        Label::from(self).full_name()
    }
}

impl fmt::Display for FractureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An image-level or box-level label: a fracture type or "no visible fracture".
///
/// Serialised as its code (`"DF"`, …, `"none"`); parsed from any accepted spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// A fracture of one of the four types.
    Fracture(FractureClass),
    /// No visible fracture (normal hip, previous surgery, poor quality, or out of scope).
    /// Such images carry no box.
    NoFracture,
    /// A fracture whose type the annotation does not give (FracAtlas and most public sets
    /// label only "fractured"): one of the four types, unknown which. Code `fracture`. A box
    /// with it trains as a partial label (the detector is taught "a fracture here", never a
    /// type), and evaluation counts it in the any-fracture measures only. hipfrac's own
    /// verdicts never use it.
    UntypedFracture,
}

impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl From<FractureClass> for Label {
    fn from(c: FractureClass) -> Self {
        Label::Fracture(c)
    }
}

/// Names accepted for each label, compared case-insensitively with `_`, `-` and runs of
/// spaces folded to one space. The first entry is the code, the second the full name.
const NAMES: [(Label, &[&str]); 6] = [
    (
        Label::Fracture(FractureClass::DisplacedNeck),
        &[
            "DF",
            "displaced femoral neck fracture",
            "displaced femur neck fracture",
            "displaced femoral neck",
            "displaced femur neck",
            "displaced",
            "garden iii/iv",
            "garden 3/4",
        ],
    ),
    (
        Label::Fracture(FractureClass::ValgusImpactedNeck),
        &[
            "VF",
            "valgus-impacted femoral neck fracture",
            "valgus impacted femur neck fracture",
            "valgus impacted femoral neck",
            "valgus impacted femur neck",
            "valgus impacted",
            "valgus",
            "garden i/ii",
            "garden 1/2",
        ],
    ),
    (
        Label::Fracture(FractureClass::StableIntertrochanteric),
        &[
            "SF",
            "stable intertrochanteric fracture",
            "stable intertrochanteric",
            "stable",
            "evans i",
            "ao 31-a1",
        ],
    ),
    (
        Label::Fracture(FractureClass::UnstableIntertrochanteric),
        &[
            "UF",
            "unstable intertrochanteric fracture",
            "unstable intertrochanteric",
            "unstable",
            "evans ii",
            "ao 31-a2/a3",
        ],
    ),
    (
        Label::NoFracture,
        &[
            "none",
            "no visible fracture",
            "no visible fractures",
            "no fracture",
            "normal",
            "no",
            "nf",
        ],
    ),
    (
        Label::UntypedFracture,
        &[
            "fracture",
            "fracture of unknown type",
            "fracture type unknown",
            "fractured",
            "any fracture",
            "fx",
        ],
    ),
];

fn fold(name: &str) -> String {
    let lowered = name.trim().to_lowercase().replace(['_', '-'], " ");
    lowered.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Label {
    /// All five labels: the four fracture classes in index order, then "no visible fracture".
    pub const ALL: [Label; 5] = [
        Label::Fracture(FractureClass::DisplacedNeck),
        Label::Fracture(FractureClass::ValgusImpactedNeck),
        Label::Fracture(FractureClass::StableIntertrochanteric),
        Label::Fracture(FractureClass::UnstableIntertrochanteric),
        Label::NoFracture,
    ];

    /// Every label a truth may carry: [`Label::ALL`] and then a fracture of unknown type, in
    /// [`Label::index`] order.
    pub const EVERY: [Label; 6] = [
        Label::Fracture(FractureClass::DisplacedNeck),
        Label::Fracture(FractureClass::ValgusImpactedNeck),
        Label::Fracture(FractureClass::StableIntertrochanteric),
        Label::Fracture(FractureClass::UnstableIntertrochanteric),
        Label::NoFracture,
        Label::UntypedFracture,
    ];

    /// Short code: DF, VF, SF, UF, `none` or `fracture` (type unknown).
    pub fn code(self) -> &'static str {
        match self {
            Label::Fracture(FractureClass::DisplacedNeck) => "DF",
            Label::Fracture(FractureClass::ValgusImpactedNeck) => "VF",
            Label::Fracture(FractureClass::StableIntertrochanteric) => "SF",
            Label::Fracture(FractureClass::UnstableIntertrochanteric) => "UF",
            Label::NoFracture => "none",
            Label::UntypedFracture => "fracture",
        }
    }

    /// Full name as a surgeon would write it.
    pub fn full_name(self) -> &'static str {
        match self {
            Label::Fracture(FractureClass::DisplacedNeck) => "displaced femoral-neck fracture",
            Label::Fracture(FractureClass::ValgusImpactedNeck) => "valgus-impacted femoral-neck fracture",
            Label::Fracture(FractureClass::StableIntertrochanteric) => "stable intertrochanteric fracture",
            Label::Fracture(FractureClass::UnstableIntertrochanteric) => "unstable intertrochanteric fracture",
            Label::NoFracture => "no visible fracture",
            Label::UntypedFracture => "fracture of unknown type",
        }
    }

    /// Every accepted spelling (code, full name, aliases), for help texts.
    pub fn aliases(self) -> &'static [&'static str] {
        NAMES
            .iter()
            .find(|(label, _)| *label == self)
            .map(|(_, names)| *names)
            .expect("every label should have a NAMES entry")
    }

    /// Position in [`Label::ALL`]: the class index for fractures, 4 for "no visible fracture",
    /// 5 for a fracture of unknown type (not in `ALL`: the paper's tables have no row for it).
    pub fn index(self) -> usize {
        match self {
            Label::Fracture(class) => class.index(),
            Label::NoFracture => 4,
            Label::UntypedFracture => 5,
        }
    }

    /// The fracture type, or `None` for "no visible fracture" and for a fracture of unknown
    /// type (see [`Label::is_fracture`]).
    pub fn fracture(self) -> Option<FractureClass> {
        match self {
            Label::Fracture(c) => Some(c),
            Label::NoFracture | Label::UntypedFracture => None,
        }
    }

    /// True for any fracture, typed or not.
    pub fn is_fracture(self) -> bool {
        !matches!(self, Label::NoFracture)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A label name that matches none of the known spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown label {name:?} (expected one of DF, VF, SF, UF, none, fracture (type unknown), or a full name such as \"displaced femoral neck fracture\")")]
pub struct ParseLabelError {
    /// The name as it was given.
    pub name: String,
}

impl FromStr for Label {
    type Err = ParseLabelError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let folded = fold(name);
        NAMES
            .iter()
            .find(|(_, names)| names.iter().any(|n| fold(n) == folded))
            .map(|(label, _)| *label)
            .ok_or_else(|| ParseLabelError { name: name.to_string() })
    }
}

impl FromStr for FractureClass {
    type Err = ParseLabelError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        name.parse::<Label>()?
            .fracture()
            .ok_or_else(|| ParseLabelError { name: name.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_full_names_and_aliases_parse() {
        for label in Label::ALL {
            assert_eq!(label.code().parse::<Label>().unwrap(), label);
            assert_eq!(label.full_name().parse::<Label>().unwrap(), label);
            for alias in label.aliases() {
                assert_eq!(alias.parse::<Label>().unwrap(), label, "{alias}");
            }
        }
        assert_eq!(
            "Valgus_Impacted  femur-neck fracture".parse::<Label>().unwrap(),
            Label::Fracture(FractureClass::ValgusImpactedNeck)
        );
    }

    #[test]
    fn a_fracture_of_unknown_type_parses_and_is_a_fracture_without_a_type() {
        for name in ["fracture", "Fractured", "fracture of unknown type", "FX"] {
            assert_eq!(name.parse::<Label>().unwrap(), Label::UntypedFracture, "{name}");
        }
        let label = Label::UntypedFracture;
        assert!(label.is_fracture() && label.fracture().is_none() && !Label::NoFracture.is_fracture());
        assert_eq!(serde_json::to_string(&label).unwrap(), r#""fracture""#);
        assert!(!Label::ALL.contains(&label), "the paper's tables have no row for it");
        assert!("fracture".parse::<FractureClass>().is_err());
    }

    #[test]
    fn unknown_label_is_an_error_naming_it() {
        let err = "femoral shaft".parse::<Label>().unwrap_err();
        assert!(err.to_string().contains("femoral shaft"));
        assert!("none".parse::<FractureClass>().is_err());
    }

    #[test]
    fn class_indices_round_trip_and_serde_uses_codes() {
        for (i, c) in FractureClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(FractureClass::from_index(i), Some(*c));
        }
        assert_eq!(FractureClass::from_index(4), None);
        let json = serde_json::to_string(&Label::ALL).unwrap();
        assert_eq!(json, r#"["DF","VF","SF","UF","none"]"#);
        let back: Vec<Label> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Label::ALL);
    }
}
