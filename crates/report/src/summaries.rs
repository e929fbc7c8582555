//! summary.csv files joined: a run that adds to an earlier one (`predict --skip-existing`),
//! and the shards of a job array (`predict --shard I/N`, then `hipfrac merge-shards`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why summaries could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{}: cannot read the summary", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{}: written by another version of hipfrac (other columns)", path.display())]
    Columns { path: PathBuf },
    #[error("{}: {input} is also in {}; were the shards run with different inputs?", path.display(), first.display())]
    Duplicate {
        path: PathBuf,
        input: String,
        first: PathBuf,
    },
}

/// The name of shard `index` of `count`'s summary.
pub fn shard_file_name(index: u32, count: u32) -> String {
    format!("summary.shard-{index}-of-{count}.csv")
}

/// `summary.shard-I-of-N.csv` → (I, N).
pub fn parse_shard_file_name(name: &str) -> Option<(u32, u32)> {
    let middle = name.strip_prefix("summary.shard-")?.strip_suffix(".csv")?;
    let (index, count) = middle.split_once("-of-")?;
    let (index, count) = (index.parse().ok()?, count.parse().ok()?);
    (index < count).then_some((index, count))
}

/// Header and rows of a summary (a file with no rows at all has neither).
fn read(
    path: &Path,
    bytes: Option<&[u8]>,
) -> Result<Option<(csv::StringRecord, Vec<csv::StringRecord>)>, SummaryError> {
    let failed = |source| SummaryError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = match bytes {
        Some(bytes) => {
            csv::Reader::from_reader(Box::new(std::io::Cursor::new(bytes.to_vec())) as Box<dyn std::io::Read>)
        }
        None => csv::Reader::from_reader(
            Box::new(std::fs::File::open(path).map_err(|e| failed(csv::Error::from(e)))?) as Box<dyn std::io::Read>,
        ),
    };
    let header = reader.headers().map_err(failed)?.clone();
    if header.is_empty() {
        return Ok(None);
    }
    let rows = reader.records().collect::<Result<Vec<_>, _>>().map_err(failed)?;
    Ok(Some((header, rows)))
}

fn write(header: &csv::StringRecord, rows: impl IntoIterator<Item = csv::StringRecord>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).expect("writing to memory");
    for row in rows {
        writer.write_record(&row).expect("writing to memory");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// The earlier summary at `previous` with `fresh` (summary.csv bytes of this run) added; a row
/// of the same input (its first column), e.g. an earlier failure, is replaced by the new one.
/// Nothing else of the earlier file is lost.
pub fn add_to(previous: &Path, fresh: &[u8]) -> Result<Vec<u8>, SummaryError> {
    let Some((header, new)) = read(Path::new("(this run)"), Some(fresh))? else {
        // Nothing new: the earlier summary stands as it is.
        return std::fs::read(previous).map_err(|e| SummaryError::Read {
            path: previous.to_path_buf(),
            source: e.into(),
        });
    };
    let Some((old_header, old)) = read(previous, None)? else {
        return Ok(fresh.to_vec());
    };
    if old_header != header {
        return Err(SummaryError::Columns {
            path: previous.to_path_buf(),
        });
    }
    let inputs: HashSet<&str> = new.iter().filter_map(|r| r.get(0)).collect();
    let kept: Vec<csv::StringRecord> = old
        .into_iter()
        .filter(|r| !r.get(0).is_some_and(|input| inputs.contains(input)))
        .collect();
    Ok(write(&header, kept.into_iter().chain(new.iter().cloned())))
}

/// The summaries `parts` (the shards', in order) as one; an input in two of them is an error.
/// Returns the bytes and the number of rows.
pub fn join(parts: &[PathBuf]) -> Result<(Vec<u8>, usize), SummaryError> {
    let mut header: Option<(csv::StringRecord, &Path)> = None;
    let mut seen: std::collections::HashMap<String, &Path> = Default::default();
    let mut rows = Vec::new();
    for path in parts {
        let Some((this, records)) = read(path, None)? else {
            continue;
        };
        match &header {
            None => header = Some((this, path)),
            Some((first, _)) if first != &this => return Err(SummaryError::Columns { path: path.clone() }),
            Some(_) => {}
        }
        for record in records {
            let input = record.get(0).unwrap_or_default().to_string();
            if let Some(first) = seen.insert(input.clone(), path) {
                return Err(SummaryError::Duplicate {
                    path: path.clone(),
                    input,
                    first: first.to_path_buf(),
                });
            }
            rows.push(record);
        }
    }
    let count = rows.len();
    Ok((header.map(|(h, _)| write(&h, rows)).unwrap_or_default(), count))
}

/// A `--shard` argument that is not I/N with 0 ≤ I < N.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    #[error("expected I/N, e.g. 0/8 (shard 0 of 8)")]
    NotIOverN,
    #[error("{0:?} is not a shard number")]
    Index(String),
    #[error("{0:?} is not a shard count")]
    Count(String),
    #[error("shard {0}/{1}: need 0 ≤ I < N")]
    OutOfRange(u32, u32),
}

/// A `--shard I/N` argument: I/N → (I, N), 0 ≤ I < N.
pub fn parse_shard(text: &str) -> Result<(u32, u32), ShardError> {
    let (i, n) = text.split_once('/').ok_or(ShardError::NotIOverN)?;
    let (i, n) = (
        i.trim().parse::<u32>().map_err(|_| ShardError::Index(i.to_string()))?,
        n.trim().parse::<u32>().map_err(|_| ShardError::Count(n.to_string()))?,
    );
    if n == 0 || i >= n {
        return Err(ShardError::OutOfRange(i, n));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_replaces_rows_of_the_same_input_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let previous = dir.path().join("summary.csv");
        std::fs::write(&previous, "input,verdict,error\na.dcm,,cannot read\nb.dcm,DF,\n").unwrap();
        let merged = add_to(&previous, b"input,verdict,error\na.dcm,none,\nc.dcm,VF,\n").unwrap();
        assert_eq!(
            String::from_utf8(merged).unwrap(),
            "input,verdict,error\nb.dcm,DF,\na.dcm,none,\nc.dcm,VF,\n"
        );
        assert_eq!(
            add_to(&previous, b"").unwrap(),
            std::fs::read(&previous).unwrap(),
            "nothing new"
        );
        assert!(matches!(
            add_to(&previous, b"input,verdict\nd.dcm,DF\n"),
            Err(SummaryError::Columns { .. })
        ));
    }

    #[test]
    fn shards_join_skip_empty_ones_and_refuse_an_input_twice() {
        let dir = tempfile::tempdir().unwrap();
        let part = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let parts = [
            part("0", "input,verdict\na,DF\n"),
            part("1", ""),
            part("2", "input,verdict\nb,none\n"),
        ];
        let (bytes, rows) = join(&parts).unwrap();
        assert_eq!(
            (String::from_utf8(bytes).unwrap().as_str(), rows),
            ("input,verdict\na,DF\nb,none\n", 2)
        );
        let twice = [parts[0].clone(), part("3", "input,verdict\na,VF\n")];
        assert!(matches!(join(&twice), Err(SummaryError::Duplicate { input, .. }) if input == "a"));
        assert_eq!(parse_shard_file_name(&shard_file_name(2, 8)), Some((2, 8)));
        assert_eq!(parse_shard_file_name("summary.shard-8-of-8.csv"), None);
    }
}
