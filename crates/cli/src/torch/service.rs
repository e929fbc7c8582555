//! `hipfrac serve`: the HTTP inference service (hipfrac-service) around the one prediction
//! path, `Predictor::predict_batch`, owned by the service's batching thread.

use crate::cli::ServeArgs;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use hipfrac_core::Radiograph;
use hipfrac_service::batcher::{Batching, PredictError};
use hipfrac_service::{Config, ModelInfo};
use std::time::Duration;

pub fn run(args: ServeArgs) -> Result<Outcome> {
    let model_dir = args.model.as_deref().context("--model is required")?;
    if !args.addr.ip().is_loopback() && !args.insecure {
        bail!(
            "--addr {}: other machines could reach the service over plain HTTP (tokens and images in clear); serve it through a TLS reverse proxy on 127.0.0.1, or pass --insecure to accept that",
            args.addr
        );
    }
    let tokens = match &args.tokens {
        Some(path) => Some((path.clone(), hipfrac_service::tokens::Tokens::load(path)?)),
        None => None,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut predictor = crate::load_model(model_dir, args.device)?;
    predictor.acceptance = hipfrac_core::Acceptance::with_body_parts(&args.accept_body_parts);
    if let Some(site) = &args.site {
        predictor.use_site(site)?;
    }
    let description = serde_json::json!({
        "hash": predictor.model_hash,
        "dir": predictor.dir.display().to_string(),
        "preset": predictor.preset().map(|p| p.name()),
        "input_size": predictor.input_size(),
        "device": format!("{:?}", predictor.device),
        "operating_points": predictor.points,
        "card": predictor.card,
        "caveats": predictor.caveats(),
        "hipfrac_version": env!("CARGO_PKG_VERSION"),
        "notice": hipfrac_core::NOTICE,
    });
    let info = ModelInfo {
        record: crate::predict::model_record(&predictor),
        points: predictor.points.clone(),
        description,
    };
    let batching = Batching {
        max_batch: args.max_batch as usize,
        max_wait: Duration::from_millis(args.max_wait_ms),
        capacity: args.queue as usize,
    };
    let config = Config {
        addr: args.addr,
        tokens,
        batching,
        max_body: args.max_body_mb as usize * 1024 * 1024,
        timeout: Duration::from_secs(args.timeout_s),
        decoders: std::thread::available_parallelism().map_or(2, |n| n.get()),
        max_requests: args.max_requests as usize,
        max_files: args.max_files as usize,
    };
    let predict = Box::new(
        move |images: &[Radiograph]| -> Vec<Result<hipfrac_core::Prediction, PredictError>> {
            predictor
                .predict_batch(images)
                .into_iter()
                .map(|r| r.map_err(Into::into))
                .collect()
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let auth = if config.tokens.is_some() {
        "bearer tokens"
    } else {
        "NO authentication (--no-auth)"
    };
    runtime.block_on(hipfrac_service::serve(config, predict, info, |bound| {
        eprintln!("listening on http://{bound} ({auth}); POST /v1/predict, GET /v1/model /healthz /readyz /metrics; Ctrl-C stops");
    }))?;
    eprintln!("stopped: every request in flight was answered");
    Ok(Outcome::Success)
}
