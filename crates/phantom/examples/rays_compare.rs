//! Times phantom v2's ray casting on one thread (COUNT films of each built-in site at SIZE px)
//! and compares their attenuation with a reference dump written by an earlier run, so a change
//! to the caster shows both its speed and how far its images moved.
//! `cargo run --release -p hipfrac-phantom --example rays_compare -- SIZE COUNT FILE [write]`
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::{plan, ClassMix};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    const USAGE: &str = "usage: rays_compare SIZE COUNT FILE [write]";
    let size: usize = a.get(1).expect(USAGE).parse().expect("SIZE should be a whole number");
    let count: usize = a.get(2).expect(USAGE).parse().expect("COUNT should be a whole number");
    assert!(count > 0, "COUNT should be at least 1");
    let file = a.get(3).expect(USAGE);
    let write = a.get(4).is_some_and(|w| w == "write");
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the thread pool should start once");
    use hipfrac_phantom::v2::{detector, project, Scene3, FILTRATION_AL_MM};
    let mut all = Vec::new();
    let mut t_rays = 0.0;
    for name in ["site-a", "site-b", "site-c"] {
        let site = SiteProfile::load(name).unwrap_or_else(|e| panic!("built-in site {name}: {e}"));
        for case in plan(count, &site, 3, &ClassMix::default()) {
            let scene = Scene3::new(&case, false);
            let d = detector(&case, &site, size, &scene.params);
            let started = Instant::now();
            let paths = project::paths(&d, &scene.solids(), &scene.body);
            t_rays += started.elapsed().as_secs_f64();
            let spectrum = project::Spectrum::new(site.kvp, FILTRATION_AL_MM);
            all.extend(paths.iter().map(|p| spectrum.attenuation(p)));
        }
    }
    println!("rays {:.0} ms per image", 1000.0 * t_rays / (3 * count) as f64);
    if write {
        let bytes: Vec<u8> = all.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(file, bytes).unwrap_or_else(|e| panic!("cannot write {file}: {e}"));
        return;
    }
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        bytes.len(),
        4 * all.len(),
        "{file} holds another set (written with other SIZE or COUNT?)"
    );
    let reference: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let n = all.len() as f64;
    let (mut se, mut max, mut over) = (0.0f64, 0.0f32, 0usize);
    for (x, r) in all.iter().zip(&reference) {
        let e = (x - r).abs();
        se += (e as f64).powi(2);
        max = max.max(e);
        if e > 0.02 {
            over += 1;
        }
    }
    // Spread of the reference (what the tone curve stretches).
    let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (reference.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    println!(
        "rms diff {:.5} (reference sd {:.3}), max {:.4}, pixels off by >0.02: {:.4} %",
        (se / n).sqrt(),
        sd,
        max,
        100.0 * over as f64 / n
    );
}
