//! `hipfrac-torch`: the model commands of `hipfrac` (train, predict, calibrate, evaluate,
//! demo, study serve). `hipfrac` hands these commands to this binary, which links libtorch;
//! run it through `hipfrac`.

// Modules shared with `hipfrac` (each binary uses part of them).
#[path = "../cli/mod.rs"]
#[allow(dead_code)]
mod cli;
#[path = "../cuda.rs"]
#[allow(dead_code)]
mod cuda;
mod demo;
mod evaluate;
#[path = "../inputs.rs"]
#[allow(dead_code)]
mod inputs;
mod interrupt;
mod listen;
#[path = "../outcome.rs"]
mod outcome;
mod predict;
#[path = "../progress.rs"]
mod progress;
mod serve;
mod service;
mod train;

use clap::Parser;
use outcome::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Train(args) => {
            hipfrac_train::memory::keep_freed_memory();
            train::run(args)
        }
        cli::Command::Predict(args) => predict::run(args),
        cli::Command::Calibrate(args) => evaluate::calibrate(args),
        cli::Command::Evaluate(args) => evaluate::run(args),
        cli::Command::Demo(args) => {
            hipfrac_train::memory::keep_freed_memory();
            demo::run(args)
        }
        cli::Command::Study(cli::StudyCommand::Serve(args)) => serve::run(args),
        cli::Command::Serve(args) if args.token.is_none() => service::run(args),
        cli::Command::Listen(args) => listen::run(args),
        _ => Err(anyhow::anyhow!(
            "this command runs no model: run it as `hipfrac`, not `hipfrac-torch`"
        )),
    };
    outcome::exit(result)
}

/// Loads a model folder onto the device asked for.
pub fn load_model(dir: &std::path::Path, device: hipfrac_core::DeviceSpec) -> anyhow::Result<hipfrac_infer::Predictor> {
    let device = hipfrac_model::device::select(device).map_err(|e| match e {
        // Say where a CUDA torch was looked for (`hipfrac` put the one it found first).
        hipfrac_model::device::DeviceError::CudaLibrary(_) => {
            let env = |name: &str| std::env::var(name).ok();
            anyhow::anyhow!("{e}\n{}", cuda::search(&env, cuda::project_venv(), false).report())
        }
        other => other.into(),
    })?;
    Ok(hipfrac_infer::Predictor::load(dir, device)?)
}
