//! `hipfrac`: the command-line front end. Parses arguments, validates them, calls a library,
//! and maps failures to exit codes:
//!
//! * 0 — everything succeeded;
//! * 1 — the command ran but some inputs failed or the dataset has errors (a summary says which);
//! * 2 — the command line itself is wrong (clap's usage errors) or a fatal error stopped it.

mod cli;
mod convert;
mod dataset;
mod deid;
mod demo;
mod evaluate;
mod inputs;
mod labels;
mod phantom;
mod predict;
mod progress;
mod study;
mod svg;
mod train;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = match cli.command {
        cli::Command::Convert(args) => convert::run(args),
        cli::Command::Deid(args) => deid::run(args),
        cli::Command::Dataset(cli::DatasetCommand::Check(args)) => dataset::check(args),
        cli::Command::Dataset(cli::DatasetCommand::Split(args)) => dataset::split(args),
        cli::Command::Labels(cli::LabelsCommand::Convert(args)) => labels::convert(args),
        cli::Command::Labels(cli::LabelsCommand::List) => labels::list(),
        cli::Command::Phantom(args) => phantom::run(args),
        cli::Command::Train(args) => {
            hipfrac_train::device::keep_freed_memory();
            train::run(args)
        }
        cli::Command::Predict(args) => predict::run(args),
        cli::Command::Calibrate(args) => evaluate::run_calibrate(args),
        cli::Command::Evaluate(args) => evaluate::run(args),
        cli::Command::Demo(args) => {
            hipfrac_train::device::keep_freed_memory();
            demo::run(args)
        }
        cli::Command::Study(cli::StudyCommand::Report(args)) => study::report(args),
        cli::Command::Study(cli::StudyCommand::Serve(args)) => study::serve(args),
        cli::Command::Study(cli::StudyCommand::HashPassword) => study::hash_password(),
    };
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// How a command that ran to its end went.
pub enum Outcome {
    /// Everything succeeded.
    Success,
    /// Some inputs failed (already reported).
    SomeFailed,
}
