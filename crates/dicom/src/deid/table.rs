//! PS3.15 Table E.1-1 as data: each attribute's action under the Basic Application Level
//! Confidentiality Profile and under each option. The table is `table_e1_1.tsv`, written by
//! `scripts/deid_table.py` from the standard's published table (edition [`EDITION`]); this
//! module parses it once and answers "what does the profile do with this tag?".

use dicom_core::Tag;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The edition of PS3.15 the table comes from.
pub const EDITION: &str = "2024b";

const TSV: &str = include_str!("table_e1_1.tsv");

/// One action of the table (PS3.15 E.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// D: replace with a non-zero-length dummy value consistent with the VR.
    Dummy,
    /// Z: replace with a zero-length value (or a dummy).
    Empty,
    /// X: remove.
    Remove,
    /// K: keep (options only).
    Keep,
    /// C: clean, i.e. replace with values of similar meaning known not to identify (options).
    Clean,
    /// U: replace the UID with one that is consistent within the set of instances.
    Uid,
}

impl Action {
    fn parse(code: &str) -> Option<Action> {
        Some(match code.trim_end_matches('*') {
            "D" => Action::Dummy,
            "Z" => Action::Empty,
            "X" => Action::Remove,
            "K" => Action::Keep,
            "C" => Action::Clean,
            "U" => Action::Uid,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            Action::Dummy => "D",
            Action::Empty => "Z",
            Action::Remove => "X",
            Action::Keep => "K",
            Action::Clean => "C",
            Action::Uid => "U",
        }
    }
}

/// The profile's options, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileOption {
    RetainSafePrivate,
    RetainUids,
    RetainDeviceIdentity,
    RetainInstitutionIdentity,
    RetainPatientCharacteristics,
    RetainLongFullDates,
    RetainLongModifiedDates,
    CleanDescriptors,
    CleanStructuredContent,
    CleanGraphics,
}

impl ProfileOption {
    pub const ALL: [ProfileOption; 10] = [
        ProfileOption::RetainSafePrivate,
        ProfileOption::RetainUids,
        ProfileOption::RetainDeviceIdentity,
        ProfileOption::RetainInstitutionIdentity,
        ProfileOption::RetainPatientCharacteristics,
        ProfileOption::RetainLongFullDates,
        ProfileOption::RetainLongModifiedDates,
        ProfileOption::CleanDescriptors,
        ProfileOption::CleanStructuredContent,
        ProfileOption::CleanGraphics,
    ];

    fn column(self) -> usize {
        ProfileOption::ALL
            .iter()
            .position(|o| *o == self)
            .expect("every option is in ALL")
    }

    /// The option's code in CID 7050 (De-identification Method) and its meaning.
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            ProfileOption::RetainSafePrivate => ("113111", "Retain Safe Private Option"),
            ProfileOption::RetainUids => ("113110", "Retain UIDs Option"),
            ProfileOption::RetainDeviceIdentity => ("113109", "Retain Device Identity Option"),
            ProfileOption::RetainInstitutionIdentity => ("113112", "Retain Institution Identity Option"),
            ProfileOption::RetainPatientCharacteristics => ("113108", "Retain Patient Characteristics Option"),
            ProfileOption::RetainLongFullDates => {
                ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
            }
            ProfileOption::RetainLongModifiedDates => (
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ),
            ProfileOption::CleanDescriptors => ("113105", "Clean Descriptors Option"),
            ProfileOption::CleanStructuredContent => ("113104", "Clean Structured Content Option"),
            ProfileOption::CleanGraphics => ("113103", "Clean Graphics Option"),
        }
    }
}

/// Which tags a row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPattern {
    /// One tag.
    Exact(Tag),
    /// `x` digits match anything: (50xx,xxxx) curves, (60xx,3000) overlay data.
    Masked { value: Tag, mask: Tag },
    /// (gggg,eeee) where gggg is odd: every private attribute.
    Private,
}

impl TagPattern {
    pub fn matches(self, tag: Tag) -> bool {
        match self {
            TagPattern::Exact(t) => t == tag,
            TagPattern::Masked { value, mask } => tag.0 & mask.0 == value.0 && tag.1 & mask.1 == value.1,
            TagPattern::Private => tag.0 % 2 == 1,
        }
    }

    fn parse(text: &str) -> Option<TagPattern> {
        if text == "gggg,eeee" {
            return Some(TagPattern::Private);
        }
        let (group, element) = text.split_once(',')?;
        let part = |s: &str| -> Option<(u16, u16)> {
            if s.len() != 4 {
                return None;
            }
            let value = u16::from_str_radix(&s.replace('x', "0"), 16).ok()?;
            let mask = s.chars().fold(0u16, |m, c| (m << 4) | if c == 'x' { 0 } else { 0xF });
            Some((value, mask))
        };
        let ((g, gm), (e, em)) = (part(group)?, part(element)?);
        Some(if gm == 0xFFFF && em == 0xFFFF {
            TagPattern::Exact(Tag(g, e))
        } else {
            TagPattern::Masked {
                value: Tag(g, e),
                mask: Tag(gm, em),
            }
        })
    }
}

/// One row of Table E.1-1.
#[derive(Debug, Clone)]
pub struct Rule {
    pub tag: TagPattern,
    /// The basic profile's cell as printed (e.g. `X/Z/D`).
    pub basic_cell: &'static str,
    /// The actions the cell allows, in the cell's order.
    pub basic: Vec<Action>,
    /// Each option's action (K or C), or none where the basic action applies.
    options: [Option<Action>; 10],
    pub name: &'static str,
}

impl Rule {
    /// The option's action for this attribute (K or C), if its column names one.
    pub fn option(&self, option: ProfileOption) -> Option<Action> {
        self.options[option.column()]
    }
}

/// A row of the table file that does not parse (a bug of the generator).
#[derive(Debug)]
struct BadRow(String);

/// The parsed table.
pub struct Table {
    pub rules: Vec<Rule>,
    exact: HashMap<Tag, usize>,
    patterns: Vec<usize>,
}

impl Table {
    /// The table (parsed on first use).
    pub fn get() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| {
            Table::parse(TSV)
                .unwrap_or_else(|BadRow(row)| panic!("table_e1_1.tsv is generated and parses, but not {row}"))
        })
    }

    fn parse(text: &'static str) -> Result<Table, BadRow> {
        let mut rules = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#') && !l.starts_with("tag\t"))
        {
            let fields: Vec<&str> = line.split('\t').collect();
            let bad = || BadRow(format!("line {}: {line:?}", n + 1));
            if fields.len() != 13 {
                return Err(bad());
            }
            let tag = TagPattern::parse(fields[0]).ok_or_else(bad)?;
            let basic = fields[1]
                .split('/')
                .map(Action::parse)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?;
            let mut options = [None; 10];
            for (slot, cell) in options.iter_mut().zip(&fields[2..12]) {
                *slot = if cell.is_empty() {
                    None
                } else {
                    Some(Action::parse(cell).ok_or_else(bad)?)
                };
            }
            rules.push(Rule {
                tag,
                basic_cell: fields[1],
                basic,
                options,
                name: fields[12],
            });
        }
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            match rule.tag {
                TagPattern::Exact(tag) => {
                    exact.insert(tag, i);
                }
                _ => patterns.push(i),
            }
        }
        Ok(Table { rules, exact, patterns })
    }

    /// The row that covers `tag`, if any (attributes the table does not list are kept).
    pub fn rule(&self, tag: Tag) -> Option<&Rule> {
        if let Some(&i) = self.exact.get(&tag) {
            return Some(&self.rules[i]);
        }
        self.patterns
            .iter()
            .map(|&i| &self.rules[i])
            .find(|r| r.tag.matches(tag))
    }
}

/// The Digital X-Ray (for presentation, for processing), mammography and intra-oral IODs: the
/// image IODs whose Acquisition Context module is mandatory.
const ACQUISITION_CONTEXT_IODS: [&str; 6] = [
    "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.2",
    "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3",
    "1.2.840.10008.5.1.4.1.1.1.3.1",
];

/// Whether a top-level attribute whose basic cell offers a choice with Z is type 2 in the IOD
/// of `sop_class`. Of those attributes (PS3.15 Table E.1-1), the one a radiograph's IOD
/// requires is the Acquisition Context Sequence (0040,0555): type 2 in the Acquisition Context
/// module (PS3.3 C.7.6.14), which DX, mammography and intra-oral images must have; CR and
/// Secondary Capture images do not include the module, so there it is removed. The others
/// (acquisition date and time, referenced study, requested procedure description, patient's
/// sex neutered for humans, media creation) are type 3 or absent in the image IODs hipfrac
/// reads and writes.
pub fn is_type_2(tag: Tag, sop_class: &str) -> bool {
    tag == Tag(0x0040, 0x0555) && ACQUISITION_CONTEXT_IODS.contains(&sop_class)
}

/// What hipfrac does with an attribute under `options`, and why.
///
/// * An enabled option whose column says K keeps the attribute. Where it says C (clean), the
///   Retain Longitudinal Temporal Information with Modified Dates option shifts dates (C);
///   for the others hipfrac cannot know which words of a free text identify, so the basic
///   action applies.
/// * Where the basic cell offers a choice (X/Z, X/D, X/Z/D, X/Z/U*), hipfrac removes, unless
///   the attribute is type 2 in the object's IOD (`type_2`, see [`is_type_2`]): then a cell
///   that offers Z empties it, so that the IOD stays valid (PS3.15 E.1: X/Z means "Z if
///   removing would make the IOD invalid"). Z/D (Content Date and Time, Patient ID) becomes a
///   dummy (D), which keeps any IOD valid.
pub fn decide(rule: &Rule, options: &[ProfileOption], type_2: bool) -> (Action, String) {
    for &option in options {
        let (_, meaning) = option.code();
        match rule.option(option) {
            Some(Action::Keep) => return (Action::Keep, format!("K ({meaning})")),
            // The one clean hipfrac makes: dates shifted per patient (modified dates option).
            Some(Action::Clean) if option == ProfileOption::RetainLongModifiedDates => {
                return (Action::Clean, format!("C ({meaning})"))
            }
            _ => {}
        }
    }
    let action = if rule.basic.len() == 1 {
        rule.basic[0]
    } else if type_2 && rule.basic.contains(&Action::Empty) {
        Action::Empty
    } else if rule.basic.contains(&Action::Remove) {
        Action::Remove
    } else {
        Action::Dummy
    };
    (action, rule.basic_cell.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_z_empties_only_where_the_iod_needs_the_attribute() {
        let rule = Table::get().rule(Tag(0x0040, 0x0555)).unwrap();
        assert_eq!(rule.basic_cell, "X/Z");
        let dx = "1.2.840.10008.5.1.4.1.1.1.1";
        assert!(is_type_2(Tag(0x0040, 0x0555), dx));
        assert!(!is_type_2(Tag(0x0040, 0x0555), "1.2.840.10008.5.1.4.1.1.1"), "CR");
        assert!(!is_type_2(Tag(0x0008, 0x0022), dx), "Acquisition Date is type 3");
        assert_eq!(decide(rule, &[], true).0, Action::Empty);
        assert_eq!(decide(rule, &[], false).0, Action::Remove);
        // A cell without Z is not emptied even where type 2 is claimed.
        let detector = Table::get().rule(Tag(0x0018, 0x700a)).unwrap();
        assert_eq!(decide(detector, &[], true).0, Action::Remove);
    }

    #[test]
    fn the_table_parses_whole() {
        let table = Table::get();
        assert_eq!(table.rules.len(), 621);
        let rule = |g, e| table.rule(Tag(g, e)).map(|r| r.basic_cell);
        assert_eq!(rule(0x0008, 0x0201), Some("X"), "Timezone Offset From UTC");
        assert_eq!(rule(0x0010, 0x0010), Some("Z"));
        assert_eq!(rule(0x0008, 0x0018), Some("U"));
        assert_eq!(rule(0x5012, 0x3000), Some("X"), "curves");
        assert_eq!(rule(0x6002, 0x3000), Some("X"), "overlay data");
        assert_eq!(rule(0x6002, 0x0010), None, "overlay rows are not in the table");
        assert_eq!(rule(0x0029, 0x1010), Some("X"), "private");
        assert_eq!(rule(0x0028, 0x0010), None, "Rows");
        let timezone = table.rule(Tag(0x0008, 0x0201)).unwrap();
        assert_eq!(timezone.option(ProfileOption::RetainLongFullDates), Some(Action::Keep));
        assert_eq!(decide(timezone, &[], false).0, Action::Remove);
        assert_eq!(
            decide(timezone, &[ProfileOption::RetainLongFullDates], false).0,
            Action::Keep
        );
        assert_eq!(
            decide(table.rule(Tag(0x0008, 0x0080)).unwrap(), &[], false).0,
            Action::Remove,
            "X/Z/D"
        );
        assert_eq!(
            decide(table.rule(Tag(0x0008, 0x0023)).unwrap(), &[], false).0,
            Action::Dummy,
            "Z/D"
        );
    }
}
