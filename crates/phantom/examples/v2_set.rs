//! Generates a phantom v2 set per built-in site (DICOM, PNG, VOC, manifest) with all cores,
//! for the realism metrics (`../shared/tools/realism`) without building the whole CLI.
//! `cargo run --release -p hipfrac-phantom --example v2_set -- OUT [COUNT per site] [SIZE] [SEED]`

use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::output::GenerateOptions;
use hipfrac_phantom::ClassMix;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).expect("usage: v2_set OUT [COUNT] [SIZE] [SEED]"));
    let count: usize = args.get(2).map_or(30, |s| s.parse().expect("COUNT"));
    let size: usize = args.get(3).map_or(640, |s| s.parse().expect("SIZE"));
    let seed: u64 = args.get(4).map_or(11, |s| s.parse().expect("SEED"));
    for name in ["site-a", "site-b", "site-c"] {
        let site = SiteProfile::load(name).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let options = GenerateOptions {
            count,
            site,
            seed,
            size,
            out: out.join(name),
            mix: ClassMix::default(),
            overwrite: true,
        };
        hipfrac_phantom::v2::generate(&options, || {}).unwrap_or_else(|e| panic!("{e}"));
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{name}: {count} images at {size} px in {seconds:.1} s ({:.2} images/s)",
            count as f64 / seconds
        );
    }
}
