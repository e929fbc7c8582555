//! Expanding file and folder arguments into (input, relative output name) pairs.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One file to process and the output path relative to the output folder (without its
/// final extension decided by the caller).
pub struct Job {
    pub input: PathBuf,
    pub relative: PathBuf,
}

/// What was found.
pub struct Found {
    pub jobs: Vec<Job>,
    /// Files inside folders that are not DICOM (no `DICM` magic), skipped.
    pub skipped: Vec<PathBuf>,
}

/// Extensions that mark a DICOM file and are dropped from output names. Anything else is
/// kept (`1.2.840.5` stays `1.2.840.5.png`).
const DICOM_EXTENSIONS: [&str; 3] = ["dcm", "dicom", "dic"];

fn output_stem(path: &Path) -> PathBuf {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if DICOM_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) => path.with_extension(""),
        _ => path.to_path_buf(),
    }
}

/// Expands inputs: files are taken as given; folders are walked and their DICOM files
/// (`DICM` magic) taken, others listed as skipped. Two inputs that would write the same
/// output are an error before anything is written.
pub fn expand(inputs: &[PathBuf], keep_name: bool) -> Result<Found> {
    expand_with(inputs, keep_name, hipfrac_dicom::is_dicom_file)
}

/// Like [`expand`], taking from folders the files `accept` says yes to.
pub fn expand_with(inputs: &[PathBuf], keep_name: bool, accept: fn(&Path) -> bool) -> Result<Found> {
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<_> = walkdir::WalkDir::new(input)
                .follow_links(false)
                .into_iter()
                .collect::<Result<_, _>>()
                .with_context(|| format!("cannot list {}", input.display()))?;
            entries.sort_by(|a, b| a.path().cmp(b.path()));
            for entry in entries {
                if !entry.file_type().is_file() {
                    continue;
                }
                let path = entry.path();
                if !accept(path) {
                    skipped.push(path.to_path_buf());
                    continue;
                }
                let relative = path
                    .strip_prefix(input)
                    .expect("walked paths should lie under their root");
                let relative = if keep_name {
                    relative.to_path_buf()
                } else {
                    output_stem(relative)
                };
                jobs.push(Job {
                    input: path.to_path_buf(),
                    relative,
                });
            }
        } else if input.exists() {
            let name = PathBuf::from(
                input
                    .file_name()
                    .with_context(|| format!("{}: not a file", input.display()))?,
            );
            let relative = if keep_name { name } else { output_stem(&name) };
            jobs.push(Job {
                input: input.clone(),
                relative,
            });
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    for job in &jobs {
        if let Some(first) = seen.insert(&job.relative, &job.input) {
            bail!(
                "{} and {} would both be written as {}; convert them separately",
                first.display(),
                job.input.display(),
                job.relative.display()
            );
        }
    }
    Ok(Found { jobs, skipped })
}
