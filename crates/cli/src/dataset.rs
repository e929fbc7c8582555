use crate::cli::{CheckArgs, SplitArgs};
use crate::Outcome;
use anyhow::Result;

pub fn check(_args: CheckArgs) -> Result<Outcome> {
    anyhow::bail!("dataset check: not yet built")
}

pub fn split(_args: SplitArgs) -> Result<Outcome> {
    anyhow::bail!("dataset split: not yet built")
}
