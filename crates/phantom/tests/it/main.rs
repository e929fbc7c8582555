//! Phantom tests: determinism, read-back, dataset check, and a measurable radiographic sign
//! for each class. Small images keep them fast.

use hipfrac_core::{FractureClass, Label};
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::output::{generate, GenerateOptions};
use hipfrac_phantom::{attenuation, cut_pixels, grid, plan, simulate, CasePlan, ClassMix, Femur};
use std::path::Path;

mod v2;

fn only(label: Label) -> ClassMix {
    let mut weights = [0.0; 5];
    weights[label.index()] = 1.0;
    ClassMix(weights)
}

fn cases(label: Label, count: usize, seed: u64) -> (SiteProfile, Vec<CasePlan>) {
    let site = SiteProfile::load("site-a").unwrap();
    let cases = plan(count, &site, seed, &only(label));
    (site, cases)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "images", "dicom"] {
        let folder = dir.join(sub);
        let mut entries: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for path in entries {
            out.push((
                path.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
    out
}

fn run(dir: &Path, seed: u64, site: &str, count: usize) {
    let options = GenerateOptions {
        count,
        site: SiteProfile::load(site).unwrap(),
        seed,
        size: 160,
        out: dir.to_path_buf(),
        mix: ClassMix([1.0, 1.0, 1.0, 1.0, 1.0]),
        overwrite: true,
    };
    generate(&options, || {}).unwrap();
}

#[test]
fn same_seed_writes_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    run(a.path(), 5, "site-b", 6);
    run(b.path(), 5, "site-b", 6);
    run(c.path(), 6, "site-b", 6);
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.len(), 1 + 6 * 3);
    assert!(fa == fb, "same seed, different bytes");
    assert!(fa != fc, "another seed should give other images");
}

#[test]
fn every_dicom_reads_back_and_every_voc_passes_the_dataset_check() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), 11, "site-c", 8);
    let report = hipfrac_data::check::check_dataset(dir.path(), &hipfrac_data::LabelMap::default()).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.records.len(), 8);
    for record in &report.records {
        let name = record.image.file_stem().unwrap().to_string_lossy().to_string();
        let dicom = dir.path().join("dicom").join(format!("{name}.dcm"));
        let image = hipfrac_dicom::read_dicom(&dicom).unwrap();
        assert_eq!(image.meta.patient_id.as_deref(), Some(record.patient.as_str()));
        assert_eq!(image.meta.body_part.as_deref(), Some("HIP"));
        // The PNG is the DICOM through its own window, exactly as `hipfrac convert` renders it.
        let (grey, _) = hipfrac_dicom::display::render_8bit(&image, &hipfrac_dicom::display::VoiChoice::File).unwrap();
        let png = hipfrac_dicom::png_io::read_png(&record.image).unwrap();
        let png_values: Vec<u16> = (0..png.pixels.len()).map(|i| png.pixels.get(i) as u16).collect();
        assert!(
            png_values == grey.iter().map(|&g| g as u16).collect::<Vec<_>>(),
            "{name}"
        );
        if dcmtk_available() {
            let out = dir.path().join(format!("{name}.pgm"));
            let status = std::process::Command::new("dcmj2pnm")
                .arg(&dicom)
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "dcmtk could not read {name}");
        }
    }
}

fn dcmtk_available() -> bool {
    let ok = std::process::Command::new("dcmj2pnm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("HIPFRAC_REQUIRE_DCMTK").is_some() {
        panic!("dcmtk is required");
    }
    ok
}

/// Mean of `image` at the given pixel positions.
fn mean_at(image: &[f32], width: usize, height: usize, points: &[(f64, f64)]) -> f64 {
    let inside: Vec<f64> = points
        .iter()
        .filter(|(x, y)| *x >= 0.0 && *y >= 0.0 && (*x as usize) < width && (*y as usize) < height)
        .map(|(x, y)| image[*y as usize * width + *x as usize] as f64)
        .collect();
    inside.iter().sum::<f64>() / inside.len().max(1) as f64
}

#[test]
fn valgus_impaction_leaves_a_dense_band_along_the_cut() {
    let (site, cases) = cases(Label::Fracture(FractureClass::ValgusImpactedNeck), 12, 21);
    for case in cases
        .iter()
        .filter(|c| c.index == 0 || c.patient_id != cases[c.index - 1].patient_id)
    {
        let (fractured, grid) = attenuation(case, &site, 320, false);
        let (intact, _) = attenuation(case, &site, 320, true);
        let difference: Vec<f32> = fractured.iter().zip(&intact).map(|(a, b)| a - b).collect();
        let femur = Femur::new(case, false);
        let cut = cut_pixels(&femur, &grid, case.params.right_side, 1.0);
        // Beside the cut: the same points moved 8 mm along the neck, both ways.
        let axis = femur.pose.rotation.apply(femur.frame.neck_axis);
        let sign = if case.params.right_side { 1.0 } else { -1.0 };
        let shift = |k: f64| -> Vec<(f64, f64)> {
            cut.iter()
                .map(|(x, y)| (x + sign * k * axis.0 / grid.spacing, y + k * axis.1 / grid.spacing))
                .collect()
        };
        let band = mean_at(&difference, grid.width, grid.height, &cut);
        let beside = 0.5
            * (mean_at(&difference, grid.width, grid.height, &shift(8.0))
                + mean_at(&difference, grid.width, grid.height, &shift(-8.0)));
        assert!(
            band > 0.01 && band > beside + 0.01,
            "{}: band {band:.4}, beside {beside:.4}",
            case.name
        );
    }
}

#[test]
fn displaced_neck_fractures_move_the_head_and_shaft_apart() {
    let (_, cases) = cases(Label::Fracture(FractureClass::DisplacedNeck), 15, 22);
    for case in &cases {
        let femur = Femur::new(case, false);
        let displacement = femur.fracture.displacement_at_cut();
        assert!(displacement >= 3.0, "{}: {displacement:.2} mm", case.name);
        assert_eq!(femur.fracture.fragments.len(), 2);
    }
}

#[test]
fn unstable_fractures_free_the_lesser_trochanter_and_stable_ones_barely_move() {
    let (_, unstable) = cases(Label::Fracture(FractureClass::UnstableIntertrochanteric), 15, 23);
    for case in &unstable {
        let femur = Femur::new(case, false);
        let fragments = &femur.fracture.fragments;
        assert_eq!(fragments.len(), 3, "head-neck, shaft, lesser trochanter");
        let lt = femur.frame.lesser_trochanter;
        let separation = (fragments[2].motion.apply(lt) - fragments[1].motion.apply(lt)).norm();
        assert!(
            separation >= 3.0,
            "{}: lesser trochanter {separation:.2} mm from the shaft",
            case.name
        );
        // The lesser trochanter lies in its own fragment's region.
        for (i, h) in fragments[2].region.keep.iter().enumerate() {
            assert!(
                h.contains(lt),
                "{}: half-space {i} of the lesser-trochanter region misses it ({:?})",
                case.name,
                femur.fracture.params
            );
        }
        assert!(fragments[2].region.contains(lt) && !fragments[1].region.contains(lt));
    }
    let (_, stable) = cases(Label::Fracture(FractureClass::StableIntertrochanteric), 15, 24);
    for case in &stable {
        let femur = Femur::new(case, false);
        let displacement = femur.fracture.displacement_at_cut();
        assert!(
            (0.5..6.0).contains(&displacement),
            "{}: {displacement:.2} mm",
            case.name
        );
        assert_eq!(femur.fracture.fragments.len(), 2);
    }
}

#[test]
fn no_fracture_means_an_intact_femur_and_no_box() {
    let (site, cases) = cases(Label::NoFracture, 3, 25);
    for case in &cases {
        let femur = Femur::new(case, false);
        assert_eq!(femur.fracture.fragments.len(), 1);
        assert!(femur.fracture.faces.is_empty());
        let (a, _) = attenuation(case, &site, 128, false);
        let (b, _) = attenuation(case, &site, 128, true);
        assert!(a == b);
        assert!(simulate(case, &site, 128).boxes.is_empty());
    }
}

#[test]
fn every_box_contains_the_whole_cut_within_bone() {
    for (index, class) in FractureClass::ALL.iter().enumerate() {
        let (site, cases) = cases(Label::Fracture(*class), 4, 30 + index as u64);
        for case in &cases {
            let simulated = simulate(case, &site, 256);
            assert_eq!(simulated.boxes.len(), 1, "{}", case.name);
            let (box_class, bbox) = simulated.boxes[0];
            assert_eq!(box_class, *class);
            let femur = Femur::new(case, false);
            let g = grid(case, &site, 256);
            let cut = cut_pixels(&femur, &g, case.params.right_side, 0.5);
            assert!(cut.len() > 20, "{}: the cut should cross bone", case.name);
            for (x, y) in &cut {
                let (x, y) = (x.clamp(0.0, g.width as f64), y.clamp(0.0, g.height as f64));
                assert!(
                    x as f32 >= bbox.x_min
                        && x as f32 <= bbox.x_max
                        && y as f32 >= bbox.y_min
                        && y as f32 <= bbox.y_max,
                    "{}: cut point ({x:.1}, {y:.1}) outside {bbox:?}",
                    case.name
                );
            }
            // And the box is about the fracture, not the whole hip.
            assert!(
                bbox.area() < 0.25 * (g.width * g.height) as f32,
                "{}: {bbox:?}",
                case.name
            );
        }
    }
}

#[test]
fn every_image_has_a_hip_box_around_the_head_trochanters_and_fracture() {
    let labels = [Label::NoFracture]
        .into_iter()
        .chain(FractureClass::ALL.iter().map(|c| Label::Fracture(*c)));
    for (index, label) in labels.enumerate() {
        let (site, cases) = cases(label, 4, 60 + index as u64);
        for case in &cases {
            let simulated = simulate(case, &site, 256);
            let g = grid(case, &site, 256);
            assert!(!simulated.hips.is_empty(), "{}: no hip box", case.name);
            let hip = simulated.hips[0];
            assert!(hip.is_inside(g.width as u32, g.height as u32), "{}: {hip:?}", case.name);
            // The femoral head's centre (the world origin: the pose puts it on the hip centre).
            let (x, y) = g.pixel(0.0, 0.0);
            let x = if case.params.right_side { x } else { g.width as f64 - x };
            assert!(
                hip.x_min as f64 <= x && x <= hip.x_max as f64 && hip.y_min as f64 <= y && y <= hip.y_max as f64,
                "{}: head ({x:.0}, {y:.0}) outside {hip:?}",
                case.name
            );
            if let Some((_, fracture)) = simulated.boxes.first() {
                assert!(
                    hip.x_min <= fracture.x_min
                        && hip.y_min <= fracture.y_min
                        && hip.x_max >= fracture.x_max
                        && hip.y_max >= fracture.y_max,
                    "{}: {fracture:?} not in {hip:?}",
                    case.name
                );
            }
            // A proximal femur, not the whole film nor a speck.
            let share = hip.area() / (g.width * g.height) as f32;
            assert!(
                (0.03..0.5).contains(&share),
                "{}: hip box covers {share:.2} of the image",
                case.name
            );
        }
    }
}

#[test]
fn two_sites_look_like_two_hospitals() {
    let a = SiteProfile::load("site-a").unwrap();
    let b = SiteProfile::load("site-b").unwrap();
    let case = plan(1, &a, 40, &only(Label::Fracture(FractureClass::DisplacedNeck))).remove(0);
    let (ra, rb) = (simulate(&case, &a, 192).radiograph, simulate(&case, &b, 192).radiograph);
    assert_ne!(ra.meta.photometric, rb.meta.photometric);
    assert_ne!(ra.meta.bits_stored, rb.meta.bits_stored);
    assert_ne!((ra.width(), ra.height()), (rb.width(), rb.height()));
    assert_ne!(ra.meta.institution, rb.meta.institution);
}

#[test]
fn class_mix_is_followed_and_patients_share_images() {
    let site = SiteProfile::load("site-a").unwrap();
    let cases = plan(4000, &site, 1, &ClassMix::default());
    let total: f64 = ClassMix::default().0.iter().sum();
    for (label, weight) in Label::ALL.iter().zip(ClassMix::default().0) {
        let share = cases.iter().filter(|c| c.label == *label).count() as f64 / cases.len() as f64;
        assert!(
            (share - weight / total).abs() < 0.03,
            "{label}: {share:.3} vs {:.3}",
            weight / total
        );
    }
    let mut patients: Vec<&str> = cases.iter().map(|c| c.patient_id.as_str()).collect();
    patients.dedup();
    assert!(patients.len() < cases.len() * 3 / 4, "several images per patient");
    assert!("DF=1,none=2".parse::<ClassMix>().unwrap().0 == [1.0, 0.0, 0.0, 0.0, 2.0]);
    assert!("DF=x".parse::<ClassMix>().is_err());
    assert!("femur=1".parse::<ClassMix>().is_err());
    assert!(SiteProfile::load("nowhere").unwrap_err().to_string().contains("site-a"));
}

#[test]
fn errors_name_the_value_or_file_and_keep_their_cause() {
    let chain = |error: &dyn std::error::Error| hipfrac_core::error_chain(error);
    let err = "femur=1".parse::<ClassMix>().unwrap_err();
    assert_eq!(err.to_string(), "--mix \"femur=1\"");
    assert!(
        chain(&err).starts_with("--mix \"femur=1\": unknown label \"femur\""),
        "{}",
        chain(&err)
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    let text = hipfrac_phantom::acquisition::BUILT_IN[0]
        .1
        .replace("bits_stored = ", "bits_stored = 8 #");
    std::fs::write(&path, text).unwrap();
    let err = SiteProfile::load(path.to_str().unwrap()).unwrap_err();
    assert_eq!(chain(&err), format!("{}: bits_stored 8 must be 10–16", path.display()));
    std::fs::write(&path, "name = ").unwrap();
    let err = SiteProfile::load(path.to_str().unwrap()).unwrap_err();
    assert_eq!(err.to_string(), path.display().to_string());
    assert!(std::error::Error::source(&err).is_some());
}
