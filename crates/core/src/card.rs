//! The model card: what trained a model, written by `hipfrac train` as `model_card.json` in
//! every model folder (`best/`, `last/`), read by the predictor so that every output can say
//! what the answers rest on: simulated or real radiographs, which sites, how many.

use crate::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of [`ModelCard`]'s layout.
pub const CARD_VERSION: u32 = 1;

/// What trained a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub card_version: u32,
    /// The hipfrac that trained it.
    pub hipfrac_version: String,
    /// When this card was written (UTC, RFC 3339).
    pub written_at: String,
    /// The model preset (`nano`, `tiny`, …), or none for a hand-made configuration.
    pub preset: Option<String>,
    /// Network input size (letterboxed square), pixels.
    pub image_size: i64,
    pub equalize: bool,
    /// Epochs trained when these weights were saved.
    pub epochs_trained: i64,
    /// The EMA's validation mAP50-95 when these weights were saved, when it was measured.
    pub map50_95: Option<f64>,
    pub training: DataSummary,
    pub validation: DataSummary,
}

impl ModelCard {
    /// The card's file name in a model folder.
    pub const FILE: &'static str = "model_card.json";

    /// One line for logs and reports: "trained on 414 simulated radiographs (site-a 300, …)".
    pub fn describe(&self) -> String {
        let t = &self.training;
        let kind = match (t.simulated_images, t.images) {
            (0, _) => "real",
            (s, n) if s == n => "simulated",
            _ => "mixed real and simulated",
        };
        let sites: Vec<String> = t.sites.iter().map(|(site, n)| format!("{site} {n}")).collect();
        format!(
            "trained on {} {kind} radiographs of {} patients ({}), {} epochs at {} px",
            t.images,
            t.patients,
            sites.join(", "),
            self.epochs_trained,
            self.image_size
        )
    }
}

/// The images of one manifest, counted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DataSummary {
    /// The manifest, as the training configuration named it.
    pub manifest: String,
    pub images: usize,
    /// Images carrying the hipfrac phantom's mark (simulated radiographs).
    pub simulated_images: usize,
    pub patients: usize,
    /// Images per site.
    pub sites: BTreeMap<String, usize>,
    /// Images per image-level label code (`DF` … `none`).
    pub labels: BTreeMap<String, usize>,
}

impl DataSummary {
    /// Counts images given as (patient, site, label, simulated).
    pub fn count<'a>(manifest: String, images: impl IntoIterator<Item = (&'a str, &'a str, Label, bool)>) -> Self {
        let mut summary = DataSummary {
            manifest,
            ..DataSummary::default()
        };
        let mut patients = std::collections::BTreeSet::new();
        for (patient, site, label, simulated) in images {
            summary.images += 1;
            summary.simulated_images += usize::from(simulated);
            patients.insert(patient);
            *summary.sites.entry(site.to_string()).or_default() += 1;
            *summary.labels.entry(label.code().to_string()).or_default() += 1;
        }
        summary.patients = patients.len();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FractureClass;

    #[test]
    fn counts_and_describes_the_training_data() {
        let rows = [
            ("p1", "site-a", Label::NoFracture, true),
            ("p1", "site-a", Label::Fracture(FractureClass::DisplacedNeck), true),
            ("p2", "site-b", Label::NoFracture, true),
        ];
        let training = DataSummary::count("train.csv".into(), rows);
        assert_eq!(
            (training.images, training.simulated_images, training.patients),
            (3, 3, 2)
        );
        assert_eq!(training.labels["none"], 2);
        let card = ModelCard {
            card_version: CARD_VERSION,
            hipfrac_version: "0".into(),
            written_at: "2026-12-02T00:00:00Z".into(),
            preset: Some("nano".into()),
            image_size: 320,
            equalize: true,
            epochs_trained: 4,
            map50_95: None,
            training,
            validation: DataSummary::default(),
        };
        assert_eq!(
            card.describe(),
            "trained on 3 simulated radiographs of 2 patients (site-a 2, site-b 1), 4 epochs at 320 px"
        );
    }
}
