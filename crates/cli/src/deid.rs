use crate::cli::DeidArgs;
use crate::{inputs, progress, Outcome};
use anyhow::{bail, Result};
use hipfrac_dicom::deid::{deidentify_file, DeidOptions, Key};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn run(args: DeidArgs) -> Result<Outcome> {
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
    let options = DeidOptions { key, keep_patient_characteristics: args.keep_patient_characteristics };
    let bar = progress::bar(found.jobs.len() as u64, "de-identifying");
    let failed = AtomicUsize::new(0);
    let burned_in = AtomicUsize::new(0);
    found.jobs.par_iter().for_each(|job| {
        let output = args.out.join(&job.relative);
        match deidentify_file(&job.input, &output, &options, args.overwrite) {
            Ok(report) => {
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
    let failed = failed.into_inner();
    eprintln!(
        "de-identified {}, failed {failed}, burned-in annotation warnings {}, skipped {} (not DICOM) → {}",
        found.jobs.len() - failed,
        burned_in.into_inner(),
        found.skipped.len(),
        args.out.display()
    );
    Ok(if failed > 0 { Outcome::SomeFailed } else { Outcome::Success })
}
