//! hipfrac's command line as a library, for its two binaries: `hipfrac`, which links no
//! libtorch and runs the commands that need no model, and `hipfrac-torch`, which runs the
//! model commands. clap parses a command line once, in whichever binary the user started;
//! `hipfrac` hands a parsed model command to `hipfrac-torch` whole ([`hand_over`],
//! [`received`]), so the two never disagree about what was asked. What the commands do is in
//! the library crates (hipfrac-files, hipfrac-pipeline); this crate parses, dispatches and
//! maps outcomes to exit codes.

pub mod args;
pub mod outcome;

pub use args::{Cli, Command};

use clap::{CommandFactory, FromArgMatches};

/// The environment variable that carries a parsed command from `hipfrac` to `hipfrac-torch`.
pub const PARSED_COMMAND: &str = "HIPFRAC_PARSED_COMMAND";

/// A parsed command as the text `hipfrac-torch` reads back with [`received`].
pub fn hand_over(cli: &Cli) -> String {
    serde_json::to_string(cli).expect("a parsed command serialises")
}

/// The command this process is to run: the one `hipfrac` parsed and handed over, else this
/// process's own command line, parsed (usage and help name `hipfrac` either way). The
/// variable is removed, so that processes this one starts parse their own command lines.
pub fn received() -> Cli {
    if let Some(text) = std::env::var_os(PARSED_COMMAND) {
        // Read and removed at start, before this process starts any thread.
        std::env::remove_var(PARSED_COMMAND);
        match serde_json::from_str(&text.to_string_lossy()) {
            Ok(cli) => return cli,
            Err(error) => {
                eprintln!("error: {PARSED_COMMAND} does not hold a command of this hipfrac version ({error})");
                std::process::exit(2);
            }
        }
    }
    let matches = Cli::command().bin_name("hipfrac").get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}
