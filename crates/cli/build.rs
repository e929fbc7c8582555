//! The RPATH to the libtorch this crate links (build-support/rpath.rs, shared with the other
//! crates that link it), so its binaries and tests run without LD_LIBRARY_PATH.
include!("../../build-support/rpath.rs");

fn main() {
    rpath();
}
