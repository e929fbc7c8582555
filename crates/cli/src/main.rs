//! `hipfrac`: the command-line front end. Parses arguments, calls a library, and maps
//! failures to exit codes (see [`outcome`]).
//!
//! This binary does not link libtorch, so the commands that run no model (convert, deid,
//! dataset, labels, phantom, study report) start in milliseconds. The model commands (train,
//! predict, calibrate, evaluate, demo, study serve) are handed to the sibling binary
//! `hipfrac-torch` with the same arguments, the way git and cargo run their subcommands.

mod cli;
mod convert;
#[allow(dead_code)] // report() is hipfrac-torch's
mod cuda;
mod dataset;
mod deid;
mod inputs;
mod labels;
mod outcome;
mod phantom;
mod progress;
mod shards;
mod study_report;
mod tokens;

use clap::Parser;
use outcome::Outcome;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if cli::runs_a_model(&args[1..]) {
        return hand_over(&args[1..]);
    }
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Convert(args) => convert::run(args),
        cli::Command::Deid(args) => deid::run(args),
        cli::Command::Dataset(cli::DatasetCommand::Check(args)) => dataset::check(args),
        cli::Command::Dataset(cli::DatasetCommand::Split(args)) => dataset::split(args),
        cli::Command::Dataset(cli::DatasetCommand::Folds(args)) => dataset::folds(args),
        cli::Command::Dataset(cli::DatasetCommand::Merge(args)) => dataset::merge(args),
        cli::Command::Labels(cli::LabelsCommand::Convert(args)) => labels::convert(args),
        cli::Command::Labels(cli::LabelsCommand::List) => labels::list(),
        cli::Command::Phantom(args) => phantom::run(args),
        cli::Command::MergeShards(args) => shards::run(args),
        cli::Command::Study(cli::StudyCommand::Report(args)) => study_report::run(args),
        cli::Command::Study(cli::StudyCommand::HashPassword) => study_report::hash_password(),
        cli::Command::Serve(cli::ServeArgs {
            token: Some(cli::ServeCommand::Token(command)),
            ..
        }) => tokens::run(command),
        other => unreachable!("{other:?} runs a model and was handed over"),
    };
    outcome::exit(result)
}

/// Where the model binary is: `$HIPFRAC_TORCH`, else `hipfrac-torch` beside this binary.
fn torch_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HIPFRAC_TORCH") {
        return PathBuf::from(path);
    }
    let here = std::env::current_exe().unwrap_or_default();
    here.with_file_name(format!("hipfrac-torch{}", std::env::consts::EXE_SUFFIX))
}

/// Runs `hipfrac-torch` with `args` in this process's place (its exit status is ours).
fn hand_over(args: &[OsString]) -> ExitCode {
    let binary = torch_binary();
    let mut command = std::process::Command::new(&binary);
    command.args(args);
    if let Some(dir) = cuda_library_dir(args) {
        // The CUDA torch's folder first, so libtorch_cpu and libtorch_cuda come from one torch.
        let rest = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        command.env(
            "LD_LIBRARY_PATH",
            if rest.is_empty() {
                dir.display().to_string()
            } else {
                format!("{}:{rest}", dir.display())
            },
        );
    }
    #[cfg(unix)]
    let error = {
        use std::os::unix::process::CommandExt;
        command.exec()
    };
    #[cfg(not(unix))]
    let error = match command.status() {
        Ok(status) => return ExitCode::from(status.code().unwrap_or(2).clamp(0, 255) as u8),
        Err(e) => e,
    };
    eprintln!(
        "error: {}: cannot run the model binary ({error}); it is built beside `hipfrac` (cargo build --release -p hipfrac) — or set HIPFRAC_TORCH to its path",
        binary.display()
    );
    ExitCode::from(2)
}

/// The CUDA torch folder to put first on LD_LIBRARY_PATH for `hipfrac-torch`, when the command
/// asks for CUDA (or leaves the device to `auto` on a host with an NVIDIA driver) and one is
/// found (see [`cuda`]). None keeps the environment as it is; the model binary then names what
/// was searched if CUDA cannot be loaded.
fn cuda_library_dir(args: &[OsString]) -> Option<PathBuf> {
    let explicit = cuda::asks_for_cuda(args);
    let auto_with_driver = cuda::device_is_auto(args) && std::path::Path::new("/proc/driver/nvidia/version").exists();
    if !explicit && !auto_with_driver {
        return None;
    }
    let env = |name: &str| std::env::var(name).ok();
    let found = cuda::search(&env, cuda::project_venv(), explicit).found?;
    let already = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .next()
        .is_some_and(|first| std::path::Path::new(first) == found);
    (!already).then_some(found)
}
