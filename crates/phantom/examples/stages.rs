//! Times the stages of one phantom image (projection, acquisition) on one thread.
//! `cargo run --release -p hipfrac-phantom --example stages -- [SIZE] [COUNT] [SITE] [v1|v2]`

use hipfrac_phantom::acquisition::{expose, SiteProfile};
use hipfrac_phantom::{grid, plan, render::project, scene, ClassMix, Femur};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args
        .get(1)
        .map_or(1024, |s| s.parse().expect("SIZE should be a whole number"));
    let count: usize = args
        .get(2)
        .map_or(6, |s| s.parse().expect("COUNT should be a whole number"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the thread pool should start once");
    let site = SiteProfile::load(args.get(3).map_or("site-a", |s| s.as_str())).unwrap_or_else(|e| panic!("{e}"));
    let (mut t_project, mut t_expose, mut t_total) = (0.0, 0.0, 0.0);
    let out = std::env::temp_dir().join("hipfrac-stages");
    if args.get(4).is_some_and(|g| g == "v2") {
        return v2(&site, size, count, &out);
    }
    for case in plan(count, &site, 3, &ClassMix::default()) {
        let femur = Femur::new(&case, false);
        let g = grid(&case, &site, size);
        let started = Instant::now();
        let image = project(&scene(&case, &femur, &site), &g);
        t_project += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let _ = expose(&image, g.width, g.height, g.spacing, &site, &case.exposure);
        t_expose += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let simulated = hipfrac_phantom::simulate(&case, &site, size);
        hipfrac_phantom::output::write_case(&out, &case, &site, &simulated)
            .unwrap_or_else(|e| panic!("cannot write the case: {e}"));
        t_total += started.elapsed().as_secs_f64();
    }
    let n = count as f64;
    println!(
        "{} per image on one thread: projection {:.0} ms, acquisition {:.0} ms; whole case with writing {:.0} ms",
        site.name,
        1000.0 * t_project / n,
        1000.0 * t_expose / n,
        1000.0 * t_total / n
    );
}

/// The same stages for phantom v2: scene, ray casting (path lengths), spectrum, acquisition.
fn v2(site: &SiteProfile, size: usize, count: usize, out: &std::path::Path) {
    use hipfrac_phantom::v2::{acquire, detector, project, Scene3, FILTRATION_AL_MM};
    let (mut t_scene, mut t_rays, mut t_spectrum, mut t_expose, mut t_total) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for case in plan(count, site, 3, &ClassMix::default()) {
        let started = Instant::now();
        let scene = Scene3::new(&case, false);
        t_scene += started.elapsed().as_secs_f64();
        let d = detector(&case, site, size, &scene.params);
        let started = Instant::now();
        let paths = project::paths(&d, &scene.solids(), &scene.body);
        t_rays += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let spectrum = project::Spectrum::new(site.kvp, FILTRATION_AL_MM);
        let image: Vec<f32> = paths.iter().map(|p| spectrum.attenuation(p)).collect();
        t_spectrum += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let _ = acquire::expose(&image, d.width, d.height, d.spacing, site, &case.exposure);
        t_expose += started.elapsed().as_secs_f64();
        let started = Instant::now();
        let simulated = hipfrac_phantom::v2::simulate(&case, site, size);
        hipfrac_phantom::output::write_case(out, &case, site, &simulated)
            .unwrap_or_else(|e| panic!("cannot write the case: {e}"));
        t_total += started.elapsed().as_secs_f64();
    }
    let ms = |t: f64| 1000.0 * t / count as f64;
    println!(
        "{} v2 per image on one thread: scene {:.0} ms, rays {:.0} ms, spectrum {:.0} ms, acquisition {:.0} ms; whole case with writing {:.0} ms",
        site.name,
        ms(t_scene),
        ms(t_rays),
        ms(t_spectrum),
        ms(t_expose),
        ms(t_total)
    );
}
