//! Where a CUDA build of libtorch 2.11 is on this host. The binaries link only libtorch's CPU
//! library and load `libtorch_cuda.so` at run time (so one build runs on hosts with and without
//! a GPU, and the CUDA libraries need not be present to build it); it must come from the same
//! torch as the CPU library, so `hipfrac` finds one and hands `hipfrac-torch` an
//! LD_LIBRARY_PATH that puts it first. Searched, in order:
//!
//! 1. `HIPFRAC_TORCH_LIB` (a torch `lib` folder; when set, nothing else is tried);
//! 2. the folders of `LD_LIBRARY_PATH`;
//! 3. `LIBTORCH/lib` (tch's convention for an unpacked libtorch);
//! 4. the active Python environment: `VIRTUAL_ENV`, `CONDA_PREFIX`;
//! 5. common places: the project's `.venv` (scripts/setup.sh --cuda), `./.venv`, `~/.venv`,
//!    `/opt/torch/.venv`, `/opt/conda`, `/usr/local/lib/python3*/dist-packages`,
//!    `~/.local/lib/python3*/site-packages`;
//! 6. for an explicit `--device cuda`, the `python3` on PATH (`import torch`).
//!
//! A folder qualifies when it holds `libtorch_cuda.so` and `libtorch_cpu.so`, its torch is
//! 2.11 (from `torch/version.py` where there is one), and the CUDA libraries libtorch_cuda
//! needs (cuBLAS) are beside it or in the wheel's `nvidia/` packages.

use std::path::{Path, PathBuf};

/// The torch version the binaries are built against (tch 0.24).
pub const TORCH_VERSION: &str = "2.11";

/// What the search found and everything it looked at.
#[derive(Debug, Default)]
pub struct Search {
    pub found: Option<PathBuf>,
    /// Each place looked at and why it did not qualify.
    pub tried: Vec<(PathBuf, String)>,
}

impl Search {
    /// The search as lines for an error message.
    pub fn report(&self) -> String {
        let mut text = String::from("looked for a CUDA build of torch 2.11 (libtorch_cuda.so):");
        for (place, why) in &self.tried {
            text.push_str(&format!("\n  {}: {why}", place.display()));
        }
        if self.tried.is_empty() {
            text.push_str("\n  (nowhere to look)");
        }
        text.push_str("\nset HIPFRAC_TORCH_LIB to a CUDA torch's lib folder, or run scripts/setup.sh --cuda");
        text
    }
}

/// Why `dir` is not a usable CUDA torch, or None when it is.
pub fn unusable(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some("no such folder".into());
    }
    if !dir.join("libtorch_cuda.so").is_file() {
        return Some("no libtorch_cuda.so (a CPU-only torch, or not torch)".into());
    }
    if !dir.join("libtorch_cpu.so").is_file() {
        return Some("no libtorch_cpu.so beside libtorch_cuda.so".into());
    }
    if let Some(version) = torch_version(dir) {
        if !(version == TORCH_VERSION
            || version.starts_with(&format!("{TORCH_VERSION}."))
            || version.starts_with(&format!("{TORCH_VERSION}+")))
        {
            return Some(format!("torch {version}; hipfrac needs {TORCH_VERSION}"));
        }
    }
    if !has_cublas(dir) {
        return Some("libtorch_cuda.so is there, but not the CUDA libraries it needs (cuBLAS); scripts/setup.sh --cuda installs them".into());
    }
    None
}

/// `__version__` from `torch/version.py` next to a wheel's `torch/lib`.
fn torch_version(lib: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}

/// cuBLAS beside libtorch (an unpacked libtorch) or in a wheel's `site-packages/nvidia/*/lib`.
fn has_cublas(lib: &Path) -> bool {
    let holds = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libcublas"))
            })
            .unwrap_or(false)
    };
    if holds(lib) {
        return true;
    }
    let Some(nvidia) = lib.parent().and_then(Path::parent).map(|site| site.join("nvidia")) else {
        return false;
    };
    std::fs::read_dir(&nvidia)
        .map(|d| d.flatten().any(|package| holds(&package.path().join("lib"))))
        .unwrap_or(false)
}

/// `<prefix>/lib/python3*/{site,dist}-packages/torch/lib` for each Python under `prefix`.
fn python_torch_libs(prefix: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
        return vec![prefix.join("lib/python3/site-packages/torch/lib")];
    };
    let mut pythons: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        })
        .collect();
    pythons.sort();
    for python in pythons {
        for packages in ["site-packages", "dist-packages"] {
            let lib = python.join(packages).join("torch/lib");
            if lib.is_dir() {
                found.push(lib);
            }
        }
    }
    if found.is_empty() {
        found.push(prefix.join("lib/python3*/site-packages/torch/lib"));
    }
    found
}

/// Searches the host. `env` reads an environment variable; `project_venv` is the `.venv`
/// the binary was built with (if known); `ask_python` allows running `python3`.
pub fn search(env: &dyn Fn(&str) -> Option<String>, project_venv: Option<PathBuf>, ask_python: bool) -> Search {
    let mut search = Search::default();
    let try_dir = |search: &mut Search, dir: PathBuf| -> bool {
        // One folder reached by two names (./.venv and the project's) is tried once.
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        if search.found.is_some() || search.tried.iter().any(|(d, _)| d == &dir) {
            return search.found.is_some();
        }
        match unusable(&dir) {
            None => {
                search.found = Some(dir);
                true
            }
            Some(why) => {
                search.tried.push((dir, why));
                false
            }
        }
    };
    if let Some(dir) = env("HIPFRAC_TORCH_LIB").filter(|v| !v.is_empty()) {
        try_dir(&mut search, PathBuf::from(dir));
        return search;
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(paths) = env("LD_LIBRARY_PATH") {
        candidates.extend(paths.split(':').filter(|p| !p.is_empty()).map(PathBuf::from));
    }
    if let Some(libtorch) = env("LIBTORCH") {
        candidates.push(PathBuf::from(libtorch).join("lib"));
    }
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(prefix) = env(var) {
            candidates.extend(python_torch_libs(Path::new(&prefix)));
        }
    }
    let home = env("HOME").map(PathBuf::from);
    let mut prefixes: Vec<PathBuf> = project_venv.into_iter().collect();
    prefixes.push(PathBuf::from(".venv"));
    prefixes.extend(home.iter().map(|h| h.join(".venv")));
    prefixes.extend([
        PathBuf::from("/opt/torch/.venv"),
        PathBuf::from("/opt/conda"),
        PathBuf::from("/usr/local"),
        PathBuf::from("/usr"),
    ]);
    prefixes.extend(home.iter().map(|h| h.join(".local")));
    for prefix in prefixes {
        candidates.extend(python_torch_libs(&prefix));
    }
    for dir in candidates {
        if try_dir(&mut search, dir) {
            return search;
        }
    }
    if ask_python {
        let asked = std::process::Command::new("python3")
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .stderr(std::process::Stdio::null())
            .output();
        match asked {
            Ok(out) if out.status.success() => {
                let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                try_dir(&mut search, dir);
            }
            _ => search.tried.push((
                PathBuf::from("python3 -c 'import torch'"),
                "no python3 with torch on PATH".into(),
            )),
        }
    }
    search
}

/// The project's `.venv`, from the binary's place (`<root>/target/<profile>/hipfrac`).
pub fn project_venv() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let root = exe.parent()?.parent()?.parent()?;
    Some(root.join(".venv"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fake wheel layout under `root`: site-packages/torch/{lib,version.py} and, with
    /// `cublas`, site-packages/nvidia/cu13/lib/libcublas.so.13.
    fn wheel(root: &Path, version: &str, cuda: bool, cublas: bool) -> PathBuf {
        let site = root.join("lib/python3.12/site-packages");
        let lib = site.join("torch/lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libtorch_cpu.so"), b"").unwrap();
        if cuda {
            std::fs::write(lib.join("libtorch_cuda.so"), b"").unwrap();
        }
        std::fs::write(site.join("torch/version.py"), format!("__version__ = '{version}'\n")).unwrap();
        if cublas {
            std::fs::create_dir_all(site.join("nvidia/cu13/lib")).unwrap();
            std::fs::write(site.join("nvidia/cu13/lib/libcublas.so.13"), b"").unwrap();
        }
        lib
    }

    fn env_of(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn finds_the_active_venv_and_says_why_others_do_not_qualify() {
        let temp = tempfile::tempdir().unwrap();
        let cpu_only = wheel(&temp.path().join("cpu"), "2.11.0+cpu", false, false);
        let old = wheel(&temp.path().join("old"), "2.10.1+cu128", true, true);
        let no_cublas = wheel(&temp.path().join("bare"), "2.11.0+cu130", true, false);
        let good = wheel(&temp.path().join("good"), "2.11.0+cu130", true, true);
        let ld = format!("{}:{}:{}", cpu_only.display(), old.display(), no_cublas.display());
        let env = env_of(&[
            ("LD_LIBRARY_PATH", ld),
            ("VIRTUAL_ENV", temp.path().join("good").display().to_string()),
        ]);
        let found = search(&env, None, false);
        assert_eq!(found.found.as_deref(), Some(good.as_path()), "{}", found.report());
        let why: Vec<&str> = found.tried.iter().map(|(_, w)| w.as_str()).collect();
        assert!(
            why[0].contains("CPU-only") && why[1].contains("torch 2.10.1+cu128") && why[2].contains("cuBLAS"),
            "{why:?}"
        );
    }

    #[test]
    fn an_explicit_folder_is_the_only_place_tried() {
        let temp = tempfile::tempdir().unwrap();
        let good = wheel(&temp.path().join("good"), "2.11.0", true, true);
        let env = env_of(&[
            ("HIPFRAC_TORCH_LIB", temp.path().join("nowhere").display().to_string()),
            ("VIRTUAL_ENV", temp.path().join("good").display().to_string()),
        ]);
        let found = search(&env, None, false);
        assert!(found.found.is_none() && found.tried.len() == 1, "{}", found.report());
        assert!(found.report().contains("nowhere: no such folder") && found.report().contains("HIPFRAC_TORCH_LIB"));
        let env = env_of(&[("HIPFRAC_TORCH_LIB", good.display().to_string())]);
        assert_eq!(search(&env, None, false).found, Some(good));
    }
}
