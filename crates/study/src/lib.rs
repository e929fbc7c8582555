//! hipfrac-study: the reading workstation of a reader study (`hipfrac study serve`).
//!
//! Readers log in (argon2-hashed passwords, session cookies that are HttpOnly,
//! SameSite=Strict and last 12 hours, a CSRF token in every form), read the cases of their current phase in
//! their own random order, and pick one of the five labels (optionally drawing a box). Each
//! read is committed to SQLite (WAL, synchronous=FULL) before the next case is shown. A phase
//! opens only after the previous one is finished and its washout has passed. The AI's boxes,
//! types and confidence appear only in phases with `ai = true`. Pages never show patient
//! names or IDs: cases are numbered. Admins see progress and export the reads as the CSV that
//! `hipfrac study report` reads.
//!
//! Hardening: every response carries a Content-Security-Policy (no inline script; no
//! framing), nosniff and a same-origin referrer policy; cross-site POSTs are refused (the login form included);
//! failed logins are throttled per address and lock a name after ten in a row until an admin
//! unlocks it; session tokens are stored hashed in a database only its owner can read;
//! cookies are `Secure` with `secure_cookies = true` or behind a TLS proxy; a reader's box
//! must be four finite pixels inside the image.
//!
//! The workstation links no libtorch: the program that starts it loads the model and passes
//! an [`AiModel`] (operating points and a batch predictor) to [`App::new`].

pub mod ai;
mod app;
pub mod config;
pub mod db;
pub mod error;
mod guard;
mod page;
mod reading;
pub mod server;
pub mod view;

pub use ai::{AiModel, AiOverlay, PredictFn};
pub use app::{App, Case};
pub use config::{hash_password, verify_password, StudyConfig};
pub use error::{ConfigProblem, StudyError};
