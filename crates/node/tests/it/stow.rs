//! STOW-RS against a canned HTTP server on loopback (one connection per request, answers
//! chosen by the test): what is sent (framing, headers, credentials), and how each answer is
//! taken — 200, a partial 202, 409, 5xx/429 (try again), a redirect (not followed), a 200 that
//! is not a STOW-RS response, 401.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use hipfrac_node::sender::SendError;
use hipfrac_node::stow::send;
use hipfrac_node::Stow;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// A small DICOM file with SOP Instance UID `uid`.
fn dicom(dir: &Path, uid: &str) -> PathBuf {
    let object = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.88.33"),
        ),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(uid)),
    ]);
    let path = dir.join(format!("{uid}.dcm"));
    object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.88.33")
                .media_storage_sop_instance_uid(uid),
        )
        .unwrap()
        .write_to_file(&path)
        .unwrap();
    path
}

/// What the server received: the request line, the headers (lower-case names) and the body.
struct Received {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Serves one request with `status`, `headers` and `body`; returns its URL root and what came.
fn server(status: u16, reply_headers: &'static str, reply: &'static str) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let root = format!("http://127.0.0.1:{}/dicom-web", listener.local_addr().unwrap().port());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap();
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\n{reply_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .unwrap();
        let _ = tx.send(Received {
            line: line.trim_end().to_string(),
            headers: headers.clone(),
            body,
        });
    });
    (root, rx)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    vec![dicom(dir, "1.2.3.1"), dicom(dir, "1.2.3.2")]
}

#[test]
fn a_200_stores_all_and_the_request_is_stow_rs_with_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (root, received) = server(200, "", "");
    let auth = dir.path().join("auth");
    std::fs::write(&auth, "Bearer s3cret-token\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let stow = Stow::new(&root, Some(&auth), None).unwrap();
    assert!(!format!("{stow:?}").contains("s3cret"), "credentials in Debug");
    let sent = files(dir.path());
    let mut stored = Vec::new();
    let taken = send(&stow, &sent, |p| {
        stored.push(p.to_path_buf());
        Ok(())
    });
    assert_eq!(taken.unwrap(), 2);
    assert_eq!(stored, sent);
    let r = received.recv().unwrap();
    assert_eq!(r.line, "POST /dicom-web/studies HTTP/1.1");
    assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    assert_eq!(r.header("accept"), Some("application/dicom+json"));
    let content_type = r.header("content-type").unwrap();
    assert!(
        content_type.starts_with("multipart/related; type=\"application/dicom\"; boundary="),
        "{content_type}"
    );
    let boundary = content_type.rsplit_once("boundary=").unwrap().1;
    // Two parts, each the file as it is, then the closing delimiter.
    let mut expected = Vec::new();
    for path in &sent {
        expected.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
        expected.extend_from_slice(&std::fs::read(path).unwrap());
        expected.extend_from_slice(b"\r\n");
    }
    expected.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    assert_eq!(r.body, expected);
}

#[test]
fn a_partial_202_takes_what_was_stored_and_refuses_the_rest_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _received) = server(
        202,
        "Content-Type: application/dicom+json\r\n",
        r#"{"00081199":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3.1"]}}]},"00081198":{"vr":"SQ","Value":[{"00081155":{"vr":"UI","Value":["1.2.3.2"]},"00081197":{"vr":"US","Value":[49442]}}]}}"#,
    );
    let stow = Stow::new(&root, None, None).unwrap();
    let sent = files(dir.path());
    let mut stored = Vec::new();
    let error = send(&stow, &sent, |p| {
        stored.push(p.to_path_buf());
        Ok(())
    })
    .unwrap_err();
    assert_eq!(stored, [sent[0].clone()]);
    match error {
        SendError::HttpRefused {
            file, status, comment, ..
        } => {
            assert_eq!((file, status), (sent[1].clone(), 202));
            assert_eq!(comment, "failure reason 0xc122");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_409_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _r) = server(
        409,
        "Content-Type: application/dicom+json\r\n",
        r#"{"00081198":{"vr":"SQ","Value":[]}}"#,
    );
    let stow = Stow::new(&root, None, None).unwrap();
    let mut stored = 0;
    let error = send(&stow, &files(dir.path()), |_| {
        stored += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!(stored, 0);
    assert!(matches!(error, SendError::HttpRefused { status: 409, .. }), "{error}");
}

#[test]
fn server_errors_and_429_mean_try_again_later() {
    for status in [500, 503, 429, 408] {
        let dir = tempfile::tempdir().unwrap();
        let (root, _r) = server(status, "", "busy");
        let stow = Stow::new(&root, None, None).unwrap();
        let error = send(&stow, &files(dir.path()), |_| panic!("nothing is stored")).unwrap_err();
        assert!(matches!(error, SendError::Unreachable(..)), "{status}: {error}");
    }
    // Nobody listening: the same.
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stow = Stow::new(&format!("http://127.0.0.1:{port}/dicom-web"), None, None).unwrap();
    let error = send(&stow, &files(dir.path()), |_| panic!("nothing is stored")).unwrap_err();
    assert!(matches!(error, SendError::Unreachable(..)), "{error}");
}

#[test]
fn a_redirect_is_not_followed_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _r) = server(302, "Location: https://sso.example.org/login\r\n", "");
    let stow = Stow::new(&root, None, None).unwrap();
    let error = send(&stow, &files(dir.path()), |_| panic!("nothing is stored")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("HTTP 302") && text.contains("https://sso.example.org/login"),
        "{text}"
    );
}

#[test]
fn a_200_that_is_not_a_stow_response_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _r) = server(200, "Content-Type: text/html\r\n", "<html>Please log in</html>");
    let stow = Stow::new(&root, None, None).unwrap();
    let error = send(&stow, &files(dir.path()), |_| panic!("nothing is stored")).unwrap_err();
    assert!(error.to_string().contains("not a STOW-RS response"), "{error}");
}

#[test]
fn a_401_names_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _r) = server(401, "WWW-Authenticate: Bearer\r\n", "");
    let stow = Stow::new(&root, None, None).unwrap();
    let error = send(&stow, &files(dir.path()), |_| panic!("nothing is stored")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("HTTP 401") && text.contains("credentials file") && text.contains("/dicom-web/studies"),
        "{text}"
    );
}
