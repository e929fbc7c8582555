//! Phantom v2: determinism, exact hip and DF boxes from the 3D geometry, intact femur for
//! "none", refusal of the fracture types v2 does not simulate yet. Small images keep them fast.

use hipfrac_core::{BBox, FractureClass, Label};
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::output::GenerateOptions;
use hipfrac_phantom::v2::{self, sdf::p3, Scene3};
use hipfrac_phantom::{plan, ClassMix};

fn mix(df: f64, none: f64) -> ClassMix {
    let mut weights = [0.0; 5];
    weights[Label::Fracture(FractureClass::DisplacedNeck).index()] = df;
    weights[Label::NoFracture.index()] = none;
    ClassMix(weights)
}

fn options(dir: &std::path::Path, seed: u64, mix: ClassMix) -> GenerateOptions {
    GenerateOptions {
        count: 3,
        site: SiteProfile::load("site-a").unwrap(),
        seed,
        size: 128,
        out: dir.to_path_buf(),
        mix,
        overwrite: true,
    }
}

fn all_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "images", "dicom"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for p in paths {
            out.push((
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out
}

#[test]
fn v2_same_seed_writes_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    v2::generate(&options(a.path(), 5, mix(1.0, 1.0)), || {}).unwrap();
    v2::generate(&options(b.path(), 5, mix(1.0, 1.0)), || {}).unwrap();
    v2::generate(&options(c.path(), 6, mix(1.0, 1.0)), || {}).unwrap();
    let (fa, fb, fc) = (all_files(a.path()), all_files(b.path()), all_files(c.path()));
    assert_eq!(fa.len(), 1 + 3 * 3, "manifest + PNG, XML and DICOM per image");
    assert!(fa == fb, "the same seed must write the same bytes");
    let dicoms = |f: &[(String, Vec<u8>)]| {
        f.iter()
            .filter(|(n, _)| n.ends_with(".dcm"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_ne!(dicoms(&fa), dicoms(&fc), "another seed must write other images");
    let manifest = std::fs::read_to_string(a.path().join("manifest.csv")).unwrap();
    assert!(manifest.lines().skip(1).all(|l| l.ends_with(",yes")), "{manifest}");
}

#[test]
fn v2_refuses_fracture_types_it_does_not_simulate() {
    let dir = tempfile::tempdir().unwrap();
    let error = v2::generate(&options(dir.path(), 1, ClassMix([1.0, 1.0, 0.0, 0.0, 1.0])), || {}).unwrap_err();
    assert!(error.to_string().contains("VF"), "{error}");
    assert!(!dir.path().join("manifest.csv").exists());
}

fn contains(b: &BBox, (x, y): (f64, f64)) -> bool {
    (b.x_min as f64) <= x && x <= b.x_max as f64 && (b.y_min as f64) <= y && y <= b.y_max as f64
}

#[test]
fn v2_hip_box_holds_head_and_lesser_trochanter_and_the_df_box_holds_the_cut() {
    let site = SiteProfile::load("site-a").unwrap();
    let cases = plan(8, &site, 11, &mix(1.0, 1.0));
    let size = 160;
    let mut sides = [0, 0];
    for case in &cases {
        let simulated = v2::simulate(case, &site, size);
        let scene = Scene3::new(case, false);
        let detector = v2::detector(case, &site, size, &scene.params);
        let width = detector.width as f64;
        let right = case.params.right_side;
        sides[right as usize] += 1;
        let written = |p| {
            let (x, y) = detector.project(p);
            (if right { x } else { width - x }, y)
        };
        let hip = simulated
            .hips
            .first()
            .expect("every v2 image carries the simulated hip's box");
        let head = written(scene.pieces[0].world(p3(0.0, 0.0, 0.0)));
        let lesser_piece = scene.pieces.last().unwrap();
        let lesser = written(lesser_piece.world(scene.femur.lesser_center));
        assert!(
            contains(hip, head),
            "{}: hip box {hip:?} misses the head centre {head:?}",
            case.name
        );
        assert!(
            contains(hip, lesser),
            "{}: hip box {hip:?} misses the lesser trochanter {lesser:?}",
            case.name
        );
        let area = (hip.x_max - hip.x_min) * (hip.y_max - hip.y_min);
        let image = (detector.width * detector.height) as f32;
        assert!(
            area > 0.03 * image && area < 0.5 * image,
            "{}: hip box covers {:.3}",
            case.name,
            area / image
        );
        match case.label {
            Label::NoFracture => {
                assert!(simulated.boxes.is_empty());
                let (cut, _, _) = v2::attenuation(case, &site, 96, false);
                let (whole, _, _) = v2::attenuation(case, &site, 96, true);
                assert_eq!(
                    cut, whole,
                    "{}: a case without fracture must be the intact femur",
                    case.name
                );
            }
            _ => {
                let (class, fracture) = simulated.boxes[0];
                assert_eq!(class, FractureClass::DisplacedNeck);
                assert!(contains(hip, (fracture.x_min as f64, fracture.y_min as f64)));
                assert!(contains(hip, (fracture.x_max as f64, fracture.y_max as f64)));
                let f = scene.fracture.as_ref().unwrap();
                let face = f.face_points(&scene.femur, 0.5);
                assert!(face.len() > 100, "the cut crosses the neck");
                let mut apart = f32::INFINITY;
                for &q in &face {
                    for piece in &scene.pieces {
                        let p = written(piece.world(q));
                        assert!(
                            contains(&fracture, p),
                            "{}: DF box {fracture:?} misses {p:?}",
                            case.name
                        );
                    }
                    apart = apart.min((scene.pieces[0].world(q) - scene.pieces[1].world(q)).length());
                }
                assert!(
                    apart >= 3.0,
                    "{}: fragments only {apart} mm apart at the cut",
                    case.name
                );
                // The fracture changes the film: the cut image differs from the intact one.
                let (cut, _, _) = v2::attenuation(case, &site, 96, false);
                let (whole, _, _) = v2::attenuation(case, &site, 96, true);
                assert_ne!(cut, whole);
            }
        }
    }
    assert!(sides[0] > 0 && sides[1] > 0, "both sides drawn: {sides:?}");
}
