use crate::{Error, Result};
use hipfrac_core::Label;
use std::collections::HashMap;
use std::path::Path;

/// Maps label names found in annotations to the five labels.
///
/// Names the map file lists win; every other name goes through the built-in spellings
/// (`DF`, `displaced femoral neck fracture`, …; see `hipfrac labels list`). A name matching
/// neither is an error naming the file and the label.
///
/// The file has one `name = CODE` per line (`#` starts a comment), e.g.
/// `Garden-1 = VF`, `intertroch stable = SF`.
#[derive(Debug, Clone, Default)]
pub struct LabelMap {
    names: HashMap<String, Label>,
}

fn fold(name: &str) -> String {
    name.trim().to_lowercase()
}

impl LabelMap {
    /// Reads a map file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut names = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, code) = line
                .split_once('=')
                .ok_or_else(|| Error::invalid(path, format!("line {}: expected `name = CODE`", number + 1)))?;
            let label: Label = code.trim().parse().map_err(|source| Error::LabelMapLine {
                path: path.to_path_buf(),
                line: number + 1,
                source,
            })?;
            names.insert(fold(name), label);
        }
        Ok(Self { names })
    }

    /// The label of `name` as written in `file`.
    pub fn resolve(&self, name: &str, file: &Path) -> Result<Label> {
        if let Some(label) = self.names.get(&fold(name)) {
            return Ok(*label);
        }
        name.parse::<Label>().map_err(|source| Error::Label {
            path: file.to_path_buf(),
            source,
        })
    }
}
