//! The HTTP server: routes, sessions, CSRF, the reading pages and the admin export.

pub use crate::ai::{AiModel, AiOverlay, PredictFn};
pub use crate::app::{App, Case};
use crate::app::ReaderState;
use crate::config::verify_password;
use crate::db::{now, StoredRead};
use crate::page;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hipfrac_core::Label;
use hipfrac_core::escape_html as escape;
use serde::Deserialize;
use std::sync::Arc;

const COOKIE: &str = "hipfrac_session";

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
            escape(&app.config.name),
            escape(&app.config.phases[phase].name),
            app.cases.len()
        ),
        Ok(ReaderState::Waiting { phase, opens }) => format!(
            "<h1>{}</h1><p id=\"status\">Phase {} opens after the washout, in {:.1} days.</p>",
            escape(&app.config.name),
            escape(&app.config.phases[phase].name),
            (opens - now()) / 86_400.0
        ),
        Ok(ReaderState::Finished) => format!("<h1>{}</h1><p id=\"status\">All phases read. Thank you.</p>", escape(&app.config.name)),
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
            let page = page::CasePage { study: &app.config.name, phase: &phase.name, position, total: app.cases.len(), case, csrf: &p.csrf, ai };
            Html(page::case(&page)).into_response()
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
        table.push_str(&format!("<th>{}</th>", escape(&ph.name)));
    }
    table.push_str("</tr>");
    for r in &app.config.readers {
        table.push_str(&format!("<tr><td>{}</td>", escape(&r.name)));
        for ph in &app.config.phases {
            let n = reads.iter().filter(|x| x.reader == r.name && x.phase == ph.name).count();
            table.push_str(&format!("<td>{n} / {}</td>", app.cases.len()));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    let body = format!("<h1>{} — progress</h1>{table}<p><a id=\"export\" href=\"/admin/reads.csv\">Export reads (CSV)</a> — for <code>hipfrac study report</code>.</p>", escape(&app.config.name));
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
    let bytes = hipfrac_core::csv_safe::neutralise(&w.into_inner().unwrap_or_default());
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
