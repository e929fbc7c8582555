//! What the targets that read a file share.

use std::io::Write;

/// The fuzzer's bytes as a file named `*.suffix` (the parsers under test take a path), removed
/// when dropped.
pub fn file_with(data: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().expect("a temp file");
    file.write_all(data).expect("write");
    file
}
