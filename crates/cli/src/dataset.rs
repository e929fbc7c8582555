use crate::cli::{CheckArgs, SplitArgs};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use hipfrac_data::check::{check_dataset, CheckReport};
use hipfrac_data::split::{split as split_rows, Ratios};
use hipfrac_data::{manifest, LabelMap};
use std::path::Path;

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

pub fn check(args: CheckArgs) -> Result<Outcome> {
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

pub fn split(args: SplitArgs) -> Result<Outcome> {
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
        "{:<10} {:>7} {:>9}  {}",
        "split", "images", "patients", "DF / VF / SF / UF / none (% of images)"
    );
    for (name, rows) in &parts {
        let mut patients: Vec<&str> = rows.iter().map(|r| r.patient.as_str()).collect();
        patients.sort();
        patients.dedup();
        let shares: Vec<String> = hipfrac_core::Label::ALL
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
        "\n{:<10} {:>7}  {}",
        "achieved", "images", "of the DF / VF / SF / UF / none images"
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
