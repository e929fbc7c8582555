//! Phantom v2: determinism, exact hip and fracture boxes from the 3D geometry for DF, VF, SF
//! and UF, each type's 3D sign (DF apart, VF impacted, SF a small gap, UF a displaced lesser
//! trochanter and a shaft displaced medially and proximally), intact femur for "none". Small
//! images keep them fast.

use super::only;
use hipfrac_core::{BBox, FractureClass, Label};
use hipfrac_phantom::acquisition::SiteProfile;
use hipfrac_phantom::output::GenerateOptions;
use hipfrac_phantom::v2::{self, sdf::p3, sdf::P3, Scene3};
use hipfrac_phantom::{plan, CasePlan, ClassMix};

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
fn v2_vf_sf_and_uf_same_seed_write_byte_identical_files() {
    for class in [
        FractureClass::ValgusImpactedNeck,
        FractureClass::StableIntertrochanteric,
        FractureClass::UnstableIntertrochanteric,
    ] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut first = options(a.path(), 9, only(Label::Fracture(class)));
        first.count = 2;
        let mut second = options(b.path(), 9, only(Label::Fracture(class)));
        second.count = 2;
        let rows = v2::generate(&first, || {}).unwrap();
        v2::generate(&second, || {}).unwrap();
        assert!(rows.iter().all(|r| r.label == Label::Fracture(class)));
        assert!(
            all_files(a.path()) == all_files(b.path()),
            "{class:?}: the same seed must write the same bytes"
        );
    }
}

#[test]
fn v2_default_mix_is_v1s_paper_mix() {
    assert_eq!(v2::default_mix(), ClassMix::default());
}

fn contains(b: &BBox, (x, y): (f64, f64)) -> bool {
    (b.x_min as f64) <= x && x <= b.x_max as f64 && (b.y_min as f64) <= y && y <= b.y_max as f64
}

/// Every check of one case's boxes and fracture: the hip box holds the head centre and the
/// lesser trochanter (where their fragments carried them) and the fracture box; the fracture
/// box holds every fragment's cut faces sampled every 0.5 mm and, checked apart from them,
/// every bit of bone within 1 mm of a fragment's cut.
fn check_boxes(case: &CasePlan, site: &SiteProfile, size: usize) {
    let simulated = v2::simulate(case, site, size);
    let scene = Scene3::new(case, false);
    let detector = v2::detector(case, site, size, &scene.params);
    let width = detector.width as f64;
    let right = case.params.right_side;
    // Where a point lands in the written image: mirrored for a left hip, turned for a film
    // stored on its side.
    let turn = v2::stored_turn(case).map(|clockwise| v2::Turn {
        width: detector.width,
        height: detector.height,
        clockwise,
    });
    let written = |p| {
        let (x, y) = detector.project(p);
        let x = if right { x } else { width - x };
        match turn {
            Some(t) => {
                let (x, y) = t.point(x as f32, y as f32);
                (x as f64, y as f64)
            }
            None => (x, y),
        }
    };
    let (w, h) = (
        simulated.radiograph.width() as usize,
        simulated.radiograph.height() as usize,
    );
    assert_eq!(
        (w, h),
        if turn.is_some() {
            (detector.height, detector.width)
        } else {
            (detector.width, detector.height)
        },
        "{}: written size",
        case.name
    );
    let hip = simulated
        .hips
        .first()
        .expect("every v2 image carries the simulated hip's box");
    let head = written(scene.femur_point_world(p3(0.0, 0.0, 0.0)));
    let lesser = written(scene.femur_point_world(scene.femur.lesser_center));
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
    let Some(class) = case.label.fracture() else {
        assert!(simulated.boxes.is_empty());
        assert!(scene.fracture.is_none());
        let (cut, _, _) = v2::attenuation(case, site, 96, false);
        let (whole, _, _) = v2::attenuation(case, site, 96, true);
        assert_eq!(
            cut, whole,
            "{}: a case without fracture must be the intact femur",
            case.name
        );
        return;
    };
    let (box_class, fracture) = simulated.boxes[0];
    assert_eq!(box_class, class);
    assert_eq!(simulated.boxes.len(), 1);
    assert!(contains(hip, (fracture.x_min as f64, fracture.y_min as f64)));
    assert!(contains(hip, (fracture.x_max as f64, fracture.y_max as f64)));
    let f = scene.fracture.as_ref().unwrap();
    assert_eq!(scene.pieces.len(), f.fragments.len());
    for (k, piece) in scene.pieces.iter().enumerate() {
        let face = f.face_points(&scene.femur, k, 0.5);
        assert!(
            face.len() > 100,
            "{}: fragment {k} has {} cut points",
            case.name,
            face.len()
        );
        for &q in &face {
            let p = written(piece.world(q));
            assert!(
                contains(&fracture, p),
                "{}: {class:?} box {fracture:?} misses fragment {k}'s cut point {p:?}",
                case.name
            );
        }
        // Independently of the face sampling: bone of this fragment near its cut, on a
        // 2 mm lattice over head, neck and trochanters.
        let region = &f.fragments[k].region;
        let s = scene.femur.scale;
        let (lo, hi) = scene.femur.local_bounds();
        let top = scene.femur.lesser_center.y + 35.0 * s;
        let mut near = 0;
        let mut q = lo;
        while q.x <= hi.x {
            q.y = lo.y;
            while q.y <= top {
                q.z = lo.z;
                while q.z <= hi.z {
                    let d = region.distance(q);
                    if d > -1.0 && d <= 0.0 && scene.femur.distance(q) < -0.5 {
                        near += 1;
                        let p = written(piece.world(q));
                        assert!(
                            contains(&fracture, p),
                            "{}: {class:?} box {fracture:?} misses fragment {k}'s bone at the cut {p:?}",
                            case.name
                        );
                    }
                    q.z += 2.0;
                }
                q.y += 2.0;
            }
            q.x += 2.0;
        }
        assert!(
            near > 10,
            "{}: fragment {k}: only {near} lattice points by the cut",
            case.name
        );
    }
    let area = (fracture.x_max - fracture.x_min) * (fracture.y_max - fracture.y_min);
    assert!(
        area < 0.25 * image,
        "{}: fracture box covers {:.3}",
        case.name,
        area / image
    );
}

/// Each type's sign in 3D.
fn check_fracture_sign(case: &CasePlan) {
    let scene = Scene3::new(case, false);
    let Some(f) = scene.fracture.as_ref() else {
        return;
    };
    let faces = |k: usize| f.face_points(&scene.femur, k, 1.0);
    let moved = |k: usize, q: P3| scene.pieces[k].world(q);
    match f.class {
        FractureClass::DisplacedNeck => {
            let apart = faces(0)
                .iter()
                .map(|&q| (moved(0, q) - moved(1, q)).length())
                .fold(f32::INFINITY, f32::min);
            assert!(
                apart >= 3.0,
                "{}: fragments only {apart} mm apart at the cut",
                case.name
            );
        }
        FractureClass::ValgusImpactedNeck => {
            // The head's cut face, where the head carried it, lies inside the neck fragment
            // everywhere: the fragments overlap by at least 0.5 mm and at most ~10 mm.
            let shaft = &f.fragments[1].region;
            let depths: Vec<f32> = faces(0)
                .iter()
                .map(|&q| -shaft.distance(scene.pieces[1].local(moved(0, q))))
                .collect();
            let least = depths.iter().cloned().fold(f32::INFINITY, f32::min);
            let most = depths.iter().cloned().fold(0.0, f32::max);
            assert!(
                least >= 0.5 && most <= 12.0,
                "{}: impaction {least}..{most} mm",
                case.name
            );
            // The head's centre stays where it was (in the socket).
            let centre = moved(0, p3(0.0, 0.0, 0.0));
            assert!((centre - scene.pose.apply(p3(0.0, 0.0, 0.0))).length() < 1e-3);
        }
        FractureClass::StableIntertrochanteric => {
            let gaps: Vec<f32> = faces(1).iter().map(|&q| (moved(0, q) - moved(1, q)).length()).collect();
            let least = gaps.iter().cloned().fold(f32::INFINITY, f32::min);
            let most = gaps.iter().cloned().fold(0.0, f32::max);
            assert!(least >= 0.3 && most <= 6.5, "{}: SF gap {least}..{most} mm", case.name);
            // The greater trochanter stays with the head and neck.
            assert_eq!(f.fragment_of(scene.femur.greater_center), 0, "{}", case.name);
        }
        FractureClass::UnstableIntertrochanteric => {
            assert_eq!(f.fragments.len(), 3);
            let lt = scene.femur.lesser_center;
            assert_eq!(
                f.fragment_of(lt),
                2,
                "{}: the lesser trochanter is its own fragment",
                case.name
            );
            let shift = moved(2, lt) - scene.pose.apply(lt);
            assert!(
                shift.length() >= 3.0,
                "{}: lesser trochanter moved {shift:?}",
                case.name
            );
            // At the level of the fracture the shaft rides medially (+x) and proximally (−y)
            // in the femur's frame.
            let d = f.fragments[1].motion.apply(lt) - lt;
            assert!(
                d.x > 0.5 && d.y < -0.5,
                "{}: shaft moved {d:?} at the fracture",
                case.name
            );
            assert_eq!(f.fragment_of(scene.femur.greater_center), 0, "{}", case.name);
        }
    }
}

#[test]
fn v2_every_type_has_its_sign_and_boxes_that_hold_head_lesser_trochanter_and_every_cut_face() {
    let site = SiteProfile::load("site-a").unwrap();
    let size = 128;
    let mut sides = [0, 0];
    for label in Label::ALL {
        let cases = plan(4, &site, 21, &only(label));
        for case in &cases {
            sides[case.params.right_side as usize] += 1;
            check_boxes(case, &site, size);
            check_fracture_sign(case);
        }
    }
    assert!(sides[0] > 0 && sides[1] > 0, "both sides drawn: {sides:?}");
}

#[test]
fn v2_films_stored_turned_and_portrait_pelvis_films_keep_their_boxes() {
    // The first turned films and portrait AP pelvis films of each type's plan: the written
    // image is turned with its boxes (hip box over head and lesser trochanter, fracture box over
    // every cut face).
    let site = SiteProfile::load("site-a").unwrap();
    let (mut turned, mut portrait) = (0, 0);
    for label in Label::ALL {
        let cases = plan(60, &site, 5, &only(label));
        let pick = cases.iter().filter(|c| v2::stored_turn(c).is_some()).take(1).chain(
            cases
                .iter()
                .filter(|c| v2::pelvis_view(c) && v2::portrait_pelvis(c))
                .take(1),
        );
        for case in pick {
            turned += v2::stored_turn(case).is_some() as usize;
            portrait += (v2::pelvis_view(case) && v2::portrait_pelvis(case)) as usize;
            check_boxes(case, &site, 96);
        }
    }
    assert!(
        turned >= 4 && portrait >= 4,
        "{turned} turned, {portrait} portrait pelvis films checked"
    );
}

#[test]
fn v2_many_fractures_keep_their_3d_signs() {
    // Geometry only (no projection): many draws of each type.
    let site = SiteProfile::load("site-a").unwrap();
    let mut reverse = 0;
    for class in [
        FractureClass::DisplacedNeck,
        FractureClass::ValgusImpactedNeck,
        FractureClass::StableIntertrochanteric,
        FractureClass::UnstableIntertrochanteric,
    ] {
        for case in plan(24, &site, 33, &only(Label::Fracture(class))) {
            check_fracture_sign(&case);
            let scene = Scene3::new(&case, false);
            reverse += scene.fracture.unwrap().params.reverse_obliquity as usize;
        }
    }
    assert!(reverse > 0, "some UF are reverse oblique");
}

#[test]
fn v2_vf_changes_the_film_only_around_head_and_neck_and_adds_bone() {
    let site = SiteProfile::load("site-a").unwrap();
    let size = 96;
    for case in plan(3, &site, 17, &only(Label::Fracture(FractureClass::ValgusImpactedNeck))) {
        let (cut, _, detector) = v2::attenuation(&case, &site, size, false);
        let (whole, _, _) = v2::attenuation(&case, &site, size, true);
        let scene = Scene3::new(&case, true);
        let width = detector.width as f64;
        let right = case.params.right_side;
        let (hx, hy) = detector.project(scene.pieces[0].world(p3(0.0, 0.0, 0.0)));
        let hx = if right { hx } else { width - hx };
        // The head fragment reaches at most ~1.5 head radii from the centre (head, neck stub
        // and the impaction band); allow the detector's magnification and a pixel.
        let reach = (1.6 * scene.femur.head_radius) as f64 * detector.magnification() / detector.spacing + 1.5;
        let (mut changed, mut added) = (0, 0.0f64);
        for (i, (a, b)) in cut.iter().zip(&whole).enumerate() {
            if (a - b).abs() > 1e-5 {
                changed += 1;
                added += (a - b) as f64;
                let (x, y) = ((i % detector.width) as f64 + 0.5, (i / detector.width) as f64 + 0.5);
                let r = ((x - hx).powi(2) + (y - hy).powi(2)).sqrt();
                assert!(
                    r <= reach,
                    "{}: pixel ({x}, {y}) changed {} px from the head centre (reach {reach:.1})",
                    case.name,
                    r
                );
            }
        }
        assert!(changed > 5, "{}: the fracture must change the film", case.name);
        assert!(added > 0.0, "{}: the impaction band adds bone ({added})", case.name);
    }
}
