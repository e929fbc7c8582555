//! The service class provider: associations negotiated by dicom-ul, C-ECHO answered, each
//! C-STORE streamed to a file in the spool, checked, made durable, and only then answered
//! with success.

use crate::dimse::{self, status, Command};
use crate::spool::Spool;
use dicom_ul::association::server::AccessControl;
use dicom_ul::association::Association;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, PresentationContextNegotiated,
    PresentationContextResultReason, UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociation};
use hipfrac_core::error_chain;
use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::Sender;

/// Verification SOP class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// The storage SOP classes the node accepts: the radiographs hipfrac reads.
pub const STORAGE: [(&str, &str); 4] = [
    ("1.2.840.10008.5.1.4.1.1.1", "CR"),
    ("1.2.840.10008.5.1.4.1.1.1.1", "DX for presentation"),
    ("1.2.840.10008.5.1.4.1.1.1.1.1", "DX for processing"),
    ("1.2.840.10008.5.1.4.1.1.7", "Secondary Capture"),
];

/// The transfer syntaxes the node accepts: every one hipfrac's reader decodes (explicit
/// little endian preferred when a sender offers several).
pub const TRANSFER_SYNTAXES: [&str; 13] = [
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99", // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.51", // JPEG Extended
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
];

/// Who may associate: the called AE title must be the node's; the calling AE title must be
/// on the allow-list when there is one.
#[derive(Debug, Clone)]
pub struct Access {
    pub allow: Vec<String>,
}

impl AccessControl for Access {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            tracing::warn!(
                calling = calling_ae_title,
                called = called_ae_title,
                "association refused: called AE title is not this node's"
            );
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|a| a == calling_ae_title.trim()) {
            tracing::warn!(
                calling = calling_ae_title,
                "association refused: calling AE title is not on the allow-list"
            );
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// What an association needs from the node.
pub struct Shared {
    pub spool: Spool,
    /// Bytes the spool may hold (instances and undelivered results).
    pub spool_limit: u64,
    /// Largest instance accepted.
    pub max_instance: u64,
    /// Woken for every committed instance.
    pub received: Sender<()>,
    /// Which radiographs are assessed: an image whose pixels cannot be decoded is accepted
    /// only when its header rules it out anyway (it gets a "not assessable" report).
    pub acceptance: hipfrac_core::Acceptance,
    /// Decoded images handed to the worker.
    pub stash: std::sync::Arc<crate::worker::Stash>,
}

/// Why an association is aborted: the peer broke the protocol, or the node cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum AssociationFault {
    #[error("a command arrived in the middle of a data set")]
    CommandInDataSet,
    #[error("a command set larger than 64 KiB")]
    CommandTooLarge,
    #[error("unreadable command")]
    UnreadableCommand(#[source] dimse::CommandError),
    #[error("a command on presentation context {0} that was not accepted")]
    ContextNotAccepted(u8),
    #[error("data without a command")]
    DataWithoutCommand,
    #[error("data on another presentation context than its command's")]
    DataOnOtherContext,
    #[error("cannot write to the spool")]
    Spool(#[source] std::io::Error),
    #[error("cannot send the response")]
    Send(#[source] dicom_ul::association::Error),
}

/// An instance on its way in.
struct Reception {
    request: Command,
    context: u8,
    /// None once refused: the rest of its data is read and dropped.
    file: Option<tempfile::NamedTempFile>,
    bytes: u64,
    refusal: Option<(u16, String)>,
}

/// Serves one association until it is released or aborted. Errors end the association only.
pub fn serve(mut association: ServerAssociation<TcpStream>, shared: &Shared) {
    let peer = association.peer_ae_title().to_string();
    let contexts: Vec<PresentationContextNegotiated> = association.presentation_contexts().to_vec();
    let accepted = contexts
        .iter()
        .filter(|c| c.reason == PresentationContextResultReason::Acceptance)
        .count();
    tracing::info!(calling = %peer, contexts = contexts.len(), accepted, "association established");
    let mut command = Vec::new();
    let mut reception: Option<Reception> = None;
    let (mut stored, mut refused) = (0usize, 0usize);
    loop {
        let pdu = match association.receive() {
            Ok(pdu) => pdu,
            Err(e) => {
                tracing::warn!(calling = %peer, error = %error_chain(&e), "association ended without release");
                return;
            }
        };
        match pdu {
            Pdu::PData { data } => {
                for value in data {
                    let outcome = match value.value_type {
                        PDataValueType::Command => {
                            on_command(&mut association, shared, &contexts, &mut command, &mut reception, value)
                        }
                        PDataValueType::Data => on_data(
                            &mut association,
                            shared,
                            &mut reception,
                            value,
                            &mut stored,
                            &mut refused,
                        ),
                    };
                    if let Err(why) = outcome {
                        tracing::warn!(calling = %peer, "aborting the association: {}", error_chain(&why));
                        let _ = association.abort();
                        return;
                    }
                }
            }
            Pdu::ReleaseRQ => {
                let _ = association.send(&Pdu::ReleaseRP);
                tracing::info!(calling = %peer, stored, refused, "association released");
                return;
            }
            Pdu::AbortRQ { .. } => {
                tracing::warn!(calling = %peer, stored, refused, "association aborted by the peer");
                return;
            }
            other => {
                tracing::warn!(calling = %peer, pdu = %other.short_description(), "unexpected PDU; aborting");
                let _ = association.abort();
                return;
            }
        }
    }
}

fn send_command(
    association: &mut ServerAssociation<TcpStream>,
    context: u8,
    command: &Command,
) -> Result<(), AssociationFault> {
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context,
            value_type: PDataValueType::Command,
            is_last: true,
            data: command.encode(),
        }],
    };
    association.send(&pdu).map_err(AssociationFault::Send)
}

fn on_command(
    association: &mut ServerAssociation<TcpStream>,
    shared: &Shared,
    contexts: &[PresentationContextNegotiated],
    buffer: &mut Vec<u8>,
    reception: &mut Option<Reception>,
    value: PDataValue,
) -> Result<(), AssociationFault> {
    if reception.is_some() {
        return Err(AssociationFault::CommandInDataSet);
    }
    if buffer.len() + value.data.len() > dimse::MAX_COMMAND {
        return Err(AssociationFault::CommandTooLarge);
    }
    buffer.extend_from_slice(&value.data);
    if !value.is_last {
        return Ok(());
    }
    let bytes = std::mem::take(buffer);
    let request = Command::decode(&bytes).map_err(AssociationFault::UnreadableCommand)?;
    let context = contexts
        .iter()
        .find(|c| c.id == value.presentation_context_id && c.reason == PresentationContextResultReason::Acceptance);
    let Some(context) = context else {
        return Err(AssociationFault::ContextNotAccepted(value.presentation_context_id));
    };
    match request.field {
        dimse::C_ECHO_RQ => {
            tracing::info!("C-ECHO answered");
            send_command(association, context.id, &request.response(status::SUCCESS, None))
        }
        dimse::C_STORE_RQ if request.has_data_set => {
            let refusal = if request.sop_class != context.abstract_syntax {
                Some((
                    status::DATA_SET_MISMATCH,
                    format!(
                        "SOP class {} sent on a {} context",
                        request.sop_class, context.abstract_syntax
                    ),
                ))
            } else if shared.spool.usage() >= shared.spool_limit {
                Some((
                    status::OUT_OF_RESOURCES,
                    "the spool is full; try again later".to_string(),
                ))
            } else {
                None
            };
            let file = match refusal {
                Some(_) => None,
                None => Some(
                    start_file(shared, &request, &context.transfer_syntax, association.peer_ae_title())
                        .map_err(AssociationFault::Spool)?,
                ),
            };
            *reception = Some(Reception {
                request,
                context: context.id,
                file,
                bytes: 0,
                refusal,
            });
            Ok(())
        }
        _ => {
            tracing::warn!(command = format!("{:#06x}", request.field), "unsupported DIMSE command");
            send_command(
                association,
                context.id,
                &request.response(
                    status::UNRECOGNIZED_OPERATION,
                    Some("hipfrac listen supports C-ECHO and C-STORE"),
                ),
            )
        }
    }
}

/// A file in the spool's tmp folder that holds the Part 10 preamble and file meta group for
/// the instance whose data set (in the negotiated transfer syntax) follows as received.
fn start_file(
    shared: &Shared,
    request: &Command,
    transfer_syntax: &str,
    calling: &str,
) -> std::io::Result<tempfile::NamedTempFile> {
    let meta = dicom_object::meta::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(request.sop_class.as_str())
        .media_storage_sop_instance_uid(request.sop_instance.as_str())
        .transfer_syntax(transfer_syntax)
        .source_application_entity_title(calling.trim())
        .build()
        .map_err(std::io::Error::other)?;
    let mut file = tempfile::Builder::new()
        .prefix("rx-")
        .suffix(".dcm")
        .tempfile_in(shared.spool.tmp())?;
    file.write_all(&[0u8; 128])?;
    file.write_all(b"DICM")?;
    meta.write(&mut file).map_err(std::io::Error::other)?;
    Ok(file)
}

fn on_data(
    association: &mut ServerAssociation<TcpStream>,
    shared: &Shared,
    reception: &mut Option<Reception>,
    value: PDataValue,
    stored: &mut usize,
    refused: &mut usize,
) -> Result<(), AssociationFault> {
    let Some(current) = reception.as_mut() else {
        return Err(AssociationFault::DataWithoutCommand);
    };
    if value.presentation_context_id != current.context {
        return Err(AssociationFault::DataOnOtherContext);
    }
    current.bytes += value.data.len() as u64;
    if current.refusal.is_none() && current.bytes > shared.max_instance {
        current.refusal = Some((
            status::OUT_OF_RESOURCES,
            format!("instance larger than {} MiB", shared.max_instance >> 20),
        ));
        current.file = None;
    }
    if let Some(file) = current.file.as_mut() {
        if let Err(e) = file.write_all(&value.data) {
            current.refusal = Some((status::OUT_OF_RESOURCES, format!("cannot write to the spool: {e}")));
            current.file = None;
        }
    }
    if !value.is_last {
        return Ok(());
    }
    let Reception {
        request,
        context,
        file,
        refusal,
        bytes,
    } = reception.take().expect("checked above");
    let outcome = match (refusal, file) {
        (Some(refusal), _) => Err(refusal),
        (None, Some(file)) => finish(shared, &request, file),
        (None, None) => Err((status::OUT_OF_RESOURCES, "no spool file".to_string())),
    };
    let response = match &outcome {
        Ok(()) => {
            *stored += 1;
            tracing::info!(instance = %request.sop_instance, bytes, "stored");
            request.response(status::SUCCESS, None)
        }
        Err((code, why)) => {
            *refused += 1;
            tracing::warn!(instance = %request.sop_instance, status = format!("{code:#06x}"), "not stored: {why}");
            request.response(*code, Some(why))
        }
    };
    send_command(association, context, &response)
}

/// Checks a complete reception and commits it to the spool.
fn finish(shared: &Shared, request: &Command, file: tempfile::NamedTempFile) -> Result<(), (u16, String)> {
    file.as_file()
        .sync_all()
        .map_err(|e| (status::OUT_OF_RESOURCES, format!("cannot write to the spool: {e}")))?;
    // Before anything is acknowledged, the whole file is read: every element's length checked
    // against the bytes present and the pixels decoded, so a truncated or corrupt image is
    // refused now, while the sender can still be told. An image whose pixels do not decode is
    // accepted only when its header rules it out anyway (it gets a "not assessable" report),
    // after a check of its structure.
    let (meta, image) = match hipfrac_dicom::read_dicom(file.path()) {
        Ok(image) => (image.meta.clone(), Some(image)),
        Err(e) => match hipfrac_dicom::check_dicom(file.path()) {
            Ok(meta) if hipfrac_core::assess::check_header(&meta, &shared.acceptance).is_err() => (meta, None),
            Ok(_) => return Err((status::CANNOT_UNDERSTAND, short_reason(&e))),
            Err(structure) => return Err((status::CANNOT_UNDERSTAND, short_reason(&structure))),
        },
    };
    if meta.sop_instance_uid.as_deref() != Some(request.sop_instance.as_str()) {
        return Err((
            status::DATA_SET_MISMATCH,
            "the data set's SOP Instance UID is not the command's".into(),
        ));
    }
    if meta.sop_class_uid.as_deref() != Some(request.sop_class.as_str()) {
        return Err((
            status::DATA_SET_MISMATCH,
            "the data set's SOP Class UID is not the command's".into(),
        ));
    }
    // The decoded image is handed over before the file appears in `incoming`, so the worker
    // never decodes it twice nor leaves a stash entry behind.
    let path = shared.spool.reception_path(&request.sop_instance);
    if let Some(image) = image {
        shared.stash.put(path.clone(), image);
    }
    if let Err(e) = shared.spool.commit_incoming(file, &path) {
        shared.stash.take(&path);
        return Err((status::OUT_OF_RESOURCES, format!("cannot commit to the spool: {e}")));
    }
    let _ = shared.received.send(());
    Ok(())
}

/// The innermost cause of a reading error, without the temporary file's path.
fn short_reason(error: &hipfrac_dicom::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
