//! The layers point one way: the prediction path links neither the training loop nor the
//! simulator, and `hipfrac` itself links no libtorch (its model commands are
//! `hipfrac-torch`'s).

use std::process::Command;

fn normal_dependencies(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_prediction_path_links_neither_training_nor_the_phantom() {
    let tree = normal_dependencies("hipfrac-infer");
    assert!(
        tree.contains("hipfrac-model") && tree.contains("hipfrac-imaging"),
        "{tree}"
    );
    for forbidden in ["hipfrac-train ", "hipfrac-phantom "] {
        assert!(
            !tree.contains(forbidden),
            "hipfrac-infer depends on {forbidden}:\n{tree}"
        );
    }
}

#[test]
fn libraries_without_a_model_link_no_libtorch() {
    for package in [
        "hipfrac-report",
        "hipfrac-study",
        "hipfrac-imaging",
        "hipfrac-data",
        "hipfrac-phantom",
        "hipfrac-files",
    ] {
        let tree = normal_dependencies(package);
        assert!(
            !tree.contains("torch-sys") && !tree.contains("tch "),
            "{package} depends on libtorch:\n{tree}"
        );
    }
}

#[test]
fn hipfrac_does_not_load_libtorch() {
    let binary = env!("CARGO_BIN_EXE_hipfrac");
    if !crate::support::have_tool("readelf", "--version") {
        return;
    }
    let out = Command::new("readelf")
        .args(["-d", binary])
        .output()
        .expect("readelf runs");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    assert!(dynamic.contains("NEEDED"), "{dynamic}");
    assert!(
        !dynamic.contains("libtorch") && !dynamic.contains("libc10"),
        "hipfrac links libtorch:\n{dynamic}"
    );
    let torch = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_hipfrac-torch")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&torch.stdout).contains("libtorch"),
        "the model binary should link libtorch"
    );
}

#[test]
fn model_commands_are_handed_to_hipfrac_torch() {
    // hipfrac parses every command line (one definition): the help of a model command, and a
    // model command line that does not parse, never reach hipfrac-torch.
    let out = Command::new(env!("CARGO_BIN_EXE_hipfrac"))
        .args(["predict", "--help"])
        .env("HIPFRAC_TORCH", "/nonexistent/hipfrac-torch")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--model") && help.contains("Usage: hipfrac predict"),
        "{help}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hipfrac"))
        .args(["predict", "x"])
        .env("HIPFRAC_TORCH", "/nonexistent/hipfrac-torch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model <MODEL>"));
    // A parsed model command goes to the sibling binary; without it, the error says where it
    // was looked for.
    let out = Command::new(env!("CARGO_BIN_EXE_hipfrac"))
        .args(["predict", "x", "--model", "m", "--out", "o"])
        .env("HIPFRAC_TORCH", "/nonexistent/hipfrac-torch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/hipfrac-torch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
