//! The sender: result folders from the outbox to the destination, a DICOM node by C-STORE or a
//! DICOMweb server by STOW-RS ([`crate::stow`]), retrying with backoff while it is down. A file
//! leaves the outbox only once the destination acknowledged it.

use crate::dimse::{self, status, Command};
use crate::spool::Spool;
use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::TransferSyntaxIndex;
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};
use hipfrac_core::error_chain;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// Where results go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub target: Target,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
}

/// A DICOM node or a DICOMweb server.
#[derive(Debug, Clone)]
pub enum Target {
    /// By C-STORE.
    Dimse {
        /// The destination's AE title.
        ae_title: String,
        /// host:port.
        address: String,
        /// This node's AE title, as the calling AE.
        calling: String,
    },
    /// By STOW-RS.
    DicomWeb(crate::stow::Stow),
}

impl Destination {
    /// `AE@HOST:PORT` or the DICOMweb root, for logs.
    pub fn name(&self) -> String {
        match &self.target {
            Target::Dimse { ae_title, address, .. } => format!("{ae_title}@{address}"),
            Target::DicomWeb(stow) => stow.url.clone(),
        }
    }
}

/// How many times a result the destination refuses (a failure status, not a lost
/// connection) is offered before it is moved to `failed`.
const REFUSALS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The destination could not be reached or the association broke: try again later.
    #[error("destination {0} unreachable: {1}")]
    Unreachable(String, String),
    /// The destination answered and refused the object.
    #[error("{file}: refused by the destination with status {status:#06x}{}", comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        file: PathBuf,
        status: u16,
        comment: Option<String>,
    },
    /// The DICOMweb server answered and did not store the object.
    #[error("{file}: refused by the DICOMweb server with HTTP {status} at {url} ({comment})")]
    HttpRefused {
        file: PathBuf,
        url: String,
        status: u16,
        comment: String,
    },
    #[error("{0}: cannot read the result: {1}")]
    Unreadable(PathBuf, String),
}

/// Delivers ready result folders until `stop` is raised (finishing the folder in hand).
pub fn run(spool: &Spool, destination: &Destination, ready: &Receiver<()>, stop: &AtomicBool) {
    let mut backoff = Duration::from_secs(1);
    let mut refusals: std::collections::HashMap<PathBuf, u32> = Default::default();
    // Folders that cannot be cleared or moved (permissions): skipped until the next start, so
    // the sender never spins on them.
    let mut stuck: std::collections::HashSet<PathBuf> = Default::default();
    while !stop.load(Ordering::SeqCst) {
        let folders: Vec<PathBuf> = spool.ready().into_iter().filter(|f| !stuck.contains(f)).collect();
        if folders.is_empty() {
            let _ = ready.recv_timeout(Duration::from_millis(500));
            continue;
        }
        let mut blocked = false;
        for folder in folders {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match deliver(spool, destination, &folder) {
                Ok(sent) => {
                    backoff = Duration::from_secs(1);
                    refusals.remove(&folder);
                    tracing::info!(instance = %name(&folder), objects = sent, destination = %destination.name(), "results delivered");
                    if let Err(e) = spool.delivered(&folder) {
                        tracing::error!(instance = %name(&folder), "cannot clear the delivered results ({e}); skipped until the next start");
                        stuck.insert(folder.clone());
                    }
                }
                Err(SendError::Unreachable(to, why)) => {
                    tracing::warn!(destination = %to, retry_in_s = backoff.as_secs(), "cannot deliver: {why}");
                    blocked = true;
                    break;
                }
                Err(error) => {
                    let tries = refusals.entry(folder.clone()).or_default();
                    *tries += 1;
                    tracing::warn!(instance = %name(&folder), tries = *tries, "{error}");
                    if *tries >= REFUSALS {
                        refusals.remove(&folder);
                        match spool.fail(&folder, &error.to_string()) {
                            Ok(at) => tracing::error!(instance = %name(&folder), "results moved to {}", at.display()),
                            Err(e) => {
                                tracing::error!(instance = %name(&folder), "cannot move to failed/ ({e}); skipped until the next start");
                                stuck.insert(folder.clone());
                            }
                        }
                    } else {
                        blocked = true;
                    }
                }
            }
        }
        if blocked {
            // Wait (waking early to stop), then double the wait up to the limit.
            let until = std::time::Instant::now() + backoff;
            while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            backoff = (backoff * 2).min(destination.max_backoff);
        }
    }
}

fn name(folder: &Path) -> String {
    folder
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// A result file: its SOP class and instance and its data set in `transfer_syntax`.
struct Object {
    path: PathBuf,
    sop_class: String,
    sop_instance: String,
    object: dicom_object::DefaultDicomObject,
}

/// Sends every DICOM file of `folder` to the destination; each acknowledged file is removed.
/// Returns how many were sent.
pub fn deliver(spool: &Spool, destination: &Destination, folder: &Path) -> Result<usize, SendError> {
    match &destination.target {
        Target::Dimse {
            ae_title,
            address,
            calling,
        } => deliver_dimse(spool, (ae_title, address, calling), folder),
        Target::DicomWeb(stow) => crate::stow::deliver(spool, stow, folder),
    }
}

/// Sends every DICOM file of `folder` in one association to `(called AE, host:port, calling
/// AE)`.
fn deliver_dimse(
    spool: &Spool,
    (ae_title, address, calling): (&str, &str, &str),
    folder: &Path,
) -> Result<usize, SendError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| SendError::Unreadable(folder.to_path_buf(), e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Ok(0);
    }
    let mut objects = Vec::new();
    for path in files {
        let object = dicom_object::open_file(&path).map_err(|e| SendError::Unreadable(path.clone(), e.to_string()))?;
        let meta = object.meta();
        let (sop_class, sop_instance) = (
            trim(meta.media_storage_sop_class_uid()),
            trim(meta.media_storage_sop_instance_uid()),
        );
        objects.push(Object {
            path,
            sop_class,
            sop_instance,
            object,
        });
    }
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(calling)
        .called_ae_title(ae_title)
        .connection_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .write_timeout(Duration::from_secs(60));
    let mut classes: Vec<&str> = objects.iter().map(|o| o.sop_class.as_str()).collect();
    classes.sort();
    classes.dedup();
    for class in classes {
        options = options.with_presentation_context(
            class,
            vec![uids::EXPLICIT_VR_LITTLE_ENDIAN, uids::IMPLICIT_VR_LITTLE_ENDIAN],
        );
    }
    let unreachable =
        |e: dicom_ul::association::Error| SendError::Unreachable(format!("{ae_title}@{address}"), error_chain(&e));
    let mut association = options.establish(address).map_err(|e| match e {
        // The destination answered and will not take these objects: not a matter of waiting.
        dicom_ul::association::Error::NoAcceptedPresentationContexts { .. }
        | dicom_ul::association::Error::Rejected { .. } => SendError::Refused {
            file: folder.to_path_buf(),
            status: status::SOP_CLASS_NOT_SUPPORTED,
            comment: Some(error_chain(&e)),
        },
        e => unreachable(e),
    })?;
    // Each C-STORE is a small command then the data set, then a wait for the response: with
    // Nagle's algorithm on, every one of them would stall on a delayed ACK.
    let _ = association.inner_stream().set_nodelay(true);
    let mut sent = 0;
    for (index, object) in objects.iter().enumerate() {
        match store(&mut association, object, index as u16 + 1) {
            Ok(()) => {
                spool
                    .delivered_file(&object.path)
                    .map_err(|e| SendError::Unreadable(object.path.clone(), e.to_string()))?;
                sent += 1;
            }
            Err(error) => {
                let _ = association.abort();
                return Err(error);
            }
        }
    }
    association.release().map_err(unreachable)?;
    Ok(sent)
}

fn trim(uid: &str) -> String {
    uid.trim_end_matches(['\0', ' ']).to_string()
}

fn store(association: &mut ClientAssociation<TcpStream>, object: &Object, message_id: u16) -> Result<(), SendError> {
    let lost = |why: String| SendError::Unreachable("destination".into(), why);
    let context = association
        .presentation_contexts()
        .iter()
        .find(|c| c.abstract_syntax == object.sop_class && c.reason == PresentationContextResultReason::Acceptance)
        .cloned()
        .ok_or_else(|| SendError::Refused {
            file: object.path.clone(),
            status: status::SOP_CLASS_NOT_SUPPORTED,
            comment: Some(format!(
                "the destination does not accept SOP class {}",
                object.sop_class
            )),
        })?;
    let syntax = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(&context.transfer_syntax)
        .ok_or_else(|| {
            SendError::Unreadable(
                object.path.clone(),
                format!("unknown transfer syntax {}", context.transfer_syntax),
            )
        })?;
    let mut data = Vec::new();
    object
        .object
        .write_dataset_with_ts(&mut data, syntax)
        .map_err(|e| SendError::Unreadable(object.path.clone(), e.to_string()))?;
    let request = Command::store_request(message_id, &object.sop_class, &object.sop_instance);
    let command = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context.id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: request.encode(),
        }],
    };
    association.send(&command).map_err(|e| lost(error_chain(&e)))?;
    {
        let mut writer = association.send_pdata(context.id);
        writer.write_all(&data).map_err(|e| lost(e.to_string()))?;
        writer.finish().map_err(|e| lost(e.to_string()))?;
    }
    let mut response = Vec::new();
    loop {
        match association.receive().map_err(|e| lost(error_chain(&e)))? {
            Pdu::PData { data } => {
                let mut last = false;
                for value in data {
                    if value.value_type == PDataValueType::Command {
                        response.extend_from_slice(&value.data);
                        last |= value.is_last;
                    }
                }
                if response.len() > dimse::MAX_COMMAND {
                    return Err(lost("an oversized response".into()));
                }
                if last {
                    break;
                }
            }
            other => {
                return Err(lost(format!(
                    "unexpected {} instead of the C-STORE response",
                    other.short_description()
                )))
            }
        }
    }
    let response = Command::decode(&response).map_err(|e| lost(e.to_string()))?;
    match response.status {
        Some(code) if status::is_stored(code) => Ok(()),
        // Out of resources: the destination is busy or full for now; wait, do not count it.
        Some(code) if code & 0xFF00 == 0xA700 => Err(SendError::Unreachable(
            "destination".into(),
            format!("out of resources (status {code:#06x})"),
        )),
        code => Err(SendError::Refused {
            file: object.path.clone(),
            status: code.unwrap_or(0xFFFF),
            comment: response.error_comment,
        }),
    }
}
