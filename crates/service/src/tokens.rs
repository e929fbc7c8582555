//! Bearer tokens, stored hashed: `hipfrac serve token add NAME` prints a new token once and
//! keeps only its SHA-256 in the tokens file (one line per token: name, hash, when it was
//! made). A token is 32 random bytes, so a fast hash is enough (there is nothing to guess);
//! the comparison runs in constant time over every stored hash.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}, line {line}: expected `name<TAB>sha256-hex<TAB>created`", path.display())]
    Malformed { path: PathBuf, line: usize },
    #[error("{}: a token named {name:?} exists; remove it first (`hipfrac serve token remove {name}`)", path.display())]
    Exists { path: PathBuf, name: String },
    #[error("{}: no token named {name:?}", path.display())]
    Unknown { path: PathBuf, name: String },
    #[error("token name {0:?}: use 1–64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("{}: holds no token; add one with `hipfrac serve token add NAME --tokens {}`", path.display(), path.display())]
    Empty { path: PathBuf },
}

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub hash: [u8; 32],
    pub created: String,
}

/// The tokens of a file.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

const HEADER: &str =
    "# hipfrac serve tokens: name, SHA-256 of the token (hex), created (UTC). The tokens themselves are not stored.\n";

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// Reads a tokens file; a missing file holds no tokens.
    pub fn read(path: &Path) -> Result<Tokens, TokenError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tokens::default()),
            Err(source) => {
                return Err(TokenError::Io {
                    path: path.into(),
                    source,
                })
            }
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || TokenError::Malformed {
                path: path.into(),
                line: i + 1,
            };
            let mut fields = line.split('\t');
            let (Some(name), Some(hash), Some(created), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed());
            };
            let hash: [u8; 32] = hex::decode(hash)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(malformed)?;
            entries.push(Entry {
                name: name.into(),
                hash,
                created: created.into(),
            });
        }
        Ok(Tokens { entries })
    }

    /// Reads a tokens file that must hold at least one token (the service's).
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        let tokens = Tokens::read(path)?;
        if tokens.entries.is_empty() {
            return Err(TokenError::Empty { path: path.into() });
        }
        Ok(tokens)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The name of the token `presented` is, if it is one. Every stored hash is compared, in
    /// constant time, whatever matches.
    pub fn verify(&self, presented: &str) -> Option<&str> {
        let hash = digest(presented);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(entry.name.as_str());
            }
        }
        found
    }

    fn write(&self, path: &Path) -> Result<(), TokenError> {
        let io = |source| TokenError::Io {
            path: path.into(),
            source,
        };
        let mut text = String::from(HEADER);
        for e in &self.entries {
            text.push_str(&format!("{}\t{}\t{}\n", e.name, hex::encode(e.hash), e.created));
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(io)?;
        // Only the owner may read the hashes (tempfile creates the file 0600 on Unix).
        temp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), TokenError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.into()))
    }
}

/// Adds a token named `name` to the file at `path` (created when missing) and returns the
/// token, which is shown once and stored nowhere.
pub fn add(path: &Path, name: &str) -> Result<String, TokenError> {
    check_name(name)?;
    let mut tokens = Tokens::read(path)?;
    if tokens.entries.iter().any(|e| e.name == name) {
        return Err(TokenError::Exists {
            path: path.into(),
            name: name.into(),
        });
    }
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| TokenError::Io {
        path: path.into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let token = format!("hf_{}", hex::encode(bytes));
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    tokens.entries.push(Entry {
        name: name.into(),
        hash: digest(&token),
        created,
    });
    tokens.write(path)?;
    Ok(token)
}

/// Removes the token named `name`.
pub fn remove(path: &Path, name: &str) -> Result<(), TokenError> {
    let mut tokens = Tokens::read(path)?;
    let before = tokens.entries.len();
    tokens.entries.retain(|e| e.name != name);
    if tokens.entries.len() == before {
        return Err(TokenError::Unknown {
            path: path.into(),
            name: name.into(),
        });
    }
    tokens.write(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_hashed_verified_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.tsv");
        let alice = add(&path, "alice").unwrap();
        let bob = add(&path, "bob-2").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&alice) && !text.contains(&bob), "tokens are not stored");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.verify(&alice), Some("alice"));
        assert_eq!(tokens.verify(&bob), Some("bob-2"));
        assert_eq!(tokens.verify("hf_00"), None);
        assert_eq!(tokens.verify(""), None);
        assert!(matches!(add(&path, "alice"), Err(TokenError::Exists { .. })));
        assert!(matches!(add(&path, "a b"), Err(TokenError::BadName(_))));
        remove(&path, "alice").unwrap();
        assert_eq!(Tokens::load(&path).unwrap().verify(&alice), None);
        assert!(matches!(remove(&path, "alice"), Err(TokenError::Unknown { .. })));
        remove(&path, "bob-2").unwrap();
        assert!(matches!(Tokens::load(&path), Err(TokenError::Empty { .. })));
        std::fs::write(&path, "x\tnot-hex\t2026\n").unwrap();
        assert!(matches!(
            Tokens::read(&path),
            Err(TokenError::Malformed { line: 1, .. })
        ));
    }
}
