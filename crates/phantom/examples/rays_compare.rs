//! Experiment: times v2's ray casting on one thread and compares the attenuation with a
//! reference dump. `rays_compare SIZE COUNT FILE [write]`
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::{plan, ClassMix};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let size: usize = a[1].parse().unwrap();
    let count: usize = a[2].parse().unwrap();
    let file = &a[3];
    let write = a.get(4).is_some_and(|w| w == "write");
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().unwrap();
    use hipfrac_phantom::v2::{detector, project, Scene3, FILTRATION_AL_MM};
    let mut all = Vec::new();
    let mut t_rays = 0.0;
    for name in ["site-a", "site-b", "site-c"] {
        let site = SiteProfile::load(name).unwrap();
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
        std::fs::write(file, bytes).unwrap();
        return;
    }
    let bytes = std::fs::read(file).unwrap();
    let reference: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(reference.len(), all.len());
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
