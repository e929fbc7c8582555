//! `hipfrac serve token add|remove|list`: the inference service's bearer tokens.

use anyhow::Result;
use hipfrac_cli::args::TokenCommand;
use hipfrac_core::Outcome;
use hipfrac_service::tokens;

pub fn run(command: TokenCommand) -> Result<Outcome> {
    match command {
        TokenCommand::Add { name, tokens: path } => {
            let token = tokens::add(&path, &name)?;
            eprintln!(
                "token {name:?} added to {} (stored as its SHA-256 only; it is shown this once):",
                path.display()
            );
            println!("{token}");
        }
        TokenCommand::Remove { name, tokens: path } => {
            tokens::remove(&path, &name)?;
            eprintln!("token {name:?} removed from {}", path.display());
        }
        TokenCommand::List { tokens: path } => {
            for entry in tokens::Tokens::read(&path)?.entries() {
                println!("{}\t{}", entry.name, entry.created);
            }
        }
    }
    Ok(Outcome::Success)
}
