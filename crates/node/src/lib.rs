//! hipfrac-node: a DICOM node (`hipfrac listen`). A PACS or modality sends radiographs by
//! C-STORE; each is written to a durable spool and acknowledged only once it is on disk; a
//! worker predicts it through the one prediction path and writes its results (Comprehensive
//! SR, presentation state, Secondary Capture) from `hipfrac_report::dicom_outputs`; a sender
//! delivers them by C-STORE to the destination AE, retrying while it is down. A crash at any
//! moment loses nothing acknowledged (see [`spool`]).
//!
//! Networking is dicom-rs's `dicom-ul` (association negotiation, PDUs); the DIMSE command
//! sets of C-ECHO and C-STORE are in [`dimse`]. The crate links no libtorch: the model comes
//! in as a closure ([`worker::Model`]).

pub mod dimse;
pub mod scp;
pub mod sender;
pub mod spool;
pub mod stow;
pub mod worker;

pub use sender::{Destination, Target};
pub use spool::Spool;
pub use stow::{Stow, StowError};
pub use worker::{Model, PredictError, PredictFn, Work};

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How long a stopping node waits for open associations.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the node runs.
pub struct Config {
    pub addr: SocketAddr,
    /// This node's AE title (the called AE title senders must use).
    pub ae_title: String,
    /// Calling AE titles allowed to associate (empty: any).
    pub allow: Vec<String>,
    pub spool: PathBuf,
    /// Bytes the spool may hold before new instances are refused (out of resources).
    pub spool_limit: u64,
    pub max_instance: u64,
    /// Associations served at once; more wait in the listen backlog.
    pub max_associations: usize,
    pub destination: Destination,
    pub work: Work,
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the spool {}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("AE title {0:?}: 1 to 16 characters of printable ASCII without a backslash")]
    AeTitle(String),
}

/// An AE title as the standard allows it (PS3.5: up to 16 characters, no backslash or
/// control characters, not only spaces).
pub fn check_ae_title(title: &str) -> Result<(), NodeError> {
    let ok = !title.trim().is_empty()
        && title.len() <= 16
        && title
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(NodeError::AeTitle(title.to_string()))
    }
}

/// Runs the node until `stop` is raised: then it stops accepting associations, lets the open
/// ones finish, finishes the batch and the delivery in hand, and returns. `on_listening` gets
/// the bound address (port 0 picks a free one).
pub fn run(
    config: Config,
    mut model: Model,
    stop: &AtomicBool,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), NodeError> {
    check_ae_title(&config.ae_title)?;
    if let Target::Dimse { ae_title, .. } = &config.destination.target {
        check_ae_title(ae_title)?;
    }
    for title in &config.allow {
        check_ae_title(title)?;
    }
    let spool = Spool::open(&config.spool).map_err(|source| NodeError::Spool {
        path: config.spool.clone(),
        source,
    })?;
    let listener = TcpListener::bind(config.addr).map_err(|source| NodeError::Bind {
        addr: config.addr,
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| NodeError::Bind {
        addr: config.addr,
        source,
    })?;
    listener.set_nonblocking(true).map_err(|source| NodeError::Bind {
        addr: config.addr,
        source,
    })?;
    let (received_tx, received_rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let pending = spool.pending().len() + spool.ready().len();
    if pending > 0 {
        tracing::info!(pending, "taking up where the last run stopped");
    }
    let stash = Arc::new(worker::Stash::default());
    let shared = Arc::new(scp::Shared {
        spool: spool.clone(),
        spool_limit: config.spool_limit,
        max_instance: config.max_instance,
        received: received_tx,
        acceptance: model.acceptance.clone(),
        stash: stash.clone(),
    });
    let mut options = dicom_ul::ServerAssociationOptions::new()
        .ae_access_control(scp::Access {
            allow: config.allow.clone(),
        })
        .ae_title(config.ae_title.clone())
        .max_pdu_length(64 * 1024)
        .read_timeout(Duration::from_secs(60))
        .write_timeout(Duration::from_secs(60))
        .with_abstract_syntax(scp::VERIFICATION);
    for (class, _) in scp::STORAGE {
        options = options.with_abstract_syntax(class);
    }
    for syntax in scp::TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(syntax);
    }
    let options = Arc::new(options);
    std::thread::scope(|scope| {
        let worker_spool = spool.clone();
        let work = &config.work;
        scope.spawn(move || worker::run(&worker_spool, &stash, &mut model, work, &received_rx, &ready_tx, stop));
        let sender_spool = spool.clone();
        let destination = &config.destination;
        scope.spawn(move || sender::run(&sender_spool, destination, &ready_rx, stop));
        on_listening(bound);
        let open = Arc::new(AtomicUsize::new(0));
        while !stop.load(Ordering::SeqCst) {
            if open.load(Ordering::SeqCst) >= config.max_associations {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match listener.accept() {
                Ok((stream, peer)) => {
                    let _ = stream.set_nonblocking(false);
                    // Responses are small and awaited one by one (see sender::deliver).
                    let _ = stream.set_nodelay(true);
                    open.fetch_add(1, Ordering::SeqCst);
                    let (options, shared, open) = (options.clone(), shared.clone(), open.clone());
                    std::thread::spawn(move || {
                        match options.establish(stream) {
                            Ok(association) => scp::serve(association, &shared),
                            Err(e) => {
                                tracing::warn!(%peer, "association not established: {}", hipfrac_core::error_chain(&e))
                            }
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        // What was acknowledged is on disk already; an association that stays open (a PACS
        // that keeps it, an idle peer) is given a grace period, then left to the exit.
        tracing::info!(
            "stopping: no new associations; finishing the open ones (at most {} s)",
            SHUTDOWN_GRACE.as_secs()
        );
        let started = std::time::Instant::now();
        while open.load(Ordering::SeqCst) > 0 && started.elapsed() < SHUTDOWN_GRACE {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    Ok(())
}

/// A `--dest` argument that is not AE@HOST:PORT.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DestinationError {
    #[error("expected AE@HOST:PORT, e.g. PACS@10.0.0.5:104")]
    NoAe,
    #[error("expected AE@HOST:PORT: the port is missing")]
    NoPort,
    #[error("{0:?} is not a port number")]
    Port(String),
    #[error("{0:?} is not an AE title (1 to 16 characters)")]
    AeTitle(String),
}

/// A `--dest AE@HOST:PORT` argument → (AE, HOST:PORT).
pub fn parse_destination(text: &str) -> Result<(String, String), DestinationError> {
    let (ae, address) = text.split_once('@').ok_or(DestinationError::NoAe)?;
    let port = address
        .rsplit_once(':')
        .map(|(_, p)| p)
        .ok_or(DestinationError::NoPort)?;
    port.parse::<u16>()
        .map_err(|_| DestinationError::Port(port.to_string()))?;
    if ae.trim().is_empty() || ae.len() > 16 {
        return Err(DestinationError::AeTitle(ae.to_string()));
    }
    Ok((ae.to_string(), address.to_string()))
}
