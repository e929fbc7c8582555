//! `hipfrac`: the command-line front end. Parses the command line, runs the commands that need
//! no model through hipfrac-files, and maps their outcome to an exit code (see [`outcome`]).
//!
//! This binary does not link libtorch, so the commands that run no model (convert, deid,
//! dataset, labels, phantom, merge-shards, study report) start in milliseconds. A model
//! command (train, predict, calibrate, evaluate, demo, serve, listen, study serve), once
//! parsed, is handed whole to the sibling binary `hipfrac-torch`, which links libtorch, the
//! way git and cargo run their subcommands.

mod study;
mod tokens;

use clap::Parser;
use hipfrac_cli::args::*;
use hipfrac_cli::outcome;
use hipfrac_core::DeviceSpec;
use hipfrac_files::{convert, dataset, deid, labels, phantom, shards};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.runs_a_model() {
        return hand_over(&cli);
    }
    let result = match cli.command {
        Command::Convert(options) => convert::run(options),
        Command::Deid(options) => deid::run(options),
        Command::Dataset(DatasetCommand::Check(options)) => dataset::check(options),
        Command::Dataset(DatasetCommand::Split(options)) => dataset::split(options),
        Command::Dataset(DatasetCommand::Folds(options)) => dataset::folds(options),
        Command::Dataset(DatasetCommand::Merge(options)) => dataset::merge(options),
        Command::Labels(LabelsCommand::Convert(options)) => labels::convert(options),
        Command::Labels(LabelsCommand::List) => labels::list(),
        Command::Phantom(PhantomArgs {
            command: Some(PhantomCommand::Sites),
            ..
        }) => phantom::sites(),
        Command::Phantom(PhantomArgs {
            command: Some(PhantomCommand::Sheet(options)),
            ..
        }) => phantom::sheet(options),
        Command::Phantom(a) => phantom::run(a.options),
        Command::MergeShards(options) => shards::run(options),
        Command::Study(StudyCommand::Report(options)) => hipfrac_files::study::report(options),
        Command::Study(StudyCommand::HashPassword) => study::hash_password(),
        Command::Serve(ServeArgs {
            token: Some(ServeCommand::Token(command)),
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

/// Runs `hipfrac-torch` on the parsed command in this process's place (its exit status is
/// ours). The command line goes along too, for `ps`; `hipfrac-torch` runs what was parsed.
fn hand_over(cli: &Cli) -> ExitCode {
    let binary = torch_binary();
    let mut command = std::process::Command::new(&binary);
    command
        .args(std::env::args_os().skip(1))
        .env(hipfrac_cli::PARSED_COMMAND, hipfrac_cli::hand_over(cli));
    if let Some(dir) = cuda_library_dir(cli.command.device().unwrap_or_default()) {
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
/// found (see [`hipfrac_core::cuda`]). None keeps the environment as it is; the model binary
/// then names what was searched if CUDA cannot be loaded.
fn cuda_library_dir(device: DeviceSpec) -> Option<PathBuf> {
    let explicit = matches!(device, DeviceSpec::Cuda(_));
    let auto_with_driver = device == DeviceSpec::Auto && std::path::Path::new("/proc/driver/nvidia/version").exists();
    if !explicit && !auto_with_driver {
        return None;
    }
    let env = |name: &str| std::env::var(name).ok();
    let found = hipfrac_core::cuda::search(&env, hipfrac_core::cuda::project_venv(), explicit).found?;
    let already = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .next()
        .is_some_and(|first| std::path::Path::new(first) == found);
    (!already).then_some(found)
}
