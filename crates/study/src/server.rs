//! The HTTP server: routes, sessions, CSRF, the reading pages and the admin export.

pub use crate::ai::{AiModel, AiOverlay, PredictFn};
use crate::app::ReaderState;
pub use crate::app::{App, Case};
use crate::config::verify_password;
use crate::db::{now, StoredRead};
use crate::guard::{self, ClientAddr};
use crate::page;
use crate::reading;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hipfrac_core::escape_html as escape;
use serde::Deserialize;
use std::sync::Arc;

const COOKIE: &str = "hipfrac_session";

/// Who is asking.
pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    token: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

pub(crate) fn person(app: &App, headers: &HeaderMap) -> Option<Person> {
    let token = cookie_token(headers)?;
    let (name, admin, csrf) = app
        .db()
        .session(&token, app.config.idle_minutes * 60.0, app.now())
        .ok()??;
    Some(Person {
        name,
        admin,
        csrf,
        token,
    })
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source");
    hex::encode(bytes)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    // The detail goes to the log only (it never contains patient data: cases are numbers).
    eprintln!("study server error: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// A form that could not be taken: a page that says why, with the way back.
pub(crate) fn problem(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Not stored</h1><p role=\"alert\">{}</p><p><a id=\"back\" href=\"/\">Back to the start page</a></p>",
        escape(message)
    );
    (status, Html(page::layout("Not stored", &body))).into_response()
}

/// Seconds since the epoch as a `<time>` element: `2026-12-13 14:05 UTC` in its text (what a
/// page without script shows) and ISO 8601 in `datetime`; the pages' script (`/local-time.js`)
/// shows it in the reader's local time.
fn time_html(seconds: f64) -> String {
    chrono::DateTime::from_timestamp(seconds as i64, 0)
        .map(|t| {
            format!(
                "<time datetime=\"{}\">{}</time>",
                t.format("%Y-%m-%dT%H:%M:%SZ"),
                t.format("%Y-%m-%d %H:%M UTC")
            )
        })
        .unwrap_or_default()
}

pub(crate) fn unauthorised() -> Response {
    let body = "<h1>Logged out</h1><p role=\"alert\">Your login has ended (logged out, or no activity for a while); nothing was stored.</p><p><a id=\"login-again\" href=\"/login\">Log in again</a></p>";
    (StatusCode::UNAUTHORIZED, Html(page::layout("Logged out", body))).into_response()
}

/// The router of a study.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/case", get(reading::case_page))
        .route("/read", post(reading::read))
        .route("/event", post(reading::event))
        .route("/image/{index}", get(reading::image))
        .route("/admin", get(admin))
        .route("/admin/reads.csv", get(export))
        .route("/admin/cases.csv", get(export_cases))
        .route("/admin/undone.csv", get(export_undone))
        .route("/admin/unlock", post(unlock))
        .route("/undo", post(reading::undo))
        .route("/reader.js", get(reading::reader_js))
        .route("/local-time.js", get(reading::local_time_js))
        .layer(axum::middleware::from_fn(guard::same_origin_posts))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(app)
}

/// A form body that parses, or a page that says the form was incomplete (not the parser's
/// text); nothing is stored.
pub(crate) struct PageForm<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(PageForm(value)),
            Err(_) => Err((
                StatusCode::BAD_REQUEST,
                Html(page::layout(
                    "Form error",
                    "<h1>That form was incomplete or altered</h1><p>Nothing was stored. Go back to <a href=\"/\">the start page</a> and try again.</p>",
                )),
            )
                .into_response()),
        }
    }
}

/// Failed logins from one address within [`THROTTLE_SECONDS`] before it is refused for a while.
pub const ADDRESS_FAILURES: i64 = 20;
pub const THROTTLE_SECONDS: f64 = 15.0 * 60.0;
/// Failed logins in a row that lock an account until an admin unlocks it.
pub const NAME_FAILURES: i64 = 10;

fn name_key(name: &str) -> String {
    format!("name:{name}")
}

fn cookie(app: &App, headers: &HeaderMap, value: &str, extra: &str) -> String {
    let tls = app.config.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes() == b"https");
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{extra}{}",
        if tls { "; Secure" } else { "" }
    )
}

async fn login_page(State(app): State<Arc<App>>) -> Html<String> {
    Html(page::login(&app.config.name, None))
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(
    State(app): State<Arc<App>>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    let refused = |status, message: &str| (status, Html(page::login(&app.config.name, Some(message)))).into_response();
    let address_key = addr.map(|a| format!("addr:{a}"));
    // Throttling: an address with many recent failures waits; a name with many failures in a
    // row is locked until an admin unlocks it. The attempt counts as a failure until the
    // password is verified, so parallel guesses are counted too.
    let pending = {
        let db = app.db();
        let address_failures = match &address_key {
            Some(key) => db.failures_since(key, now() - THROTTLE_SECONDS),
            None => Ok(0),
        };
        match (address_failures, db.is_locked(&form.name)) {
            (Err(e), _) | (_, Err(e)) => return internal(e),
            (Ok(n), _) if n >= ADDRESS_FAILURES => {
                return refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed logins from this address. Wait 15 minutes.",
                );
            }
            (_, Ok(true)) => {
                return refused(
                    StatusCode::LOCKED,
                    "This account is locked after repeated failed logins. Ask the study's administrator to unlock it.",
                );
            }
            _ => {}
        }
        let name = name_key(&form.name);
        let keys: Vec<&str> = std::iter::once(name.as_str()).chain(address_key.as_deref()).collect();
        match db.record_failure(&keys) {
            Ok(ids) => ids,
            Err(e) => return internal(e),
        }
    };
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
        let db = app.db();
        // Admins are not locked by name (nobody could unlock them); the address throttle still
        // holds for them.
        let is_admin = app.config.admins.iter().any(|a| a.name == form.name);
        match db.failures_since(&name_key(&form.name), 0.0) {
            Ok(n) if n >= NAME_FAILURES && !is_admin => {
                if let Err(e) = db.lock(&form.name) {
                    return internal(e);
                }
                eprintln!("study: {:?} locked after {n} failed logins", form.name);
            }
            Ok(_) => {}
            Err(e) => return internal(e),
        }
        return refused(StatusCode::UNAUTHORIZED, "Unknown name or wrong password.");
    }
    let (token, csrf) = (random_token(), random_token());
    {
        let db = app.db();
        // The address keeps its other failures; this attempt and the name's run are forgotten.
        if let Err(e) = db
            .clear_failures(&name_key(&form.name), &pending[1..])
            .and_then(|_| db.create_session(&token, &form.name, admin, &csrf, app.now()))
        {
            return internal(e);
        }
    }
    let cookie = cookie(&app, &headers, &token, "");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to(if admin { "/admin" } else { "/" }),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, PageForm(form): PageForm<CsrfForm>) -> Response {
    let Some(p) = person(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if form.csrf != p.csrf {
        return problem(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this workstation; nothing was stored.",
        );
    }
    let _ = app.db().delete_session(&p.token);
    (
        [(header::SET_COOKIE, cookie(&app, &headers, "", "; Max-Age=0"))],
        Redirect::to("/login"),
    )
        .into_response()
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
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
        // The page refreshes itself every 5 minutes (no script): it opens the phase when due.
        Ok(ReaderState::Waiting { phase, opens }) => format!(
            "<meta http-equiv=\"refresh\" content=\"300\"><h1>{}</h1><p id=\"status\">Phase {} opens after the washout, in {:.1} days: on <span id=\"opens\">{at}</span>.</p>",
            escape(&app.config.name),
            escape(&app.config.phases[phase].name),
            (opens - now()) / 86_400.0,
            at = time_html(opens),
        ),
        Ok(ReaderState::Finished) => format!("<h1>{}</h1><p id=\"status\">All phases read. Thank you.</p>", escape(&app.config.name)),
    };
    Html(page::layout("Reader", &format!("{body}{}", page::logout(&p.csrf)))).into_response()
}

async fn admin(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
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
    table.push_str("<th>status</th><th>last read</th><th>median s / case</th></tr>");
    for r in &app.config.readers {
        table.push_str(&format!("<tr><td>{}</td>", escape(&r.name)));
        for ph in &app.config.phases {
            let n = reads
                .iter()
                .filter(|x| x.reader == r.name && x.phase == ph.name)
                .count();
            table.push_str(&format!("<td>{n} / {}</td>", app.cases.len()));
        }
        let status = match app.state(&r.name) {
            Ok(ReaderState::Reading { phase, .. }) => {
                format!("reading phase {}", escape(&app.config.phases[phase].name))
            }
            Ok(ReaderState::Waiting { phase, opens }) => format!(
                "washout: phase {} opens {}",
                escape(&app.config.phases[phase].name),
                time_html(opens)
            ),
            Ok(ReaderState::Finished) => "finished".to_string(),
            Err(e) => return internal(e),
        };
        let mine: Vec<&StoredRead> = reads.iter().filter(|x| x.reader == r.name).collect();
        let last = mine
            .iter()
            .map(|x| x.at)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
            .map(time_html)
            .unwrap_or_else(|| "–".into());
        let mut seconds: Vec<f64> = mine.iter().map(|x| x.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let median = if seconds.is_empty() {
            "–".to_string()
        } else {
            format!(
                "{:.1}",
                (seconds[(seconds.len() - 1) / 2] + seconds[seconds.len() / 2]) / 2.0
            )
        };
        table.push_str(&format!("<td>{status}</td><td>{last}</td><td>{median}</td></tr>"));
    }
    table.push_str("</table>");
    let locked = match app.db().locked() {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let locked: String = if locked.is_empty() {
        String::new()
    } else {
        let rows: String = locked
            .iter()
            .map(|name| format!("<li>{n} <form method=\"post\" action=\"/admin/unlock\" style=\"display:inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"name\" value=\"{n}\"><button type=\"submit\">Unlock</button></form></li>", n = escape(name), csrf = escape(&p.csrf)))
            .collect();
        format!("<h2>Locked after repeated failed logins</h2><ul id=\"locked\">{rows}</ul>")
    };
    let body = format!("<h1>{} — progress</h1>{table}{locked}<p><a id=\"export\" href=\"/admin/reads.csv\">Export reads (CSV)</a> — for <code>hipfrac study report</code>; <a id=\"export-cases\" href=\"/admin/cases.csv\">the case table (CSV)</a>; <a id=\"export-undone\" href=\"/admin/undone.csv\">reads undone by their readers (CSV)</a>.</p>{}", escape(&app.config.name), page::logout(&p.csrf));
    Html(page::layout("Admin", &body)).into_response()
}

#[derive(Deserialize)]
struct UnlockForm {
    csrf: String,
    name: String,
}

async fn unlock(State(app): State<Arc<App>>, headers: HeaderMap, PageForm(form): PageForm<UnlockForm>) -> Response {
    let Some(p) = person(&app, &headers) else {
        return unauthorised();
    };
    if !p.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    if form.csrf != p.csrf {
        return problem(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this workstation; nothing was stored.",
        );
    }
    match app.db().unlock(&form.name, &name_key(&form.name)) {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(e) => internal(e),
    }
}

async fn export(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    export_reads(&app, &headers, false)
}

/// The reads their readers took back within the undo window (what was answered, and when it
/// was undone): the reads.csv columns and `undone_at`.
async fn export_undone(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    export_reads(&app, &headers, true)
}

fn iso_millis(seconds: f64) -> String {
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn export_reads(app: &App, headers: &HeaderMap, undone: bool) -> Response {
    let Some(p) = person(app, headers) else {
        return unauthorised();
    };
    if !p.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    let reads = if undone {
        app.db()
            .undone_reads()
            .map(|r| r.into_iter().map(|(read, at)| (read, Some(at))).collect())
    } else {
        app.db()
            .all_reads()
            .map(|r| r.into_iter().map(|read| (read, None)).collect::<Vec<_>>())
    };
    let reads = match reads {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    // `case` is the manifest's image (what `hipfrac study report` joins on), `case_id` the
    // number the workstation shows; `at` is when the read was stored, ISO 8601 in UTC.
    let mut columns = vec!["reader", "phase", "case", "label", "seconds", "bbox", "at", "case_id"];
    if undone {
        columns.push("undone_at");
    }
    let _ = w.write_record(&columns);
    for (r, undone_at) in reads {
        let mut row = vec![
            r.reader,
            r.phase,
            app.cases[r.case].name.clone(),
            r.label,
            format!("{:.1}", r.seconds),
            r.bbox.unwrap_or_default(),
            iso_millis(r.at),
            r.case.to_string(),
        ];
        row.extend(undone_at.map(iso_millis));
        let _ = w.write_record(&row);
    }
    let bytes = hipfrac_core::csv_safe::neutralise(&w.into_inner().unwrap_or_default());
    let name = if undone { "undone.csv" } else { "reads.csv" };
    (
        [
            (header::CONTENT_TYPE, "text/csv".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

/// The case table: each `case_id` (the number the workstation shows and reads.csv names)
/// with its `case` (the manifest's image, reads.csv's `case`) and the manifest's `label`.
async fn export_cases(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else {
        return unauthorised();
    };
    if !p.admin {
        return (StatusCode::FORBIDDEN, "admins only").into_response();
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["case_id", "case", "label"]);
    for (id, case) in app.cases.iter().enumerate() {
        let _ = w.write_record([id.to_string(), case.name.clone(), case.label.code().to_string()]);
    }
    let bytes = hipfrac_core::csv_safe::neutralise(&w.into_inner().unwrap_or_default());
    (
        [
            (header::CONTENT_TYPE, "text/csv"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"cases.csv\""),
        ],
        bytes,
    )
        .into_response()
}

/// Serves `app` on `addr` until Ctrl-C. Prints the address once listening.
/// Serves `app` over HTTPS on `addr` (certificate chain and private key in PEM files) until
/// Ctrl-C. Session cookies are `Secure`.
pub async fn serve_tls(
    mut app: App,
    addr: std::net::SocketAddr,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<()> {
    // One process-wide crypto provider (ring); a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    app.config.secure_cookies = true;
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    eprintln!(
        "study \"{}\": {} cases, {} readers; listening on https://{}",
        app.config.name,
        app.cases.len(),
        app.config.readers.len(),
        listener.local_addr()?
    );
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    axum_server::from_tcp_rustls(listener, tls)
        .handle(handle)
        .serve(router(Arc::new(app)).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}

pub async fn serve(app: App, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "study \"{}\": {} cases, {} readers; listening on http://{}",
        app.config.name,
        app.cases.len(),
        app.config.readers.len(),
        listener.local_addr()?
    );
    axum::serve(
        listener,
        router(Arc::new(app)).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
