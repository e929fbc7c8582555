//! Delivery by DICOMweb STOW-RS (PS3.18 §10.5): the files of a result folder POSTed to
//! `ROOT/studies` in one `multipart/related; type="application/dicom"` request, over HTTPS
//! verified against the system's roots (or a given CA), with an optional bearer token or basic
//! credentials read from a file.

use crate::sender::SendError;
use crate::spool::Spool;
use base64::Engine as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A DICOMweb server that takes results by STOW-RS.
#[derive(Clone)]
pub struct Stow {
    /// The DICOMweb root as given (e.g. `https://pacs.example.org/dicom-web`).
    pub url: String,
    /// The `Authorization` header's value, when the server needs one.
    authorization: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Stow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Stow")
            .field("url", &self.url)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Why a DICOMweb destination cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum StowError {
    #[error(
        "{0}: a DICOMweb root must start with https:// (or http:// for this machine only, 127.0.0.1, ::1 or localhost)"
    )]
    Url(String),
    #[error(
        "a DICOMweb root must not carry credentials (user:password@): they would be logged; put them in the credentials file (--dicomweb-auth, --stow-auth)"
    )]
    CredentialsInUrl,
    #[error("{}: readable by others (mode {mode:o}); a credentials file must be readable by its owner only (chmod 600)", path.display())]
    OpenCredentials { path: PathBuf, mode: u32 },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the first line must be `Bearer TOKEN` or `Basic USER:PASSWORD`", path.display())]
    Credentials { path: PathBuf },
    #[error("{}: no PEM certificate in it ({why})", path.display())]
    Certificates { path: PathBuf, why: String },
}

/// The credentials of a file: its first non-empty line, `Bearer TOKEN` or
/// `Basic USER:PASSWORD`, as an `Authorization` header value.
pub fn authorization(path: &Path) -> Result<String, StowError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StowError::OpenCredentials {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
    }
    let text = std::fs::read_to_string(path).map_err(|source| StowError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let bad = || StowError::Credentials {
        path: path.to_path_buf(),
    };
    let (scheme, value) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
    let value = value.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()) => Ok(format!("Bearer {value}")),
        "basic" if value.contains(':') && !value.chars().any(char::is_control) => Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        )),
        _ => Err(bad()),
    }
}

/// The authority (`host[:port]`, perhaps `user@`) of a URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

/// Whether a URL's host is this machine (plain HTTP is allowed there only).
fn is_loopback(url: &str) -> bool {
    let authority = authority(url);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Stow {
    /// A STOW-RS destination at `url` (the DICOMweb root), with credentials from `auth` and the
    /// server's certificate verified against the CA certificates (PEM) in `ca`, or the system's
    /// roots without one.
    pub fn new(url: &str, auth: Option<&Path>, ca: Option<&Path>) -> Result<Stow, StowError> {
        let lower = url.to_ascii_lowercase();
        if authority(url).contains('@') {
            return Err(StowError::CredentialsInUrl);
        }
        if !(lower.starts_with("https://") || lower.starts_with("http://") && is_loopback(url)) {
            return Err(StowError::Url(url.to_string()));
        }
        let roots = match ca {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| StowError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut certificates = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => certificates.push(c),
                        Ok(_) => {}
                        Err(e) => {
                            return Err(StowError::Certificates {
                                path: path.to_path_buf(),
                                why: e.to_string(),
                            })
                        }
                    }
                }
                if certificates.is_empty() {
                    return Err(StowError::Certificates {
                        path: path.to_path_buf(),
                        why: "no CERTIFICATE section".into(),
                    });
                }
                ureq::tls::RootCerts::Specific(Arc::new(certificates))
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect is not followed: a POST turned into a GET (a login page, an http to
            // https hop) would answer 200 without storing anything.
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(120)))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(Stow {
            url: url.trim_end_matches('/').to_string(),
            authorization: auth.map(authorization).transpose()?,
            agent,
        })
    }
}

/// A file of the folder and the SOP Instance UID its meta header names.
struct Part {
    path: PathBuf,
    instance: String,
    bytes: Vec<u8>,
}

/// The boundary of a request: random enough never to occur in a DICOM file by chance.
fn boundary() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    format!("hipfrac-{}", hex::encode(bytes))
}

/// The SOP Instance UIDs of a STOW-RS response's Referenced SOP Sequence (0008,1199: stored)
/// and Failed SOP Sequence (0008,1198: refused, with the Failure Reason 0008,1197).
fn outcome(json: &serde_json::Value) -> (Vec<String>, Vec<(String, Option<u64>)>) {
    let items = |tag: &str| -> Vec<serde_json::Value> {
        json.get(tag)
            .and_then(|e| e.get("Value"))
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let uid = |item: &serde_json::Value| {
        item.get("00081155")
            .and_then(|e| e.get("Value"))
            .and_then(|v| v.get(0))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let stored = items("00081199").iter().map(uid).collect();
    let failed = items("00081198")
        .iter()
        .map(|item| {
            let reason = item
                .get("00081197")
                .and_then(|e| e.get("Value"))
                .and_then(|v| v.get(0))
                .and_then(|v| v.as_u64());
            (uid(item), reason)
        })
        .collect();
    (stored, failed)
}

/// Sends every DICOM file of `folder` in one STOW-RS request; each file the server stored is
/// removed. Returns how many were stored.
pub fn deliver(spool: &Spool, stow: &Stow, folder: &Path) -> Result<usize, SendError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| SendError::Unreadable(folder.to_path_buf(), e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    send(stow, &files, |path| {
        spool
            .delivered_file(path)
            .map_err(|e| SendError::Unreadable(path.to_path_buf(), e.to_string()))
    })
}

/// Sends `files` (DICOM files) in one STOW-RS request and calls `stored` with each file the
/// server stored. Returns how many were stored. A server that cannot be reached, or answers
/// 5xx, 408 or 429, is "try again later" ([`SendError::Unreachable`]); one that refuses (another
/// 4xx, or a Failed SOP Sequence naming an instance) is [`SendError::HttpRefused`].
pub fn send(
    stow: &Stow,
    files: &[PathBuf],
    mut stored: impl FnMut(&Path) -> Result<(), SendError>,
) -> Result<usize, SendError> {
    if files.is_empty() {
        return Ok(0);
    }
    let mut parts = Vec::new();
    for path in files {
        let object = dicom_object::open_file(path).map_err(|e| SendError::Unreadable(path.clone(), e.to_string()))?;
        let instance = object
            .meta()
            .media_storage_sop_instance_uid()
            .trim_end_matches(['\0', ' '])
            .to_string();
        let bytes = std::fs::read(path).map_err(|e| SendError::Unreadable(path.clone(), e.to_string()))?;
        parts.push(Part {
            path: path.clone(),
            instance,
            bytes,
        });
    }
    let boundary = boundary();
    let mut body = Vec::with_capacity(parts.iter().map(|p| p.bytes.len() + 128).sum());
    for part in &parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut request = stow
        .agent
        .post(format!("{}/studies", stow.url))
        .header(
            "Content-Type",
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .header("Accept", "application/dicom+json");
    if let Some(value) = &stow.authorization {
        request = request.header("Authorization", value);
    }
    let unreachable = |why: String| SendError::Unreachable(stow.url.clone(), why);
    let mut response = request
        .send(&body[..])
        .map_err(|e| unreachable(hipfrac_core::error_chain(&e)))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json_body = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    let mut text = String::new();
    let _ = response.body_mut().as_reader().take(1 << 20).read_to_string(&mut text);
    if status >= 500 || status == 429 || status == 408 {
        return Err(unreachable(format!("HTTP {status}")));
    }
    let first = &parts[0].path;
    let refused = |file: &Path, comment: String| SendError::HttpRefused {
        file: file.to_path_buf(),
        url: format!("{}/studies", stow.url),
        status,
        comment,
    };
    if (300..400).contains(&status) {
        return Err(refused(
            first,
            format!(
                "a redirect to {} (not followed: give the final DICOMweb root)",
                location.as_deref().unwrap_or("nowhere")
            ),
        ));
    }
    if status == 401 || status == 403 {
        return Err(refused(
            first,
            "check the credentials file (--dicomweb-auth, --stow-auth)".into(),
        ));
    }
    let json: Option<serde_json::Value> = if json_body {
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    let (stored_uids, failed) = json.as_ref().map(outcome).unwrap_or_default();
    let taken: Vec<&Part> = match (status, &json) {
        // 200 with the STOW-RS response: what its Referenced SOP Sequence lists (a server that
        // names nothing stored everything it was sent).
        (200, Some(_)) if stored_uids.is_empty() && failed.is_empty() => parts.iter().collect(),
        (200, Some(_)) | (202, _) | (409, _) => parts.iter().filter(|p| stored_uids.contains(&p.instance)).collect(),
        // 200 without a body: all stored.
        (200, None) if text.trim().is_empty() => parts.iter().collect(),
        (200, None) => return Err(refused(
            first,
            "HTTP 200 with a body that is not a STOW-RS response (a proxy or login page?); nothing is taken as stored"
                .into(),
        )),
        _ => Vec::new(),
    };
    for part in &taken {
        stored(&part.path)?;
    }
    if taken.len() == parts.len() {
        return Ok(taken.len());
    }
    let not_taken = parts
        .iter()
        .find(|p| !taken.iter().any(|t| t.path == p.path))
        .expect("one not taken");
    let reason = failed
        .iter()
        .find(|(uid, _)| *uid == not_taken.instance)
        .and_then(|(_, reason)| *reason);
    let snippet: String = text.chars().take(300).collect();
    Err(refused(
        &not_taken.path,
        match reason {
            Some(code) => format!("failure reason {code:#06x}"),
            None if snippet.trim().is_empty() => "no reason given".to_string(),
            None => snippet.trim().to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_give_an_authorization_header() {
        let dir = tempfile::tempdir().unwrap();
        let file = |text: &str| {
            use std::os::unix::fs::PermissionsExt as _;
            let path = dir.path().join(format!("auth-{}", text.len()));
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        assert_eq!(
            authorization(&file("\nBearer abc.def-123\n")).unwrap(),
            "Bearer abc.def-123"
        );
        // RFC 7617's example.
        assert_eq!(
            authorization(&file("basic Aladdin:open sesame")).unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        for bad in ["token-alone", "Bearer ", "Basic no-colon", "Digest a:b", ""] {
            let error = authorization(&file(bad)).unwrap_err().to_string();
            assert!(error.contains("the first line must be"), "{bad:?}: {error}");
        }
        assert!(authorization(&dir.path().join("missing"))
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://pacs.example.org/dicom-web",
            "http://127.0.0.1:8042/dicom-web",
            "http://localhost/dicom-web",
            "http://[::1]:8042/dicom-web",
            "HTTPS://PACS/",
        ] {
            assert!(Stow::new(ok, None, None).is_ok(), "{ok}");
        }
        for bad in [
            "http://pacs.example.org/dicom-web",
            "http://127.0.0.1.evil.org/dicom-web",
            "http://10.0.0.5/",
            "ftp://127.0.0.1/",
            "pacs:8042",
        ] {
            assert!(matches!(Stow::new(bad, None, None), Err(StowError::Url(_))), "{bad}");
        }
        assert!(Stow::new("http://LOCALHOST:8042/dicom-web", None, None).is_ok());
        for with_credentials in ["https://user:pw@pacs/dicom-web", "http://u@127.0.0.1/"] {
            assert!(
                matches!(
                    Stow::new(with_credentials, None, None),
                    Err(StowError::CredentialsInUrl)
                ),
                "{with_credentials}"
            );
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = Stow::new("https://pacs/", None, Some(&path)).unwrap_err().to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn a_stow_response_names_the_stored_and_the_failed_instances() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3"]}}]},
                "00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.4"]},"00081197":{"vr":"US","Value":[49442]}}]}}"#,
        )
        .unwrap();
        let (stored, failed) = outcome(&json);
        assert_eq!(stored, ["1.2.3"]);
        assert_eq!(failed, [("1.2.4".to_string(), Some(0xC122))]);
        assert_eq!(outcome(&serde_json::Value::Null), (vec![], vec![]));
    }
}
