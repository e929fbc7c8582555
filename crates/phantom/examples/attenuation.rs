//! Writes the raw attenuation image (∫μ dl, before any acquisition effect) of one phantom
//! case as an 8-bit PNG, optionally with only some bodies — a tool for inspecting anatomy.
//!
//! `cargo run --release -p hipfrac-phantom --example attenuation -- OUT.png [SEED] [LABEL] [bones|all]`

use hipfrac_core::Label;
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::render::{project, Body, Scene};
use hipfrac_phantom::{grid, plan, scene, ClassMix, Femur};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .expect("usage: attenuation OUT.png [SEED] [LABEL] [bones|all]");
    let seed: u64 = args.get(2).map_or(1, |s| s.parse().expect("seed"));
    let label: Label = args.get(3).map_or(Label::NoFracture, |s| s.parse().expect("label"));
    let only_bones = args.get(4).is_some_and(|s| s == "bones");
    let site = SiteProfile::load("site-a").expect("the built-in site-a profile should load");
    let mut weights = [0.0; 5];
    weights[label.index()] = 1.0;
    let case = plan(1, &site, seed, &ClassMix(weights)).remove(0);
    let femur = Femur::new(&case, false);
    let mut scene: Scene = scene(&case, &femur, &site);
    if only_bones {
        scene.bodies.retain(|b| matches!(b, Body::Bone { .. }));
    }
    let grid = grid(&case, &site, 768);
    let image = project(&scene, &grid);
    let max = image.iter().cloned().fold(0f32, f32::max).max(1e-6);
    let grey: Vec<u8> = image.iter().map(|v| (v / max * 255.0) as u8).collect();
    hipfrac_dicom::png_io::write_png(
        std::path::Path::new(out),
        grid.width as u32,
        grid.height as u32,
        hipfrac_dicom::png_io::GreyPixels::Eight(&grey),
    )
    .unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    eprintln!(
        "{:?} severity {:.2} right {} max {max}",
        case.label, case.severity, case.params.right_side
    );
}
