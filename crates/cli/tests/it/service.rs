//! `hipfrac serve` over a real socket: the real binary, a real (untrained) model, a raw HTTP
//! client. Answers are checked against docs/openapi.json and docs/prediction.schema.json.

use crate::support::{hipfrac, shared_dicom, spawn_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request with `Connection: close`.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) before it has read the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {head}")))?;
    Ok(Reply { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hipfrac-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("hipfrac"));
        command
            .arg("serve")
            .arg("--model")
            .arg(model)
            .args(["--addr", "127.0.0.1:0", "--device", "cpu"])
            .args(extra);
        let (child, line, log) = spawn_until(command, "listening on http://127.0.0.1:");
        let port = line
            .split_once("127.0.0.1:")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .expect("a port");
        let started = Instant::now();
        while request(port, "GET", "/readyz", &[], b"").map_or(true, |r| r.status != 200) {
            assert!(started.elapsed() < Duration::from_secs(60), "not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port, log }
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup(dir: &Path, size: i64) -> (PathBuf, PathBuf) {
    let model = dir.join("model");
    hipfrac_infer::write_untrained(&model, &hipfrac_model::ModelConfig::nano(1, 4), size, Some(0.0)).unwrap();
    let data = dir.join("data");
    hipfrac()
        .args(["phantom", "--count", "3", "--size", "128", "--seed", "9", "--out"])
        .arg(&data)
        .assert()
        .success();
    (model, data)
}

fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm" || e == "png"))
        .collect();
    files.sort();
    files.remove(0)
}

struct Schemas {
    record: jsonschema::Validator,
    error: jsonschema::Validator,
    model: jsonschema::Validator,
}

/// The validators of docs/openapi.json's schemas (the record's is docs/prediction.schema.json).
fn schemas() -> Schemas {
    let openapi: serde_json::Value = serde_json::from_str(include_str!("../../../../docs/openapi.json")).unwrap();
    let record: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/prediction.schema.json")).unwrap();
    assert_eq!(
        openapi["components"]["schemas"]["Record"]["$ref"],
        "prediction.schema.json"
    );
    let component = |name: &str| jsonschema::validator_for(&openapi["components"]["schemas"][name]).unwrap();
    Schemas {
        record: jsonschema::validator_for(&record).unwrap(),
        error: component("Error"),
        model: component("Model"),
    }
}

fn valid(validator: &jsonschema::Validator, value: &serde_json::Value) {
    let errors: Vec<String> = validator.iter_errors(value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{value}");
}

/// Auth, content types, corrupt input, a radiograph that is not a hip, multipart, the overlay,
/// metrics, and the JSON equal to `hipfrac predict`'s for the same file.
#[test]
fn the_service_answers_what_predict_writes() {
    let temp = tempfile::tempdir().unwrap();
    let (model, data) = setup(temp.path(), 128);
    let tokens = temp.path().join("tokens.tsv");
    let out = hipfrac()
        .args(["serve", "token", "add", "ci"])
        .arg("--tokens")
        .arg(&tokens)
        .assert()
        .success();
    let token = String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("hf_") && !std::fs::read_to_string(&tokens).unwrap().contains(&token));
    let server = Server::start(&model, &["--tokens", tokens.to_str().unwrap()]);
    let port = server.port;
    let bearer = format!("Bearer {token}");
    let auth = ("Authorization", bearer.as_str());
    let schemas = schemas();
    // Health needs no token; the API does.
    assert_eq!(request(port, "GET", "/healthz", &[], b"").unwrap().status, 200);
    for headers in [vec![], vec![("Authorization", "Bearer hf_wrong")]] {
        let r = request(port, "GET", "/v1/model", &headers, b"").unwrap();
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        valid(&schemas.error, &r.json());
    }
    let r = request(port, "GET", "/v1/model", &[auth], b"").unwrap();
    assert_eq!(r.status, 200);
    valid(&schemas.model, &r.json());
    assert_eq!(
        r.json()["caveats"],
        serde_json::json!(["TRAINING DATA UNKNOWN", "UNCALIBRATED"])
    );
    // A DICOM body: the record predict writes for the same file.
    let dicom = first_file(&data.join("dicom"));
    let bytes = std::fs::read(&dicom).unwrap();
    let name = dicom.file_name().unwrap().to_str().unwrap();
    let r = request(
        port,
        "POST",
        &format!("/v1/predict?name={name}"),
        &[auth, ("Content-Type", "application/dicom")],
        &bytes,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("x-request-id").is_some_and(|id| id.len() == 16));
    let mut served = r.json();
    valid(&schemas.record, &served);
    let predicted = temp.path().join("predicted");
    hipfrac()
        .arg("predict")
        .arg(&dicom)
        .arg("--model")
        .arg(&model)
        .arg("--out")
        .arg(&predicted)
        .args(["--device", "cpu", "--no-overlay"])
        .assert()
        .success();
    let mut written: serde_json::Value = serde_json::from_slice(
        &std::fs::read(predicted.join(format!("{}.json", dicom.file_stem().unwrap().to_str().unwrap()))).unwrap(),
    )
    .unwrap();
    for json in [&mut served, &mut written] {
        json["predicted_at"] = serde_json::Value::Null;
        json["input"] = serde_json::Value::Null;
    }
    assert_eq!(served, written, "the service's record is predict's");
    // Several files in one multipart request: one record each, named by their file names.
    let png = first_file(&data.join("images"));
    let png_bytes = std::fs::read(&png).unwrap();
    let (kind, body) = multipart(&[("a.dcm", &bytes), ("b.png", &png_bytes)]);
    let r = request(port, "POST", "/v1/predict", &[auth, ("Content-Type", &kind)], &body).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let records = r.json();
    assert_eq!(
        records
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["input"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a.dcm", "b.png"]
    );
    records
        .as_array()
        .unwrap()
        .iter()
        .for_each(|r| valid(&schemas.record, r));
    // The overlay picture.
    let r = request(
        port,
        "POST",
        "/v1/predict?overlay=png",
        &[auth, ("Content-Type", "image/png")],
        &png_bytes,
    )
    .unwrap();
    assert_eq!(
        (r.status, r.header("content-type").as_deref()),
        (200, Some("image/png"))
    );
    assert!(r.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    // Bad input: a clear JSON error, never a verdict.
    let cases: [(&str, &[u8], u16, &str); 4] = [
        ("text/plain", b"hello", 415, "Content-Type text/plain"),
        ("application/dicom", &bytes[..bytes.len() / 2], 400, "truncated"),
        (
            "application/dicom",
            b"neither DICOM nor PNG, just text",
            400,
            "neither DICOM",
        ),
        ("image/png", b"", 400, "no body"),
    ];
    for (kind, body, status, says) in cases {
        let r = request(port, "POST", "/v1/predict", &[auth, ("Content-Type", kind)], body).unwrap();
        let json = r.json();
        assert_eq!(r.status, status, "{json}");
        valid(&schemas.error, &json);
        assert!(json["error"]["message"].as_str().unwrap().contains(says), "{json}");
    }
    // A chest radiograph is not assessed: 422 with its record and the reason.
    if let Some(root) = shared_dicom() {
        let chest = std::fs::read(root.join("dicom_pydicomdata_chest_mono1/RG1_J2KI.dcm")).unwrap();
        let r = request(
            port,
            "POST",
            "/v1/predict",
            &[auth, ("Content-Type", "application/dicom")],
            &chest,
        )
        .unwrap();
        assert_eq!(r.status, 422);
        let json = r.json();
        valid(&schemas.record, &json);
        assert_eq!(json["verdict"], "not_assessable");
        assert!(
            json["not_assessable"]["reason"].as_str().unwrap().contains("CHEST"),
            "{json}"
        );
    }
    // A removed token stops working at once (the file is re-read when it changes).
    let other = hipfrac()
        .args(["serve", "token", "add", "other"])
        .arg("--tokens")
        .arg(&tokens)
        .assert()
        .success();
    let other = format!(
        "bearer {}",
        String::from_utf8(other.get_output().stdout.clone()).unwrap().trim()
    );
    assert_eq!(
        request(port, "GET", "/v1/model", &[("Authorization", &other)], b"")
            .unwrap()
            .status,
        200,
        "a new token works at once, scheme in any case"
    );
    hipfrac()
        .args(["serve", "token", "remove", "other"])
        .arg("--tokens")
        .arg(&tokens)
        .assert()
        .success();
    assert_eq!(
        request(port, "GET", "/v1/model", &[("Authorization", &other)], b"")
            .unwrap()
            .status,
        401
    );
    let (kind, body) = multipart(&(0..17).map(|_| ("x.png", png_bytes.as_slice())).collect::<Vec<_>>());
    let r = request(port, "POST", "/v1/predict", &[auth, ("Content-Type", &kind)], &body).unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (413, Some("too_many_files"))
    );
    let r = request(port, "GET", "/metrics", &[auth], b"").unwrap();
    let text = String::from_utf8(r.body).unwrap();
    for expected in [
        "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"200\"} 3",
        "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"415\"} 1",
        "hipfrac_batch_size_count",
        "hipfrac_queue_depth 0",
        "hipfrac_predict_duration_seconds_bucket",
    ] {
        assert!(text.contains(expected), "{expected} not in\n{text}");
    }
    // The log names requests, not patients.
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("request_id") && !log.contains("PH-site"), "{log}");
}

/// A bounded queue answers 503 with Retry-After when full; a body over the limit is 413;
/// SIGTERM stops accepting but answers every request in flight, and the service exits 0.
#[test]
fn a_full_queue_is_refused_and_shutdown_finishes_what_is_in_flight() {
    let temp = tempfile::tempdir().unwrap();
    // A larger input makes each forward pass slow enough to keep the queue busy.
    let (model, data) = setup(temp.path(), 640);
    let png = std::fs::read(first_file(&data.join("images"))).unwrap();
    let server = Server::start(
        &model,
        &[
            "--no-auth",
            "--queue",
            "1",
            "--max-batch",
            "1",
            "--max-wait-ms",
            "0",
            "--max-body-mb",
            "1",
        ],
    );
    let port = server.port;
    let big = vec![0u8; 2 * 1024 * 1024];
    let r = request(
        port,
        "POST",
        "/v1/predict",
        &[("Content-Type", "application/dicom")],
        &big,
    )
    .unwrap();
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let burst = |n: usize| -> Vec<std::thread::JoinHandle<Reply>> {
        (0..n)
            .map(|_| {
                let png = png.clone();
                std::thread::spawn(move || {
                    request(port, "POST", "/v1/predict", &[("Content-Type", "image/png")], &png).unwrap()
                })
            })
            .collect()
    };
    let replies: Vec<Reply> = burst(24).into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(
        !refused.is_empty(),
        "24 requests at once on a queue of 1 must refuse some"
    );
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 503));
    for r in refused {
        assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        let code = r.json()["error"]["code"].as_str().unwrap().to_string();
        assert!(code == "queue_full" || code == "busy", "{code}");
    }
    drop(server);
    // Graceful shutdown: a request in flight (16 images, one forward pass each) is answered
    // in full after SIGTERM; then nothing listens.
    let mut server = Server::start(&model, &["--no-auth", "--max-batch", "1", "--max-wait-ms", "0"]);
    let port = server.port;
    let files: Vec<(String, Vec<u8>)> = (0..16).map(|i| (format!("{i}.png"), png.clone())).collect();
    let (kind, body) = multipart(
        &files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect::<Vec<_>>(),
    );
    let in_flight = std::thread::spawn(move || {
        let reply = request(port, "POST", "/v1/predict", &[("Content-Type", &kind)], &body).unwrap();
        (reply, Instant::now())
    });
    // Wait until the service is working on it (the batch counter moves), then stop it.
    let started = Instant::now();
    loop {
        let metrics = String::from_utf8(request(port, "GET", "/metrics", &[], b"").unwrap().body).unwrap();
        let passes = metrics
            .lines()
            .find_map(|l| l.strip_prefix("hipfrac_batch_size_count "))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if passes.is_some_and(|n| n >= 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the request never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped_at = Instant::now();
    let status = server.terminate();
    let (reply, answered_at) = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json().as_array().unwrap().len(), 16);
    assert!(
        answered_at > stopped_at,
        "the request was still in flight when SIGTERM came"
    );
    assert!(status.success(), "{status:?}\n{}", server.log.lock().unwrap());
    assert!(server
        .log
        .lock()
        .unwrap()
        .contains("every request in flight was answered"));
    assert!(
        request(port, "GET", "/healthz", &[], b"").is_err(),
        "nothing listens after the exit"
    );
}

/// A request not answered within --timeout-s gets 504 with a JSON error (code `timeout`), and
/// the service goes on answering.
#[test]
fn a_request_past_its_timeout_is_answered_504() {
    let temp = tempfile::tempdir().unwrap();
    // 1024 px, one image per forward pass (about 0.1 s each on 2 cores): 8 requests of 16
    // images queue 128 passes, far more than the shortest timeout, 1 s, on any CPU.
    let (model, data) = setup(temp.path(), 1024);
    let png = std::fs::read(first_file(&data.join("images"))).unwrap();
    let server = Server::start(
        &model,
        &[
            "--no-auth",
            "--timeout-s",
            "1",
            "--max-batch",
            "1",
            "--max-wait-ms",
            "0",
            "--queue",
            "256",
        ],
    );
    let port = server.port;
    let files: Vec<(String, Vec<u8>)> = (0..16).map(|i| (format!("{i}.png"), png.clone())).collect();
    let (kind, body) = multipart(
        &files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect::<Vec<_>>(),
    );
    let started = Instant::now();
    let requests: Vec<std::thread::JoinHandle<Reply>> = (0..8)
        .map(|_| {
            let (kind, body) = (kind.clone(), body.clone());
            std::thread::spawn(move || request(port, "POST", "/v1/predict", &[("Content-Type", &kind)], &body).unwrap())
        })
        .collect();
    let replies: Vec<Reply> = requests.into_iter().map(|h| h.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == 200 || s == 504), "{statuses:?}");
    let timed_out: Vec<&Reply> = replies.iter().filter(|r| r.status == 504).collect();
    assert!(
        !timed_out.is_empty(),
        "128 forward passes answered within 1 s: {statuses:?}"
    );
    // Answered at the timeout, not when the work is done (about 14 s on 2 cores).
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let schemas = schemas();
    for r in &timed_out {
        let json = r.json();
        valid(&schemas.error, &json);
        assert_eq!(json["error"]["code"], "timeout", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no answer within 1 s"),
            "{json}"
        );
    }
    // The service still answers, and counts the 504s.
    assert_eq!(request(port, "GET", "/healthz", &[], b"").unwrap().status, 200);
    let metrics = || String::from_utf8(request(port, "GET", "/metrics", &[], b"").unwrap().body).unwrap();
    let text = metrics();
    let counted = format!(
        "hipfrac_http_requests_total{{path=\"/v1/predict\",status=\"504\"}} {}",
        timed_out.len()
    );
    assert!(text.contains(&counted), "{counted} not in\n{text}");
    // The images of requests that gave up cost no forward pass: the pass count stops short
    // of 128 once the pass under way is done.
    let passes = || {
        metrics()
            .lines()
            .find_map(|l| l.strip_prefix("hipfrac_batch_size_count ")?.trim().parse::<u64>().ok())
            .expect("a batch count")
    };
    std::thread::sleep(Duration::from_secs(1));
    let settled = passes();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(passes(), settled, "forward passes go on for requests that gave up");
    assert!(settled < 128, "{settled}");
}

/// Without tokens the service stays on loopback.
#[test]
fn no_auth_is_for_loopback_only() {
    let temp = tempfile::tempdir().unwrap();
    let model = temp.path().join("model");
    hipfrac_infer::write_untrained(&model, &hipfrac_model::ModelConfig::nano(1, 4), 64, Some(0.0)).unwrap();
    let out = hipfrac()
        .arg("serve")
        .arg("--model")
        .arg(&model)
        .args(["--no-auth", "--insecure", "--addr", "0.0.0.0:0", "--device", "cpu"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("--no-auth") && stderr.contains("loopback"), "{stderr}");
    let out = hipfrac()
        .arg("serve")
        .arg("--model")
        .arg(&model)
        .args(["--device", "cpu"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("--tokens"));
}
