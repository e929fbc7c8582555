//! The study file (TOML): who reads, which cases, which phases, where reads are stored.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One reader (or administrator) and their password, stored only as an argon2 hash
/// (`hipfrac study hash-password`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub password_hash: String,
}

/// One reading phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    /// Whether the AI's boxes, types and confidence are shown.
    #[serde(default)]
    pub ai: bool,
    /// Days a reader must wait after finishing the previous phase (0 for the first).
    #[serde(default)]
    pub washout_days: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    pub name: String,
    /// Manifest of the cases (image, annotation, patient, site, label); relative to this file.
    pub cases: PathBuf,
    /// SQLite database of sessions and reads (created on first start); relative to this file.
    pub database: PathBuf,
    /// Model folder for the AI overlay (needed when a phase has `ai = true`).
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Seed of each reader's case order.
    #[serde(default)]
    pub seed: u64,
    pub readers: Vec<Person>,
    pub admins: Vec<Person>,
    pub phases: Vec<Phase>,
}

impl StudyConfig {
    /// Reads and checks a study file; relative paths are made relative to it.
    pub fn load(path: &Path) -> Result<StudyConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config: StudyConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.cases, &mut config.database] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(m) = config.model.as_mut() {
            if m.is_relative() {
                *m = base.join(&*m);
            }
        }
        let fail = |m: String| format!("{}: {m}", path.display());
        if config.phases.is_empty() || config.readers.is_empty() || config.admins.is_empty() {
            return Err(fail("a study needs at least one phase, one reader and one admin".into()));
        }
        if config.phases.iter().any(|p| p.ai) && config.model.is_none() {
            return Err(fail("a phase shows the AI but no model is given".into()));
        }
        let mut names: Vec<&str> = config.readers.iter().chain(&config.admins).map(|p| p.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(fail("reader and admin names must be unique".into()));
        }
        for p in config.readers.iter().chain(&config.admins) {
            if argon2::PasswordHash::new(&p.password_hash).is_err() {
                return Err(fail(format!("{}: password_hash is not an argon2 hash (make one with `hipfrac study hash-password`)", p.name)));
            }
        }
        if config.phases.iter().any(|p| !(p.washout_days >= 0.0)) {
            return Err(fail("washout_days must be ≥ 0".into()));
        }
        Ok(config)
    }
}

/// An argon2id hash of `password` in PHC form.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt_bytes = [0u8; 16];
    getrandom::getrandom(&mut salt_bytes).expect("the OS random source");
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a salt");
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}
