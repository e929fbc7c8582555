//! `hipfrac deid`: de-identify DICOM files and folders with one key.

use crate::{inputs, progress, Outcome};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use hipfrac_dicom::deid::{deidentify_file, DeidOptions as FileOptions, Key, ProfileOption};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What `hipfrac deid` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct DeidOptions {
    /// DICOM files or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; files keep their relative layout and name.
    #[arg(long)]
    pub out: PathBuf,
    /// Secret key file for pseudonyms and UIDs. Created (random, 256 bits, mode 0600) when it
    /// does not exist; never overwritten. Keep it secret and keep it: the same key gives the
    /// same pseudonyms next time.
    #[arg(long)]
    pub key: PathBuf,
    /// Keep patient sex, age, size and weight (PS3.15 Retain Patient Characteristics Option;
    /// the same as `--retain patient-characteristics`).
    #[arg(long)]
    pub keep_patient_characteristics: bool,
    /// A PS3.15 option that keeps attributes the basic profile removes, following its K cells
    /// in Table E.1-1 (repeatable). Its C (clean) cells keep the basic action.
    #[arg(long, value_enum)]
    pub retain: Vec<Retain>,
    /// Write what was done to each attribute of each file (CSV: file, attribute, tag, name,
    /// action, rule; no values) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The linking table: original Patient ID → pseudonym (and date shift), CSV, readable by
    /// its owner only; rows of earlier runs are kept. It identifies patients: keep it apart
    /// from the de-identified output (it may not lie inside --out).
    #[arg(long)]
    pub link: Option<PathBuf>,
    /// Replace outputs that already exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// The PS3.15 options `deid` implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Retain {
    /// Retain UIDs Option.
    Uids,
    /// Retain Device Identity Option.
    DeviceIdentity,
    /// Retain Institution Identity Option.
    InstitutionIdentity,
    /// Retain Patient Characteristics Option.
    PatientCharacteristics,
    /// Retain Longitudinal Temporal Information with Full Dates Option.
    FullDates,
    /// Retain Longitudinal Temporal Information with Modified Dates Option: each patient's
    /// dates move by the same whole number of days (from the key), so intervals are kept.
    ModifiedDates,
}

impl Retain {
    /// The profile option it names.
    pub fn option(self) -> ProfileOption {
        match self {
            Retain::Uids => ProfileOption::RetainUids,
            Retain::DeviceIdentity => ProfileOption::RetainDeviceIdentity,
            Retain::InstitutionIdentity => ProfileOption::RetainInstitutionIdentity,
            Retain::PatientCharacteristics => ProfileOption::RetainPatientCharacteristics,
            Retain::FullDates => ProfileOption::RetainLongFullDates,
            Retain::ModifiedDates => ProfileOption::RetainLongModifiedDates,
        }
    }
}

fn options(args: &DeidOptions) -> Vec<ProfileOption> {
    let mut options: Vec<ProfileOption> = args.retain.iter().map(|r| r.option()).collect();
    if args.keep_patient_characteristics {
        options.push(ProfileOption::RetainPatientCharacteristics);
    }
    let mut seen = Vec::new();
    options.retain(|o| {
        if seen.contains(o) {
            false
        } else {
            seen.push(*o);
            true
        }
    });
    options
}

/// De-identifies every input with the key (made when missing); writes the report and the
/// linking table when asked.
pub fn run(args: DeidOptions) -> Result<Outcome> {
    if let Some(link) = &args.link {
        use hipfrac_data::manifest::absolute;
        if absolute(link).starts_with(absolute(&args.out)) {
            bail!(
                "--link {}: the linking table identifies patients; keep it outside the de-identified output {}",
                link.display(),
                args.out.display()
            );
        }
    }
    let found = inputs::expand(&args.inputs, true)?;
    if found.jobs.is_empty() {
        bail!("no DICOM files found in the inputs");
    }
    let (key, created) = Key::load_or_create(&args.key)?;
    if created {
        eprintln!(
            "created key file {} — keep it secret and keep it: the same key gives the same pseudonyms",
            args.key.display()
        );
    }
    if let Some(report) = &args.report {
        if report.exists() && !args.overwrite {
            bail!("{} exists; pass --overwrite to replace it", report.display());
        }
    }
    let options = FileOptions {
        key,
        options: options(&args),
    };
    let logs = Mutex::new(Vec::new());
    let links = Mutex::new(std::collections::BTreeMap::new());
    let bar = progress::bar(found.jobs.len() as u64, "de-identifying");
    let failed = AtomicUsize::new(0);
    let burned_in = AtomicUsize::new(0);
    found.jobs.par_iter().for_each(|job| {
        let output = args.out.join(&job.relative);
        match deidentify_file(&job.input, &output, &options, args.overwrite) {
            Ok(report) => {
                if let (Some(original), true) = (&report.original_patient_id, args.link.is_some()) {
                    links.lock().expect("no panics while linking").insert(original.clone(), (report.pseudonym.clone(), report.date_shift_days));
                }
                if args.report.is_some() {
                    logs.lock().expect("no panics while logging").push((job.input.display().to_string(), report.changes.clone()));
                }
                if report.burned_in_annotation {
                    burned_in.fetch_add(1, Ordering::Relaxed);
                    bar.suspend(|| {
                        eprintln!(
                            "warning: {}: Burned In Annotation = YES — text in the pixels is NOT removed; review {} before sharing",
                            job.input.display(),
                            output.display()
                        )
                    });
                }
                if report.missing_patient_id {
                    bar.suspend(|| {
                        eprintln!("warning: {}: no Patient ID; pseudonym derived from the Study Instance UID", job.input.display())
                    });
                }
            }
            Err(error) => {
                failed.fetch_add(1, Ordering::Relaxed);
                bar.suspend(|| eprintln!("failed: {}", hipfrac_core::error_chain(&error)));
            }
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    if let Some(path) = &args.report {
        let mut logs = logs.into_inner().expect("no panics while logging");
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        hipfrac_dicom::atomic::write_atomic(path, &hipfrac_dicom::deid::records::change_log_csv(&logs))?;
        eprintln!(
            "change log: {} ({} attributes acted on in {} files)",
            path.display(),
            logs.iter().map(|l| l.1.len()).sum::<usize>(),
            logs.len()
        );
    }
    if let Some(path) = &args.link {
        let links = links.into_inner().expect("no panics while linking");
        hipfrac_dicom::atomic::write_atomic_private(
            path,
            &hipfrac_dicom::deid::records::link_table_csv(path, &links)?,
        )?;
        eprintln!(
            "linking table: {} ({} patient(s) in this run; owner-only — keep it apart from the output)",
            path.display(),
            links.len()
        );
    }
    let failed = failed.into_inner();
    eprintln!(
        "de-identified {}, failed {failed}, burned-in annotation warnings {}, skipped {} (not DICOM) → {}",
        found.jobs.len() - failed,
        burned_in.into_inner(),
        found.skipped.len(),
        args.out.display()
    );
    Ok(if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    })
}
