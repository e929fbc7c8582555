//! Arguments of the long-running services and of the reader studies.

use clap::{Args, Subcommand};
use hipfrac_core::DeviceSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::{DicomOutput, ModelArgs};
use hipfrac_core::verdict::site_name;
use hipfrac_node::parse_destination;

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct ListenArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (port 0: any free port, printed at start). Use 0.0.0.0:PORT for
    /// a PACS on another machine, with --allow.
    #[arg(long, default_value = "127.0.0.1:11112")]
    pub addr: std::net::SocketAddr,
    /// This node's AE title (senders must call it by this title).
    #[arg(long, default_value = "HIPFRAC")]
    pub ae_title: String,
    /// Calling AE titles allowed to send (repeat or separate with commas; default: any).
    #[arg(long, value_name = "AE", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Where results go by C-STORE: AE@HOST:PORT (e.g. PACS@10.0.0.5:104). Or --dest-dicomweb.
    #[arg(long, value_name = "AE@HOST:PORT", value_parser = parse_destination, required_unless_present = "dest_dicomweb", conflicts_with = "dest_dicomweb")]
    pub dest: Option<(String, String)>,
    /// Where results go by DICOMweb STOW-RS: the server's DICOMweb root (e.g.
    /// https://pacs.example.org/dicom-web; plain http:// only to this machine). The same spool,
    /// retries and failed/ folder as --dest.
    #[arg(long, value_name = "URL")]
    pub dest_dicomweb: Option<String>,
    /// A file whose first line is `Bearer TOKEN` or `Basic USER:PASSWORD`, for --dest-dicomweb.
    #[arg(long, value_name = "FILE", requires = "dest_dicomweb")]
    pub dicomweb_auth: Option<PathBuf>,
    /// CA certificates (PEM) that --dest-dicomweb's certificate must chain to (default: the
    /// system's roots).
    #[arg(long, value_name = "FILE", requires = "dest_dicomweb")]
    pub dicomweb_ca: Option<PathBuf>,
    /// The spool folder (received instances and results not yet delivered; durable).
    #[arg(long)]
    pub spool: PathBuf,
    /// Refuse new instances (status A700, out of resources) while the spool holds this much.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub spool_limit_mb: u64,
    /// Largest instance accepted, MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_instance_mb: u64,
    /// Associations served at once (more wait).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_associations: u32,
    /// Results to send for each instance.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sr,gsps,sc")]
    pub outputs: Vec<DicomOutput>,
    /// Longer side of the Secondary Capture in pixels.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(64..=8192))]
    pub overlay_size: u32,
    /// Longest wait between two tries to reach the destination, seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_backoff_s: u64,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

/// `hipfrac serve`: the service (ServeRunArgs), or `serve token …`.
#[derive(Debug, Args, Serialize, Deserialize)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub token: Option<ServeCommand>,
    #[command(flatten)]
    pub run: Option<ServeRunArgs>,
}

/// The service's own arguments. The model's are spelled out here rather than flattened from
/// [`ModelArgs`]: clap (4.6) cannot tell an `Option` of arguments that flatten others apart
/// from its absence, and `--model` must be required by the type, not at run time.
#[derive(Debug, Args, Serialize, Deserialize)]
pub struct ServeRunArgs {
    /// Model folder (a training run's `best/` or `last/`).
    #[arg(long)]
    pub model: PathBuf,
    /// auto, cpu, cuda or cuda:N (auto: CUDA when a GPU is usable, else the CPU).
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Also accept radiographs whose Body Part Examined is NAME (see `hipfrac predict`).
    #[arg(long = "accept-body-part", value_name = "NAME", value_delimiter = ',')]
    pub accept_body_parts: Vec<String>,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub addr: std::net::SocketAddr,
    /// The tokens file (from `hipfrac serve token add`).
    #[arg(long, value_name = "FILE", required_unless_present = "no_auth")]
    pub tokens: Option<PathBuf>,
    /// Serve without authentication (loopback addresses only).
    #[arg(long, conflicts_with = "tokens")]
    pub no_auth: bool,
    /// Listen on an address other machines can reach over plain HTTP (tokens and images then
    /// cross the network in clear; prefer a TLS reverse proxy on 127.0.0.1).
    #[arg(long)]
    pub insecure: bool,
    /// Images per forward pass at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_batch: u32,
    /// How long the first image of a batch waits for others, milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub max_wait_ms: u64,
    /// Images that may wait for the network; beyond it requests get 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub queue: u32,
    /// Largest request body, MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_body_mb: u32,
    /// Prediction requests handled at once (each holds its body and images in memory); more
    /// get 503 at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_requests: u32,
    /// Files in one multipart request at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_files: u32,
    /// Longest a prediction request may take (queueing included), seconds; then 504.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_s: u64,
    /// Use the operating points re-fitted for SITE (`hipfrac calibrate --site SITE`).
    #[arg(long, value_name = "SITE", value_parser = site_name)]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum ServeCommand {
    /// Manage the service's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum TokenCommand {
    /// Make a token named NAME: printed once, stored only as its SHA-256.
    Add {
        name: String,
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
    /// Remove the token named NAME.
    Remove {
        name: String,
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
    /// List the tokens' names and when they were made.
    List {
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
}

#[derive(Debug, Subcommand, Serialize, Deserialize)]
pub enum StudyCommand {
    /// Per reader and phase Se/Sp (the paper's Table III) with mean/SD, McNemar per reader,
    /// Cohen/Fleiss/intra-reader κ and the Obuchowski–Rockette MRMC analysis (Hillis ddf) of
    /// aided vs unaided reading — report.html, tables.csv, stats.json.
    Report(hipfrac_files::study::StudyReportOptions),
    /// Run the reading workstation of a study (web pages for readers and admins; reads in
    /// SQLite). Open the printed address in a browser.
    Serve(StudyServeArgs),
    /// Print an argon2 hash of a password read from standard input, for the study file.
    HashPassword,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct StudyServeArgs {
    /// The study file (TOML): name, cases, database, model, readers, admins, phases.
    #[arg(long)]
    pub study: std::path::PathBuf,
    /// Address to listen on. Without --tls-cert/--tls-key the workstation speaks plain HTTP
    /// and stays on 127.0.0.1 (a TLS reverse proxy can reach it there; docs/reader-study.md).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Listen on an address other machines can reach, without TLS (passwords and reads then
    /// cross the network in clear).
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Device of the AI overlay's predictions: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
}
