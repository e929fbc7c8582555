//! Exit codes, shared by `hipfrac` and `hipfrac-torch`:
//!
//! * 0 — everything succeeded;
//! * 1 — the command ran but some inputs failed or the dataset has errors (a summary says which);
//! * 2 — the command line itself is wrong (clap's usage errors) or a fatal error stopped it;
//! * 130 — interrupted (Ctrl-C) after leaving its work resumable.

use std::process::ExitCode;

/// How a command that ran to its end went.
pub enum Outcome {
    /// Everything succeeded.
    Success,
    /// Some inputs failed (already reported).
    SomeFailed,
    /// Stopped by Ctrl-C, cleanly (already reported). Only `hipfrac-torch` (training) stops
    /// this way; `hipfrac` shares this file.
    #[allow(dead_code)]
    Interrupted,
}

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
