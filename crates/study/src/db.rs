//! The study database: SQLite in WAL mode with full synchronisation, so a read that was
//! acknowledged survives a crash of the server or the machine.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// A login lasts one reading day.
pub const SESSION_SECONDS: f64 = 12.0 * 3600.0;

pub struct Db {
    conn: Connection,
}

/// One stored read.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRead {
    pub reader: String,
    pub phase: String,
    pub case: usize,
    pub label: String,
    pub bbox: Option<String>,
    pub seconds: f64,
    pub at: f64,
}

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl Db {
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS reads (
                reader TEXT NOT NULL, phase TEXT NOT NULL, case_index INTEGER NOT NULL,
                label TEXT NOT NULL, bbox TEXT, seconds REAL NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (reader, phase, case_index));
             CREATE TABLE IF NOT EXISTS sessions (
                token TEXT PRIMARY KEY, person TEXT NOT NULL, admin INTEGER NOT NULL,
                csrf TEXT NOT NULL, created REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS phase_done (
                reader TEXT NOT NULL, phase TEXT NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (reader, phase));
             CREATE TABLE IF NOT EXISTS shown (
                reader TEXT NOT NULL, phase TEXT NOT NULL, case_index INTEGER NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (reader, phase, case_index));",
        )?;
        Ok(Db { conn })
    }

    pub fn create_session(&self, token: &str, person: &str, admin: bool, csrf: &str) -> rusqlite::Result<()> {
        self.conn.execute("INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5)", params![token, person, admin as i64, csrf, now()])?;
        Ok(())
    }

    /// `(person, admin, csrf)` of a session younger than [`SESSION_SECONDS`].
    pub fn session(&self, token: &str) -> rusqlite::Result<Option<(String, bool, String)>> {
        self.conn
            .query_row(
                "SELECT person, admin, csrf FROM sessions WHERE token = ?1 AND created > ?2",
                params![token, now() - SESSION_SECONDS],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?)),
            )
            .optional()
    }

    pub fn delete_session(&self, token: &str) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM sessions WHERE token = ?1", params![token])?;
        Ok(())
    }

    /// Stores a read (committed and synced before this returns). A second read of the same
    /// case in the same phase is refused: the first answer stands.
    pub fn insert_read(&self, read: &StoredRead) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO reads VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![read.reader, read.phase, read.case as i64, read.label, read.bbox, read.seconds, read.at],
        )?;
        Ok(n == 1)
    }

    pub fn read_cases(&self, reader: &str, phase: &str) -> rusqlite::Result<Vec<usize>> {
        let mut stmt = self.conn.prepare("SELECT case_index FROM reads WHERE reader = ?1 AND phase = ?2")?;
        let rows = stmt.query_map(params![reader, phase], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|v| v as usize)).collect()
    }

    pub fn all_reads(&self) -> rusqlite::Result<Vec<StoredRead>> {
        let mut stmt = self.conn.prepare("SELECT reader, phase, case_index, label, bbox, seconds, at FROM reads ORDER BY at, reader")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredRead { reader: r.get(0)?, phase: r.get(1)?, case: r.get::<_, i64>(2)? as usize, label: r.get(3)?, bbox: r.get(4)?, seconds: r.get(5)?, at: r.get(6)? })
        })?;
        rows.collect()
    }

    pub fn mark_done(&self, reader: &str, phase: &str) -> rusqlite::Result<()> {
        self.conn.execute("INSERT OR IGNORE INTO phase_done VALUES (?1, ?2, ?3)", params![reader, phase, now()])?;
        Ok(())
    }

    pub fn done_at(&self, reader: &str, phase: &str) -> rusqlite::Result<Option<f64>> {
        self.conn.query_row("SELECT at FROM phase_done WHERE reader = ?1 AND phase = ?2", params![reader, phase], |r| r.get(0)).optional()
    }

    /// When the case was first shown to the reader in the phase (for the reading time).
    pub fn shown_at(&self, reader: &str, phase: &str, case: usize) -> rusqlite::Result<f64> {
        self.conn.execute("INSERT OR IGNORE INTO shown VALUES (?1, ?2, ?3, ?4)", params![reader, phase, case as i64, now()])?;
        self.conn.query_row("SELECT at FROM shown WHERE reader = ?1 AND phase = ?2 AND case_index = ?3", params![reader, phase, case as i64], |r| r.get(0))
    }
}
