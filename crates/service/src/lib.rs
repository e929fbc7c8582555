//! hipfrac-service: `hipfrac serve`, an HTTP inference service.
//!
//! * `POST /v1/predict`: a DICOM (`application/dicom`), PNG (`image/png`) or JPEG (`image/jpeg`) body, or several
//!   files in one `multipart/form-data` request → the JSON record `hipfrac predict` writes
//!   (`hipfrac_report::predictions::Record`, one type for both), a list of them for a
//!   multipart request; `?overlay=png` answers the overlay picture of a single image instead.
//!   A radiograph that is not an AP hip or pelvis is answered 422 with its record (verdict
//!   `not_assessable` and the reason).
//! * `GET /v1/model`: the model card, preset, input size, operating points, hash, caveats.
//! * `GET /healthz` (the process answers), `GET /readyz` (the model is loaded and has run a
//!   warm-up pass), `GET /metrics` (Prometheus text).
//!
//! The model is not part of this crate (it links no libtorch): the program that starts the
//! service hands in a [`batcher::PredictFn`] (the one prediction path) and what the model
//! says about itself ([`ModelInfo`]). Errors are JSON: `{"error": {"status", "code",
//! "message"}}`. docs/openapi.json describes the API; a test checks real answers against it.

pub mod batcher;
pub mod metrics;
pub mod tokens;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use batcher::{Batching, PredictFn, Queue, QueueError};
use hipfrac_core::{OperatingPoints, Prediction, Radiograph};
use hipfrac_report::predictions::{ModelRecord, Record};
use metrics::Metrics;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokens::Tokens;

/// What the model says about itself.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// How each record names the model.
    pub record: ModelRecord,
    /// Its operating points (which boxes an overlay draws).
    pub points: OperatingPoints,
    /// The body of `GET /v1/model`.
    pub description: serde_json::Value,
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Bearer tokens (re-read when their file changes); `None` serves without authentication
    /// (loopback only).
    pub tokens: Option<(PathBuf, Tokens)>,
    pub batching: Batching,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Longest a prediction request may take, queueing included.
    pub timeout: Duration,
    /// Images decoded at once.
    pub decoders: usize,
    /// Prediction requests handled at once (bodies read, images held); more get 503 at once.
    pub max_requests: usize,
    /// Files in one multipart request at most.
    pub max_files: usize,
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("--no-auth serves anyone who can connect; it is allowed on a loopback address only, not {0}")]
    NoAuthReachable(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
}

struct AppState {
    queue: Queue,
    model: ModelInfo,
    tokens: Option<TokenStore>,
    metrics: Arc<Metrics>,
    requests: tokio::sync::Semaphore,
    max_files: usize,
    ready: Arc<AtomicBool>,
    timeout: Duration,
    decoders: tokio::sync::Semaphore,
}

type Shared = Arc<AppState>;

/// An error answer: `{"error": {"status", "code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"error": {"status": self.status.as_u16(), "code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::PAYLOAD_TOO_LARGE
        ) {
            // Refused before its body was read: the connection cannot be reused, and a client
            // told so does not send its next request into a closing socket.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hipfrac\""),
            );
        }
        response
    }
}

/// The router of the service, its batching thread started with `predict`.
pub fn router(config: &Config, predict: PredictFn, model: ModelInfo) -> Router {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let queue = batcher::start(predict, config.batching, metrics.clone(), ready.clone());
    let state = Arc::new(AppState {
        queue,
        model,
        tokens: config.tokens.clone().map(TokenStore::new),
        metrics,
        requests: tokio::sync::Semaphore::new(config.max_requests.max(1)),
        max_files: config.max_files.max(1),
        ready,
        timeout: config.timeout,
        decoders: tokio::sync::Semaphore::new(config.decoders.max(1)),
    });
    let guarded = Router::new()
        .route("/v1/predict", post(predict_handler))
        .route("/v1/model", get(model_handler))
        .route("/metrics", get(metrics_handler))
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see docs/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Serves until Ctrl-C or SIGTERM, then stops accepting, finishes the requests in flight and
/// returns. `on_listening` is told the bound address (the port when 0 was asked).
pub async fn serve(
    config: Config,
    predict: PredictFn,
    model: ModelInfo,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServiceError> {
    if config.tokens.is_none() && !config.addr.ip().is_loopback() {
        return Err(ServiceError::NoAuthReachable(config.addr));
    }
    let app = router(&config, predict, model);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: config.addr,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ServiceError::Bind {
        addr: config.addr,
        source,
    })?;
    on_listening(bound);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServiceError::Serve)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
}

/// The few path names metrics use (no unbounded labels).
fn path_label(path: &str) -> &'static str {
    match path {
        "/v1/predict" => "/v1/predict",
        "/v1/model" => "/v1/model",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// Request id, log line and metrics for every request. The log names no patient: the id,
/// method, path, status and time only.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut id = [0u8; 8];
    let _ = getrandom::getrandom(&mut id);
    let id = hex::encode(id);
    let (method, path) = (request.method().clone(), path_label(request.uri().path()));
    let mut response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state
        .metrics
        .request(path, status, (path == "/v1/predict").then_some(seconds));
    tracing::info!(request_id = %id, %method, path, status, ms = (seconds * 1000.0).round(), "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The tokens, re-read when their file changes (a removed token stops working at once).
struct TokenStore {
    path: PathBuf,
    current: std::sync::RwLock<(Option<std::time::SystemTime>, Tokens)>,
}

impl TokenStore {
    fn new((path, tokens): (PathBuf, Tokens)) -> Self {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        TokenStore {
            path,
            current: std::sync::RwLock::new((modified, tokens)),
        }
    }

    /// The token's name, if `presented` is one now.
    fn verify(&self, presented: &str) -> Option<String> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let stale = self.current.read().map(|c| c.0 != modified).unwrap_or(true);
        if stale {
            // A file that cannot be read now (mid-rewrite, removed) accepts no one.
            let tokens = Tokens::read(&self.path).unwrap_or_default();
            if let Ok(mut current) = self.current.write() {
                *current = (modified, tokens);
            }
        }
        self.current
            .read()
            .ok()
            .and_then(|c| c.1.verify(presented).map(str::to_string))
    }
}

async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(tokens) = &state.tokens {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match presented.and_then(|t| tokens.verify(t)) {
            Some(name) => tracing::debug!(token = name, "authenticated"),
            None => {
                let message = if presented.is_some() {
                    "the bearer token is not valid"
                } else {
                    "an Authorization: Bearer <token> header is required"
                };
                return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
            }
        }
    }
    next.run(request).await
}

async fn readyz(State(state): State<Shared>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        "ready\n".into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the model is loading or warming up",
        )
        .into_response()
    }
}

async fn model_handler(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(state.model.description.clone())
}

async fn metrics_handler(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

/// Counts a request in [`Metrics::arriving`] while it lives.
struct Arriving<'a>(&'a Metrics);

impl<'a> Arriving<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.arriving.fetch_add(1, Ordering::SeqCst);
        Arriving(metrics)
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.arriving.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Deserialize)]
struct PredictQuery {
    /// `png`: answer the overlay picture instead of the JSON.
    overlay: Option<String>,
    /// The name the record gives the input (default `request`).
    name: Option<String>,
}

/// One uploaded file.
struct Upload {
    name: String,
    bytes: Bytes,
}

fn media_type(headers: &HeaderMap) -> String {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn too_large(limit_hint: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the service accepts ({limit_hint})"),
    )
}

async fn uploads(request: Request, query: &PredictQuery, max_files: usize) -> Result<Vec<Upload>, ApiError> {
    let kind = media_type(request.headers());
    match kind.as_str() {
        "application/dicom" | "image/png" | "image/jpeg" => {
            let bytes = Bytes::from_request(request, &()).await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large("--max-body-mb")
                } else {
                    ApiError::new(e.status(), "bad_request", e.body_text())
                }
            })?;
            if bytes.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "empty_body",
                    "the request has no body: send the DICOM or PNG file as the body",
                ));
            }
            Ok(vec![Upload {
                name: query
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| "request".into()),
                bytes,
            }])
        }
        "multipart/form-data" => {
            let mut multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::new(e.status(), "bad_multipart", e.body_text()))?;
            let mut files = Vec::new();
            loop {
                let field = match multipart.next_field().await {
                    Ok(Some(field)) => field,
                    Ok(None) => break,
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large("--max-body-mb")),
                    Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text())),
                };
                if files.len() == max_files {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_files",
                        format!("more than {max_files} files in one request (--max-files)"),
                    ));
                }
                let name = field
                    .file_name()
                    .or(field.name())
                    .map(str::to_string)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| format!("part-{}", files.len() + 1));
                let bytes = field.bytes().await.map_err(|e| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large("--max-body-mb")
                    } else {
                        ApiError::new(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text())
                    }
                })?;
                files.push(Upload { name, bytes });
            }
            if files.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "empty_body",
                    "the multipart request holds no file",
                ));
            }
            Ok(files)
        }
        "" => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "no Content-Type: send application/dicom, image/png, image/jpeg or multipart/form-data",
        )),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {other} is not accepted: send application/dicom, image/png, image/jpeg or multipart/form-data"),
        )),
    }
}

/// Decodes one upload (through a private temporary file: the DICOM reader's bounds on
/// length, depth and inflation apply as for any file).
fn decode(upload: &Upload) -> Result<Radiograph, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_image", message);
    let dir = tempfile::tempdir().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot make a temporary folder: {e}"),
        )
    })?;
    let path = dir.path().join("upload");
    std::fs::write(&path, &upload.bytes).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot hold the upload: {e}"),
        )
    })?;
    if !hipfrac_dicom::is_image_file(&path) {
        return Err(bad(format!("{}: neither DICOM (Part 10), PNG nor JPEG", upload.name)));
    }
    // The reader names its temporary path; the user knows the upload by its name.
    hipfrac_dicom::read_radiograph(&path).map_err(|e| {
        bad(format!(
            "{}: {}",
            upload.name,
            hipfrac_core::error_chain(&e).replace(&path.display().to_string(), "upload")
        ))
    })
}

async fn predict_handler(State(state): State<Shared>, Query(query): Query<PredictQuery>, request: Request) -> Response {
    let timeout = state.timeout;
    match tokio::time::timeout(timeout, predict_inner(state, query, request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "no answer within {} s (--timeout-s); the service is overloaded or the images are very large",
                timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

async fn predict_inner(state: Shared, query: PredictQuery, request: Request) -> Result<Response, ApiError> {
    let overlay = match query.overlay.as_deref() {
        None => false,
        Some("png") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("overlay={other}: only overlay=png is offered"),
            ))
        }
    };
    // At most --max-requests at once hold bodies and images; the others are told to come back.
    let Ok(_slot) = state.requests.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many requests in progress; retry after a moment",
        ));
    };
    // Until its images are queued, this request is on its way (a batch may wait for it).
    let arriving = Arriving::new(&state.metrics);
    let multipart = media_type(request.headers()) == "multipart/form-data";
    let files = uploads(request, &query, state.max_files).await?;
    if overlay && files.len() != 1 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "overlay=png answers one image; send one file",
        ));
    }
    // Every file is decoded (in parallel, at most `decoders` at once) before any is queued,
    // so the images of one request can share a forward pass.
    let mut decoding = Vec::with_capacity(files.len());
    for file in files {
        let state = state.clone();
        decoding.push(tokio::spawn(async move {
            let _permit = state.decoders.acquire().await.map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the service is stopping",
                )
            })?;
            tokio::task::spawn_blocking(move || decode(&file).map(|image| (file.name, image)))
                .await
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the decoder failed"))?
        }));
    }
    let mut decoded = Vec::with_capacity(decoding.len());
    for task in decoding {
        decoded.push(
            task.await
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the decoder failed"))??,
        );
    }
    // The record needs the header; only an overlay needs the pixels again.
    let kept: Vec<(String, (Option<Radiograph>, hipfrac_core::RadiographMeta))> = decoded
        .iter()
        .map(|(name, image)| (name.clone(), (overlay.then(|| image.clone()), image.meta.clone())))
        .collect();
    let queued = state
        .queue
        .submit_all(decoded.into_iter().map(|(_, image)| image).collect())
        .map_err(|e| match e {
            QueueError::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                "the queue is full; retry after a moment",
            ),
            QueueError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is stopping",
            ),
            QueueError::TooMany { images, capacity } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_files",
                format!("{images} images in one request; the queue holds {capacity} (--queue)"),
            ),
        })?;
    let answers: Vec<_> = kept
        .into_iter()
        .zip(queued)
        .map(|((name, kept), answer)| (name, kept, answer))
        .collect();
    drop(arriving);
    let mut results: Vec<(Record, Option<Radiograph>, Prediction)> = Vec::with_capacity(answers.len());
    for (name, (image, meta), answer) in answers {
        let prediction = answer
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the service stopped before answering",
                )
            })?
            .map_err(|error| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "cannot_predict",
                    format!("{name}: {}", hipfrac_core::error_chain(error.as_ref())),
                )
            })?;
        state.metrics.verdict(prediction.code());
        let record = Record::new(
            name,
            &meta,
            &prediction,
            &state.model.points,
            state.model.record.clone(),
        );
        results.push((record, image, prediction));
    }
    if overlay {
        let (record, image, prediction) = results.pop().expect("one image");
        let image = image.expect("kept for the overlay");
        let status = if record.not_assessable.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        let points = state.model.points.clone();
        let png = tokio::task::spawn_blocking(move || {
            let shown = prediction.shown_boxes(&points);
            let note = std::iter::once("AI RESEARCH OUTPUT")
                .chain(record.model.caveats.iter().copied())
                .collect::<Vec<_>>()
                .join(" - ");
            let marks = hipfrac_imaging::overlay::Marks {
                detections: &shown,
                hips: &prediction.hips,
                answer: Some(&prediction.answer),
                note: Some(note),
                ..Default::default()
            };
            hipfrac_imaging::overlay::render(&image, &marks, 1024).map(|p| p.to_png())
        })
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the overlay failed"))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cannot_draw",
                format!("cannot draw the overlay: {e}"),
            )
        })?;
        return Ok((status, [(header::CONTENT_TYPE, "image/png")], png).into_response());
    }
    if multipart {
        let records: Vec<Record> = results.into_iter().map(|(r, _, _)| r).collect();
        return Ok(Json(records).into_response());
    }
    let (record, _, prediction) = results.pop().expect("one image");
    let status = if prediction.not_assessable().is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record)).into_response())
}
