/// Points the runtime loader at the libtorch this crate was built against, so users need no
/// LD_LIBRARY_PATH: the torch and CUDA runtime library folders of the project venv (or of
/// $LIBTORCH) go into the binaries' RPATH.
fn rpath() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        let torch = std::path::PathBuf::from(&libtorch);
        let lib = torch.join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        // torch/lib → site-packages/nvidia/cu13/lib (libcudart and libcupti, needed even on
        // a CPU by this build of libtorch_cpu).
        if let Some(site_packages) = torch.parent() {
            let cuda = site_packages.join("nvidia").join("cu13").join("lib");
            if cuda.is_dir() {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", cuda.display());
            }
        }
    }
}
