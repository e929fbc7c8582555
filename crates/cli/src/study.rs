//! `hipfrac study hash-password` (`study report` is hipfrac-files').

use anyhow::{bail, Context, Result};
use hipfrac_core::Outcome;

pub fn hash_password() -> Result<Outcome> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.len() < 8 {
        bail!("the password must have at least 8 characters");
    }
    println!("{}", hipfrac_study::hash_password(password));
    Ok(Outcome::Success)
}
