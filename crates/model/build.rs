//! The RPATH to libtorch for the crates that link it (see rpath.rs). hipfrac-model's own
//! build script, build_model.rs, also compiles its C++ shim.
include!("rpath.rs");

fn main() {
    rpath();
}
