//! `hipfrac-torch`: the model commands of `hipfrac` (train, predict, calibrate, evaluate, demo,
//! serve, listen, study serve), run through hipfrac-pipeline. It links libtorch; `hipfrac`
//! parses the command line and hands a model command to it whole.

use hipfrac_cli::args::*;
use hipfrac_cli::outcome;
use hipfrac_pipeline::{demo, evaluate, listen, predict, service, study_serve, train, ModelChoice};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = hipfrac_cli::received();
    let result = match cli.command {
        Command::Train(a) => {
            hipfrac_train::memory::keep_freed_memory();
            train::run(train::TrainOptions {
                config: a.config,
                init_config: a.init_config,
                device: a.device,
                resume: a.resume,
            })
        }
        Command::Predict(a) => predict(a),
        Command::Calibrate(a) => evaluate::calibrate(evaluate::CalibrateOptions {
            model: choice(a.model, None),
            data: a.data,
            sensitivity: a.sensitivity,
            specificity: a.specificity,
            overwrite: a.overwrite,
            out_of_scope: a.out_of_scope,
            hip_assessed: a.hip_assessed,
            site: a.site,
        }),
        Command::Evaluate(a) => evaluate::run(evaluate::EvaluateOptions {
            model: choice(a.model, a.site),
            data: a.data,
            out: a.out,
            overwrite: a.overwrite,
        }),
        Command::Demo(a) => {
            hipfrac_train::memory::keep_freed_memory();
            demo::run(demo::DemoOptions {
                two_stage: a.trains_two_stage(),
                out: a.out,
                full: a.full,
                epochs: a.epochs,
                internal_images: a.internal_images,
                ratios: a.ratios,
                external_images: a.external_images,
                seed: a.seed,
                acquisition: a.acquisition,
                device: a.device,
                phantom_px: a.phantom_px,
                generator: a.generator.into(),
                real: a.real,
                phantom_only: a.phantom_only,
            })
        }
        Command::Study(StudyCommand::Serve(a)) => study_serve::run(study_serve::StudyServeOptions {
            study: a.study,
            addr: a.addr,
            insecure: a.insecure,
            tls: a.tls_cert.zip(a.tls_key),
            device: a.device,
        }),
        Command::Serve(ServeArgs {
            run: Some(a),
            token: None,
        }) => serve(a),
        Command::Listen(a) => listen(a),
        other => Err(anyhow::anyhow!(
            "{other:?} runs no model: run it as `hipfrac`, not `hipfrac-torch`"
        )),
    };
    outcome::exit(result)
}

/// The model a command runs, from its `ModelArgs` and `--site`.
fn choice(model: ModelArgs, site: Option<String>) -> ModelChoice {
    ModelChoice {
        dir: model.model,
        device: model.device,
        accept_body_parts: model.accept_body_parts,
        site,
    }
}

/// `hipfrac serve`: the service's configuration from its arguments.
fn serve(a: ServeRunArgs) -> anyhow::Result<hipfrac_core::Outcome> {
    let tokens = match &a.tokens {
        Some(path) => Some((path.clone(), hipfrac_service::tokens::Tokens::load(path)?)),
        None => None,
    };
    let config = hipfrac_service::Config {
        addr: a.addr,
        tokens,
        batching: hipfrac_service::batcher::Batching {
            max_batch: a.max_batch as usize,
            max_wait: Duration::from_millis(a.max_wait_ms),
            capacity: a.queue as usize,
        },
        max_body: a.max_body_mb as usize * 1024 * 1024,
        timeout: Duration::from_secs(a.timeout_s),
        decoders: std::thread::available_parallelism().map_or(2, |n| n.get()),
        max_requests: a.max_requests as usize,
        max_files: a.max_files as usize,
    };
    let model = ModelArgs {
        model: a.model,
        device: a.device,
        accept_body_parts: a.accept_body_parts,
    };
    service::run(&choice(model, a.site), config, a.insecure)
}

/// `hipfrac predict`: the options from its arguments (a DICOMweb server for --stow is checked
/// before any prediction).
fn predict(a: PredictArgs) -> anyhow::Result<hipfrac_core::Outcome> {
    let stow = a
        .stow
        .map(|url| hipfrac_node::Stow::new(&url, a.stow_auth.as_deref(), a.stow_ca.as_deref()))
        .transpose()?;
    predict::run(predict::PredictOptions {
        inputs: a.inputs,
        shard: a.shard,
        batch: a.batch,
        precision: a.precision,
        model: choice(a.model, a.site),
        out: a.out,
        overlay_size: a.overlay_size,
        no_overlay: a.no_overlay,
        dicom: a.dicom.iter().map(|k| k.kind()).collect(),
        overwrite: a.overwrite,
        skip_existing: a.skip_existing,
        stow,
    })
}

/// `hipfrac listen`: the DICOM node's configuration from its arguments.
fn listen(a: ListenArgs) -> anyhow::Result<hipfrac_core::Outcome> {
    let target = match (a.dest, a.dest_dicomweb) {
        (Some((ae_title, address)), _) => hipfrac_node::Target::Dimse {
            ae_title,
            address,
            calling: a.ae_title.clone(),
        },
        (None, Some(url)) => hipfrac_node::Target::DicomWeb(hipfrac_node::Stow::new(
            &url,
            a.dicomweb_auth.as_deref(),
            a.dicomweb_ca.as_deref(),
        )?),
        (None, None) => unreachable!("clap requires --dest or --dest-dicomweb"),
    };
    let config = hipfrac_node::Config {
        addr: a.addr,
        ae_title: a.ae_title.clone(),
        allow: a.allow,
        spool: a.spool,
        spool_limit: a.spool_limit_mb << 20,
        max_instance: a.max_instance_mb << 20,
        max_associations: a.max_associations as usize,
        destination: hipfrac_node::Destination {
            target,
            max_backoff: Duration::from_secs(a.max_backoff_s),
        },
        work: hipfrac_node::Work {
            outputs: a.outputs.iter().map(|k| k.kind()).collect(),
            overlay_size: a.overlay_size,
        },
    };
    listen::run(&choice(a.model, a.site), config)
}
