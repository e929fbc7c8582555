//! The service's router in process (no socket, no libtorch): a fake model that answers
//! canned predictions behind the real routes, authentication, limits, batching queue and
//! metrics. `hipfrac serve` with a real model is tested in crates/cli/tests/it/service.rs.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use hipfrac_core::verdict::Verdict;
use hipfrac_core::{
    AbstentionSource, Answer, BBox, Detection, FractureClass, Label, NotAssessable, OperatingPoint, OperatingPoints,
    Prediction, Radiograph,
};
use hipfrac_report::predictions::ModelRecord;
use hipfrac_service::batcher::{Batching, PredictError, PredictFn};
use hipfrac_service::{router, Config, ModelInfo};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

/// Width of an uploaded PNG the fake model refuses (not assessable).
const REFUSED_WIDTH: u32 = 40;
/// Width of an uploaded PNG on which the fake model fails (an error, not a prediction).
const FAILING_WIDTH: u32 = 24;

/// The fake model's answer: a DF fracture (score 0.75) with one box at (11, 2)–(17, 6),
/// and a UF box below every threshold (kept in the JSON, not drawn); images
/// [`REFUSED_WIDTH`] wide are not assessable.
fn canned(image: &Radiograph) -> Prediction {
    if image.width() == REFUSED_WIDTH {
        let why = NotAssessable {
            reason: "the fake model refuses this image".into(),
            source: AbstentionSource::Image,
        };
        return Prediction::refused(image.width(), image.height(), why);
    }
    Prediction {
        width: image.width(),
        height: image.height(),
        detections: vec![
            Detection {
                class: FractureClass::DisplacedNeck,
                score: 0.75,
                bbox: BBox::new(11.0, 2.0, 17.0, 6.0),
            },
            Detection {
                class: FractureClass::UnstableIntertrochanteric,
                score: 0.0625,
                bbox: BBox::new(1.0, 1.0, 3.0, 3.0),
            },
        ],
        class_scores: [0.75, 0.0, 0.0, 0.0625],
        answer: Answer::Verdict(Verdict {
            label: Label::Fracture(FractureClass::DisplacedNeck),
            confidence: Some(0.75),
            operating_point: OperatingPoint::Fracture,
            vf_priority_applied: false,
        }),
        side: None,
        hips: Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the fake model cannot read this image")]
struct FakeFailure;

fn answer(image: &Radiograph) -> Result<Prediction, PredictError> {
    if image.width() == FAILING_WIDTH {
        return Err(Box::new(FakeFailure));
    }
    Ok(canned(image))
}

/// A fake model that answers at once; it records the size of every batch it sees.
fn instant_model(batches: Arc<Mutex<Vec<usize>>>) -> PredictFn {
    Box::new(move |images: &[Radiograph]| {
        batches.lock().unwrap().push(images.len());
        images.iter().map(answer).collect()
    })
}

/// A fake model that, for each batch (the warm-up included), says it has started on
/// `started` and then waits for a signal on `gate` before answering.
fn gated_model(started: mpsc::Sender<usize>, gate: mpsc::Receiver<()>) -> PredictFn {
    Box::new(move |images: &[Radiograph]| {
        let _ = started.send(images.len());
        let _ = gate.recv();
        images.iter().map(answer).collect()
    })
}

fn model_info() -> ModelInfo {
    ModelInfo {
        record: ModelRecord {
            dir: "/models/fake".into(),
            hash: "0123456789abcdef".into(),
            operating_points: "uncalibrated defaults".into(),
            trained_on: None,
            caveats: vec!["TRAINING DATA UNKNOWN", "UNCALIBRATED"],
        },
        points: OperatingPoints::uncalibrated(),
        description: serde_json::json!({
            "hash": "0123456789abcdef",
            "preset": "nano",
            "input_size": 128,
            "caveats": ["TRAINING DATA UNKNOWN", "UNCALIBRATED"],
        }),
    }
}

/// A configuration with a tokens file holding one token (returned), or none (`--no-auth`).
fn config(dir: &Path, auth: bool, batching: Batching, max_requests: usize) -> (Config, Option<String>) {
    let (tokens, token) = if auth {
        let path = dir.join("tokens.tsv");
        let token = hipfrac_service::tokens::add(&path, "ci").unwrap();
        let tokens = hipfrac_service::tokens::Tokens::load(&path).unwrap();
        (Some((path, tokens)), Some(token))
    } else {
        (None, None)
    };
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        tokens,
        batching,
        max_body: 1024 * 1024,
        timeout: Duration::from_secs(30),
        decoders: 2,
        max_requests,
        max_files: 4,
    };
    (config, token)
}

/// `max_wait` is long: a batch waits only while a request is on its way, so a request's
/// images always share a pass and nothing else waits for it.
fn batching(max_batch: usize, capacity: usize) -> Batching {
    Batching {
        max_batch,
        max_wait: Duration::from_secs(5),
        capacity,
    }
}

/// An 8-bit greyscale PNG, `width × height`, a gradient (not constant).
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let pixels: Vec<u8> = (0..width * height)
            .map(|p| ((p % width) * 3 + p / width) as u8)
            .collect();
        encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    }
    out
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hipfrac-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The reply to one request.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// The `{"error": {"status", "code", "message"}}` of an error reply, checked against
    /// the reply's status: (code, message).
    fn error(&self) -> (String, String) {
        let json = self.json();
        let error = &json["error"];
        assert_eq!(error["status"], self.status.as_u16(), "{json}");
        (
            error["code"].as_str().unwrap_or_default().to_string(),
            error["message"].as_str().unwrap_or_default().to_string(),
        )
    }
}

/// One request through the router (no socket).
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(kind) = content_type {
        request = request.header(header::CONTENT_TYPE, kind);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn get(app: &Router, uri: &str, token: Option<&str>) -> Reply {
    send(app, "GET", uri, token, None, Vec::new()).await
}

/// Waits (at most 10 s) until `/readyz` answers 200: the warm-up pass has run.
async fn wait_ready(app: &Router) {
    let started = Instant::now();
    while get(app, "/readyz", None).await.status != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(10), "never ready");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits (at most 10 s) until `/metrics` reports `line`.
async fn wait_metric(app: &Router, token: Option<&str>, line: &str) {
    let started = Instant::now();
    loop {
        let text = get(app, "/metrics", token).await.text();
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{line} never in\n{text}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_png_is_answered_with_the_record_of_its_prediction() {
    let temp = tempfile::tempdir().unwrap();
    let (config, token) = config(temp.path(), true, batching(4, 8), 4);
    let token = token.as_deref();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let app = router(&config, instant_model(batches.clone()), model_info());
    wait_ready(&app).await;

    let reply = send(
        &app,
        "POST",
        "/v1/predict?name=hip.png",
        token,
        Some("image/png"),
        png(64, 48),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-request-id").map(str::len), Some(16));
    let record = reply.json();
    assert_eq!(record["input"], "hip.png");
    assert_eq!(
        (record["width"].as_u64(), record["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(record["verdict"], "DF");
    assert_eq!(record["confidence"], 0.75);
    assert_eq!(record["max_fracture_score"], 0.75);
    assert_eq!(record["operating_point"], "fracture");
    assert_eq!(record["not_assessable"], serde_json::Value::Null);
    assert_eq!(record["header_verified"], false, "a PNG has no header to verify");
    assert_eq!(record["class_scores"]["DF"], 0.75);
    assert_eq!(record["class_scores"]["UF"], 0.0625);
    let boxes = record["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 2, "{record}");
    assert_eq!(
        (&boxes[0]["class"], &boxes[0]["bbox"], &boxes[0]["drawn"]),
        (
            &serde_json::json!("DF"),
            &serde_json::json!([11.0, 2.0, 17.0, 6.0]),
            &serde_json::json!(true)
        )
    );
    assert_eq!(
        (&boxes[1]["class"], &boxes[1]["drawn"]),
        (&serde_json::json!("UF"), &serde_json::json!(false)),
        "below the suspicious threshold: kept, not drawn"
    );
    assert_eq!(record["model"]["hash"], "0123456789abcdef");
    assert_eq!(
        record["model"]["caveats"],
        serde_json::json!(["TRAINING DATA UNKNOWN", "UNCALIBRATED"])
    );
    assert_eq!(record["notice"], hipfrac_core::NOTICE);

    // Without ?name= the record names the input `request`.
    let unnamed = send(&app, "POST", "/v1/predict", token, Some("image/png"), png(64, 48)).await;
    assert_eq!(unnamed.status, StatusCode::OK, "{}", unnamed.text());
    assert_eq!(unnamed.json()["input"], "request");

    // An image the model does not assess: 422 with its record and reason.
    let refused = send(
        &app,
        "POST",
        "/v1/predict",
        token,
        Some("image/png"),
        png(REFUSED_WIDTH, 32),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text());
    let record = refused.json();
    assert_eq!(record["verdict"], "not_assessable");
    assert_eq!(record["not_assessable"]["reason"], "the fake model refuses this image");
    assert_eq!(record["not_assessable"]["source"], "image");
    assert_eq!(record["class_scores"], serde_json::Value::Null);

    // An image the model fails on: 422 `cannot_predict`, naming the input and the error.
    let failed = send(
        &app,
        "POST",
        "/v1/predict?name=bad.png",
        token,
        Some("image/png"),
        png(FAILING_WIDTH, 32),
    )
    .await;
    assert_eq!(failed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", failed.text());
    assert_eq!(
        failed.error(),
        (
            "cannot_predict".to_string(),
            "bad.png: the fake model cannot read this image".to_string()
        )
    );

    // Several files in one multipart request: a list of records, in order, one forward pass.
    let before = batches.lock().unwrap().len();
    let (kind, body) = multipart(&[("a.png", &png(64, 48)), ("b.png", &png(REFUSED_WIDTH, 30))]);
    let list = send(&app, "POST", "/v1/predict", token, Some(&kind), body).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let records = list.json();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (&records[0]["input"], &records[0]["verdict"]),
        (&serde_json::json!("a.png"), &serde_json::json!("DF"))
    );
    assert_eq!(
        (&records[1]["input"], &records[1]["verdict"]),
        (&serde_json::json!("b.png"), &serde_json::json!("not_assessable"))
    );
    assert_eq!(
        batches.lock().unwrap()[before..],
        [2],
        "the request's images share a pass"
    );

    // The overlay: a PNG picture of the image.
    let overlay = send(
        &app,
        "POST",
        "/v1/predict?overlay=png",
        token,
        Some("image/png"),
        png(64, 48),
    )
    .await;
    assert_eq!(overlay.status, StatusCode::OK, "{}", overlay.text());
    assert_eq!(overlay.header("content-type"), Some("image/png"));
    assert!(overlay.body.starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_required_except_for_health() {
    let temp = tempfile::tempdir().unwrap();
    let (config, token) = config(temp.path(), true, batching(4, 8), 4);
    let token = token.unwrap();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let app = router(&config, instant_model(batches.clone()), model_info());
    wait_ready(&app).await;
    let warm_up_batches = batches.lock().unwrap().len();

    for uri in ["/v1/model", "/metrics"] {
        assert_eq!(get(&app, uri, Some(&token)).await.status, StatusCode::OK, "{uri}");
    }
    for (method, uri) in [("POST", "/v1/predict"), ("GET", "/v1/model"), ("GET", "/metrics")] {
        for presented in [None, Some("hf_00")] {
            let reply = send(&app, method, uri, presented, Some("image/png"), png(64, 48)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri} {presented:?}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"hipfrac\""));
            let (code, message) = reply.error();
            assert_eq!(code, "unauthorized");
            let expected = if presented.is_some() {
                "the bearer token is not valid"
            } else {
                "an Authorization: Bearer <token> header is required"
            };
            assert_eq!(message, expected, "{uri} {presented:?}");
        }
    }
    // Another scheme is no bearer token.
    let basic = app
        .clone()
        .oneshot(
            Request::get("/v1/model")
                .header(header::AUTHORIZATION, format!("Basic {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // The scheme's case does not matter.
    let lower = app
        .clone()
        .oneshot(
            Request::get("/v1/model")
                .header(header::AUTHORIZATION, format!("bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    // No refused request reached the model.
    assert_eq!(batches.lock().unwrap().len(), warm_up_batches);

    // Health needs no token.
    let health = get(&app, "/healthz", None).await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok\n"));
    let ready = get(&app, "/readyz", None).await;
    assert_eq!((ready.status, ready.text().as_str()), (StatusCode::OK, "ready\n"));

    // A token removed from the file stops working at once (the file is re-read when its
    // modification time changes: a later tick than its first writing).
    tokio::time::sleep(Duration::from_millis(50)).await;
    hipfrac_service::tokens::add(&temp.path().join("tokens.tsv"), "other").unwrap();
    hipfrac_service::tokens::remove(&temp.path().join("tokens.tsv"), "ci").unwrap();
    assert_eq!(
        get(&app, "/v1/model", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_bodies_are_refused_with_the_reason() {
    let temp = tempfile::tempdir().unwrap();
    let (config, _) = config(temp.path(), false, batching(4, 8), 4);
    let batches = Arc::new(Mutex::new(Vec::new()));
    let app = router(&config, instant_model(batches.clone()), model_info());
    wait_ready(&app).await;
    let warm_up_batches = batches.lock().unwrap().len();

    // (path, content type, body, status, code, what the message names)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/v1/predict",
            Some("text/plain"),
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type text/plain is not accepted: send application/dicom, image/png, image/jpeg or multipart/form-data",
        ),
        (
            "/v1/predict",
            None,
            png(64, 48),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "no Content-Type: send application/dicom, image/png, image/jpeg or multipart/form-data",
        ),
        (
            "/v1/predict",
            Some("image/png"),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the request has no body: send the DICOM or PNG file as the body",
        ),
        (
            "/v1/predict?name=junk.png",
            Some("image/png"),
            b"not an image at all".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_image",
            "junk.png: neither DICOM (Part 10), PNG nor JPEG",
        ),
        (
            "/v1/predict?overlay=jpeg",
            Some("image/png"),
            png(64, 48),
            StatusCode::BAD_REQUEST,
            "bad_query",
            "overlay=jpeg: only overlay=png is offered",
        ),
    ];
    for (uri, kind, body, status, code, message) in cases {
        let reply = send(&app, "POST", uri, None, kind, body).await;
        assert_eq!(reply.status, status, "{uri} {kind:?}: {}", reply.text());
        assert_eq!(reply.error(), (code.to_string(), message.to_string()), "{uri} {kind:?}");
    }

    // A truncated PNG is a bad image, its reason naming the upload, not a temporary path.
    let mut truncated = png(64, 48);
    truncated.truncate(truncated.len() / 2);
    let reply = send(
        &app,
        "POST",
        "/v1/predict?name=cut.png",
        None,
        Some("image/png"),
        truncated,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    let (code, message) = reply.error();
    assert_eq!(code, "bad_image");
    assert!(message.starts_with("cut.png: "), "{message}");
    assert!(
        !message.contains(&std::env::temp_dir().display().to_string()),
        "{message}"
    );

    // A body over --max-body-mb: 413.
    let reply = send(
        &app,
        "POST",
        "/v1/predict",
        None,
        Some("image/png"),
        vec![0u8; 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());
    assert_eq!(reply.error().0, "payload_too_large");
    assert_eq!(reply.header("connection"), Some("close"));

    // More files than --max-files (4): 413.
    let image = png(64, 48);
    let files: Vec<(&str, &[u8])> = (0..5).map(|_| ("x.png", image.as_slice())).collect();
    let (kind, body) = multipart(&files);
    let reply = send(&app, "POST", "/v1/predict", None, Some(&kind), body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());
    assert_eq!(
        reply.error(),
        (
            "too_many_files".to_string(),
            "more than 4 files in one request (--max-files)".to_string()
        )
    );

    // A multipart request without a file; an overlay of two files.
    let (kind, body) = multipart(&[]);
    let reply = send(&app, "POST", "/v1/predict", None, Some(&kind), body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.error().0, "empty_body");
    let (kind, body) = multipart(&[("a.png", &image), ("b.png", &image)]);
    let reply = send(&app, "POST", "/v1/predict?overlay=png", None, Some(&kind), body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(
        reply.error(),
        (
            "bad_query".to_string(),
            "overlay=png answers one image; send one file".to_string()
        )
    );

    // None of these reached the model.
    assert_eq!(batches.lock().unwrap().len(), warm_up_batches);

    // An unknown path, and a known one with the wrong method.
    let reply = get(&app, "/v2/predict", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.error(),
        (
            "not_found".to_string(),
            "no such endpoint; see docs/openapi.json".to_string()
        )
    );
    assert_eq!(
        get(&app, "/v1/predict", None).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_health_readiness_and_metrics() {
    let temp = tempfile::tempdir().unwrap();
    let (config, token) = config(temp.path(), true, batching(4, 8), 4);
    let token = token.as_deref();
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let app = router(&config, gated_model(started_tx, gate_rx), model_info());

    // The warm-up pass has started and not finished: alive, not ready.
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    let health = get(&app, "/healthz", None).await;
    assert_eq!((health.status, health.text().as_str()), (StatusCode::OK, "ok\n"));
    let not_ready = get(&app, "/readyz", None).await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        not_ready.error(),
        (
            "not_ready".to_string(),
            "the model is loading or warming up".to_string()
        )
    );
    assert_eq!(not_ready.header("retry-after"), Some("1"));
    gate_tx.send(()).unwrap();
    wait_ready(&app).await;

    let model = get(&app, "/v1/model", token).await;
    assert_eq!(model.status, StatusCode::OK);
    assert_eq!(model.header("content-type"), Some("application/json"));
    assert_eq!(model.json(), model_info().description);

    // One prediction, answered once the model is let through.
    gate_tx.send(()).unwrap();
    let reply = send(&app, "POST", "/v1/predict", token, Some("image/png"), png(64, 48)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);

    let metrics = get(&app, "/metrics", token).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text();
    for line in [
        "hipfrac_http_requests_total{path=\"/healthz\",status=\"200\"} 1",
        "hipfrac_http_requests_total{path=\"/v1/model\",status=\"200\"} 1",
        "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"200\"} 1",
        "hipfrac_predict_duration_seconds_count 1",
        "hipfrac_batch_size_count 1",
        "hipfrac_batch_size_bucket{le=\"1\"} 1",
        "hipfrac_images_total{verdict=\"DF\"} 1",
        "hipfrac_queue_depth 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    // Readiness was polled: refused while warming up, then ready.
    for status in [503, 200] {
        let prefix = format!("hipfrac_http_requests_total{{path=\"/readyz\",status=\"{status}\"}} ");
        assert!(
            text.lines().any(|l| l.starts_with(&prefix)),
            "{prefix} missing in\n{text}"
        );
    }
    // Unknown paths share one label.
    assert_eq!(get(&app, "/nowhere", None).await.status, StatusCode::NOT_FOUND);
    wait_metric(
        &app,
        token,
        "hipfrac_http_requests_total{path=\"other\",status=\"404\"} 1",
    )
    .await;
}

/// While the model is busy, a request beyond `--queue` is refused at once with 503 and
/// Retry-After, and one beyond `--max-requests` likewise; the waiting ones are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_with_retry_after() {
    let temp = tempfile::tempdir().unwrap();
    // One image per pass, one image waiting at most, three requests at once.
    let (config, _) = config(temp.path(), false, batching(1, 1), 3);
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let app = router(&config, gated_model(started_tx, gate_rx), model_info());
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    gate_tx.send(()).unwrap();
    wait_ready(&app).await;

    // The first request holds the model (the fake waits for the gate)…
    let first = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await })
    };
    let started = tokio::task::spawn_blocking(move || {
        let n = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        (n, started_rx)
    });
    let (n, started_rx) = started.await.unwrap();
    assert_eq!(n, 1);
    wait_metric(&app, None, "hipfrac_queue_depth 0").await;
    // …the second waits in the queue, which is then full…
    let second = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await })
    };
    wait_metric(&app, None, "hipfrac_queue_depth 1").await;
    // …so the third is refused at once.
    let third = send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE, "{}", third.text());
    assert_eq!(
        third.error(),
        (
            "queue_full".to_string(),
            "the queue is full; retry after a moment".to_string()
        )
    );
    assert_eq!(third.header("retry-after"), Some("1"));
    assert_eq!(third.header("connection"), Some("close"));

    // Two images in one request, with room for one: refused as too many at once.
    let image = png(64, 48);
    let (kind, body) = multipart(&[("a.png", &image), ("b.png", &image)]);
    let reply = send(&app, "POST", "/v1/predict", None, Some(&kind), body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text());
    assert_eq!(
        reply.error(),
        (
            "too_many_files".to_string(),
            "2 images in one request; the queue holds 1 (--queue)".to_string()
        )
    );

    // Let both waiting requests through: each is answered.
    gate_tx.send(()).unwrap();
    gate_tx.send(()).unwrap();
    for request in [first, second] {
        let reply = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.json()["verdict"], "DF");
    }
    drop(started_rx);
    let metrics = get(&app, "/metrics", None).await.text();
    for line in [
        "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"200\"} 2",
        "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"503\"} 1",
        "hipfrac_batch_size_count 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing in\n{metrics}");
    }
}

/// More requests in progress than `--max-requests`: 503 `busy` at once, before the body is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_requests_are_told_to_retry() {
    let temp = tempfile::tempdir().unwrap();
    let (config, _) = config(temp.path(), false, batching(1, 8), 1);
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let app = router(&config, gated_model(started_tx, gate_rx), model_info());
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
    gate_tx.send(()).unwrap();
    wait_ready(&app).await;

    let first = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await })
    };
    let (n, started_rx) = tokio::task::spawn_blocking(move || {
        let n = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        (n, started_rx)
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
    let busy = send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE, "{}", busy.text());
    assert_eq!(
        busy.error(),
        (
            "busy".to_string(),
            "too many requests in progress; retry after a moment".to_string()
        )
    );
    assert_eq!(busy.header("retry-after"), Some("1"));
    // Other endpoints are not limited.
    assert_eq!(get(&app, "/v1/model", None).await.status, StatusCode::OK);

    gate_tx.send(()).unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    drop(started_rx);
    // The slot is free again.
    gate_tx.send(()).unwrap();
    let again = send(&app, "POST", "/v1/predict", None, Some("image/png"), png(64, 48)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
}
