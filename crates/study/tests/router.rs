//! The workstation's router, in process (no socket): logins, CSRF, phases and the AI
//! overlay, washout, the admin export.

mod support;

use axum::http::StatusCode;
use hipfrac_core::{FractureClass, OperatingPoints, Prediction, Radiograph};
use hipfrac_study::{AiModel, App, StudyConfig};
use std::sync::Arc;
use support::*;

#[tokio::test]
async fn login_needs_the_right_password() {
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(temp.path(), 2, "[{ name = \"I\" }]");
    // The login page escapes the study's name.
    let page = send(&app, "GET", "/login", None, None).await;
    assert!(
        page.body.contains("Hip &lt;study&gt; &amp; co") && !page.body.contains(STUDY_NAME),
        "{}",
        page.body
    );

    let ok = send(&app, "POST", "/login", None, Some("name=alice&password=alice-password")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), Some("/"));
    let set = ok.header("set-cookie").expect("a session cookie");
    assert!(
        set.starts_with("hipfrac_session=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let home = send(&app, "GET", "/", Some(&ok.cookie()), None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Phase I — case 1 of 2."), "{}", home.body);

    let admin = send(&app, "POST", "/login", None, Some("name=admin&password=admin-password")).await;
    assert_eq!(
        (admin.status, admin.header("location")),
        (StatusCode::SEE_OTHER, Some("/admin"))
    );

    for form in [
        "name=alice&password=wrong",
        "name=alice&password=bob-password",
        "name=nobody&password=alice-password",
    ] {
        let refused = send(&app, "POST", "/login", None, Some(form)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{form}");
        assert!(refused.header("set-cookie").is_none(), "{form}");
        assert!(refused.body.contains("Unknown name or wrong password."));
    }
    // No session, or a forged one: back to the login page, and no image.
    for cookie in [None, Some("hipfrac_session=forged")] {
        assert_eq!(
            send(&app, "GET", "/", cookie, None).await.header("location"),
            Some("/login")
        );
        assert_eq!(
            send(&app, "GET", "/image/0", cookie, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn reads_need_the_right_csrf_token_and_are_stored_once() {
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(temp.path(), 2, "[{ name = \"I\" }]");
    let alice = login(&app, "alice", "alice-password").await;
    let (_, csrf, phase, case) = open_case(&app, &alice).await;
    let bob = login(&app, "bob", "bob-password").await;
    let (_, bob_csrf, _, _) = open_case(&app, &bob).await;
    assert_ne!(csrf, bob_csrf);
    for token in [None, Some("forged"), Some(""), Some(bob_csrf.as_str())] {
        let form = match token {
            None => format!("phase={phase}&case={case}&label=DF&bbox="),
            Some(t) => format!("csrf={t}&phase={phase}&case={case}&label=DF&bbox="),
        };
        let reply = send(&app, "POST", "/read", Some(&alice), Some(&form)).await;
        assert!(reply.status.is_client_error(), "{token:?}: {}", reply.status);
    }
    assert!(exported_rows(&app).await.is_empty(), "a refused read was stored");
    // The page's own token is accepted and the read stored.
    let form = format!("csrf={csrf}&phase={phase}&case={case}&label=DF&bbox=");
    let reply = send(&app, "POST", "/read", Some(&alice), Some(&form)).await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (StatusCode::SEE_OTHER, Some("/case"))
    );
    let rows = exported_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][..4],
        [
            "alice".to_string(),
            phase.clone(),
            format!("case{case}.png"),
            "DF".into()
        ]
    );
    // A second answer to the same case is a conflict; the first answer stands.
    let again = send(
        &app,
        "POST",
        "/read",
        Some(&alice),
        Some(&form.replace("label=DF", "label=SF")),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let rows = exported_rows(&app).await;
    assert_eq!((rows.len(), rows[0][3].as_str()), (1, "DF"));
    // An admin's session cannot read, even with its own token.
    let admin = login(&app, "admin", "admin-password").await;
    assert_eq!(
        send(&app, "GET", "/case", Some(&admin), None).await.header("location"),
        Some("/admin")
    );
}

#[tokio::test]
async fn the_ai_overlay_appears_only_in_ai_phases() {
    let temp = tempfile::tempdir().unwrap();
    let config = StudyConfig::load(&write_study(
        temp.path(),
        2,
        "[{ name = \"I\" }, { name = \"III\", ai = true }, { name = \"IV\" }]",
    ))
    .unwrap();
    let points = OperatingPoints::uncalibrated();
    let mut predicted = 0;
    let mut predict = |images: &[Radiograph]| -> Vec<Result<Prediction, Box<dyn std::error::Error + Send + Sync>>> {
        predicted += images.len();
        images.iter().map(|i| Ok(fixed_prediction(i))).collect()
    };
    let app = Arc::new(
        App::new(
            config,
            Some(AiModel {
                points: &points,
                predict: &mut predict,
            }),
        )
        .unwrap(),
    );
    assert_eq!(predicted, 2, "every case predicted once at start");
    let alice = login(&app, "alice", "alice-password").await;
    let summary = "AI: likely fracture</b><p id=\"ai-detail\">DF — displaced femoral-neck fracture, score 0.75</p>";
    let shown_box = r#"{"bbox":[11.0,2.0,17.0,6.0],"class":"DF","score":0.75}"#;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let (page, phase, _) = read_open_case(&app, &alice, "SF", "").await;
        let overlay = page.contains("id=\"ai-overlay\"");
        // In an AI phase: the verdict line and the shown box; elsewhere not a trace of the AI.
        assert_eq!(overlay, page.contains(summary), "{page}");
        assert_eq!(overlay, page.contains(&format!("\"boxes\":[{shown_box}]")), "{page}");
        if !overlay {
            assert!(
                page.contains("\"boxes\":[]") && !page.contains("0.75") && !page.contains("score"),
                "{page}"
            );
        }
        // The box below its class's suspicious threshold is never shown.
        assert!(!page.contains("0.0625") && !page.contains("\"UF\",\"score\""), "{page}");
        // The class colours come from the one palette.
        for class in FractureClass::ALL {
            assert!(
                page.contains(&format!(
                    "\"{}\":{{\"colour\":\"{}\"",
                    class.code(),
                    hipfrac_imaging::css_colour(class)
                )),
                "{page}"
            );
        }
        seen.push((phase, overlay));
    }
    let expected: Vec<(String, bool)> = [
        ("I", false),
        ("I", false),
        ("III", true),
        ("III", true),
        ("IV", false),
        ("IV", false),
    ]
    .map(|(p, o)| (p.to_string(), o))
    .to_vec();
    assert_eq!(seen, expected);
    assert!(send(&app, "GET", "/", Some(&alice), None)
        .await
        .body
        .contains("All phases read."));
}

#[tokio::test]
async fn washout_holds_the_next_phase() {
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(
        temp.path(),
        2,
        "[{ name = \"I\" }, { name = \"II\", washout_days = 14 }]",
    );
    let alice = login(&app, "alice", "alice-password").await;
    let (_, csrf, _, _) = open_case(&app, &alice).await;
    for _ in 0..2 {
        let (_, phase, _) = read_open_case(&app, &alice, "VF", "").await;
        assert_eq!(phase, "I");
    }
    // Phase II is not served: the case page sends the reader home, which says why.
    let case = send(&app, "GET", "/case", Some(&alice), None).await;
    assert_eq!(
        (case.status, case.header("location")),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    let home = send(&app, "GET", "/", Some(&alice), None).await.body;
    assert!(
        home.contains("Phase II opens after the washout, in 14.0 days: on <span id=\"opens\"><time datetime=\""),
        "{home}"
    );
    assert!(
        home.contains("http-equiv=\"refresh\"") && home.contains("id=\"logout\""),
        "{home}"
    );
    let opens = home
        .split("datetime=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // ISO 8601 in UTC for the page's script, which shows it in the reader's local time.
    assert!(opens.len() == 20 && opens.ends_with('Z'), "{opens}");
    assert!(home.contains("<script src=\"/local-time.js\">"), "{home}");
    // The admin sees each reader's status, last read and median time.
    let admin = login(&app, "admin", "admin-password").await;
    let page = send(&app, "GET", "/admin", Some(&admin), None).await.body;
    assert!(
        page.contains(&format!("washout: phase II opens <time datetime=\"{opens}\">"))
            && page.contains("reading phase I")
            && page.contains("id=\"logout\""),
        "{page}"
    );
    // Nor can any of its cases be answered directly.
    for case in 0..2 {
        let reply = send(
            &app,
            "POST",
            "/read",
            Some(&alice),
            Some(&format!("csrf={csrf}&phase=II&case={case}&label=DF&bbox=")),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CONFLICT);
    }
    assert_eq!(exported_rows(&app).await.len(), 2);
    // Bob, who has not finished phase I, is still served phase I.
    let (_, _, phase, _) = open_case(&app, &login(&app, "bob", "bob-password").await).await;
    assert_eq!(phase, "I");
}

#[tokio::test]
async fn the_admin_exports_the_reads_and_readers_cannot() {
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(temp.path(), 3, "[{ name = \"I\" }]");
    let alice = login(&app, "alice", "alice-password").await;
    let mut read = Vec::new();
    for (label, bbox) in [("DF", "1,2,5,6"), ("none", ""), ("UF", "")] {
        let (_, phase, case) = read_open_case(&app, &alice, label, bbox).await;
        read.push((phase, format!("case{case}.png"), label.to_string(), bbox.to_string()));
    }
    let bob = login(&app, "bob", "bob-password").await;
    read_open_case(&app, &bob, "SF", "").await;
    let rows = exported_rows(&app).await;
    assert_eq!(rows.len(), 4);
    let mut alices: Vec<(String, String, String, String)> = rows
        .iter()
        .filter(|r| r[0] == "alice")
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone(), r[5].clone()))
        .collect();
    alices.sort();
    read.sort();
    assert_eq!(alices, read);
    assert!(rows.iter().any(|r| r[0] == "bob" && r[3] == "SF"));
    // Seconds, an ISO 8601 UTC time, the case number.
    assert!(
        rows.iter().all(|r| r[4].parse::<f64>().is_ok_and(|s| s >= 0.0)
            && r[6].len() == 24
            && r[6].ends_with('Z')
            && r[6].as_bytes()[10] == b'T'
            && r[7].parse::<usize>().is_ok()),
        "{rows:?}"
    );
    // The export and the progress page are the admin's only; no patient data anywhere.
    let admin = login(&app, "admin", "admin-password").await;
    let export = send(&app, "GET", "/admin/reads.csv", Some(&admin), None).await;
    assert_eq!(export.header("content-type"), Some("text/csv"));
    assert!(!export.body.contains("PATIENT") && !export.body.contains("Secret Hospital"));
    let progress = send(&app, "GET", "/admin", Some(&admin), None).await;
    assert!(
        progress.body.contains("<td>alice</td><td>3 / 3</td>") && progress.body.contains("<td>bob</td><td>1 / 3</td>"),
        "{}",
        progress.body
    );
    for path in ["/admin/reads.csv", "/admin"] {
        let refused = send(&app, "GET", path, Some(&alice), None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!refused.body.contains("alice,"), "{path}");
    }
    assert_eq!(
        send(&app, "GET", "/admin/reads.csv", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The coordinator's case table: each case id with the manifest's image and label, joining
/// reads.csv on `case_id` and `case`; a formula-leading file name is neutralised as in every
/// CSV hipfrac writes; readers cannot have it.
#[tokio::test]
async fn the_admin_exports_the_case_table() {
    let temp = tempfile::tempdir().unwrap();
    let study = write_study(temp.path(), 3, "[{ name = \"I\" }]");
    let cases = temp.path().join("cases");
    std::fs::rename(cases.join("case2.png"), cases.join("=1+2.png")).unwrap();
    let manifest = std::fs::read_to_string(cases.join("manifest.csv"))
        .unwrap()
        .replace("case2.png", "=1+2.png");
    std::fs::write(cases.join("manifest.csv"), manifest).unwrap();
    let app = Arc::new(App::new(StudyConfig::load(&study).unwrap(), None).unwrap());
    let admin = login(&app, "admin", "admin-password").await;
    let table = send(&app, "GET", "/admin/cases.csv", Some(&admin), None).await;
    assert_eq!(
        (table.status, table.header("content-type")),
        (StatusCode::OK, Some("text/csv"))
    );
    assert_eq!(
        table.body,
        "case_id,case,label\n0,case0.png,DF\n1,case1.png,none\n2,'=1+2.png,DF\n"
    );
    assert!(!table.body.contains("PATIENT") && !table.body.contains("Secret Hospital"));
    let progress = send(&app, "GET", "/admin", Some(&admin), None).await;
    assert!(progress.body.contains("href=\"/admin/cases.csv\""), "{}", progress.body);
    // Every read names a case the table holds, with the same id and image.
    let alice = login(&app, "alice", "alice-password").await;
    for label in ["DF", "none", "UF"] {
        read_open_case(&app, &alice, label, "").await;
    }
    let rows: Vec<String> = table.body.lines().skip(1).map(str::to_string).collect();
    let reads = exported_rows(&app).await;
    assert_eq!(reads.len(), 3);
    // (Both files neutralise the same way: the cells are compared as written.)
    for read in &reads {
        assert!(
            rows.iter()
                .any(|row| row.starts_with(&format!("{},{},", read[7], read[2]))),
            "{read:?} not in {rows:?}"
        );
    }
    assert_eq!(
        send(&app, "GET", "/admin/cases.csv", Some(&alice), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, "GET", "/admin/cases.csv", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A form without its fields gets a page that says so (and stores nothing), not the form
/// parser's message.
#[tokio::test]
async fn an_incomplete_form_gets_a_plain_page() {
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(temp.path(), 2, "[{ name = \"I\" }]");
    let alice = login(&app, "alice", "alice-password").await;
    for (path, form) in [
        ("/read", "phase=I&case=0&label=DF"),
        ("/login", "name=alice"),
        ("/logout", ""),
    ] {
        let reply = send(&app, "POST", path, Some(&alice), Some(form)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            reply.body.contains("incomplete or altered") && !reply.body.contains("deserialize"),
            "{path}: {}",
            reply.body
        );
    }
    // A stale or foreign submit gets a page with the way back, not plain text.
    let reply = send(
        &app,
        "POST",
        "/read",
        Some(&alice),
        Some("csrf=forged&phase=I&case=0&label=DF&bbox="),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply.body.contains("<h1>Not stored</h1>") && reply.body.contains("href=\"/\""),
        "{}",
        reply.body
    );
    assert_eq!(exported_rows(&app).await.len(), 0);
}

/// The reading time runs from the image being drawn on the reader's screen to the reader's
/// confirmation, by the server's clock, with pauses left out; a read before the image was
/// drawn, or while paused, is refused.
#[tokio::test]
async fn reading_time_starts_when_drawn_and_excludes_pauses() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let temp = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1_000));
    let tick = clock.clone();
    let config = StudyConfig::load(&write_study(temp.path(), 2, "[{ name = \"I\" }]")).unwrap();
    let app = Arc::new(
        App::new(config, None)
            .unwrap()
            .with_clock(move || tick.load(Ordering::SeqCst) as f64),
    );
    let alice = login(&app, "alice", "alice-password").await;
    let (_, csrf, phase, case, step) = case_page(&app, &alice).await;
    let form = format!("csrf={csrf}&phase={phase}&case={case}&label=DF&bbox=&step={step}");
    let early = send(&app, "POST", "/read", Some(&alice), Some(&form)).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert!(
        early.body.contains("has not been drawn") && early.body.contains("id=\"back\""),
        "{}",
        early.body
    );
    let event = |at: u64, what: &'static str| {
        clock.store(at, Ordering::SeqCst);
        let (app, alice, csrf, phase, case, step) = (
            app.clone(),
            alice.clone(),
            csrf.clone(),
            phase.clone(),
            case.clone(),
            step.clone(),
        );
        async move {
            clock_event(&app, &alice, &csrf, &phase, &case, &step, what)
                .await
                .status
        }
    };
    assert_eq!(event(1_000, "drawn").await, StatusCode::NO_CONTENT);
    assert_eq!(event(1_010, "pause").await, StatusCode::NO_CONTENT);
    assert_eq!(
        event(1_020, "pause").await,
        StatusCode::NO_CONTENT,
        "a second pause changes nothing"
    );
    assert_eq!(event(1_050, "resume").await, StatusCode::NO_CONTENT);
    assert_eq!(
        event(1_052, "drawn").await,
        StatusCode::NO_CONTENT,
        "a redraw does not restart the clock"
    );
    assert_eq!(event(1_055, "pause").await, StatusCode::NO_CONTENT);
    assert_eq!(event(1_055, "dance").await, StatusCode::BAD_REQUEST);
    // No read while paused.
    clock.store(1_060, Ordering::SeqCst);
    let paused = send(&app, "POST", "/read", Some(&alice), Some(&form)).await;
    assert_eq!(paused.status, StatusCode::CONFLICT);
    assert!(paused.body.contains("paused"), "{}", paused.body);
    assert_eq!(event(1_070, "resume").await, StatusCode::NO_CONTENT);
    // Confirmed: the time ends when the read is stored. 72 s since drawn, 40 + 15 s paused.
    clock.store(1_072, Ordering::SeqCst);
    let reply = send(&app, "POST", "/read", Some(&alice), Some(&form)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let rows = exported_rows(&app).await;
    assert_eq!((rows[0][1].as_str(), rows[0][4].as_str()), ("I", "17.0"));
    // Events for a case that is not open are refused.
    let stale = clock_event(&app, &alice, &csrf, &phase, &case, &step, "drawn").await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
}

/// A sequential phase records the unaided read first, then shows the AI and records the final
/// read; both are exported (the first as PHASE:unaided), and neither can be skipped.
#[tokio::test]
async fn a_sequential_phase_stores_the_unaided_read_before_showing_the_ai() {
    let temp = tempfile::tempdir().unwrap();
    let app = ai_study(temp.path(), 1, "[{ name = \"III\", ai = true, sequential = true }]");
    let alice = login(&app, "alice", "alice-password").await;
    let (first, csrf, phase, case) = open_case(&app, &alice).await;
    assert!(
        !first.contains("id=\"ai-overlay\"")
            && first.contains("\"boxes\":[]")
            && first.contains("name=\"step\" value=\"unaided\""),
        "{first}"
    );
    // The final read cannot come first.
    let skip = send(
        &app,
        "POST",
        "/read",
        Some(&alice),
        Some(&format!(
            "csrf={csrf}&phase={phase}&case={case}&label=DF&bbox=&step=final"
        )),
    )
    .await;
    assert_eq!(skip.status, StatusCode::CONFLICT);
    let (_, _, _) = read_open_case(&app, &alice, "none", "").await;
    let (second, _, _, _) = open_case(&app, &alice).await;
    assert!(
        second.contains("id=\"ai-overlay\"")
            && second.contains("name=\"step\" value=\"final\"")
            && second.contains("\"class\":\"DF\""),
        "{second}"
    );
    let again = send(
        &app,
        "POST",
        "/read",
        Some(&alice),
        Some(&format!(
            "csrf={csrf}&phase={phase}&case={case}&label=SF&bbox=&step=unaided"
        )),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "the unaided read is not changed after the AI was shown"
    );
    read_open_case(&app, &alice, "DF", "1,1,5,5").await;
    let rows = exported_rows(&app).await;
    let got: Vec<(&str, &str)> = rows.iter().map(|r| (r[1].as_str(), r[3].as_str())).collect();
    assert_eq!(got, [("III:unaided", "none"), ("III", "DF")]);
    // A sequential phase without the AI is refused at start.
    let bad = StudyConfig::load(&write_study(
        &temp.path().join("bad"),
        1,
        "[{ name = \"I\", sequential = true }]",
    ));
    assert!(bad.unwrap_err().to_string().contains("sequential needs ai = true"));
}

/// A login ends after `idle_minutes` without a request (default 30); each request keeps it
/// alive. The page that says so leads back to the login.
#[tokio::test]
async fn a_login_ends_after_idle_minutes() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let temp = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(1_000_000));
    let tick = clock.clone();
    let config = StudyConfig::load(&write_study(temp.path(), 2, "[{ name = \"I\" }]")).unwrap();
    assert_eq!(config.idle_minutes, 30.0);
    let app = Arc::new(
        App::new(config, None)
            .unwrap()
            .with_clock(move || tick.load(Ordering::SeqCst) as f64),
    );
    let alice = login(&app, "alice", "alice-password").await;
    for minutes in [20, 45, 70] {
        clock.store(1_000_000 + minutes * 60, Ordering::SeqCst);
        assert_eq!(
            send(&app, "GET", "/", Some(&alice), None).await.status,
            StatusCode::OK,
            "active at {minutes} min"
        );
    }
    clock.store(1_000_000 + 101 * 60, Ordering::SeqCst);
    assert_eq!(
        send(&app, "GET", "/", Some(&alice), None).await.header("location"),
        Some("/login"),
        "31 idle minutes"
    );
    let image = send(&app, "GET", "/image/0", Some(&alice), None).await;
    assert_eq!(image.status, StatusCode::UNAUTHORIZED);
    assert!(image.body.contains("id=\"login-again\""), "{}", image.body);
}

/// A confirmed read is stored at once and the next case opens; within the undo window the
/// reader takes the read back and is on that case again (the next case's clock discarded);
/// after the window, or for a read that is not the latest, the read stands. Undoing the last
/// read of a phase reopens the phase.
#[tokio::test]
async fn a_read_can_be_taken_back_within_the_undo_window_only() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let temp = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(5_000));
    let tick = clock.clone();
    let config = StudyConfig::load(&write_study(temp.path(), 3, "[{ name = \"I\" }]")).unwrap();
    let app = Arc::new(
        App::new(config, None)
            .unwrap()
            .with_clock(move || tick.load(Ordering::SeqCst) as f64),
    );
    let alice = login(&app, "alice", "alice-password").await;
    let undo = |csrf: &str, case: &str| format!("csrf={csrf}&phase=I&case={case}&step=final");
    // Case A, drawn at 5 000, read at 5 010; case B shows (drawn at 5 011).
    let (_, csrf, _, first) = open_case(&app, &alice).await;
    clock.store(5_010, Ordering::SeqCst);
    let form = format!("csrf={csrf}&phase=I&case={first}&label=none&bbox=&step=final");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&form)).await.status,
        StatusCode::SEE_OTHER
    );
    clock.store(5_011, Ordering::SeqCst);
    let (_, _, _, second) = open_case(&app, &alice).await;
    assert_ne!(first, second);
    // A wrong token changes nothing; an undo 2 s after the read takes it back.
    clock.store(5_012, Ordering::SeqCst);
    let forged = send(&app, "POST", "/undo", Some(&alice), Some(&undo("forged", &first))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let back = send(&app, "POST", "/undo", Some(&alice), Some(&undo(&csrf, &first))).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert!(exported_rows(&app).await.is_empty());
    let (_, _, _, again, _) = case_page(&app, &alice).await;
    assert_eq!(again, first, "the undone case is open again");
    // Its clock went on from its first drawing: read at 5 020, 20 s.
    clock.store(5_020, Ordering::SeqCst);
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&form)).await.status,
        StatusCode::SEE_OTHER
    );
    // Case B's clock started anew when it showed again (drawn at 5 021, read at 5 023: 2 s).
    clock.store(5_021, Ordering::SeqCst);
    let (_, _, _, shown) = open_case(&app, &alice).await;
    assert_eq!(shown, second);
    clock.store(5_023, Ordering::SeqCst);
    let read_b = format!("csrf={csrf}&phase=I&case={second}&label=none&bbox=&step=final");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&read_b)).await.status,
        StatusCode::SEE_OTHER
    );
    let rows = exported_rows(&app).await;
    let seconds: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(seconds, ["20.0", "2.0"]);
    // Case A, read 4 s ago (inside the window), is not the latest read any more: refused.
    clock.store(5_024, Ordering::SeqCst);
    let not_latest = send(&app, "POST", "/undo", Some(&alice), Some(&undo(&csrf, &first))).await;
    assert_eq!(not_latest.status, StatusCode::CONFLICT);
    // Bob cannot take back alice's read of 1 s ago.
    let bob = login(&app, "bob", "bob-password").await;
    let (_, bob_csrf, _, _, _) = case_page(&app, &bob).await;
    let theirs = send(&app, "POST", "/undo", Some(&bob), Some(&undo(&bob_csrf, &second))).await;
    assert_eq!(theirs.status, StatusCode::CONFLICT);
    assert_eq!(exported_rows(&app).await.len(), 2);
    // Case B's undo 6 s after its read comes too late.
    clock.store(5_029, Ordering::SeqCst);
    let late = send(&app, "POST", "/undo", Some(&alice), Some(&undo(&csrf, &second))).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(late.body.contains("Too late to undo"), "{}", late.body);
    assert_eq!(exported_rows(&app).await.len(), 2);
    // The last case of the phase: read, the phase is done; undone, the phase is open again.
    let (_, _, _, third) = open_case(&app, &alice).await;
    clock.store(5_030, Ordering::SeqCst);
    let read_c = format!("csrf={csrf}&phase=I&case={third}&label=DF&bbox=&step=final");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&read_c)).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(send(&app, "GET", "/", Some(&alice), None)
        .await
        .body
        .contains("All phases read."));
    let reopened = send(&app, "POST", "/undo", Some(&alice), Some(&undo(&csrf, &third))).await;
    assert_eq!(reopened.status, StatusCode::SEE_OTHER, "{}", reopened.body);
    let home = send(&app, "GET", "/", Some(&alice), None).await.body;
    assert!(home.contains("case 3 of 3"), "{home}");
    // Nothing answered is lost: the coordinator's undone.csv holds both undone reads.
    let admin = login(&app, "admin", "admin-password").await;
    let undone = send(&app, "GET", "/admin/undone.csv", Some(&admin), None).await;
    assert_eq!(undone.status, StatusCode::OK);
    let rows: Vec<&str> = undone.body.lines().collect();
    assert_eq!(rows[0], "reader,phase,case,label,seconds,bbox,at,case_id,undone_at");
    assert_eq!(rows.len(), 3, "{}", undone.body);
    assert!(
        rows[1].starts_with("alice,I,") && rows[1].contains(",none,10.0,"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("alice,I,") && rows[2].contains(",DF,"),
        "{}",
        rows[2]
    );
    let refused = send(&app, "GET", "/admin/undone.csv", Some(&alice), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

/// In a sequential phase the unaided read cannot be undone: once it is stored the AI is on the
/// screen, and a changed read would no longer be unaided.
#[tokio::test]
async fn the_unaided_read_of_a_sequential_phase_cannot_be_undone() {
    let temp = tempfile::tempdir().unwrap();
    let app = ai_study(temp.path(), 2, "[{ name = \"III\", ai = true, sequential = true }]");
    let alice = login(&app, "alice", "alice-password").await;
    let (_, csrf, _, case) = open_case(&app, &alice).await;
    let form = format!("csrf={csrf}&phase=III&case={case}&label=none&bbox=&step=unaided");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&form)).await.status,
        StatusCode::SEE_OTHER
    );
    let undo = format!("csrf={csrf}&phase=III&case={case}&step=unaided");
    let refused = send(&app, "POST", "/undo", Some(&alice), Some(&undo)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("cannot be undone"), "{}", refused.body);
    // The final read of the same case is what is open, with the AI.
    let (page, _, _, open, step) = case_page(&app, &alice).await;
    assert_eq!((open.as_str(), step.as_str()), (case.as_str(), "final"));
    assert!(page.contains("id=\"ai-overlay\""));
    assert_eq!(exported_rows(&app).await.len(), 1);
    // Nor can the read before it (here: none in this phase) be reached past the unaided one.
    let earlier = format!("csrf={csrf}&phase=III&case={case}&step=final");
    assert_eq!(
        send(&app, "POST", "/undo", Some(&alice), Some(&earlier)).await.status,
        StatusCode::CONFLICT
    );
}

/// A read of an earlier phase cannot be undone once a read of the next phase is stored, even
/// within the window (the undo of the client's previous page).
#[tokio::test]
async fn an_earlier_phase_read_cannot_be_undone_past_a_later_read() {
    let temp = tempfile::tempdir().unwrap();
    let app = ai_study(
        temp.path(),
        1,
        "[{ name = \"I\" }, { name = \"III\", ai = true, sequential = true }]",
    );
    let alice = login(&app, "alice", "alice-password").await;
    let (_, csrf, _, case) = open_case(&app, &alice).await;
    let read = format!("csrf={csrf}&phase=I&case={case}&label=none&bbox=&step=final");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&read)).await.status,
        StatusCode::SEE_OTHER
    );
    let (_, _, phase, case3) = open_case(&app, &alice).await;
    assert_eq!(phase, "III");
    let unaided = format!("csrf={csrf}&phase=III&case={case3}&label=none&bbox=&step=unaided");
    assert_eq!(
        send(&app, "POST", "/read", Some(&alice), Some(&unaided)).await.status,
        StatusCode::SEE_OTHER
    );
    let undo = format!("csrf={csrf}&phase=I&case={case}&step=final");
    let refused = send(&app, "POST", "/undo", Some(&alice), Some(&undo)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(exported_rows(&app).await.len(), 2);
}

/// The image of the open case, and of the next one in the reader's order (fetched ahead), and
/// no other: gzip-compressed, `HFV1`, the view (field, presets) and each row's differences.
#[tokio::test]
async fn the_open_and_the_next_image_are_served_compressed_with_their_view() {
    use std::io::Read as _;
    let temp = tempfile::tempdir().unwrap();
    let app = plain_study(temp.path(), 4, "[{ name = \"I\" }]");
    let alice = login(&app, "alice", "alice-password").await;
    let (page, _, _, case, _) = case_page(&app, &alice).await;
    let next = attribute(&page, "\"next\":");
    let next: usize = next.split(',').next().unwrap().parse().unwrap();
    let case: usize = case.parse().unwrap();
    assert_ne!(next, case);
    for number in [case, next] {
        let reply = send(&app, "GET", &format!("/image/{number}"), Some(&alice), None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-encoding"), Some("gzip"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(&reply.bytes[..])
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(&body[..4], b"HFV1");
        let n = u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize;
        let view: serde_json::Value = serde_json::from_slice(&body[8..8 + n]).unwrap();
        // Case i is 10 + i pixels wide and 8 high (support::write_study).
        assert_eq!(view["width"], 10 + number as u64);
        assert_eq!(view["height"], 8);
        assert_eq!(body.len() - 8 - n, 2 * (10 + number) * 8);
        assert_eq!(
            view["presets"].as_array().unwrap().last().unwrap()["name"],
            "full range"
        );
    }
    let others: Vec<usize> = (0..4).filter(|&c| c != case && c != next).collect();
    for other in others {
        let reply = send(&app, "GET", &format!("/image/{other}"), Some(&alice), None).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "case {other}");
    }
}
