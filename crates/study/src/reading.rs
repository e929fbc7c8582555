//! The reading itself: the case page, the image of the open case, the reading clock's events
//! and the read (routes in [`crate::server::router`]).

use crate::app::{App, ReaderState};
use crate::config::Step;
use crate::db::StoredRead;
use crate::page;
use crate::server::{internal, person, problem, unauthorised, PageForm, Person};
use crate::view;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hipfrac_core::Label;
use serde::Deserialize;
use std::sync::Arc;

/// The reading page's script (no inline script: see [`guard::CONTENT_SECURITY_POLICY`]).
pub(crate) async fn reader_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("reader.js"),
    )
        .into_response()
}

pub(crate) async fn case_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(p) = person(&app, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if p.admin {
        return Redirect::to("/admin").into_response();
    }
    match app.state(&p.name) {
        Err(e) => internal(e),
        Ok(ReaderState::Reading { phase, case, position }) => {
            let phase_number = phase;
            let next = match app.next_case(&p.name, phase, case) {
                Ok(n) => n,
                Err(e) => return internal(e),
            };
            let phase = &app.config.phases[phase];
            let step = match app.step(&p.name, phase, case) {
                Ok(s) => s,
                Err(e) => return internal(e),
            };
            // The AI only in AI phases, and in a sequential one only once the unaided read is in.
            let ai = if phase.ai && step == Step::Final {
                app.cases[case].ai.as_ref()
            } else {
                None
            };
            let page = page::CasePage {
                study: &app.config.name,
                phase: &phase.name,
                phase_number,
                phase_ai: phase.ai,
                step: phase.sequential.then_some(step),
                position,
                total: app.cases.len(),
                case,
                csrf: &p.csrf,
                ai,
                next,
            };
            Html(page::case(&page)).into_response()
        }
        Ok(_) => Redirect::to("/").into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReadForm {
    csrf: String,
    phase: String,
    case: usize,
    label: String,
    #[serde(default)]
    bbox: String,
    /// `unaided` or `final` (absent: final).
    #[serde(default)]
    step: String,
}

/// The case the reader has open now: its phase, its number and the open step — or the page
/// that says why the form does not fit it.
#[allow(clippy::result_large_err)] // the Err is the HTTP response to send, once
fn open_case(
    app: &App,
    reader: &str,
    phase: &str,
    case: usize,
    step: &str,
) -> Result<(crate::config::Phase, usize, Step), Response> {
    let (open_phase, open_case) = match app.state(reader) {
        Ok(ReaderState::Reading { phase, case, .. }) => (app.config.phases[phase].clone(), case),
        Ok(_) => {
            return Err(problem(
                StatusCode::CONFLICT,
                "No case is open for reading now; nothing was stored.",
            ))
        }
        Err(e) => return Err(internal(e)),
    };
    let open_step = app.step(reader, &open_phase, open_case).map_err(internal)?;
    let asked = if step.is_empty() { Step::Final.as_str() } else { step };
    if phase != open_phase.name || case != open_case || asked != open_step.as_str() {
        return Err(problem(StatusCode::CONFLICT, "This case is not the one open for reading (it was already read, or the phase changed); nothing was stored."));
    }
    Ok((open_phase, open_case, open_step))
}

/// The reader who sent a reading form carrying `csrf`, or the response that refuses it: the
/// login page's answer without a session, `refusal` for an admin or a wrong token.
#[allow(clippy::result_large_err)] // the Err is the HTTP response to send, once
fn form_reader(app: &App, headers: &HeaderMap, csrf: &str, refusal: &str) -> Result<Person, Response> {
    let p = person(app, headers).ok_or_else(unauthorised)?;
    if p.admin || csrf != p.csrf {
        return Err(problem(StatusCode::FORBIDDEN, refusal));
    }
    Ok(p)
}

#[derive(Deserialize)]
pub(crate) struct EventForm {
    csrf: String,
    phase: String,
    case: usize,
    #[serde(default)]
    step: String,
    /// `drawn` (the image is on the screen), `pause` or `resume` (anything over the image, the
    /// pause veil or the key help, pauses the clock).
    event: String,
}

/// The reading clock of the open case: started when its image is drawn, stopped while the
/// reader pauses. Times come from the server's clock, not the browser's.
pub(crate) async fn event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PageForm(form): PageForm<EventForm>,
) -> Response {
    let p = match form_reader(
        &app,
        &headers,
        &form.csrf,
        "This form has expired or did not come from this workstation.",
    ) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let (phase, case, step) = match open_case(&app, &p.name, &form.phase, form.case, &form.step) {
        Ok(open) => open,
        Err(response) => return response,
    };
    let (key, at, db) = (phase.key(step), app.now(), app.db());
    let done = match form.event.as_str() {
        "drawn" => db.drawn(&p.name, &key, case, at),
        "pause" => db.pause(&p.name, &key, case, at),
        "resume" => db.resume(&p.name, &key, case, at),
        _ => return problem(StatusCode::BAD_REQUEST, "Unknown event."),
    };
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

pub(crate) async fn read(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PageForm(form): PageForm<ReadForm>,
) -> Response {
    let Some(p) = person(&app, &headers) else {
        return unauthorised();
    };
    if p.admin {
        return problem(StatusCode::FORBIDDEN, "Administrators do not read cases.");
    }
    if form.csrf != p.csrf {
        return problem(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this workstation; nothing was stored.",
        );
    }
    // A reader answers one of the paper's five labels, never "a fracture of unknown type".
    let Some(label) = form.label.parse::<Label>().ok().filter(|l| Label::ALL.contains(l)) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "That label is not one of the five; nothing was stored.",
        );
    };
    let bbox = if form.bbox.is_empty() {
        None
    } else {
        match valid_box(&form.bbox, app.cases.get(form.case).map(|c| c.size)) {
            Some(b) => Some(b),
            None => return problem(StatusCode::BAD_REQUEST, "The box must be four pixel coordinates inside the image (x0,y0,x1,y1 with x0 < x1 and y0 < y1); nothing was stored."),
        }
    };
    // Only the case the reader is shown now can be answered (no skipping, no other phase).
    let (phase, case, step) = match open_case(&app, &p.name, &form.phase, form.case, &form.step) {
        Ok(open) => open,
        Err(response) => return response,
    };
    let key = phase.key(step);
    let at = app.now();
    let db = app.db();
    // A read counts only once its image was on the reader's screen; its time is the time since
    // then, pauses excluded.
    let seconds = match db.reading(&p.name, &key, case, at) {
        Ok(Some((false, seconds))) => seconds,
        Ok(Some((true, _))) => {
            return problem(
                StatusCode::CONFLICT,
                "Reading is paused: resume it (P) before giving your read; nothing was stored.",
            )
        }
        Ok(None) => {
            return problem(
                StatusCode::CONFLICT,
                "The image of this case has not been drawn on your screen yet; nothing was stored.",
            )
        }
        Err(e) => return internal(e),
    };
    let stored = StoredRead {
        reader: p.name.clone(),
        phase: key,
        case,
        label: label.code().to_string(),
        bbox,
        seconds,
        at,
    };
    match db.insert_read(&stored) {
        Ok(true) => Redirect::to("/case").into_response(),
        // A concurrent duplicate (two tabs): the first answer stands and this one is refused.
        Ok(false) => problem(
            StatusCode::CONFLICT,
            "This case was already answered; the first answer stands.",
        ),
        Err(e) => internal(e),
    }
}

/// Seconds after a read is stored in which its reader may still take it back: the page's
/// countdown ([`page::UNDO_SECONDS`]) and time for the request to arrive.
pub const UNDO_WINDOW: f64 = page::UNDO_SECONDS as f64 + 2.0;

#[derive(Deserialize)]
pub(crate) struct UndoForm {
    csrf: String,
    phase: String,
    case: usize,
    #[serde(default)]
    step: String,
}

/// Takes back the reader's latest read within [`UNDO_WINDOW`]: the case opens again (the next
/// case's clock, started when it showed, is discarded; the undone read is kept in the
/// coordinator's `/admin/undone.csv`). The unaided read of a sequential phase cannot be undone.
pub(crate) async fn undo(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PageForm(form): PageForm<UndoForm>,
) -> Response {
    let refusal = "This form has expired or did not come from this workstation; nothing was changed.";
    let p = match form_reader(&app, &headers, &form.csrf, refusal) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(phase) = app.config.phases.iter().find(|ph| ph.name == form.phase) else {
        return problem(StatusCode::BAD_REQUEST, "No such phase; nothing was changed.");
    };
    // The unaided read of a sequential phase stands once stored: the AI is on the screen from
    // then on, and a read changed after seeing it would not be unaided.
    if phase.sequential && form.step == Step::Unaided.as_str() {
        return problem(
            StatusCode::CONFLICT,
            "The first read of a sequential phase cannot be undone: the AI has been shown since. It stands.",
        );
    }
    let key = phase.key(Step::Final);
    let undone = app
        .db()
        .undo_read(&p.name, (&key, &phase.name), form.case, app.now(), UNDO_WINDOW);
    match undone {
        Ok(true) => Redirect::to("/case").into_response(),
        Ok(false) => problem(
            StatusCode::CONFLICT,
            "Too late to undo: that read was stored more than a few seconds ago, or it is not your latest read. It stands.",
        ),
        Err(e) => internal(e),
    }
}

/// The script that shows every `<time datetime>` of a page in the reader's local time (the
/// server writes UTC; a reading room is not in UTC).
pub(crate) async fn local_time_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("local-time.js"),
    )
        .into_response()
}

/// A reader's box, `x0,y0,x1,y1` in the image's pixels: four finite numbers inside the
/// image (`size` = width, height), with x0 < x1 and y0 < y1; stored as sent.
fn valid_box(text: &str, size: Option<(u32, u32)>) -> Option<String> {
    let (width, height) = size?;
    if text.len() > 100 {
        return None;
    }
    let v: Vec<f64> = text
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()?;
    let inside = v.len() == 4
        && v.iter().all(|&x| x >= 0.0)
        && v[2] <= width as f64
        && v[3] <= height as f64
        && v[0] < v[2]
        && v[1] < v[3];
    inside.then(|| text.trim().to_string())
}

pub(crate) async fn image(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(index): UrlPath<String>,
) -> Response {
    let Some(p) = person(&app, &headers) else {
        return unauthorised();
    };
    // Cases are addressed by number only: no path from the request reaches the file system.
    let Some(number) = index.parse::<usize>().ok().filter(|&i| i < app.cases.len()) else {
        return (StatusCode::NOT_FOUND, "no such case").into_response();
    };
    // A reader gets the image of the case open for them, and of the one after it in their
    // order (the viewer fetches it ahead, so that the next case shows as soon as a read is
    // confirmed); no other case.
    if !p.admin {
        let allowed = match app.state(&p.name) {
            Ok(ReaderState::Reading { case, .. }) if case == number => Ok(true),
            Ok(ReaderState::Reading { phase, case, .. }) => {
                app.next_case(&p.name, phase, case).map(|next| next == Some(number))
            }
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        match allowed {
            Ok(true) => {}
            Ok(false) => return (StatusCode::FORBIDDEN, "not the case open for reading").into_response(),
            Err(e) => return internal(e),
        }
    }
    // Decoding (JPEG 2000 can take a while) and compressing run off the async workers.
    let path = app.cases[number].path.clone();
    let body = tokio::task::spawn_blocking(move || {
        let image = hipfrac_dicom::read_radiograph(&path).map_err(|e| e.to_string())?;
        let (values, mapping) = hipfrac_dicom::display::modality_16bit(&image);
        let windows = view::file_windows(&image, |m| mapping.to_png(m));
        let view = view::view(&values, image.width(), image.height(), windows);
        Ok::<_, String>(view::gzip(&view::encode(&view, &values)))
    })
    .await;
    let body = match body {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
