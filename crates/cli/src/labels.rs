use crate::cli::LabelsConvertArgs;
use crate::Outcome;
use anyhow::Result;

pub fn convert(_args: LabelsConvertArgs) -> Result<Outcome> {
    anyhow::bail!("labels convert: not yet built")
}

pub fn list() -> Result<Outcome> {
    for label in hipfrac_core::Label::ALL {
        println!("{:5} {:40} {}", label.code(), label.full_name(), label.aliases().join(", "));
    }
    Ok(Outcome::Success)
}
