//! Patient-level, class-stratified train/validation/test split, with an optional
//! external-site hold-out (the paper: 80/10/10 by patient; a third hospital held out).
//!
//! Method: images of the external site go to `external`. The other patients are shuffled
//! with the seed, ordered by image count (largest first, so single images fill the gaps at
//! the end), and each goes, with all their images, to the split whose per-class demand
//! (target share of each class minus what it holds, relative to the target) their images
//! meet best. Patients whose images carry different labels are balanced too. One patient
//! never appears in two splits.

use crate::manifest::ManifestRow;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;

/// Train, validation and test fractions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ratios(pub [f64; 3]);

/// Ratios text that is not three fractions adding up to 1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseRatiosError {
    /// A part is not a number.
    #[error("ratios {text:?}: {part:?} is not a number")]
    NotANumber {
        /// The whole text.
        text: String,
        /// The part that is not a number.
        part: String,
    },
    /// Not three parts.
    #[error("ratios {text:?}: expected three numbers, train,val,test")]
    Count {
        /// The whole text.
        text: String,
    },
    /// A part outside 0–1, or a sum other than 1.
    #[error("ratios {text:?} must be between 0 and 1 and add up to 1")]
    Range {
        /// The whole text.
        text: String,
    },
    /// A share of 0 where every split is needed (the demo trains, calibrates and tests).
    #[error("{text}: the demo needs a train, a validation and a test share above 0")]
    EmptySplit {
        /// The whole text.
        text: String,
    },
}

/// As percentages, the paper's way: `80/10/10`.
impl std::fmt::Display for Ratios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [train, val, test] = self.0.map(|r| r * 100.0);
        write!(f, "{train:.0}/{val:.0}/{test:.0}")
    }
}

impl std::str::FromStr for Ratios {
    type Err = ParseRatiosError;

    fn from_str(text: &str) -> Result<Self, ParseRatiosError> {
        let parts: Vec<f64> = text
            .split(',')
            .map(|p| {
                p.trim().parse::<f64>().map_err(|_| ParseRatiosError::NotANumber {
                    text: text.to_string(),
                    part: p.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let [train, val, test] = parts[..] else {
            return Err(ParseRatiosError::Count { text: text.to_string() });
        };
        if [train, val, test].iter().any(|r| !(0.0..=1.0).contains(r)) || (train + val + test - 1.0).abs() > 1e-6 {
            return Err(ParseRatiosError::Range { text: text.to_string() });
        }
        Ok(Ratios([train, val, test]))
    }
}

/// Why rows cannot be split.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// The external site named holds no image.
    #[error("no image comes from site {site:?}; the sites are {sites:?}")]
    UnknownSite {
        /// The site asked for.
        site: String,
        /// The sites the rows have.
        sites: Vec<String>,
    },
    /// A patient has images at the external site and at another one.
    #[error(
        "patient {patient} has images at the external site and elsewhere ({image}); a patient cannot be in two splits"
    )]
    PatientAtTwoSites {
        /// The patient.
        patient: String,
        /// One of their images outside the external site.
        image: String,
    },
}

/// The result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Splits {
    /// Training images.
    pub train: Vec<ManifestRow>,
    /// Validation images (model selection, operating points).
    pub val: Vec<ManifestRow>,
    /// Internal test images.
    pub test: Vec<ManifestRow>,
    /// External-site images.
    pub external: Vec<ManifestRow>,
}

impl Splits {
    /// The four parts with their names.
    pub fn parts(&self) -> [(&'static str, &[ManifestRow]); 4] {
        [
            ("train", &self.train),
            ("val", &self.val),
            ("test", &self.test),
            ("external", &self.external),
        ]
    }
}

/// How far a split is from the ratios asked for: splits go by patient, so with few patients
/// the image shares can be far off, or a class can miss a split.
impl Splits {
    /// Each internal part's share of the internal images, overall and per label:
    /// `(part, overall, [share of each label's images])`, labels in `Label::EVERY` order.
    pub fn achieved(&self) -> Vec<(&'static str, f64, [Option<f64>; 6])> {
        let internal: Vec<&ManifestRow> = self.train.iter().chain(&self.val).chain(&self.test).collect();
        let total = internal.len().max(1) as f64;
        let per_label =
            |rows: &[ManifestRow], label: hipfrac_core::Label| rows.iter().filter(|r| r.label == label).count();
        self.parts()
            .into_iter()
            .take(3)
            .map(|(name, rows)| {
                let mut shares = [None; 6];
                for (slot, label) in shares.iter_mut().zip(hipfrac_core::Label::EVERY) {
                    let all = internal.iter().filter(|r| r.label == label).count();
                    *slot = (all > 0).then(|| per_label(rows, label) as f64 / all as f64);
                }
                (name, rows.len() as f64 / total, shares)
            })
            .collect()
    }

    /// Warnings: a part more than 5 points from its ratio, or without any image of a label
    /// the internal data has (for a part asked to hold some).
    pub fn warnings(&self, ratios: Ratios) -> Vec<String> {
        let mut warnings = Vec::new();
        for ((name, overall, shares), asked) in self.achieved().into_iter().zip(ratios.0) {
            if asked <= 0.0 {
                continue;
            }
            if (overall - asked).abs() > 0.05 {
                warnings.push(format!(
                    "{name} holds {:.0} % of the images, {:.0} % were asked (splits go by patient)",
                    100.0 * overall,
                    100.0 * asked
                ));
            }
            for (share, label) in shares.iter().zip(hipfrac_core::Label::EVERY) {
                if *share == Some(0.0) {
                    warnings.push(format!("{name} has no {} image", label.code()));
                }
            }
        }
        warnings
    }
}

/// Splits `rows` by patient.
pub fn split(
    rows: &[ManifestRow],
    ratios: Ratios,
    seed: u64,
    external_site: Option<&str>,
) -> Result<Splits, SplitError> {
    let mut splits = Splits::default();
    let mut internal: Vec<&ManifestRow> = Vec::new();
    for row in rows {
        match external_site {
            Some(site) if row.site.eq_ignore_ascii_case(site) => splits.external.push(row.clone()),
            _ => internal.push(row),
        }
    }
    if let Some(site) = external_site {
        if splits.external.is_empty() {
            let mut sites: Vec<String> = rows.iter().map(|r| r.site.clone()).collect();
            sites.sort();
            sites.dedup();
            return Err(SplitError::UnknownSite {
                site: site.to_string(),
                sites,
            });
        }
        let external_patients: std::collections::HashSet<&str> =
            splits.external.iter().map(|r| r.patient.as_str()).collect();
        if let Some(shared) = internal.iter().find(|r| external_patients.contains(r.patient.as_str())) {
            return Err(SplitError::PatientAtTwoSites {
                patient: shared.patient.clone(),
                image: shared.image.clone(),
            });
        }
    }

    let mut patients: BTreeMap<&str, Vec<&ManifestRow>> = BTreeMap::new();
    for row in internal {
        patients.entry(row.patient.as_str()).or_default().push(row);
    }
    let mut patients: Vec<Vec<&ManifestRow>> = patients.into_values().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    patients.shuffle(&mut rng);
    // Largest patients first, so single images fill the gaps at the end.
    patients.sort_by_key(|images| std::cmp::Reverse(images.len()));

    let mut totals = [0f64; 6];
    for images in &patients {
        for row in images {
            totals[row.label.index()] += 1.0;
        }
    }
    let active: Vec<usize> = (0..3).filter(|&i| ratios.0[i] > 0.0).collect();
    let mut counts = [[0f64; 6]; 3];
    for images in patients {
        let mut own = [0f64; 6];
        for row in &images {
            own[row.label.index()] += 1.0;
        }
        // The split whose per-class demand, relative to its target, this patient meets best.
        let score = |s: usize| -> f64 {
            (0..6)
                .filter(|&l| own[l] > 0.0)
                .map(|l| {
                    let target = ratios.0[s] * totals[l];
                    own[l] * (target - counts[s][l]) / target.max(1e-9)
                })
                .sum()
        };
        let chosen = *active
            .iter()
            .max_by(|&&a, &&b| score(a).total_cmp(&score(b)).then(b.cmp(&a)))
            .expect("at least one ratio should be positive");
        for l in 0..6 {
            counts[chosen][l] += own[l];
        }
        let destination = match chosen {
            0 => &mut splits.train,
            1 => &mut splits.val,
            _ => &mut splits.test,
        };
        destination.extend(images.into_iter().cloned());
    }
    for part in [
        &mut splits.train,
        &mut splits.val,
        &mut splits.test,
        &mut splits.external,
    ] {
        part.sort_by(|a, b| a.image.cmp(&b.image));
    }
    Ok(splits)
}

/// `k` folds for cross-validation: every patient's images in one fold, the folds stratified
/// by label as [`split`] does (each patient goes where its labels are most wanted), in an
/// order fixed by `seed`. Returns the folds, each sorted by image.
pub fn folds(rows: &[ManifestRow], k: usize, seed: u64) -> Vec<Vec<ManifestRow>> {
    const L: usize = hipfrac_core::Label::EVERY.len();
    let k = k.max(1);
    let mut patients: BTreeMap<&str, Vec<&ManifestRow>> = BTreeMap::new();
    for row in rows {
        patients.entry(row.patient.as_str()).or_default().push(row);
    }
    let mut patients: Vec<Vec<&ManifestRow>> = patients.into_values().collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    patients.shuffle(&mut rng);
    patients.sort_by_key(|images| std::cmp::Reverse(images.len()));
    let mut totals = [0f64; L];
    for row in rows {
        totals[row.label.index()] += 1.0;
    }
    let mut counts = vec![[0f64; L]; k];
    let mut folds: Vec<Vec<ManifestRow>> = vec![Vec::new(); k];
    for images in patients {
        let mut own = [0f64; L];
        for row in &images {
            own[row.label.index()] += 1.0;
        }
        let score = |f: usize| -> f64 {
            (0..L)
                .filter(|&l| own[l] > 0.0)
                .map(|l| {
                    let target = totals[l] / k as f64;
                    own[l] * (target - counts[f][l]) / target.max(1e-9)
                })
                .sum()
        };
        // Most wanted first; on a tie the fold with fewer images, then the lower index.
        let chosen = (0..k)
            .max_by(|&a, &b| {
                score(a)
                    .total_cmp(&score(b))
                    .then(folds[b].len().cmp(&folds[a].len()))
                    .then(b.cmp(&a))
            })
            .expect("k is at least 1");
        for l in 0..L {
            counts[chosen][l] += own[l];
        }
        folds[chosen].extend(images.into_iter().cloned());
    }
    for fold in &mut folds {
        fold.sort_by(|a, b| a.image.cmp(&b.image));
    }
    folds
}

/// The demo's split: three shares adding up to 1, none of them 0 (it trains, calibrates on
/// validation and evaluates the test split).
pub fn parse_demo_ratios(value: &str) -> Result<Ratios, ParseRatiosError> {
    let ratios: Ratios = value.parse()?;
    if ratios.0.iter().any(|&r| r <= 0.0) {
        return Err(ParseRatiosError::EmptySplit {
            text: value.to_string(),
        });
    }
    Ok(ratios)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hipfrac_core::FractureClass::*;
    use hipfrac_core::Label;
    use rand::Rng;
    use std::collections::HashMap;

    #[test]
    fn folds_keep_patients_whole_and_spread_each_label() {
        let rows = synthetic();
        let folds = folds(&rows, 5, 3);
        assert_eq!(folds.iter().map(Vec::len).sum::<usize>(), rows.len());
        let mut home: HashMap<&str, usize> = HashMap::new();
        for (f, fold) in folds.iter().enumerate() {
            for row in fold {
                assert_eq!(
                    *home.entry(row.patient.as_str()).or_insert(f),
                    f,
                    "{} split",
                    row.patient
                );
            }
        }
        for label in Label::ALL {
            let all = rows.iter().filter(|r| r.label == label).count() as f64;
            for fold in &folds {
                let share = fold.iter().filter(|r| r.label == label).count() as f64 / all;
                assert!((share - 0.2).abs() < 0.05, "{label}: {share}");
            }
        }
        assert_eq!(super::folds(&rows, 5, 3), folds, "the same seed gives the same folds");
    }

    /// 1,000 synthetic images in the paper's internal class mix (VF 720, DF 1410, SF 1044,
    /// UF 984, none 335), patients with 1–3 images, plus an external site.
    fn synthetic() -> Vec<ManifestRow> {
        let mix = [
            (Label::Fracture(ValgusImpactedNeck), 720),
            (Label::Fracture(DisplacedNeck), 1410),
            (Label::Fracture(StableIntertrochanteric), 1044),
            (Label::Fracture(UnstableIntertrochanteric), 984),
            (Label::NoFracture, 335),
        ];
        let total: u32 = mix.iter().map(|(_, n)| n).sum();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut rows = Vec::new();
        let mut patient = 0;
        for (label, n) in mix {
            let mut left = (1000 * n + total / 2) / total;
            while left > 0 {
                let images = rng.gen_range(1..=3).min(left);
                patient += 1;
                for _ in 0..images {
                    // A patient's follow-up image is sometimes read differently.
                    let label = if rng.gen_bool(0.05) { Label::NoFracture } else { label };
                    rows.push(ManifestRow {
                        image: format!("img{:04}.png", rows.len()),
                        annotation: String::new(),
                        patient: format!("P{patient:04}"),
                        site: "internal".into(),
                        label,
                    });
                }
                left -= images;
            }
        }
        for i in 0..50 {
            rows.push(ManifestRow {
                image: format!("ext{i:03}.png"),
                annotation: String::new(),
                patient: format!("X{i:03}"),
                site: "CAUH".into(),
                label: Label::NoFracture,
            });
        }
        rows
    }

    fn proportions(rows: &[ManifestRow]) -> HashMap<Label, f64> {
        let mut counts: HashMap<Label, f64> = HashMap::new();
        for row in rows {
            *counts.entry(row.label).or_default() += 1.0;
        }
        counts.values_mut().for_each(|v| *v /= rows.len() as f64);
        counts
    }

    #[test]
    fn no_patient_crosses_splits_and_class_proportions_hold() {
        let rows = synthetic();
        let internal: Vec<ManifestRow> = rows.iter().filter(|r| r.site == "internal").cloned().collect();
        assert!(internal.len() >= 1000);
        for seed in [0, 1, 42, 2025] {
            let splits = split(&rows, "0.8,0.1,0.1".parse().unwrap(), seed, Some("cauh")).unwrap();
            assert_eq!(splits.external.len(), 50);
            let mut home: HashMap<&str, &str> = HashMap::new();
            for (name, part) in splits.parts() {
                for row in part {
                    if let Some(previous) = home.insert(&row.patient, name) {
                        assert_eq!(previous, name, "patient {} in {previous} and {name}", row.patient);
                    }
                }
            }
            assert_eq!(
                splits.train.len() + splits.val.len() + splits.test.len(),
                internal.len()
            );
            let overall = proportions(&internal);
            for (name, part) in &splits.parts()[..3] {
                let share = part.len() as f64 / internal.len() as f64;
                let target = match *name {
                    "train" => 0.8,
                    _ => 0.1,
                };
                assert!((share - target).abs() < 0.02, "seed {seed} {name}: {share}");
                let p = proportions(part);
                for (label, expected) in &overall {
                    let got = p.get(label).copied().unwrap_or(0.0);
                    assert!(
                        (got - expected).abs() <= 0.02,
                        "seed {seed} {name} {label}: {got:.3} vs {expected:.3}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let rows = synthetic();
        let ratios: Ratios = "0.8,0.1,0.1".parse().unwrap();
        assert_eq!(
            split(&rows, ratios, 3, None).unwrap(),
            split(&rows, ratios, 3, None).unwrap()
        );
        assert_ne!(
            split(&rows, ratios, 3, None).unwrap().test,
            split(&rows, ratios, 4, None).unwrap().test
        );
    }

    #[test]
    fn bad_ratios_and_unknown_sites_are_refused() {
        assert!("0.8,0.1".parse::<Ratios>().is_err());
        assert!("0.8,0.3,0.1".parse::<Ratios>().is_err());
        assert!("a,b,c".parse::<Ratios>().is_err());
        let err = split(&synthetic(), "0.8,0.1,0.1".parse().unwrap(), 0, Some("nowhere"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nowhere") && err.contains("CAUH"), "{err}");
        let err = "0.8,x,0.1".parse::<Ratios>().unwrap_err().to_string();
        assert_eq!(err, "ratios \"0.8,x,0.1\": \"x\" is not a number");
    }
}
