//! A tiny study in a temporary folder, and requests to its router without a socket.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use hipfrac_core::verdict::Verdict;
use hipfrac_core::{Answer, BBox, Detection, FractureClass, Label, OperatingPoint, Prediction, Radiograph};
use hipfrac_study::{App, StudyConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

pub const STUDY_NAME: &str = "Hip <study> & co";

/// Argon2 hashes of alice's, bob's and the admin's passwords (hashed once per test binary).
fn hashes() -> &'static [String; 3] {
    static HASHES: OnceLock<[String; 3]> = OnceLock::new();
    HASHES.get_or_init(|| ["alice-password", "bob-password", "admin-password"].map(hipfrac_study::hash_password))
}

/// Writes `count` small 8-bit greyscale PNG cases (case `i` is `10 + i` pixels wide), their
/// manifest, and a study file with `phases` (a TOML array); returns the study file.
pub fn write_study(dir: &Path, count: usize, phases: &str) -> PathBuf {
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    let mut manifest = String::from("image,annotation,patient,site,label\n");
    for i in 0..count {
        let (width, height) = (10 + i as u32, 8u32);
        let file = std::fs::File::create(cases.join(format!("case{i}.png"))).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let pixels: Vec<u8> = (0..width * height).map(|p| (p * 7 + i as u32 * 31) as u8).collect();
        encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
        manifest.push_str(&format!(
            "case{i}.png,,PATIENT-{i},Secret Hospital,{}\n",
            if i % 2 == 0 { "DF" } else { "none" }
        ));
    }
    std::fs::write(cases.join("manifest.csv"), manifest).unwrap();
    let [alice, bob, admin] = hashes();
    let toml = format!(
        "name = \"{}\"\ncases = \"cases/manifest.csv\"\ndatabase = \"db/study.sqlite\"\nmodel = \"model\"\nseed = 3\nphases = {phases}\n\
[[readers]]\nname = \"alice\"\npassword_hash = \"{alice}\"\n[[readers]]\nname = \"bob\"\npassword_hash = \"{bob}\"\n\
[[admins]]\nname = \"admin\"\npassword_hash = \"{admin}\"\n",
        STUDY_NAME.replace('"', "\\\"")
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// A study without AI phases, ready to serve.
pub fn plain_study(dir: &Path, count: usize, phases: &str) -> Arc<App> {
    let config = StudyConfig::load(&write_study(dir, count, phases)).unwrap();
    Arc::new(App::new(config, None).unwrap())
}

/// A study whose AI phases show the fake model's [`fixed_prediction`], ready to serve.
pub fn ai_study(dir: &Path, count: usize, phases: &str) -> Arc<App> {
    let config = StudyConfig::load(&write_study(dir, count, phases)).unwrap();
    let points = hipfrac_core::OperatingPoints::uncalibrated();
    let mut predict = |images: &[Radiograph]| -> Vec<Result<Prediction, Box<dyn std::error::Error + Send + Sync>>> {
        images.iter().map(|i| Ok(fixed_prediction(i))).collect()
    };
    Arc::new(
        App::new(
            config,
            Some(hipfrac_study::AiModel {
                points: &points,
                predict: &mut predict,
            }),
        )
        .unwrap(),
    )
}

/// The fixed prediction of the fake model: a DF fracture at (11, 2)–(17, 6) with score
/// 0.75, and a UF box far below every threshold (never shown).
pub fn fixed_prediction(image: &Radiograph) -> Prediction {
    let detections = vec![
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
    ];
    Prediction {
        width: image.width(),
        height: image.height(),
        class_scores: [0.75, 0.0, 0.0, 0.0625],
        detections,
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

/// The reply to one request.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    /// The body as sent (images are binary).
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `name=value` of the session cookie set by this reply.
    pub fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a Set-Cookie header");
        set.split(';').next().unwrap().to_string()
    }
}

/// One request through `hipfrac_study::server::router` (no socket).
pub async fn send(app: &Arc<App>, method: &str, uri: &str, cookie: Option<&str>, form: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    if form.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = request.body(Body::from(form.unwrap_or("").to_string())).unwrap();
    let response = hipfrac_study::server::router(app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes: bytes.to_vec(),
    }
}

/// Logs in (which must succeed) and returns the session cookie.
pub async fn login(app: &Arc<App>, name: &str, password: &str) -> String {
    let reply = send(
        app,
        "POST",
        "/login",
        None,
        Some(&format!("name={name}&password={password}")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    reply.cookie()
}

/// The value of the attribute that follows `marker` in `html`.
pub fn attribute(html: &str, marker: &str) -> String {
    let at = html.find(marker).unwrap_or_else(|| panic!("{marker} not in {html}")) + marker.len();
    html[at..].split('"').next().unwrap().to_string()
}

/// The open case of a reader as its page: (page, csrf, phase, case, step), without drawing it.
pub async fn case_page(app: &Arc<App>, cookie: &str) -> (String, String, String, String, String) {
    let page = send(app, "GET", "/case", Some(cookie), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = page.body;
    let (csrf, phase, case, step) = (
        attribute(&body, "name=\"csrf\" value=\""),
        attribute(&body, "name=\"phase\" value=\""),
        attribute(&body, "data-case=\""),
        attribute(&body, "name=\"step\" value=\""),
    );
    (body, csrf, phase, case, step)
}

/// Posts a reading-clock event (`drawn`, `pause`, `resume`) for the open case.
pub async fn clock_event(
    app: &Arc<App>,
    cookie: &str,
    csrf: &str,
    phase: &str,
    case: &str,
    step: &str,
    event: &str,
) -> Reply {
    send(
        app,
        "POST",
        "/event",
        Some(cookie),
        Some(&format!(
            "csrf={csrf}&phase={phase}&case={case}&step={step}&event={event}"
        )),
    )
    .await
}

/// The open case of a reader, drawn on the screen as the browser would report it: (page,
/// csrf, phase, case).
pub async fn open_case(app: &Arc<App>, cookie: &str) -> (String, String, String, String) {
    let (body, csrf, phase, case, step) = case_page(app, cookie).await;
    let drawn = clock_event(app, cookie, &csrf, &phase, &case, &step, "drawn").await;
    assert_eq!(drawn.status, StatusCode::NO_CONTENT, "{}", drawn.body);
    (body, csrf, phase, case)
}

/// Reads the open case with `label` (and `bbox`, maybe empty); returns (page, phase, case).
pub async fn read_open_case(app: &Arc<App>, cookie: &str, label: &str, bbox: &str) -> (String, String, String) {
    let (page, csrf, phase, case) = open_case(app, cookie).await;
    let step = attribute(&page, "name=\"step\" value=\"");
    let reply = send(
        app,
        "POST",
        "/read",
        Some(cookie),
        Some(&format!(
            "csrf={csrf}&phase={phase}&case={case}&label={label}&bbox={bbox}&step={step}"
        )),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/case"));
    (page, phase, case)
}

/// The admin's export: its data rows (without the header).
pub async fn exported_rows(app: &Arc<App>) -> Vec<Vec<String>> {
    let admin = login(app, "admin", "admin-password").await;
    let reply = send(app, "GET", "/admin/reads.csv", Some(&admin), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(reply.body.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["reader", "phase", "case", "label", "seconds", "bbox", "at", "case_id"]
    );
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}
