//! The demo's data, as the paper's: an internal set from two hospitals, split by patient
//! (80/10/10 as the paper, or other ratios), and an external hospital held out whole. Written as manifests under
//! `out/internal/splits/{train,val,test}.csv` and `out/external/splits/external.csv`.

use crate::acquisition::{SiteError, SiteProfile};
use crate::output::{generate, GenerateOptions, OutputError};
use crate::{v2, ClassMix};
use hipfrac_data::check::check_dataset;
use hipfrac_data::manifest::{self, ManifestRow};
use hipfrac_data::split::{split, Ratios, SplitError};
use hipfrac_data::LabelMap;
use std::path::{Path, PathBuf};

/// Which simulator writes the images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Generator {
    /// The analytic phantom (byte-identical per seed to earlier runs).
    #[default]
    V1,
    /// Phantom v2: projected from 3D anatomy with X-ray physics ([`crate::v2`]).
    V2,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct DemoSet {
    /// The simulator (both write the paper's class mix).
    pub generator: Generator,
    /// The internal hospitals (images shared equally between them).
    pub internal_sites: [String; 2],
    pub external_site: String,
    pub internal: usize,
    pub external: usize,
    pub seed: u64,
    /// Image side in pixels.
    pub size: usize,
    /// Train, validation and test shares of the internal patients (the paper: 0.8, 0.1, 0.1).
    pub ratios: Ratios,
}

/// The manifests written.
#[derive(Debug, Clone)]
pub struct DemoManifests {
    pub internal: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    pub external: usize,
    pub train_csv: PathBuf,
    pub val_csv: PathBuf,
    pub test_csv: PathBuf,
    pub external_csv: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoSetError {
    #[error("--internal-images must be at least 10 (for a split) and --external-images at least 1")]
    TooFew,
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Data(#[from] hipfrac_data::Error),
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The simulator wrote a dataset that does not check (a phantom bug).
    #[error("{}: the simulated dataset does not check: {problem}", dir.display())]
    Inconsistent { dir: PathBuf, problem: String },
}

impl DemoSet {
    /// Simulates the sites into `out` and writes the manifests; `on_site` is told each site's
    /// name and image count before it starts, `on_image` each image done.
    pub fn build(
        &self,
        out: &Path,
        on_site: impl Fn(&str, usize),
        on_image: impl Fn() + Sync,
    ) -> Result<DemoManifests, DemoSetError> {
        if self.internal < 10 || self.external == 0 {
            return Err(DemoSetError::TooFew);
        }
        let first = self.internal.div_ceil(2);
        let splits_dir = out.join("internal/splits");
        let mut rows = Vec::new();
        for (k, (site, count)) in self
            .internal_sites
            .iter()
            .zip([first, self.internal - first])
            .enumerate()
        {
            let dir = out.join("internal").join(site);
            self.simulate(site, count, self.seed + 2 * k as u64, &dir, &on_site, &on_image)?;
            // Rows are pooled so the split keeps every patient in one part.
            rows.extend(manifest_of(&dir, &splits_dir)?);
        }
        let external_dir = out.join("external");
        self.simulate(
            &self.external_site,
            self.external,
            self.seed + 1,
            &external_dir,
            &on_site,
            &on_image,
        )?;
        let splits = split(&rows, self.ratios, self.seed, None)?;
        let csv = |name: &str| splits_dir.join(format!("{name}.csv"));
        for (name, part) in splits.parts().into_iter().filter(|(n, _)| *n != "external") {
            manifest::write(&csv(name), part)?;
        }
        let external_csv = external_dir.join("splits/external.csv");
        let external_rows = manifest_of(&external_dir, &external_dir.join("splits"))?;
        manifest::write(&external_csv, &external_rows)?;
        Ok(DemoManifests {
            internal: rows.len(),
            train: splits.train.len(),
            val: splits.val.len(),
            test: splits.test.len(),
            external: external_rows.len(),
            train_csv: csv("train"),
            val_csv: csv("val"),
            test_csv: csv("test"),
            external_csv,
        })
    }

    fn simulate(
        &self,
        site: &str,
        count: usize,
        seed: u64,
        out: &Path,
        on_site: &impl Fn(&str, usize),
        on_image: &(impl Fn() + Sync),
    ) -> Result<(), DemoSetError> {
        let site = SiteProfile::load(site)?;
        on_site(&site.name, count);
        let options = GenerateOptions {
            count,
            site,
            seed,
            size: self.size,
            out: out.to_path_buf(),
            mix: ClassMix::default(),
            overwrite: false,
        };
        match self.generator {
            Generator::V1 => generate(&options, on_image).map(drop)?,
            Generator::V2 => v2::generate(&options, on_image).map(drop)?,
        }
        Ok(())
    }
}

/// The rows of the phantom dataset in `dir` (its own manifest.csv gives patients and sites),
/// with paths relative to `manifest_dir`.
fn manifest_of(dir: &Path, manifest_dir: &Path) -> Result<Vec<ManifestRow>, DemoSetError> {
    let inconsistent = |problem: String| DemoSetError::Inconsistent {
        dir: dir.to_path_buf(),
        problem,
    };
    let report = check_dataset(dir, &LabelMap::default())?;
    if let Some(first) = report.errors.first() {
        return Err(inconsistent(format!(
            "{} errors, the first: {first:?}",
            report.errors.len()
        )));
    }
    let rows = report.manifest_rows(manifest_dir);
    if let Some(row) = rows.iter().find(|r| r.patient.starts_with("unknown")) {
        return Err(inconsistent(format!(
            "no patient for {} (manifest.csv is missing)",
            row.image
        )));
    }
    Ok(rows)
}
