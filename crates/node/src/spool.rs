//! The node's durable spool: every step is a rename of a finished, fsynced file, so that a
//! crash (`kill -9`, power loss) at any moment leaves each instance in exactly one state, and
//! a restart takes up where the crash left.
//!
//! ```text
//! spool/.lock                held by the running node: two nodes never share a spool
//! spool/tmp/                 instances being received (cleared at start: never acknowledged)
//! spool/incoming/<r>.dcm     acknowledged to the sender, not yet predicted
//! spool/outbox/<r>/          results to deliver (*.dcm) and the prediction (result.json)
//! spool/outbox/.tmp-<r>/     results being written (cleared at start)
//! spool/done/<r>.json        the prediction of each reception whose results were all delivered
//! spool/failed/              instances that could not be predicted, results the destination
//!                            refused, each with a .txt saying why
//! ```
//!
//! `<r>` names one reception: the instance's UID and the time it arrived, so an instance sent
//! twice (a resend after a lost response, or a corrected image under the same UID) is two
//! receptions, each predicted and delivered in turn, and neither overwrites the other.
//!
//! An instance leaves `incoming` only after its results are committed to `outbox`; a result
//! file leaves `outbox` only after the destination acknowledged it. Results carry SOP Instance
//! UIDs derived from the source's and the model's, so a result sent twice after a crash is
//! the same instance and the PACS keeps one copy.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The spool folder.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    /// The spool's lock file, held (flock) while the spool is open.
    _lock: Arc<File>,
    /// The last measured usage and when it was measured (walking the spool for every instance
    /// would slow acknowledgements when results pile up).
    usage: Arc<Mutex<Option<(Instant, u64)>>>,
}

/// How long a measured spool usage is reused.
const USAGE_FRESH: Duration = Duration::from_secs(1);

/// The file-system name of an instance: its SOP Instance UID when it is a well-formed UID
/// (digits and dots), else a hash of it (a hostile "UID" never becomes a path).
pub fn instance_name(uid: &str) -> String {
    let well_formed = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.');
    if well_formed {
        uid.to_string()
    } else {
        use sha2::Digest;
        format!("x{}", &hex::encode(sha2::Sha256::digest(uid.as_bytes()))[..32])
    }
}

/// fsyncs a folder, so that a rename into it or a removal from it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Spool {
    /// Opens (creating) the spool at `root` and drops what a crash left half-done: partial
    /// receptions (never acknowledged) and partial result folders (made again from the
    /// instance, which is still in `incoming`).
    pub fn open(root: &Path) -> io::Result<Spool> {
        for dir in ["tmp", "incoming", "outbox", "done", "failed"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(|e| io_at(&path, e))?;
        }
        let lock_path = root.join(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_at(&lock_path, e))?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another hipfrac listen is using this spool",
            ));
        }
        let spool = Spool {
            root: root.to_path_buf(),
            _lock: Arc::new(lock),
            usage: Arc::new(Mutex::new(None)),
        };
        for entry in fs::read_dir(spool.tmp())? {
            let path = entry?.path();
            fs::remove_file(&path).map_err(|e| io_at(&path, e))?;
        }
        for entry in fs::read_dir(spool.outbox())? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                fs::remove_dir_all(&path).map_err(|e| io_at(&path, e))?;
            }
        }
        Ok(spool)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where instances are received.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }

    fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// Bytes held by instances and results not yet delivered (what the spool limit bounds),
    /// measured at most once a second.
    pub fn usage(&self) -> u64 {
        let mut cached = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, bytes)) = *cached {
            if at.elapsed() < USAGE_FRESH {
                return bytes;
            }
        }
        let bytes = self.measure();
        *cached = Some((Instant::now(), bytes));
        bytes
    }

    fn measure(&self) -> u64 {
        fn size(path: &Path) -> u64 {
            match fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => fs::read_dir(path)
                    .map(|d| d.flatten().map(|e| size(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        ["tmp", "incoming", "outbox"]
            .iter()
            .map(|d| size(&self.root.join(d)))
            .sum()
    }

    /// Where a reception of the instance `uid` arriving now will be kept in `incoming`: the
    /// instance's name and the arrival time, so that no reception replaces another.
    pub fn reception_path(&self, uid: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut path = self.incoming().join(format!("{}~{nanos:020}.dcm", instance_name(uid)));
        let mut k = 0;
        while path.exists() {
            k += 1;
            path = self
                .incoming()
                .join(format!("{}~{nanos:020}-{k}.dcm", instance_name(uid)));
        }
        path
    }

    /// Makes a received instance durable at `path` (from [`Spool::reception_path`]): fsync the
    /// file, rename it into `incoming`, fsync the folder. Only then may the sender be told
    /// "success".
    pub fn commit_incoming(&self, received: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
        received.as_file().sync_all()?;
        received.persist(path).map_err(|e| io_at(path, e.error))?;
        sync_dir(&self.incoming())
    }

    /// Instances acknowledged and not yet predicted, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        oldest_first(&self.incoming(), |p| p.extension().is_some_and(|e| e == "dcm"))
    }

    /// Result folders ready to deliver, oldest first.
    pub fn ready(&self) -> Vec<PathBuf> {
        oldest_first(&self.outbox(), |p| {
            p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
    }

    /// Writes the results of the pending instance `source` with `fill` (into a fresh folder),
    /// fsyncs them, renames the folder into `outbox`, then removes the instance: the instance
    /// is in `incoming` or its results are in `outbox`, never neither.
    pub fn commit_results<E: From<io::Error>>(
        &self,
        source: &Path,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, E> {
        let name = source
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = self.outbox().join(format!(".tmp-{name}"));
        if temp.exists() {
            fs::remove_dir_all(&temp)?;
        }
        fs::create_dir_all(&temp)?;
        fill(&temp)?;
        for entry in fs::read_dir(&temp)? {
            File::open(entry?.path())?.sync_all()?;
        }
        sync_dir(&temp)?;
        let done = self.outbox().join(&name);
        if done.exists() {
            // The same instance received again after its earlier results: the new ones stand.
            fs::remove_dir_all(&done)?;
        }
        fs::rename(&temp, &done)?;
        sync_dir(&self.outbox())?;
        fs::remove_file(source)?;
        sync_dir(&self.incoming())?;
        Ok(done)
    }

    /// One result file was acknowledged by the destination: it is not sent again.
    pub fn delivered_file(&self, file: &Path) -> io::Result<()> {
        fs::remove_file(file)?;
        file.parent().map_or(Ok(()), sync_dir)
    }

    /// Every result of `folder` was delivered: its prediction goes to `done`, the folder away.
    pub fn delivered(&self, folder: &Path) -> io::Result<()> {
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let json = folder.join("result.json");
        if json.exists() {
            fs::rename(&json, self.root.join("done").join(format!("{name}.json")))?;
            sync_dir(&self.root.join("done"))?;
        }
        fs::remove_dir_all(folder)?;
        sync_dir(&self.outbox())
    }

    /// Moves an instance or a result folder to `failed`, with `why` beside it.
    pub fn fail(&self, path: &Path, why: &str) -> io::Result<PathBuf> {
        let failed = self.root.join("failed");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let target = failed.join(&name);
        if target.is_dir() {
            fs::remove_dir_all(&target)?;
        }
        fs::write(failed.join(format!("{name}.txt")), format!("{why}\n"))?;
        fs::rename(path, &target)?;
        sync_dir(&failed)?;
        path.parent().map_or(Ok(()), sync_dir)?;
        Ok(target)
    }
}

fn oldest_first(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| keep(p))
                .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_uids_or_hashes_never_paths() {
        assert_eq!(instance_name("1.2.840.113619.2.55"), "1.2.840.113619.2.55");
        for hostile in ["../../etc/passwd", "", ".", "1.2/3", &"1".repeat(65)] {
            let name = instance_name(hostile);
            assert!(
                name.starts_with('x') && name.len() == 33 && name.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{hostile} → {name}"
            );
        }
    }

    #[test]
    fn an_instance_is_pending_or_in_the_outbox_never_neither() {
        let temp = tempfile::tempdir().unwrap();
        let spool = Spool::open(temp.path()).unwrap();
        let mut received = tempfile::NamedTempFile::new_in(spool.tmp()).unwrap();
        std::io::Write::write_all(&mut received, b"instance").unwrap();
        let source = spool.reception_path("1.2.3");
        spool.commit_incoming(received, &source).unwrap();
        assert!(source.file_name().unwrap().to_string_lossy().starts_with("1.2.3~"));
        assert_eq!(spool.pending(), vec![source.clone()]);
        assert_eq!(spool.measure(), 8);
        // A second node cannot open the same spool.
        assert!(Spool::open(temp.path())
            .unwrap_err()
            .to_string()
            .contains("another hipfrac listen"));
        // A failing writer leaves the instance pending and no folder behind (after a restart).
        let failed: Result<PathBuf, io::Error> = spool.commit_results(&source, |dir| {
            fs::write(dir.join("result.sr.dcm"), b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        drop(spool);
        let spool = Spool::open(temp.path()).unwrap();
        assert_eq!((spool.pending().len(), spool.ready().len()), (1, 0));
        let folder = spool.commit_results(&source, |dir| -> io::Result<()> {
            fs::write(dir.join("result.sr.dcm"), b"sr")?;
            fs::write(dir.join("result.json"), b"{}")
        });
        let folder = folder.unwrap();
        assert_eq!((spool.pending().len(), spool.ready(),), (0, vec![folder.clone()]));
        spool.delivered_file(&folder.join("result.sr.dcm")).unwrap();
        spool.delivered(&folder).unwrap();
        let done = temp
            .path()
            .join("done")
            .join(format!("{}.json", source.file_stem().unwrap().to_string_lossy()));
        assert!(spool.ready().is_empty() && done.exists());
        assert_eq!(spool.measure(), 0);
    }
}
