//! What `deid` writes beside its output: the change log (which attribute of which file got
//! which action, no values) and the linking table (original Patient ID → pseudonym and date
//! shift), which grows run after run and never changes a row.

use super::Change;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the linking table cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{}: cannot read the linking table", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{}: not a hipfrac linking table; choose another --link", path.display())]
    NotALinkTable { path: PathBuf },
    /// Another key or other date options than the earlier run: the table would lie.
    #[error("{}: patient {patient:?} is linked to {earlier} (date shift {earlier_shift:?}) by an earlier run, but this run gives {pseudonym} ({shift:?}); use the same key and options, or another --link file", path.display())]
    Conflict {
        path: PathBuf,
        patient: String,
        earlier: String,
        earlier_shift: String,
        pseudonym: String,
        shift: String,
    },
}

/// The change log as CSV: `file, attribute, tag, name, action, rule` (paths and attribute
/// names only, never values).
pub fn change_log_csv(logs: &[(String, Vec<Change>)]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["file", "attribute", "tag", "name", "action", "rule"])
        .expect("writing to memory");
    for (file, changes) in logs {
        for c in changes {
            let tag = format!("{:04X}{:04X}", c.tag.0, c.tag.1);
            writer
                .write_record([file.as_str(), &c.path, &tag, c.name, c.action.code(), &c.rule])
                .expect("writing to memory");
        }
    }
    hipfrac_core::csv_safe::neutralise(&writer.into_inner().expect("writing to memory cannot fail"))
}

const LINK_HEADER: [&str; 3] = ["original_patient_id", "pseudonym", "date_shift_days"];

/// The linking table at `path` (if it exists) with this run's `links` (original Patient ID →
/// pseudonym, date shift in days) added: one row per original ID; a pseudonym never changes
/// for a key, so an existing row must match the new one.
// A conflict names both links in full; the error comes at most once per run.
#[allow(clippy::result_large_err)]
pub fn link_table_csv(path: &Path, links: &BTreeMap<String, (String, Option<i64>)>) -> Result<Vec<u8>, LinkError> {
    let read = |source| LinkError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut rows: BTreeMap<String, Vec<String>> = Default::default();
    if path.exists() {
        let mut reader = csv::Reader::from_path(path).map_err(read)?;
        if reader.headers().map_err(read)?.iter().collect::<Vec<_>>() != LINK_HEADER {
            return Err(LinkError::NotALinkTable {
                path: path.to_path_buf(),
            });
        }
        for record in reader.records() {
            let record = hipfrac_core::csv_safe::restored(&record.map_err(read)?);
            rows.insert(record[0].to_string(), record.iter().map(str::to_string).collect());
        }
    }
    for (original, (pseudonym, shift)) in links {
        let row = vec![
            original.clone(),
            pseudonym.clone(),
            shift.map(|d| d.to_string()).unwrap_or_default(),
        ];
        match rows.get(original) {
            Some(earlier) if *earlier != row => {
                return Err(LinkError::Conflict {
                    path: path.to_path_buf(),
                    patient: original.clone(),
                    earlier: earlier[1].clone(),
                    earlier_shift: earlier[2].clone(),
                    pseudonym: pseudonym.clone(),
                    shift: row[2].clone(),
                })
            }
            Some(_) => {}
            None => {
                rows.insert(original.clone(), row);
            }
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(LINK_HEADER).expect("writing to memory");
    for row in rows.values() {
        writer.write_record(row).expect("writing to memory");
    }
    Ok(hipfrac_core::csv_safe::neutralise(
        &writer.into_inner().expect("writing to memory cannot fail"),
    ))
}
