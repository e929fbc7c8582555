//! The study file (TOML): who reads, which cases, which phases, where reads are stored.

use crate::error::{ConfigProblem, StudyError};
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
    /// The sequential design (needs `ai`): each case is read first without the AI (stored as
    /// phase `NAME:unaided`), then the AI is revealed and the final read is stored.
    #[serde(default)]
    pub sequential: bool,
}

/// The longest washout a phase may ask for (ten years): `inf` would keep a phase closed for
/// ever, and a washout of years is a typing error.
pub const MAX_WASHOUT_DAYS: f64 = 3650.0;
impl Phase {
    /// The phase under which a read of `step` is stored.
    pub fn key(&self, step: Step) -> String {
        match step {
            Step::Unaided => format!("{}:unaided", self.name),
            Step::Final => self.name.clone(),
        }
    }
}

/// Which read of a case is open: in a sequential phase the unaided one first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Unaided,
    Final,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Unaided => "unaided",
            Step::Final => "final",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    pub name: String,
    /// Manifest of the cases (image, annotation, patient, site, label); relative to this file.
    pub cases: PathBuf,
    /// SQLite database of sessions and reads (created on first start); relative to this file.
    pub database: PathBuf,
    /// Model folder for the AI overlay (needed when a phase has `ai = true`). The workstation
    /// does not load it: the program that starts it does, and passes an
    /// [`AiModel`](crate::AiModel) to [`App::new`](crate::App::new).
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Seed of each reader's case order.
    #[serde(default)]
    pub seed: u64,
    pub readers: Vec<Person>,
    pub admins: Vec<Person>,
    pub phases: Vec<Phase>,
    /// Mark session cookies `Secure` (set it when the workstation is reached over HTTPS, e.g.
    /// behind a TLS proxy; a proxy's `X-Forwarded-Proto: https` does the same per request).
    #[serde(default)]
    pub secure_cookies: bool,
    /// Minutes without a request after which a login expires (default 30).
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: f64,
}

fn default_idle_minutes() -> f64 {
    30.0
}

impl StudyConfig {
    /// Reads and checks a study file; relative paths are made relative to it.
    pub fn load(path: &Path) -> Result<StudyConfig, StudyError> {
        let text = std::fs::read_to_string(path).map_err(|source| StudyError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: StudyConfig = toml::from_str(&text).map_err(|e| StudyError::ParseConfig {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.cases, &mut config.database]
            .into_iter()
            .chain(config.model.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.check().map_err(|problem| StudyError::InvalidConfig {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(config)
    }

    /// The checks of [`StudyConfig::load`].
    pub fn check(&self) -> Result<(), ConfigProblem> {
        if self.phases.is_empty() || self.readers.is_empty() || self.admins.is_empty() {
            return Err(ConfigProblem::Empty);
        }
        if self.phases.iter().any(|p| p.ai) && self.model.is_none() {
            return Err(ConfigProblem::AiWithoutModel);
        }
        let mut names: Vec<&str> = self
            .readers
            .iter()
            .chain(&self.admins)
            .map(|p| p.name.as_str())
            .collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigProblem::DuplicateName(w[0].to_string()));
        }
        if let Some(p) = self
            .readers
            .iter()
            .chain(&self.admins)
            .find(|p| argon2::PasswordHash::new(&p.password_hash).is_err())
        {
            return Err(ConfigProblem::NotArgon2Hash(p.name.clone()));
        }
        if let Some(p) = self
            .phases
            .iter()
            .find(|p| !(0.0..=MAX_WASHOUT_DAYS).contains(&p.washout_days))
        {
            return Err(ConfigProblem::NegativeWashout(p.name.clone()));
        }
        if !(self.idle_minutes.is_finite() && self.idle_minutes >= 5.0) {
            return Err(ConfigProblem::IdleMinutes(self.idle_minutes));
        }
        if let Some(p) = self.phases.iter().find(|p| p.sequential && !p.ai) {
            return Err(ConfigProblem::SequentialWithoutAi(p.name.clone()));
        }
        for (k, p) in self.phases.iter().enumerate() {
            if p.name.trim().is_empty() || p.name.contains(':') || self.phases[..k].iter().any(|q| q.name == p.name) {
                return Err(ConfigProblem::BadPhaseName(p.name.clone()));
            }
        }
        Ok(())
    }
}

/// An argon2id hash of `password` in PHC form.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt_bytes = [0u8; 16];
    getrandom::getrandom(&mut salt_bytes).expect("the OS random source");
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

/// Whether `password` matches the PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}
