//! Times the stages of one phantom image (projection, acquisition) on one thread.
//! `cargo run --release -p hipfrac-phantom --example stages -- [SIZE] [COUNT] [SITE]`

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
