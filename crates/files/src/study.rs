//! `hipfrac study report`: a reader study's statistics and report from its reads.

use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use hipfrac_report::format::p3;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `hipfrac study report` is asked to do.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct StudyReportOptions {
    /// The reads: CSV with reader, phase, case, label (and optionally confidence, seconds).
    pub reads: PathBuf,
    /// The truth: a manifest whose `image` column names the cases.
    #[arg(long)]
    pub truth: PathBuf,
    /// Phase(s) read with the AI (repeat for several).
    #[arg(long, default_value = "III")]
    pub aided: Vec<String>,
    /// The AI alone on the same cases: `hipfrac evaluate`'s cases.csv.
    #[arg(long)]
    pub ai: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an earlier report.
    #[arg(long)]
    pub overwrite: bool,
}

/// Writes the report (report.html, tables.csv, stats.json) into `--out`; prints its notes,
/// warnings and each MRMC comparison on stderr.
pub fn report(args: StudyReportOptions) -> Result<Outcome> {
    let html_path = args.out.join("report.html");
    if html_path.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", html_path.display());
    }
    let found =
        hipfrac_report::study::write_report(&args.reads, &args.truth, &args.aided, args.ai.as_deref(), &args.out)?;
    let report = &found.report;
    if let Some(n) = found.ai_cases.filter(|&n| n < report.cases.len()) {
        eprintln!(
            "note: the AI's table covers {n} of the {} study cases",
            report.cases.len()
        );
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for (u, a, r) in &report.mrmc {
        if let Some(r) = r {
            eprintln!("{u} → {a}: proportion correct {:.3} → {:.3}, difference {:.3} (95 % CI {:.3} to {:.3}), F {:.2}, ddf {:.1}, p {}", r.fom[0], r.fom[1], r.difference, r.ci95.0, r.ci95.1, r.f, r.ddf, p3(r.p_value));
        }
    }
    eprintln!("report: {}", html_path.display());
    Ok(Outcome::Success)
}
