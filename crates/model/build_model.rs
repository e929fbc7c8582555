//! hipfrac-model's build: the RPATH to libtorch (rpath.rs) and the C++ shim over libtorch's
//! autocast state (csrc/autocast.cpp), compiled against the same libtorch's headers.
include!("rpath.rs");

fn main() {
    rpath();
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    let libtorch = std::env::var("LIBTORCH").expect("LIBTORCH is set by .cargo/config.toml (run scripts/setup.sh first)");
    let include = std::path::Path::new(&libtorch).join("include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("csrc/autocast.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-Wno-unused-parameter")
        .compile("hipfrac_autocast");
}
