use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The shared folder: `$HIPFRAC_SHARED`, else `../shared` beside the workspace.
fn shared_root() -> PathBuf {
    std::env::var_os("HIPFRAC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// ../shared/data/dicom relative to the workspace root, when present.
pub fn shared_dicom() -> Option<PathBuf> {
    let root = shared_root().join("data/dicom");
    if root.is_dir() {
        Some(root)
    } else {
        // CI sets HIPFRAC_REQUIRE_SHARED: there a missing ../shared fails instead of skipping.
        if std::env::var_os("HIPFRAC_REQUIRE_SHARED").is_some() {
            panic!(
                "{} is required (HIPFRAC_REQUIRE_SHARED is set) but absent",
                root.display()
            );
        }
        eprintln!("SKIP: {} is absent; conformance test not run", root.display());
        None
    }
}

/// First 16 hex digits of sha256 over little-endian 16-bit stored values.
pub fn sha16(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_string()
}
