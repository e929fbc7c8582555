//! `hipfrac convert`: DICOM radiographs → PNG (+ a JSON sidecar), in parallel.

use crate::{inputs, progress, Outcome};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hipfrac_dicom::convert::{convert_file, ConvertOptions as FileOptions, Outputs, PngBits};
use hipfrac_dicom::display::VoiChoice;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What `hipfrac convert` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ConvertOptions {
    /// DICOM files or folders (searched recursively).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder (created if needed). Folder inputs keep their sub-folder layout.
    #[arg(long)]
    pub out: PathBuf,
    /// PNG bit depth: 8 (displayed grey) or 16 (modality values).
    #[arg(long, value_enum, default_value = "8")]
    pub bits: Bits,
    /// VOI for 8-bit output: `file` (the file's first window, else its VOI LUT, else auto),
    /// `file:N` (window N), `lut:N` (VOI LUT N), `auto` (0.5–99.5th percentile), or `C,W`
    /// (centre,width in modality units, e.g. `511,1024`).
    #[arg(long, default_value = "file", allow_hyphen_values = true)]
    pub window: String,
    /// Do not write the JSON sidecar.
    #[arg(long)]
    pub no_sidecar: bool,
    /// Replace outputs that already exist (by default they are left alone and reported).
    #[arg(long, conflicts_with = "skip_existing")]
    pub overwrite: bool,
    /// Leave inputs whose outputs already exist alone and count them as done (to top up an
    /// archive conversion); the exit status is 0 when nothing failed.
    #[arg(long)]
    pub skip_existing: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// `--bits`: the PNG bit depth, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Bits {
    #[value(name = "8")]
    Eight,
    #[value(name = "16")]
    Sixteen,
}

impl From<Bits> for PngBits {
    fn from(bits: Bits) -> PngBits {
        match bits {
            Bits::Eight => PngBits::Eight,
            Bits::Sixteen => PngBits::Sixteen,
        }
    }
}

/// Parses `--window`.
pub fn parse_window(text: &str) -> Result<VoiChoice> {
    let text = text.trim();
    let index = |rest: &str| -> Result<usize> {
        let n: usize = rest
            .parse()
            .with_context(|| format!("--window {text}: {rest:?} is not a number"))?;
        if n == 0 {
            bail!("--window {text}: numbering starts at 1");
        }
        Ok(n)
    };
    Ok(match text {
        "file" => VoiChoice::File,
        "auto" => VoiChoice::AUTO,
        _ if text.starts_with("file:") => VoiChoice::FileWindow(index(&text[5..])?),
        _ if text.starts_with("lut:") => VoiChoice::FileLut(index(&text[4..])?),
        _ => {
            let parts: Vec<&str> = text.split(',').collect();
            let [center, width] = parts[..] else {
                bail!("--window {text}: expected file, file:N, lut:N, auto, or CENTER,WIDTH");
            };
            let center: f64 = center
                .trim()
                .parse()
                .with_context(|| format!("--window {text}: bad centre"))?;
            let width: f64 = width
                .trim()
                .parse()
                .with_context(|| format!("--window {text}: bad width"))?;
            if width.is_nan() || width < 1.0 {
                bail!("--window {text}: width must be at least 1");
            }
            VoiChoice::Explicit { center, width }
        }
    })
}

/// Converts every input; failures are reported and skipped (the outcome says so).
pub fn run(args: ConvertOptions) -> Result<Outcome> {
    let options = FileOptions {
        bits: args.bits.into(),
        voi: parse_window(&args.window)?,
        sidecar: !args.no_sidecar,
        overwrite: args.overwrite,
    };
    let found = inputs::expand(&args.inputs, false)?;
    if found.jobs.is_empty() {
        bail!("no DICOM files found in the inputs");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let bar = progress::bar(found.jobs.len() as u64, "converting");
    let failed = AtomicUsize::new(0);
    let existing = AtomicUsize::new(0);
    pool.install(|| {
        found.jobs.par_iter().for_each(|job| {
            let mut png = args.out.join(&job.relative).into_os_string();
            png.push(".png");
            let png = std::path::PathBuf::from(png);
            let json = png.with_extension("json");
            if args.skip_existing && png.exists() && (args.no_sidecar || json.exists()) {
                existing.fetch_add(1, Ordering::Relaxed);
                bar.inc(1);
                return;
            }
            if let Err(error) = convert_file(&job.input, &Outputs { png, json }, &options) {
                failed.fetch_add(1, Ordering::Relaxed);
                bar.suspend(|| eprintln!("failed: {}", hipfrac_core::error_chain(&error)));
            }
            bar.inc(1);
        })
    });
    bar.finish_and_clear();
    let (failed, existing) = (failed.into_inner(), existing.into_inner());
    let converted = found.jobs.len() - failed - existing;
    eprintln!(
        "converted {converted}, failed {failed}, already there {existing}, skipped {} (not DICOM) → {}",
        found.skipped.len(),
        args.out.display()
    );
    for path in found.skipped.iter().take(10) {
        eprintln!("  skipped (not DICOM): {}", path.display());
    }
    if found.skipped.len() > 10 {
        eprintln!("  … and {} more", found.skipped.len() - 10);
    }
    Ok(if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    })
}
