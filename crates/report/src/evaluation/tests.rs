//! Snapshots of a small evaluation's tables: twelve hand-made cases (no model), measured and
//! rendered as the report renders them. A change to a metric, a rounding or a layout shows
//! up here as a diff to review (`cargo insta review`). Checked by hand once: the shifted box
//! has IoU 10350/13525 = 0.7652 and Dice 20700/23875 = 0.8670 with the true one; UF at 0.30 is
//! a suspicious UF at the verdict and "no visible fracture" at the fracture point.

use super::render::{confusion_table, verdict_table};
use super::*;
use hipfrac_core::{BBox, Detection, OperatingPoints, Prediction};

/// Twelve cases, three patients per fracture type plus no fracture: the model finds most,
/// misses one DF, calls one VF a DF and raises one false alarm.
fn cases() -> Vec<Case> {
    let points = OperatingPoints::uncalibrated();
    let truth_box = BBox {
        x_min: 100.0,
        y_min: 100.0,
        x_max: 200.0,
        y_max: 220.0,
    };
    let shifted = BBox {
        x_min: 110.0,
        y_min: 105.0,
        x_max: 205.0,
        y_max: 230.0,
    };
    use FractureClass::*;
    let plan: [(Label, Option<(FractureClass, f32)>); 12] = [
        (Label::Fracture(DisplacedNeck), Some((DisplacedNeck, 0.9))),
        (Label::Fracture(DisplacedNeck), Some((DisplacedNeck, 0.7))),
        (Label::Fracture(DisplacedNeck), None),
        (Label::Fracture(ValgusImpactedNeck), Some((ValgusImpactedNeck, 0.8))),
        (Label::Fracture(ValgusImpactedNeck), Some((DisplacedNeck, 0.6))),
        (
            Label::Fracture(StableIntertrochanteric),
            Some((StableIntertrochanteric, 0.95)),
        ),
        (
            Label::Fracture(StableIntertrochanteric),
            Some((StableIntertrochanteric, 0.55)),
        ),
        (
            Label::Fracture(UnstableIntertrochanteric),
            Some((UnstableIntertrochanteric, 0.85)),
        ),
        (
            Label::Fracture(UnstableIntertrochanteric),
            Some((UnstableIntertrochanteric, 0.3)),
        ),
        (Label::NoFracture, None),
        (Label::NoFracture, Some((StableIntertrochanteric, 0.4))),
        (Label::NoFracture, None),
    ];
    plan.iter()
        .enumerate()
        .map(|(k, &(truth, found))| {
            let detections: Vec<Detection> = found
                .into_iter()
                .map(|(class, score)| Detection {
                    class,
                    score,
                    bbox: shifted,
                })
                .collect();
            let class_scores = hipfrac_core::verdict::class_scores(&detections);
            let verdict = hipfrac_core::verdict::decide(class_scores, &points);
            let truth_boxes = match truth {
                Label::Fracture(class) => vec![(class, truth_box)],
                Label::NoFracture | Label::UntypedFracture => vec![],
            };
            Case {
                image: format!("images/{k:02}.png"),
                path: format!("/data/images/{k:02}.png").into(),
                patient: format!("P{}", k / 2),
                site: "site-a".into(),
                truth,
                truth_boxes,
                untyped_boxes: vec![],
                prediction: Prediction {
                    width: 512,
                    height: 512,
                    detections,
                    class_scores,
                    answer: hipfrac_core::Answer::Verdict(verdict),
                    side: None,
                    hips: Vec::new(),
                },
                simulated: true,
            }
        })
        .collect()
}

#[test]
fn a_small_evaluation_renders_the_same_tables() {
    let section = measure("internal test", Path::new("splits/test.csv"), cases());
    insta::assert_snapshot!("one_screen", one_screen(&section));
    insta::assert_snapshot!(
        "verdict_table",
        verdict_table(&section.verdict, Some(&section)).markdown()
    );
    insta::assert_snapshot!("confusion_table", confusion_table(&section.verdict).markdown());
    insta::assert_snapshot!(
        "metrics_csv",
        String::from_utf8(metrics_csv(std::slice::from_ref(&section))).unwrap()
    );
}
