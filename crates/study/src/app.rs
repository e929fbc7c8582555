//! A running study: its cases (with the AI's overlays), its database and where each reader
//! stands.

use crate::ai::{AiModel, AiOverlay};
use crate::config::{Step, StudyConfig};
use crate::db::{now, Db};
use crate::error::StudyError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Mutex;

/// One case: where its image is and how the reads export names it.
pub struct Case {
    /// The manifest's `image` value (the case's name in the reads CSV).
    pub name: String,
    pub path: PathBuf,
    /// The manifest's label (the truth; only the coordinator's case table shows it).
    pub label: hipfrac_core::Label,
    /// Width and height in pixels (from the header): a reader's box must lie inside.
    pub size: (u32, u32),
    /// The AI's overlay (only shown in AI phases; none when no phase shows the AI).
    pub ai: Option<AiOverlay>,
}

pub struct App {
    pub config: StudyConfig,
    pub cases: Vec<Case>,
    db: Mutex<Db>,
    /// Seconds since the epoch: the reading times' clock (a test can set its own).
    clock: Box<dyn Fn() -> f64 + Send + Sync>,
}

/// Where a reader stands.
pub(crate) enum ReaderState {
    Reading { phase: usize, case: usize, position: usize },
    Waiting { phase: usize, opens: f64 },
    Finished,
}

/// Width and height from the file's header (no pixels decoded).
fn image_size(path: &std::path::Path) -> hipfrac_dicom::Result<(u32, u32)> {
    hipfrac_dicom::read_image_size(path)
}

impl App {
    /// Lists the cases (every image must exist), predicts every case once with `ai` when a
    /// phase shows the AI (an error when `ai` is None then), and opens the database.
    pub fn new(config: StudyConfig, ai: Option<AiModel<'_>>) -> Result<App, StudyError> {
        let rows = hipfrac_data::manifest::read(&config.cases).map_err(|source| StudyError::Manifest {
            path: config.cases.clone(),
            source: Box::new(source),
        })?;
        if rows.is_empty() {
            return Err(StudyError::NoCases {
                path: config.cases.clone(),
            });
        }
        let base = config.cases.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let mut cases = Vec::with_capacity(rows.len());
        for row in &rows {
            let path = base.join(&row.image);
            // Every image must be there and readable before the first reader arrives.
            if !path.is_file() {
                return Err(StudyError::MissingImage {
                    manifest: config.cases.clone(),
                    image: path,
                });
            }
            let size = image_size(&path).map_err(|source| StudyError::ReadImage {
                path: path.clone(),
                source: Box::new(source),
            })?;
            cases.push(Case {
                name: row.image.clone(),
                path,
                label: row.label,
                size,
                ai: None,
            });
        }
        if let Some(phase) = config.phases.iter().find(|p| p.ai) {
            let ai = ai.ok_or_else(|| StudyError::NoModel {
                study: config.name.clone(),
                phase: phase.name.clone(),
            })?;
            let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();
            for (case, overlay) in cases.iter_mut().zip(crate::ai::overlays(&paths, ai)?) {
                case.ai = Some(overlay);
            }
        }
        let db = Db::open(&config.database).map_err(|source| StudyError::Database {
            path: config.database.clone(),
            source,
        })?;
        Ok(App {
            config,
            cases,
            db: Mutex::new(db),
            clock: Box::new(now),
        })
    }

    /// Replaces the clock of reading times (seconds since the epoch), e.g. with a test's.
    pub fn with_clock(mut self, clock: impl Fn() -> f64 + Send + Sync + 'static) -> App {
        self.clock = Box::new(clock);
        self
    }

    /// Now, by the reading-time clock.
    pub(crate) fn now(&self) -> f64 {
        (self.clock)()
    }

    /// Which read of `case` in `phase` is open for `reader`: in a sequential phase the
    /// unaided read until it is stored, then the final one.
    pub(crate) fn step(&self, reader: &str, phase: &crate::config::Phase, case: usize) -> rusqlite::Result<Step> {
        if phase.sequential && !self.db().has_read(reader, &phase.key(Step::Unaided), case)? {
            Ok(Step::Unaided)
        } else {
            Ok(Step::Final)
        }
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Db> {
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

    /// The case a reader may fetch ahead (the viewer prefetches its image) while `case` of
    /// phase `phase` (its index) is open: the one after it in the reader's order of that phase;
    /// none at the end of a phase.
    pub(crate) fn next_case(&self, reader: &str, phase: usize, case: usize) -> rusqlite::Result<Option<usize>> {
        let name = &self.config.phases[phase].name;
        let done = self.db().read_cases(reader, name)?;
        Ok(self
            .order(reader, name)
            .into_iter()
            .find(|&c| c != case && !done.contains(&c)))
    }

    /// Where a reader stands (marks a phase done when its last case has been read).
    pub(crate) fn state(&self, reader: &str) -> rusqlite::Result<ReaderState> {
        let db = self.db();
        for (k, phase) in self.config.phases.iter().enumerate() {
            if db.done_at(reader, &phase.name)?.is_some() {
                continue;
            }
            if k > 0 {
                let previous = db.done_at(reader, &self.config.phases[k - 1].name)?.unwrap_or(0.0);
                let opens = previous + phase.washout_days * 86_400.0;
                if now() < opens {
                    return Ok(ReaderState::Waiting { phase: k, opens });
                }
            }
            let done = db.read_cases(reader, &phase.name)?;
            let order = self.order(reader, &phase.name);
            match order.iter().position(|c| !done.contains(c)) {
                Some(position) => {
                    return Ok(ReaderState::Reading {
                        phase: k,
                        case: order[position],
                        position: done.len() + 1,
                    })
                }
                None => {
                    db.mark_done(reader, &phase.name)?;
                    // The next phase's washout starts now; loop on to report it.
                    continue;
                }
            }
        }
        Ok(ReaderState::Finished)
    }
}
