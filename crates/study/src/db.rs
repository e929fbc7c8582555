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

/// Creates `path` empty with mode 0600 when it does not exist; makes it 0600 when it does.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
        }
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Db {
    /// Opens (or creates) the database. The file and its journal are readable by their owner
    /// only (0600): they hold the reads and the sessions.
    pub fn open(path: &Path) -> rusqlite::Result<Db> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        owner_only(path).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
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
             CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
             CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
             CREATE TABLE IF NOT EXISTS locked (person TEXT PRIMARY KEY, at REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS shown (
                reader TEXT NOT NULL, phase TEXT NOT NULL, case_index INTEGER NOT NULL, at REAL NOT NULL,
                PRIMARY KEY (reader, phase, case_index));
             CREATE TABLE IF NOT EXISTS undone (
                reader TEXT NOT NULL, phase TEXT NOT NULL, case_index INTEGER NOT NULL,
                label TEXT NOT NULL, bbox TEXT, seconds REAL NOT NULL, at REAL NOT NULL, undone_at REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS timing (
                reader TEXT NOT NULL, phase TEXT NOT NULL, case_index INTEGER NOT NULL,
                drawn REAL NOT NULL, paused_since REAL, paused_total REAL NOT NULL DEFAULT 0, confirmed REAL,
                PRIMARY KEY (reader, phase, case_index));",
        )?;
        // Sessions of databases made before idle logout have no `seen` column yet.
        let has_seen: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'seen'")?
            .exists([])?;
        if !has_seen {
            conn.execute_batch("ALTER TABLE sessions ADD COLUMN seen REAL")?;
        }
        for suffix in ["-wal", "-shm"] {
            let journal = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if journal.exists() {
                owner_only(&journal).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            }
        }
        Ok(Db { conn })
    }

    /// Records a failed (or not yet verified) login under each key; returns the row ids.
    pub fn record_failure(&self, keys: &[&str]) -> rusqlite::Result<Vec<i64>> {
        let at = now();
        keys.iter()
            .map(|key| {
                self.conn
                    .execute("INSERT INTO login_failures VALUES (?1, ?2)", params![key, at])?;
                Ok(self.conn.last_insert_rowid())
            })
            .collect()
    }

    /// Failed logins under `key` since `since` (seconds since the epoch).
    pub fn failures_since(&self, key: &str, since: f64) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT COUNT(*) FROM login_failures WHERE key = ?1 AND at >= ?2",
            params![key, since],
            |r| r.get(0),
        )
    }

    /// Forgets failures: those under `key`, and the rows `ids`.
    pub fn clear_failures(&self, key: &str, ids: &[i64]) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM login_failures WHERE key = ?1", params![key])?;
        for id in ids {
            self.conn
                .execute("DELETE FROM login_failures WHERE rowid = ?1", params![id])?;
        }
        Ok(())
    }

    pub fn lock(&self, person: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("INSERT OR IGNORE INTO locked VALUES (?1, ?2)", params![person, now()])?;
        Ok(())
    }

    pub fn is_locked(&self, person: &str) -> rusqlite::Result<bool> {
        self.conn
            .query_row("SELECT COUNT(*) FROM locked WHERE person = ?1", params![person], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
    }

    /// Lifts a lock (and forgets the failures that caused it).
    pub fn unlock(&self, person: &str, name_key: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM locked WHERE person = ?1", params![person])?;
        self.clear_failures(name_key, &[])
    }

    /// Locked accounts, oldest lock first.
    pub fn locked(&self) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT person FROM locked ORDER BY at")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// Sessions are stored by the SHA-256 of their token: the database does not hold a
    /// usable cookie.
    pub fn create_session(&self, token: &str, person: &str, admin: bool, csrf: &str, at: f64) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO sessions (token, person, admin, csrf, created, seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![token_hash(token), person, admin as i64, csrf, at],
        )?;
        Ok(())
    }

    /// `(person, admin, csrf)` of a session younger than [`SESSION_SECONDS`] that was used
    /// within the last `idle` seconds; using it counts as activity (recorded at most once a
    /// minute, to spare the disk).
    pub fn session(&self, token: &str, idle: f64, at: f64) -> rusqlite::Result<Option<(String, bool, String)>> {
        let hash = token_hash(token);
        let found = self
            .conn
            .query_row(
                "SELECT person, admin, csrf, COALESCE(seen, created) FROM sessions WHERE token = ?1 AND created > ?2 AND COALESCE(seen, created) > ?3",
                params![hash, at - SESSION_SECONDS, at - idle],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?, r.get::<_, f64>(3)?)),
            )
            .optional()?;
        Ok(found.map(|(person, admin, csrf, seen)| {
            if at - seen > (idle / 4.0).min(60.0) {
                let _ = self
                    .conn
                    .execute("UPDATE sessions SET seen = ?2 WHERE token = ?1", params![hash, at]);
            }
            (person, admin, csrf)
        }))
    }

    pub fn delete_session(&self, token: &str) -> rusqlite::Result<()> {
        self.conn
            .execute("DELETE FROM sessions WHERE token = ?1", params![token_hash(token)])?;
        Ok(())
    }

    /// Stores a read (committed and synced before this returns). A second read of the same
    /// case in the same phase is refused: the first answer stands.
    pub fn insert_read(&self, read: &StoredRead) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO reads VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                read.reader,
                read.phase,
                read.case as i64,
                read.label,
                read.bbox,
                read.seconds,
                read.at
            ],
        )?;
        Ok(n == 1)
    }

    pub fn read_cases(&self, reader: &str, phase: &str) -> rusqlite::Result<Vec<usize>> {
        let mut stmt = self
            .conn
            .prepare("SELECT case_index FROM reads WHERE reader = ?1 AND phase = ?2")?;
        let rows = stmt.query_map(params![reader, phase], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(|v| v as usize)).collect()
    }

    pub fn all_reads(&self) -> rusqlite::Result<Vec<StoredRead>> {
        let mut stmt = self
            .conn
            .prepare("SELECT reader, phase, case_index, label, bbox, seconds, at FROM reads ORDER BY at, reader")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredRead {
                reader: r.get(0)?,
                phase: r.get(1)?,
                case: r.get::<_, i64>(2)? as usize,
                label: r.get(3)?,
                bbox: r.get(4)?,
                seconds: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        rows.collect()
    }

    /// Reads taken back by their readers, each with when it was undone (seconds since the epoch).
    pub fn undone_reads(&self) -> rusqlite::Result<Vec<(StoredRead, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT reader, phase, case_index, label, bbox, seconds, at, undone_at FROM undone ORDER BY undone_at, reader",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                StoredRead {
                    reader: r.get(0)?,
                    phase: r.get(1)?,
                    case: r.get::<_, i64>(2)? as usize,
                    label: r.get(3)?,
                    bbox: r.get(4)?,
                    seconds: r.get(5)?,
                    at: r.get(6)?,
                },
                r.get(7)?,
            ))
        })?;
        rows.collect()
    }

    pub fn mark_done(&self, reader: &str, phase: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO phase_done VALUES (?1, ?2, ?3)",
            params![reader, phase, now()],
        )?;
        Ok(())
    }

    pub fn done_at(&self, reader: &str, phase: &str) -> rusqlite::Result<Option<f64>> {
        self.conn
            .query_row(
                "SELECT at FROM phase_done WHERE reader = ?1 AND phase = ?2",
                params![reader, phase],
                |r| r.get(0),
            )
            .optional()
    }

    /// The image of the case was drawn on the reader's screen at `at` (the first time counts).
    /// A page drawn again while the case was paused (the reader came back, e.g. after logging
    /// in again) ends the pause.
    pub fn drawn(&self, reader: &str, phase: &str, case: usize, at: f64) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO timing (reader, phase, case_index, drawn) VALUES (?1, ?2, ?3, ?4)",
            params![reader, phase, case as i64, at],
        )?;
        self.resume(reader, phase, case, at)
    }

    /// The reader paused at `at` (nothing when not drawn yet or already paused).
    pub fn pause(&self, reader: &str, phase: &str, case: usize, at: f64) -> rusqlite::Result<()> {
        self.conn.execute("UPDATE timing SET paused_since = ?4 WHERE reader = ?1 AND phase = ?2 AND case_index = ?3 AND paused_since IS NULL", params![reader, phase, case as i64, at])?;
        Ok(())
    }

    /// The reader went on at `at`: the pause is added to the time not counted.
    pub fn resume(&self, reader: &str, phase: &str, case: usize, at: f64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE timing SET paused_total = paused_total + MAX(0, ?4 - paused_since), paused_since = NULL WHERE reader = ?1 AND phase = ?2 AND case_index = ?3 AND paused_since IS NOT NULL",
            params![reader, phase, case as i64, at],
        )?;
        Ok(())
    }

    /// Takes back a read within the undo window: when the reader's latest read is `case` under
    /// `phase_key` and was stored at most `window` seconds before `at`, moves it to the `undone`
    /// table (with when it was undone: nothing a reader answered is lost), deletes the done mark
    /// of `phase_name` and the clocks of the cases opened since (they start again when drawn
    /// again). The read's own clock goes on from when its image was first drawn. Returns whether
    /// the read was taken back; a read outside the window stands.
    pub fn undo_read(
        &self,
        reader: &str,
        (phase_key, phase_name): (&str, &str),
        case: usize,
        at: f64,
        window: f64,
    ) -> rusqlite::Result<bool> {
        let transaction = self.conn.unchecked_transaction()?;
        let latest: Option<(String, i64, f64)> = transaction
            .query_row(
                "SELECT phase, case_index, at FROM reads WHERE reader = ?1 ORDER BY at DESC LIMIT 1",
                params![reader],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((phase, index, stored)) = latest else {
            return Ok(false);
        };
        if phase != phase_key || index != case as i64 || at - stored > window || at < stored {
            return Ok(false);
        }
        transaction.execute(
            "INSERT INTO undone SELECT reader, phase, case_index, label, bbox, seconds, at, ?4 FROM reads \
             WHERE reader = ?1 AND phase = ?2 AND case_index = ?3",
            params![reader, phase_key, case as i64, at],
        )?;
        transaction.execute(
            "DELETE FROM reads WHERE reader = ?1 AND phase = ?2 AND case_index = ?3",
            params![reader, phase_key, case as i64],
        )?;
        transaction.execute(
            "DELETE FROM phase_done WHERE reader = ?1 AND phase = ?2",
            params![reader, phase_name],
        )?;
        transaction.execute(
            "DELETE FROM timing WHERE reader = ?1 AND drawn >= ?2",
            params![reader, stored],
        )?;
        transaction.commit()?;
        Ok(true)
    }

    /// The reading clock of a case: `None` when its image was never drawn, else whether it is
    /// paused now and the seconds of reading until `at` (or until the confirmation recorded by
    /// databases of earlier versions), pauses excluded.
    pub fn reading(&self, reader: &str, phase: &str, case: usize, at: f64) -> rusqlite::Result<Option<(bool, f64)>> {
        self.conn
            .query_row(
                "SELECT drawn, paused_since, paused_total, confirmed FROM timing WHERE reader = ?1 AND phase = ?2 AND case_index = ?3",
                params![reader, phase, case as i64],
                |r| Ok((r.get::<_, f64>(0)?, r.get::<_, Option<f64>>(1)?, r.get::<_, f64>(2)?, r.get::<_, Option<f64>>(3)?)),
            )
            .optional()
            .map(|row| {
                row.map(|(drawn, since, total, confirmed)| {
                    let end = confirmed.filter(|&c| c >= drawn && c <= at).unwrap_or(at);
                    (since.is_some(), (end - drawn - total).max(0.0))
                })
            })
    }

    /// Whether the reader has a read of `case` stored under `phase`.
    pub fn has_read(&self, reader: &str, phase: &str, case: usize) -> rusqlite::Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM reads WHERE reader = ?1 AND phase = ?2 AND case_index = ?3",
                params![reader, phase, case as i64],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
    }
}
