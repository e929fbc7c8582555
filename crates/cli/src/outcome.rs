//! Exit codes, shared by `hipfrac` and `hipfrac-torch`:
//!
//! * 0 — everything succeeded;
//! * 1 — the command ran but some inputs failed or the dataset has errors (a summary says which);
//! * 2 — the command line itself is wrong (clap's usage errors) or a fatal error stopped it;
//! * 130 — interrupted (Ctrl-C) after leaving its work resumable.

use hipfrac_core::Outcome;
use std::process::ExitCode;

/// The exit code for a command's result; a fatal error is printed with its causes.
pub fn exit(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(error) => {
            eprintln!("error: {}", hipfrac_core::error_chain(error.as_ref()));
            ExitCode::from(2)
        }
    }
}
