//! `hipfrac dataset check|split|folds|merge`.

use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::Args;
use hipfrac_data::check::{check_dataset, CheckReport};
use hipfrac_data::split::{split as split_rows, Ratios};
use hipfrac_data::{manifest, LabelMap};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `hipfrac dataset check` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Dataset folder: images (PNG or DICOM) with LabelImg VOC XML beside them (same stem).
    pub dir: PathBuf,
    /// Label map file (`name = CODE` per line) for other label names.
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What `hipfrac dataset split` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SplitOptions {
    /// Dataset folder (as for `dataset check`).
    pub dir: PathBuf,
    /// Train, validation and test fractions.
    #[arg(long, default_value = "0.8,0.1,0.1")]
    pub ratios: String,
    /// Random seed; the same seed and data give the same split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hold out every image of this site (Institution Name, or the manifest's site column)
    /// as the external test set.
    #[arg(long)]
    pub external_site: Option<String>,
    /// Where to write the manifests (default: DIR/splits).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label map file (`name = CODE` per line).
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    /// Replace manifests of an earlier split.
    #[arg(long)]
    pub overwrite: bool,
}

/// What `hipfrac dataset folds` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FoldsOptions {
    /// Manifests (CSV: image, annotation, patient, site, label).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// Number of folds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub k: u32,
    /// Random seed; the same seed and manifests give the same folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the manifests of an earlier run.
    #[arg(long)]
    pub overwrite: bool,
}

/// What `hipfrac dataset merge` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct MergeOptions {
    /// Manifests to join, in order.
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
    /// The joined manifest.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing manifest.
    #[arg(long)]
    pub overwrite: bool,
}

fn label_map(path: Option<&Path>) -> Result<LabelMap> {
    Ok(match path {
        Some(p) => LabelMap::from_file(p)?,
        None => LabelMap::default(),
    })
}

fn print_findings(report: &CheckReport) {
    let show = |kind: &str, findings: &[hipfrac_data::check::Finding]| {
        if findings.is_empty() {
            return;
        }
        eprintln!("{kind} ({}):", findings.len());
        for f in findings.iter().take(50) {
            eprintln!("  {}: {}", f.path.display(), f.message);
        }
        if findings.len() > 50 {
            eprintln!("  … and {} more", findings.len() - 50);
        }
    };
    show("warnings", &report.warnings);
    show("errors", &report.errors);
}

pub fn check(args: CheckOptions) -> Result<Outcome> {
    if !args.dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    let labels = label_map(args.label_map.as_deref())?;
    let report = check_dataset(&args.dir, &labels)?;
    println!("Dataset {}", args.dir.display());
    print!("{}", report.table());
    print_findings(&report);
    if let Some(json) = &args.json {
        let text = serde_json::to_vec_pretty(&report).context("report should serialise")?;
        hipfrac_dicom::atomic::write_atomic(json, &text)?;
    }
    if report.errors.is_empty() {
        println!(
            "OK: {} images, no errors, {} warnings",
            report.records.len(),
            report.warnings.len()
        );
        Ok(Outcome::Success)
    } else {
        eprintln!("FAILED: {} errors", report.errors.len());
        Ok(Outcome::SomeFailed)
    }
}

pub fn split(args: SplitOptions) -> Result<Outcome> {
    if !args.dir.is_dir() {
        bail!("{}: not a folder", args.dir.display());
    }
    let ratios: Ratios = args.ratios.parse()?;
    let labels = label_map(args.label_map.as_deref())?;
    let report = check_dataset(&args.dir, &labels)?;
    if !report.errors.is_empty() {
        print_findings(&report);
        eprintln!(
            "FAILED: the dataset has {} errors; fix them (see `hipfrac dataset check`) before splitting",
            report.errors.len()
        );
        return Ok(Outcome::SomeFailed);
    }
    if report.records.is_empty() {
        bail!("{}: no annotated images", args.dir.display());
    }
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("splits"));
    let rows = report.manifest_rows(&out);
    let splits = split_rows(&rows, ratios, args.seed, args.external_site.as_deref())?;
    let parts: Vec<_> = splits
        .parts()
        .into_iter()
        .filter(|(name, rows)| *name != "external" || !rows.is_empty())
        .collect();
    if !args.overwrite {
        for (name, _) in &parts {
            let path = out.join(format!("{name}.csv"));
            if path.exists() {
                bail!(
                    "{}: exists; pass --overwrite to replace an earlier split",
                    path.display()
                );
            }
        }
    }
    for (name, rows) in &parts {
        manifest::write(&out.join(format!("{name}.csv")), rows)?;
    }
    println!(
        "split {} (seed {}, ratios {}) → {}",
        args.dir.display(),
        args.seed,
        args.ratios,
        out.display()
    );
    println!(
        "{:<10} {:>7} {:>9}  DF / VF / SF / UF / none / fracture of unknown type (% of images)",
        "split", "images", "patients"
    );
    for (name, rows) in &parts {
        let mut patients: Vec<&str> = rows.iter().map(|r| r.patient.as_str()).collect();
        patients.sort();
        patients.dedup();
        let shares: Vec<String> = hipfrac_core::Label::EVERY
            .iter()
            .map(|l| {
                format!(
                    "{:.1}",
                    100.0 * rows.iter().filter(|r| r.label == *l).count() as f64 / rows.len().max(1) as f64
                )
            })
            .collect();
        println!(
            "{:<10} {:>7} {:>9}  {}",
            name,
            rows.len(),
            patients.len(),
            shares.join(" / ")
        );
    }
    // What the ratios became: each part's share of the internal images, overall and of each
    // label's images.
    println!(
        "\n{:<10} {:>7}  of the DF / VF / SF / UF / none / fracture (type unknown) images",
        "achieved", "images"
    );
    for (name, overall, shares) in splits.achieved() {
        let shares: Vec<String> = shares
            .iter()
            .map(|s| s.map_or("–".into(), |v| format!("{v:.2}")))
            .collect();
        println!("{:<10} {:>7.2}  {}", name, overall, shares.join(" / "));
    }
    for warning in splits.warnings(ratios) {
        eprintln!("warning: {warning}");
    }
    Ok(Outcome::Success)
}

fn refuse_existing(paths: &[std::path::PathBuf], overwrite: bool) -> Result<()> {
    if let Some(p) = paths.iter().find(|p| p.exists()).filter(|_| !overwrite) {
        bail!("{} exists; pass --overwrite to replace it", p.display());
    }
    Ok(())
}

pub fn folds(args: FoldsOptions) -> Result<Outcome> {
    let k = args.k as usize;
    let stems: Vec<String> = args
        .manifests
        .iter()
        .map(|m| {
            m.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    if let Some(twice) = stems.iter().enumerate().find(|(i, s)| stems[..*i].contains(s)) {
        bail!(
            "two manifests are named {}.csv: their folds would overwrite each other",
            twice.1
        );
    }
    let outputs: Vec<std::path::PathBuf> = (1..=k)
        .flat_map(|i| {
            let dir = args.out.join(format!("fold-{i}"));
            stems
                .iter()
                .flat_map(move |s| [dir.join(format!("{s}.train.csv")), dir.join(format!("{s}.test.csv"))])
        })
        .collect();
    refuse_existing(&outputs, args.overwrite)?;
    // Read every manifest relative to the output folder, remembering where each row came from.
    let mut rows = Vec::new();
    let mut source = Vec::new();
    for (m, path) in args.manifests.iter().enumerate() {
        for row in manifest::read_relative_to(path, &args.out)? {
            rows.push(row);
            source.push(m);
        }
    }
    if rows.is_empty() {
        bail!("the manifests list no images");
    }
    let key = |r: &manifest::ManifestRow| (r.image.clone(), r.patient.clone());
    let origin: std::collections::HashMap<(String, String), usize> =
        rows.iter().zip(&source).map(|(r, &m)| (key(r), m)).collect();
    let folds = hipfrac_data::split::folds(&rows, k, args.seed);
    println!(
        "{:<8} {}",
        "fold",
        stems.iter().map(|s| format!("{s:>16}")).collect::<String>()
    );
    for (i, fold) in folds.iter().enumerate() {
        let dir = args.out.join(format!("fold-{}", i + 1));
        let from_out = |row: &manifest::ManifestRow| {
            let moved = |p: &str| {
                if p.is_empty() {
                    String::new()
                } else {
                    manifest::relative_path(&args.out.join(p), &dir)
                }
            };
            manifest::ManifestRow {
                image: moved(&row.image),
                annotation: moved(&row.annotation),
                ..row.clone()
            }
        };
        let mut counts = Vec::new();
        for (m, stem) in stems.iter().enumerate() {
            let of = |r: &&manifest::ManifestRow| origin[&key(r)] == m;
            let test: Vec<_> = fold.iter().filter(of).map(from_out).collect();
            let train: Vec<_> = folds
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, f)| f.iter().filter(of).map(from_out))
                .collect();
            let fractured = test.iter().filter(|r| r.label.is_fracture()).count();
            counts.push(format!("{:>16}", format!("{} ({fractured} fx)", test.len())));
            manifest::write(&dir.join(format!("{stem}.test.csv")), &test)?;
            manifest::write(&dir.join(format!("{stem}.train.csv")), &train)?;
        }
        println!("{:<8} {}", format!("fold-{}", i + 1), counts.concat());
    }
    println!(
        "{} patients in {k} folds: {}",
        rows.iter()
            .map(|r| &r.patient)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        args.out.display()
    );
    Ok(Outcome::Success)
}

pub fn merge(args: MergeOptions) -> Result<Outcome> {
    refuse_existing(std::slice::from_ref(&args.out), args.overwrite)?;
    let folder = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for path in &args.manifests {
        for row in manifest::read_relative_to(path, folder)? {
            if let Some(first) = seen.insert(row.image.clone(), path.clone()) {
                bail!(
                    "{} is listed in {} and again in {}",
                    row.image,
                    first.display(),
                    path.display()
                );
            }
            rows.push(row);
        }
    }
    manifest::write(&args.out, &rows)?;
    println!(
        "{} images from {} manifests: {}",
        rows.len(),
        args.manifests.len(),
        args.out.display()
    );
    Ok(Outcome::Success)
}
