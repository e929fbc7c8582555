//! The HTTP server: routes, sessions, phases and the AI overlay.

use crate::config::{verify_password, StudyConfig};
use crate::db::{now, Db, StoredRead};
use crate::page;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hipfrac_core::Label;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;
use sha2::Digest;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const COOKIE: &str = "hipfrac_session";

/// One case: where its image is and how the reads export names it.
pub struct Case {
    /// The manifest's `image` value (the case's name in the reads CSV).
    pub name: String,
    pub path: PathBuf,
    /// The AI's overlay: JSON boxes and a one-line summary (only used in AI phases).
    pub ai: Option<(String, String)>,
}

pub struct App {
    pub config: StudyConfig,
    pub cases: Vec<Case>,
    db: Mutex<Db>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
}

impl App {
    /// Opens the database, lists the cases and, when a phase shows the AI, predicts every case
    /// once with the study's model.
    pub fn new(config: StudyConfig) -> Result<App, ServeError> {
        let rows = hipfrac_data::manifest::read(&config.cases).map_err(|e| ServeError::Setup(e.to_string()))?;
        if rows.is_empty() {
            return Err(ServeError::Setup(format!("{}: no cases", config.cases.display())));
        }
        let base = config.cases.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let mut cases: Vec<Case> = rows.iter().map(|r| Case { name: r.image.clone(), path: base.join(&r.image), ai: None }).collect();
        // Every image must be there before the first reader arrives.
        if let Some(missing) = cases.iter().find(|c| !c.path.is_file()) {
            return Err(ServeError::Setup(format!("{}: case image {} does not exist", config.cases.display(), missing.path.display())));
        }
        if config.phases.iter().any(|p| p.ai) {
            let dir = config.model.clone().expect("checked when the study was loaded");
            let predictor = hipfrac_infer::Predictor::load(&dir, tch::Device::Cpu).map_err(|e| ServeError::Setup(e.to_string()))?;
            for case in &mut cases {
                let image = hipfrac_dicom::read_radiograph(&case.path).map_err(|e| ServeError::Setup(e.to_string()))?;
                let p = predictor.predict(&[&image]).map_err(ServeError::Setup)?.remove(0);
                let shown = hipfrac_infer::verdict::reportable(&p.detections, &predictor.points, 5);
                let boxes: Vec<serde_json::Value> = shown.iter().map(|d| serde_json::json!({"class": d.class.code(), "score": d.score, "bbox": [d.bbox.x_min, d.bbox.y_min, d.bbox.x_max, d.bbox.y_max]})).collect();
                let text = match p.verdict.label {
                    Label::Fracture(c) => format!("{} ({}), confidence {:.2}, {}", c.code(), c.full_name(), p.verdict.confidence, if p.verdict.operating_point == hipfrac_infer::OperatingPoint::Fracture { "fracture" } else { "suspicious" }),
                    Label::NoFracture => "no visible fracture".to_string(),
                };
                case.ai = Some((serde_json::to_string(&boxes).expect("boxes serialise"), text));
            }
        }
        let db = Db::open(&config.database).map_err(|e| ServeError::Setup(format!("{}: {e}", config.database.display())))?;
        Ok(App { config, cases, db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reader's case order in a phase: a shuffle seeded by the study, reader and phase.
    fn order(&self, reader: &str, phase: &str) -> Vec<usize> {
        let digest = sha2::Sha256::digest(format!("{}\u{0}{reader}\u{0}{phase}", self.config.seed));
        let seed = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut order: Vec<usize> = (0..self.cases.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        order
    }

    /// Where a reader stands.
    fn state(&self, reader: &str) -> Result<ReaderState, String> {
        let db = self.db();
        for (k, phase) in self.config.phases.iter().enumerate() {
            if db.done_at(reader, &phase.name).map_err(|e| e.to_string())?.is_some() {
                continue;
            }
            if k > 0 {
                let previous = db.done_at(reader, &self.config.phases[k - 1].name).map_err(|e| e.to_string())?.unwrap_or(0.0);
                let opens = previous + phase.washout_days * 86_400.0;
                if now() < opens {
                    return Ok(ReaderState::Waiting { phase: k, opens });
                }
            }
            let done = db.read_cases(reader, &phase.name).map_err(|e| e.to_string())?;
            let order = self.order(reader, &phase.name);
            match order.iter().position(|c| !done.contains(c)) {
                Some(position) => return Ok(ReaderState::Reading { phase: k, case: order[position], position: done.len() + 1 }),
                None => {
                    db.mark_done(reader, &phase.name).map_err(|e| e.to_string())?;
                    // The next phase's washout starts now; loop on to report it.
                    continue;
                }
            }
        }
        Ok(ReaderState::Finished)
    }
}

enum ReaderState {
    Reading { phase: usize, case: usize, position: usize },
    Waiting { phase: usize, opens: f64 },
    Finished,
}

/// Who is asking.
struct Person {
    name: String,
    admin: bool,
    csrf: String,
    token: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then(|| v.to_string())
    })
}

fn person(app: &App, headers: &HeaderMap) -> Option<Person> {
    let token = cookie_token(headers)?;
    let (name, admin, csrf) = app.db().session(&token).ok()??;
    Some(Person { name, admin, csrf, token })
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

fn internal(e: impl std::fmt::Display) -> Response {
    // The detail goes to the log only (it never contains patient data: cases are numbers).
    eprintln!("study server error: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

fn unauthorised() -> Response {
    (StatusCode::UNAUTHORIZED, "log in first").into_response()
}

/// The router of a study.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/case", get(case_page))
        .route("/read", post(read))
        .route("/image/{index}", get(image))
        .route("/admin", get(admin))
        .route("/admin/reads.csv", get(export))
        .with_state(app)
}

async fn login_page(State(app): State<Arc<App>>) -> Html<String> {
    Html(page::login(&app.config.name, None))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(State(app): State<Arc<App>>, Form(form): Form<LoginForm>) -> Response {
    let readers = app.config.readers.iter().map(|p| (p, false));
    let admins = app.config.admins.iter().map(|p| (p, true));
    let found = readers.chain(admins).find(|(p, _)| p.name == form.name);
    // Verify against a dummy hash when the name is unknown, so timing does not reveal names.
    let (ok, admin) = match found {
        Some((p, admin)) => (verify_password(&form.password, &p.password_hash), admin),
        None => {
            let _ = verify_password(&form.password, &app.config.readers[0].password_hash);
            (false, false)
        }
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, Html(page::login(&app.config.name, Some("Unknown name or wrong password.")))).into_response();
    }
    let (token, csrf) = (random_token(), random_token());
    if let Err(e) = app.db().create_session(&token, &form.name, admin, &csrf) {
        return internal(e);
    }
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    ([(header::SET_COOKIE, cookie)], Redirect::to(if admin { "/admin" } else { "/" })).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let Some(p) = person(&app, &headers) else { return Redirect::to("/login").into_response() };
    if form.csrf != p.csrf {
        return (StatusCode::FORBIDDEN, "bad form token").into_response();
    }
    let _ = app.db().delete_session(&p.token);
    ([(header::SET_COOKIE, format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"))], Redirect::to("/login")).into_response()
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else { return Redirect::to("/login").into_response() };
    if p.admin {
        return Redirect::to("/admin").into_response();
    }
    let body = match app.state(&p.name) {
        Err(e) => return internal(e),
        Ok(ReaderState::Reading { phase, position, .. }) => format!(
            "<h1>{}</h1><p id=\"status\">Phase {} — case {position} of {}.</p><p><a id=\"start\" href=\"/case\">Read</a></p>",
            page::escape(&app.config.name),
            page::escape(&app.config.phases[phase].name),
            app.cases.len()
        ),
        Ok(ReaderState::Waiting { phase, opens }) => format!(
            "<h1>{}</h1><p id=\"status\">Phase {} opens after the washout, in {:.1} days.</p>",
            page::escape(&app.config.name),
            page::escape(&app.config.phases[phase].name),
            (opens - now()) / 86_400.0
        ),
        Ok(ReaderState::Finished) => format!("<h1>{}</h1><p id=\"status\">All phases read. Thank you.</p>", page::escape(&app.config.name)),
    };
    Html(page::layout("Reader", &body)).into_response()
}

async fn case_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else { return Redirect::to("/login").into_response() };
    if p.admin {
        return Redirect::to("/admin").into_response();
    }
    match app.state(&p.name) {
        Err(e) => internal(e),
        Ok(ReaderState::Reading { phase, case, position }) => {
            let phase = &app.config.phases[phase];
            if let Err(e) = app.db().shown_at(&p.name, &phase.name, case) {
                return internal(e);
            }
            let ai = if phase.ai { app.cases[case].ai.as_ref() } else { None };
            Html(page::case(&app.config.name, &phase.name, position, app.cases.len(), case, &p.csrf, ai.map(|a| a.0.as_str()), ai.map(|a| a.1.as_str()))).into_response()
        }
        Ok(_) => Redirect::to("/").into_response(),
    }
}

#[derive(Deserialize)]
struct ReadForm {
    csrf: String,
    phase: String,
    case: usize,
    label: String,
    #[serde(default)]
    bbox: String,
}

async fn read(State(app): State<Arc<App>>, headers: HeaderMap, Form(form): Form<ReadForm>) -> Response {
    let Some(p) = person(&app, &headers) else { return unauthorised() };
    if p.admin {
        return (StatusCode::FORBIDDEN, "admins do not read").into_response();
    }
    if form.csrf != p.csrf {
        return (StatusCode::FORBIDDEN, "bad form token").into_response();
    }
    let Ok(label) = form.label.parse::<Label>() else { return (StatusCode::BAD_REQUEST, "unknown label").into_response() };
    let bbox = if form.bbox.is_empty() {
        None
    } else {
        let v: Vec<f64> = form.bbox.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        if v.len() != 4 || v[2] <= v[0] || v[3] <= v[1] {
            return (StatusCode::BAD_REQUEST, "box must be x0,y0,x1,y1").into_response();
        }
        Some(form.bbox.clone())
    };
    // Only the case the reader is shown now can be answered (no skipping, no other phase).
    let (phase_name, case) = match app.state(&p.name) {
        Ok(ReaderState::Reading { phase, case, .. }) => (app.config.phases[phase].name.clone(), case),
        Ok(_) => return (StatusCode::CONFLICT, "no case is open for reading").into_response(),
        Err(e) => return internal(e),
    };
    if form.phase != phase_name || form.case != case {
        return (StatusCode::CONFLICT, "this case is not the one open for reading (already read, or another phase)").into_response();
    }
    let db = app.db();
    let shown = match db.shown_at(&p.name, &phase_name, case) {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let at = now();
    let stored = StoredRead { reader: p.name.clone(), phase: phase_name, case, label: label.code().to_string(), bbox, seconds: (at - shown).max(0.0), at };
    match db.insert_read(&stored) {
        Ok(true) => Redirect::to("/case").into_response(),
        // A concurrent duplicate (two tabs): the first answer stands and this one is refused.
        Ok(false) => (StatusCode::CONFLICT, "this case was already answered").into_response(),
        Err(e) => internal(e),
    }
}

async fn image(State(app): State<Arc<App>>, headers: HeaderMap, UrlPath(index): UrlPath<String>) -> Response {
    if person(&app, &headers).is_none() {
        return unauthorised();
    }
    // Cases are addressed by number only: no path from the request reaches the file system.
    let Some(case) = index.parse::<usize>().ok().and_then(|i| app.cases.get(i)) else { return (StatusCode::NOT_FOUND, "no such case").into_response() };
    let image = match hipfrac_dicom::read_radiograph(&case.path) {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let (values, _) = hipfrac_dicom::display::modality_16bit(&image);
    let mut body = Vec::with_capacity(8 + values.len() * 2);
    body.extend_from_slice(&image.width().to_le_bytes());
    body.extend_from_slice(&image.height().to_le_bytes());
    for v in values {
        body.extend_from_slice(&v.to_le_bytes());
    }
    ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn admin(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else { return Redirect::to("/login").into_response() };
    if !p.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    let reads = match app.db().all_reads() {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut table = String::from("<table id=\"progress\"><tr><th>reader</th>");
    for ph in &app.config.phases {
        table.push_str(&format!("<th>{}</th>", page::escape(&ph.name)));
    }
    table.push_str("</tr>");
    for r in &app.config.readers {
        table.push_str(&format!("<tr><td>{}</td>", page::escape(&r.name)));
        for ph in &app.config.phases {
            let n = reads.iter().filter(|x| x.reader == r.name && x.phase == ph.name).count();
            table.push_str(&format!("<td>{n} / {}</td>", app.cases.len()));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    let body = format!("<h1>{} — progress</h1>{table}<p><a id=\"export\" href=\"/admin/reads.csv\">Export reads (CSV)</a> — for <code>hipfrac study report</code>.</p>", page::escape(&app.config.name));
    Html(page::layout("Admin", &body)).into_response()
}

async fn export(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else { return unauthorised() };
    if !p.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    let reads = match app.db().all_reads() {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["reader", "phase", "case", "label", "seconds", "bbox", "at"]);
    for r in reads {
        let _ = w.write_record([r.reader, r.phase, app.cases[r.case].name.clone(), r.label, format!("{:.1}", r.seconds), r.bbox.unwrap_or_default(), format!("{:.3}", r.at)]);
    }
    let bytes = w.into_inner().unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/csv"), (header::CONTENT_DISPOSITION, "attachment; filename=\"reads.csv\"")], bytes).into_response()
}

/// Serves `app` on `addr` until Ctrl-C. Prints the address once listening.
pub async fn serve(app: App, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("study \"{}\": {} cases, {} readers; listening on http://{}", app.config.name, app.cases.len(), app.config.readers.len(), listener.local_addr()?);
    axum::serve(listener, router(Arc::new(app))).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
