use crate::cli::{Bits, ConvertArgs};
use crate::{inputs, progress, Outcome};
use anyhow::{bail, Context, Result};
use hipfrac_dicom::convert::{convert_file, ConvertOptions, Outputs, PngBits};
use hipfrac_dicom::display::VoiChoice;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

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
            if !(width >= 1.0) {
                bail!("--window {text}: width must be at least 1");
            }
            VoiChoice::Explicit { center, width }
        }
    })
}

pub fn run(args: ConvertArgs) -> Result<Outcome> {
    let options = ConvertOptions {
        bits: match args.bits {
            Bits::Eight => PngBits::Eight,
            Bits::Sixteen => PngBits::Sixteen,
        },
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
