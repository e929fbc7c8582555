//! hipfrac-model's build: the RPATH to libtorch (build-support/rpath.rs) and the C++ shims compiled against
//! the same libtorch's headers: autocast state (csrc/autocast.cpp) and c10d's Gloo process
//! group (csrc/distributed.cpp; its Gloo part needs the Gloo headers libtorch's
//! ProcessGroupGloo.hpp includes: `HIPFRAC_GLOO_INCLUDE`, else /usr/include or
//! /usr/local/include, from libgloo-dev).
include!("../../build-support/rpath.rs");

fn main() {
    rpath();
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    let libtorch =
        std::env::var("LIBTORCH").expect("LIBTORCH is set by .cargo/config.toml (run scripts/setup.sh first)");
    let include = std::path::Path::new(&libtorch).join("include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .file("csrc/autocast.cpp")
        .file("csrc/distributed.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .flag_if_supported("-Wno-unused-parameter");
    println!("cargo:rerun-if-changed=csrc/distributed.cpp");
    println!("cargo:rerun-if-env-changed=HIPFRAC_GLOO_INCLUDE");
    let gloo = std::env::var_os("HIPFRAC_GLOO_INCLUDE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(["/usr/include", "/usr/local/include"].map(std::path::PathBuf::from))
        .find(|dir| dir.join("gloo/algorithm.h").is_file());
    match gloo {
        Some(dir) => {
            println!("cargo:rerun-if-changed={}", dir.join("gloo/algorithm.h").display());
            build
                .include(dir)
                .define("HIPFRAC_GLOO", None)
                .define("USE_C10D_GLOO", None);
        }
        None => println!(
            "cargo:warning=no Gloo headers (libgloo-dev): data-parallel training is not available in this build"
        ),
    }
    build.compile("hipfrac_shims");
}
