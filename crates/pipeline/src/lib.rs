//! hipfrac's model commands as library functions: predict over files and folders, evaluate
//! and calibrate on manifests, train from a config, the demo end to end, and the HTTP service,
//! the DICOM node and the reading workstation set up around the one prediction path
//! (`Predictor::predict_batch`). The command line (hipfrac-cli) parses arguments into the
//! options here and prints nothing of its own beyond them; these functions report progress on
//! stderr as they go.

pub mod demo;
pub mod evaluate;
pub mod interrupt;
pub mod listen;
pub mod predict;
pub mod service;
pub mod study_serve;
pub mod train;

use anyhow::Result;
use hipfrac_core::DeviceSpec;
use hipfrac_infer::Predictor;
use std::path::{Path, PathBuf};

pub use hipfrac_core::Outcome;
use hipfrac_files::progress;

/// The model a command runs: its folder, the device, the body parts it accepts beyond the
/// default ones, and the site whose re-fitted operating points it uses (if any).
#[derive(Debug, Clone, Default)]
pub struct ModelChoice {
    pub dir: PathBuf,
    pub device: DeviceSpec,
    pub accept_body_parts: Vec<String>,
    pub site: Option<String>,
}

/// Loads a model folder onto the device asked for; a CUDA library that cannot be loaded is
/// reported with every place a CUDA torch was looked for.
pub fn load_model(dir: &Path, device: DeviceSpec) -> Result<Predictor> {
    let device = hipfrac_model::device::select(device).map_err(|e| match e {
        // `hipfrac` put the CUDA torch it found first on LD_LIBRARY_PATH.
        hipfrac_model::device::DeviceError::CudaLibrary(_) => {
            let env = |name: &str| std::env::var(name).ok();
            let search = hipfrac_core::cuda::search(&env, hipfrac_core::cuda::project_venv(), false);
            anyhow::anyhow!("{e}\n{}", search.report())
        }
        other => other.into(),
    })?;
    Ok(Predictor::load(dir, device)?)
}

/// The predictor a command runs: the model loaded, its accepted body parts, and the site's
/// operating points when one is named.
pub fn open_predictor(choice: &ModelChoice) -> Result<Predictor> {
    let mut predictor = load_model(&choice.dir, choice.device)?;
    predictor.acceptance = hipfrac_core::Acceptance::with_body_parts(&choice.accept_body_parts);
    if let Some(site) = &choice.site {
        predictor.use_site(site)?;
    }
    Ok(predictor)
}

/// The long-running services' log (tracing) on stderr, coloured only on a terminal.
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
