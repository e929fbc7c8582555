//! `hipfrac study report` and `hipfrac study hash-password`.

use anyhow::{bail, Context, Result};
use hipfrac_cli::args::StudyReportArgs;
use hipfrac_core::Outcome;
use hipfrac_report::format::p3;

pub fn run(args: StudyReportArgs) -> Result<Outcome> {
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

pub fn hash_password() -> Result<Outcome> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.len() < 8 {
        bail!("the password must have at least 8 characters");
    }
    println!("{}", hipfrac_study::hash_password(password));
    Ok(Outcome::Success)
}
