//! hipfrac-eval against hand-computed tables and golden values from reference
//! implementations (pycocotools, scikit-learn, statsmodels), pasted beside each test.

use hipfrac_core::{BBox, Detection, FractureClass, Label};
use hipfrac_eval::calibration::reliability;
use hipfrac_eval::classification::{summarize, ImageOutcome};
use hipfrac_eval::intervals::{bootstrap_by_cluster, wilson, Z95};
use hipfrac_eval::map::{average_precision, coco_map, ImageBoxes};
use hipfrac_eval::roc::{auc, roc_curve};

const TOLERANCE: f64 = 1e-9;

use FractureClass::*;

fn xywh(x: f32, y: f32, w: f32, h: f32) -> BBox {
    BBox::new(x, y, x + w, y + h)
}

fn outcome(truth: Label, answer: Label) -> ImageOutcome {
    ImageOutcome {
        image: String::new(),
        patient: String::new(),
        truth,
        answer,
        truth_boxes: vec![],
        predicted_boxes: vec![],
    }
}

/// 20 images by hand: 5 DF (4 answered DF, 1 VF), 5 VF (3 VF, 1 DF, 1 none), 4 SF (4 SF),
/// 3 UF (2 UF, 1 SF), 3 none (2 none, 1 UF).
fn table() -> Vec<ImageOutcome> {
    let (df, vf, sf, uf, none) = (
        Label::Fracture(DisplacedNeck),
        Label::Fracture(ValgusImpactedNeck),
        Label::Fracture(StableIntertrochanteric),
        Label::Fracture(UnstableIntertrochanteric),
        Label::NoFracture,
    );
    let mut rows = Vec::new();
    let mut push = |truth, answer, n| (0..n).for_each(|_| rows.push(outcome(truth, answer)));
    push(df, df, 4);
    push(df, vf, 1);
    push(vf, vf, 3);
    push(vf, df, 1);
    push(vf, none, 1);
    push(sf, sf, 4);
    push(uf, uf, 2);
    push(uf, sf, 1);
    push(none, none, 2);
    push(none, uf, 1);
    rows
}

#[test]
fn per_class_micro_macro_and_confusion_by_hand() {
    let summary = summarize(&table());
    assert_eq!(summary.images, 20);
    // DF: TP 4, FN 1, FP 1 (a VF answered DF), TN 14.
    let df = &summary.per_class[0];
    assert_eq!((df.counts.tp, df.counts.fn_, df.counts.fp, df.counts.tn), (4, 1, 1, 14));
    assert!((df.sensitivity.value - 0.8).abs() < TOLERANCE);
    assert!((df.specificity.value - 14.0 / 15.0).abs() < TOLERANCE);
    assert!((df.accuracy.value - 18.0 / 20.0).abs() < TOLERANCE);
    // SF: TP 4, FN 0, FP 1 (a UF answered SF), TN 15.
    let sf = &summary.per_class[2];
    assert_eq!((sf.counts.tp, sf.counts.fn_, sf.counts.fp, sf.counts.tn), (4, 0, 1, 15));
    // Micro: TP 4+3+4+2 = 13, FN 1+2+0+1 = 4, FP 1+1+1+1 = 4, TN 14+14+15+16 = 59.
    assert!((summary.micro.sensitivity - 13.0 / 17.0).abs() < TOLERANCE);
    assert!((summary.micro.specificity - 59.0 / 63.0).abs() < TOLERANCE);
    // Macro: mean of 4/5, 3/5, 4/4, 2/3.
    assert!((summary.macro_average.sensitivity - (0.8 + 0.6 + 1.0 + 2.0 / 3.0) / 4.0).abs() < TOLERANCE);
    // Confusion: row = truth, column = answer, in DF, VF, SF, UF, none order.
    assert_eq!(summary.confusion[1], [1, 3, 0, 0, 1]);
    assert_eq!(summary.confusion[4], [0, 0, 0, 1, 2]);
    assert_eq!(summary.confusion.iter().flatten().sum::<u64>(), 20);
}

#[test]
fn iou_and_dice_of_matched_boxes() {
    let truth = xywh(0.0, 0.0, 10.0, 10.0);
    let mut a = outcome(
        Label::Fracture(StableIntertrochanteric),
        Label::Fracture(StableIntertrochanteric),
    );
    a.truth_boxes = vec![(StableIntertrochanteric, truth)];
    a.predicted_boxes = vec![
        Detection {
            class: StableIntertrochanteric,
            score: 0.9,
            bbox: xywh(5.0, 0.0, 10.0, 10.0),
        }, // IoU 1/3
        Detection {
            class: StableIntertrochanteric,
            score: 0.5,
            bbox: xywh(0.0, 0.0, 10.0, 10.0),
        }, // IoU 1
    ];
    let mut b = a.clone();
    b.predicted_boxes = vec![Detection {
        class: StableIntertrochanteric,
        score: 0.9,
        bbox: xywh(0.0, 0.0, 10.0, 5.0),
    }]; // IoU 1/2
        // A miss contributes no pair.
    let mut c = a.clone();
    c.answer = Label::NoFracture;
    let summary = summarize(&[a, b, c]);
    let sf = &summary.per_class[2];
    assert_eq!(sf.matched_boxes, 2);
    // Best match per true box: 1 and 1/2.
    assert!((sf.mean_iou.unwrap() - 0.75).abs() < 1e-6);
    // Per-box Dice: 1 and 2/3; their mean differs from the Dice of the mean IoU.
    assert!((sf.mean_dice.unwrap() - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-6);
    assert!((sf.dice_from_mean_iou.unwrap() - 1.5 / 1.75).abs() < 1e-6);
}

/// ```python
/// from statsmodels.stats.proportion import proportion_confint as p
/// p(17, 20, method='wilson')  # (0.639581135259243, 0.9476312541037833)
/// p(0, 12, method='wilson')   # (0.0, 0.24249400665524096)
/// p(5, 5, method='wilson')    # (0.5655175352168252, 1.0)
/// ```
#[test]
fn wilson_intervals_match_statsmodels() {
    for (k, n, lo, hi) in [
        (17, 20, 0.639581135259243, 0.9476312541037833),
        (0, 12, 0.0, 0.24249400665524096),
        (5, 5, 0.5655175352168252, 1.0),
    ] {
        let e = wilson(k, n, Z95);
        assert!(
            (e.lower - lo).abs() < 1e-9 && (e.upper - hi).abs() < 1e-9,
            "{k}/{n}: {e:?}"
        );
    }
    assert!(wilson(0, 0, Z95).value.is_nan());
}

/// ```python
/// from sklearn.metrics import roc_auc_score
/// y = [1,0,1,1,0,0,1,0,1,0]; s = [0.9,0.8,0.8,0.7,0.6,0.4,0.35,0.3,0.2,0.1]
/// roc_auc_score(y, s)  # 0.6599999999999999 (ties at 0.8 count one half)
/// ```
#[test]
fn auc_matches_scikit_learn() {
    let y = [true, false, true, true, false, false, true, false, true, false];
    let s = [0.9, 0.8, 0.8, 0.7, 0.6, 0.4, 0.35, 0.3, 0.2, 0.1];
    let samples: Vec<(f64, bool)> = s.iter().copied().zip(y).collect();
    assert!((auc(&samples).unwrap() - 0.66).abs() < 1e-12);
    let curve = roc_curve(&samples).unwrap();
    assert_eq!(curve.len(), 10, "nine distinct scores plus the origin");
    assert_eq!(
        (
            curve.last().unwrap().false_positive_rate,
            curve.last().unwrap().true_positive_rate
        ),
        (1.0, 1.0)
    );
    assert!(auc(&[(0.3, true), (0.2, true)]).is_none());
}

/// ```python
/// # pycocotools 2.0, COCOeval(gt, dt, "bbox"); categories 1 DF, 2 VF, 3 SF, 4 UF
/// gts = {1: [(1,[10,10,50,50]), (2,[100,100,40,40])], 2: [(1,[30,30,60,40])],
///        3: [(2,[50,60,30,30]), (2,[150,160,25,25])]}
/// dts = {1: [(1,0.9,[12,12,50,50]), (1,0.6,[200,200,30,30]), (2,0.8,[105,100,40,40])],
///        2: [(1,0.7,[35,32,58,40]), (1,0.95,[30,30,20,20]), (2,0.5,[0,0,10,10])],
///        3: [(2,0.85,[52,62,30,30]), (2,0.4,[150,160,25,24]), (1,0.3,[5,5,10,10])]}
/// E.stats[0], E.stats[1]        # mAP50-95 0.5168316831683168, mAP50 0.7912541254125411
/// AP50 per class: DF 0.6666666666666669, VF 0.9158415841584159
/// ```
#[test]
fn coco_map_matches_pycocotools() {
    let image = |truth: Vec<(FractureClass, [f32; 4])>, detections: Vec<(FractureClass, f32, [f32; 4])>| ImageBoxes {
        truth: truth
            .into_iter()
            .map(|(c, b)| (c, xywh(b[0], b[1], b[2], b[3])))
            .collect(),
        detections: detections
            .into_iter()
            .map(|(c, s, b)| (c, s, xywh(b[0], b[1], b[2], b[3])))
            .collect(),
    };
    let images = vec![
        image(
            vec![
                (DisplacedNeck, [10.0, 10.0, 50.0, 50.0]),
                (ValgusImpactedNeck, [100.0, 100.0, 40.0, 40.0]),
            ],
            vec![
                (DisplacedNeck, 0.9, [12.0, 12.0, 50.0, 50.0]),
                (DisplacedNeck, 0.6, [200.0, 200.0, 30.0, 30.0]),
                (ValgusImpactedNeck, 0.8, [105.0, 100.0, 40.0, 40.0]),
            ],
        ),
        image(
            vec![(DisplacedNeck, [30.0, 30.0, 60.0, 40.0])],
            vec![
                (DisplacedNeck, 0.7, [35.0, 32.0, 58.0, 40.0]),
                (DisplacedNeck, 0.95, [30.0, 30.0, 20.0, 20.0]),
                (ValgusImpactedNeck, 0.5, [0.0, 0.0, 10.0, 10.0]),
            ],
        ),
        image(
            vec![
                (ValgusImpactedNeck, [50.0, 60.0, 30.0, 30.0]),
                (ValgusImpactedNeck, [150.0, 160.0, 25.0, 25.0]),
            ],
            vec![
                (ValgusImpactedNeck, 0.85, [52.0, 62.0, 30.0, 30.0]),
                (ValgusImpactedNeck, 0.4, [150.0, 160.0, 25.0, 24.0]),
                (DisplacedNeck, 0.3, [5.0, 5.0, 10.0, 10.0]),
            ],
        ),
    ];
    // Boxes are f32 here, f64 in pycocotools: IoUs agree to ~1e-7, far from any threshold.
    const COCO_TOLERANCE: f64 = 1e-6;
    let (map50, map5095) = coco_map(&images).unwrap();
    assert!((map50 - 0.7912541254125411).abs() < COCO_TOLERANCE, "{map50}");
    assert!((map5095 - 0.5168316831683168).abs() < COCO_TOLERANCE, "{map5095}");
    assert!((average_precision(&images, DisplacedNeck, 0.5).unwrap() - 0.6666666666666669).abs() < COCO_TOLERANCE);
    assert!((average_precision(&images, ValgusImpactedNeck, 0.5).unwrap() - 0.9158415841584159).abs() < COCO_TOLERANCE);
    assert!(
        average_precision(&images, StableIntertrochanteric, 0.5).is_none(),
        "no true SF box: left out"
    );
}

#[test]
fn calibration_error_by_hand() {
    // Bin [0.8, 0.9): confidences 0.8, 0.8, 0.85, 0.85 with 2 right → |0.5 − 0.825| = 0.325;
    // bin [0.2, 0.3): 0.2, 0.2 both wrong → |0 − 0.2| = 0.2. ECE = 4/6·0.325 + 2/6·0.2.
    let samples = [
        (0.8, true),
        (0.8, false),
        (0.85, true),
        (0.85, false),
        (0.2, false),
        (0.2, false),
    ];
    let (bins, ece) = reliability(&samples, 10);
    assert_eq!(bins.len(), 10);
    assert_eq!(bins[8].count, 4);
    assert!((ece - (4.0 / 6.0 * 0.325 + 2.0 / 6.0 * 0.2)).abs() < 1e-12);
}

#[test]
fn patient_bootstrap_is_deterministic_and_brackets_the_estimate() {
    // 40 patients, 2 images each; sensitivity-like statistic: mean of hits.
    let items: Vec<(String, f64)> = (0..80)
        .map(|i| (format!("P{}", i / 2), if i % 5 == 0 { 0.0 } else { 1.0 }))
        .collect();
    let mean = |xs: &[(String, f64)]| xs.iter().map(|x| x.1).sum::<f64>() / xs.len() as f64;
    let a = bootstrap_by_cluster(&items, |x| x.0.clone(), mean, 500, 7);
    let b = bootstrap_by_cluster(&items, |x| x.0.clone(), mean, 500, 7);
    assert_eq!(a, b);
    assert!((a.value - 0.8).abs() < 1e-12);
    assert!(
        a.lower < a.value && a.value < a.upper && a.upper - a.lower < 0.3,
        "{a:?}"
    );
}

mod study {
    use hipfrac_core::Label;
    use hipfrac_eval::study::{analyse, cohen_kappa, fleiss_kappa, mcnemar, or_hillis, Read};
    use std::collections::BTreeMap;

    fn labels(codes: &str) -> Vec<Label> {
        codes
            .chars()
            .map(|c| match c {
                'D' => "DF",
                'V' => "VF",
                'S' => "SF",
                'U' => "UF",
                _ => "none",
            })
            .map(|s| s.parse().unwrap())
            .collect()
    }

    // Three raters of 40 cases, generated by a Python snippet (random.seed(5); each rater
    // copies a random truth with probability 0.8 / 0.7 / 0.6, else a random label).
    const RATERS: [&str; 3] = [
        "NVSVUUVDVDSUVUNDUVDVUSSDVDVUNUVVDUVVVVSS",
        "SSDNDUVDDDSUVUNVDNDVUUVUDSVNUUVVSDNNVVUS",
        "NDSVUVVDNDSDSUUDSSNUUSUUVSVUNUSVDDUVVUSN",
    ];

    #[test]
    fn cohen_kappa_matches_scikit_learn() {
        // sklearn.metrics.cohen_kappa_score(list(a), list(b))
        let golden = [
            ((0, 1), 0.32907348242811507),
            ((0, 2), 0.4299287410926367),
            ((1, 2), 0.152276295133438),
        ];
        for ((a, b), expected) in golden {
            let k = cohen_kappa(&labels(RATERS[a]), &labels(RATERS[b])).unwrap();
            assert!((k - expected).abs() < 1e-12, "raters {a},{b}: {k} vs {expected}");
        }
        assert_eq!(
            cohen_kappa(&labels("DD"), &labels("DD")),
            None,
            "chance agreement 1: undefined"
        );
        assert_eq!(cohen_kappa(&labels("DV"), &labels("D")), None);
    }

    #[test]
    fn fleiss_kappa_matches_statsmodels() {
        // statsmodels fleiss_kappa(aggregate_raters(data, n_cat=5)[0]) = 0.29936305732484075
        let r: Vec<Vec<Label>> = RATERS.iter().map(|s| labels(s)).collect();
        let items: Vec<Vec<Label>> = (0..40).map(|i| r.iter().map(|x| x[i]).collect()).collect();
        let k = fleiss_kappa(&items).unwrap();
        assert!((k - 0.29936305732484075).abs() < 1e-12, "{k}");
    }

    #[test]
    fn mcnemar_matches_statsmodels() {
        // statsmodels mcnemar([[10, b], [c, 10]], exact=b+c<25, correction=True)
        let golden = [
            (3, 9, true, None, 0.14599609375),
            (0, 0, true, None, 1.0),
            (12, 12, true, None, 1.0),
            (5, 20, false, Some(7.84), 0.005110260660855866),
            (10, 30, false, Some(9.025), 0.002663119259138558),
            (40, 25, false, Some(3.0153846153846153), 0.08247788747320971),
        ];
        for (b, c, exact, statistic, p) in golden {
            let t = mcnemar(b, c);
            assert_eq!(t.exact, exact, "{b},{c}");
            assert!((t.p_value - p).abs() < 1e-10, "{b},{c}: p {} vs {p}", t.p_value);
            match (t.statistic, statistic) {
                (Some(x), Some(y)) => assert!((x - y).abs() < 1e-10),
                (None, None) => {}
                other => panic!("{b},{c}: {other:?}"),
            }
        }
    }

    fn matrix(rows: &[&str]) -> Vec<Vec<f64>> {
        rows.iter()
            .map(|r| r.chars().map(|c| if c == '1' { 1.0 } else { 0.0 }).collect())
            .collect()
    }

    #[test]
    fn or_hillis_matches_a_numpy_reference() {
        // 2 modalities × 4 readers × 30 cases of correct (1) / wrong (0), drawn once with a
        // shared case effect. The values come from tests/reference/or_hillis.py (numpy 2.4.6 +
        // scipy 1.17.1, 2026-11-29), which printed:
        //   var 0.00634578544061302    cov1 0.001982758620689652   cov2 0.0024904214559386927
        //   cov3 0.002155172413793101  ms_t 0.040138888888888856   ms_tr 0.0012499999999999996
        //   f 15.491682070240335       ddf 12.889461399568335      p_value 0.0017330306277185776
        //   difference 0.1416666666666666  ci95 (0.06384061520894714, 0.2194927181243861)
        let unaided = matrix(&[
            "101111100101111000101111110101",
            "100011111111111001111011110100",
            "101111111011011000100011110101",
            "101101111010111000111111110110",
        ]);
        let aided = matrix(&[
            "101111111111001110111111111101",
            "101111110111011000111111111111",
            "101111111111111110101111110101",
            "101011111111101110101111110111",
        ]);
        let r = or_hillis(&[unaided, aided]).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
        assert!(close(r.var, 0.006345785440613018) && close(r.cov1, 0.001982758620689652));
        assert!(close(r.cov2, 0.002490421455938693) && close(r.cov3, 0.002155172413793101));
        assert!(close(r.ms_t, 0.040138888888888856) && close(r.ms_tr, 0.0012499999999999996));
        assert!(
            close(r.f, 15.491682070240325) && close(r.ddf, 12.889461399568352),
            "{r:?}"
        );
        assert!((r.p_value - 0.0017330306277185774).abs() < 1e-9, "{}", r.p_value);
        assert!(close(r.difference, 0.1416666666666666));
        assert!(
            (r.ci95.0 - 0.06384061520894714).abs() < 1e-9 && (r.ci95.1 - 0.2194927181243861).abs() < 1e-9,
            "{:?}",
            r.ci95
        );
    }

    /// A simulated study: readers with their own skill, cases with their own difficulty.
    fn simulate(seed: u64, readers: usize, cases: usize, gain: f64) -> [Vec<Vec<f64>>; 2] {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let ease: Vec<f64> = (0..cases).map(|_| rng.gen_range(-0.2..0.2)).collect();
        let skill: Vec<f64> = (0..readers).map(|_| rng.gen_range(0.6..0.75)).collect();
        let mut modality = |g: f64| -> Vec<Vec<f64>> {
            skill
                .iter()
                .map(|s| {
                    ease.iter()
                        .map(|e| {
                            if rng.gen::<f64>() < (s + e + g).clamp(0.0, 1.0) {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect()
                })
                .collect()
        };
        let a = modality(0.0);
        let b = modality(gain);
        [a, b]
    }

    #[test]
    fn or_hillis_keeps_its_size_and_finds_a_real_gain() {
        // Under the null the test rejects about 5 % of studies; with a 15-point gain nearly all.
        let studies = 400;
        let rejected = (0..studies)
            .filter(|&s| or_hillis(&simulate(s, 4, 100, 0.0)).unwrap().p_value < 0.05)
            .count();
        let rate = rejected as f64 / studies as f64;
        assert!((0.01..=0.09).contains(&rate), "type I error {rate}");
        let found = (0..100)
            .filter(|&s| or_hillis(&simulate(1000 + s, 4, 100, 0.15)).unwrap().p_value < 0.05)
            .count();
        assert!(found >= 80, "power {found}/100");
        // Identical modalities: no difference, p = 1 or undefined, never "significant".
        let same = simulate(7, 3, 50, 0.0);
        let r = or_hillis(&[same[0].clone(), same[0].clone()]).unwrap();
        assert_eq!(r.difference, 0.0);
        assert!(r.p_value.is_nan() || r.p_value >= 0.05);
    }

    #[test]
    fn a_simulated_reader_study_recovers_the_readers_sensitivity() {
        // 3 readers × 3 phases (I, II unaided; III aided) over 400 cases; each reader answers
        // the truth with probability 0.7 unaided and 0.9 aided, else "none" (a miss) — so each
        // class's sensitivity is 0.7 / 0.9 and specificity 1.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let mut truth = BTreeMap::new();
        for i in 0..400 {
            truth.insert(format!("case-{i:03}"), Label::ALL[i % 4]);
        }
        let mut reads = Vec::new();
        for reader in ["A", "B", "C"] {
            for (phase, p) in [("I", 0.7), ("II", 0.7), ("III", 0.9)] {
                for (case, t) in &truth {
                    let label = if rng.gen::<f64>() < p { *t } else { Label::NoFracture };
                    reads.push(Read {
                        reader: reader.into(),
                        phase: phase.into(),
                        case: case.clone(),
                        label,
                        confidence: None,
                        seconds: None,
                    });
                }
            }
        }
        let report = analyse(&reads, &truth, &["III".to_string()]).unwrap();
        assert_eq!(report.cases.len(), 400);
        // 36 Wilson 95 % intervals (3 readers × 3 phases × 4 classes): nearly all cover the
        // true sensitivity (about 1.8 misses are expected by chance).
        let (mut covered, mut total) = (0, 0);
        for ((reader, phase), summary) in &report.per_reader {
            let expected = if phase == "III" { 0.9 } else { 0.7 };
            for m in &summary.per_class {
                total += 1;
                covered += usize::from(m.sensitivity.lower <= expected && expected <= m.sensitivity.upper);
                assert!(
                    (m.sensitivity.value - expected).abs() < 0.15,
                    "{reader}/{phase} {:?}: {:?}",
                    m.class,
                    m.sensitivity
                );
                assert_eq!(m.specificity.value, 1.0);
            }
        }
        assert_eq!(total, 36);
        assert!(covered >= 32, "{covered} of 36 intervals cover the truth");
        let micro = report.averages["III"][4].0;
        assert!((micro.mean - 0.9).abs() < 0.04, "{micro:?}");
        // Aided beats unaided for every reader (McNemar) and overall (OR–Hillis).
        for tests in report.mcnemar.values() {
            assert_eq!(tests.len(), 2);
            assert!(tests.iter().all(|(_, _, t)| t.p_value < 0.001 && t.c > t.b));
        }
        for (u, a, r) in &report.mrmc {
            let r = r.as_ref().unwrap();
            assert_eq!(a, "III");
            assert!(r.difference > 0.15 && r.p_value < 0.05, "{u} vs {a}: {r:?}");
        }
        // Independent misses: readers agree only partly; intra-reader κ is defined.
        assert_eq!(report.intra.len(), 3);
        assert!(report.fleiss["I"].unwrap() > 0.2 && report.fleiss["III"].unwrap() > report.fleiss["I"].unwrap());
        assert!(report.warnings.is_empty());
    }

    #[test]
    fn reads_of_unknown_cases_are_reported_not_counted() {
        let mut truth = BTreeMap::new();
        truth.insert("a".to_string(), Label::NoFracture);
        truth.insert("b".to_string(), Label::ALL[0]);
        let read = |reader: &str, phase: &str, case: &str, label: Label| Read {
            reader: reader.into(),
            phase: phase.into(),
            case: case.into(),
            label,
            confidence: None,
            seconds: None,
        };
        let reads = vec![
            read("A", "I", "a", Label::NoFracture),
            read("A", "I", "b", Label::ALL[0]),
            read("A", "I", "zzz", Label::ALL[1]),
            read("A", "III", "a", Label::NoFracture),
            read("A", "III", "b", Label::ALL[0]),
        ];
        let report = analyse(&reads, &truth, &["III".to_string()]).unwrap();
        assert_eq!(report.cases, vec!["a".to_string(), "b".to_string()]);
        assert!(report.warnings.iter().any(|w| w.contains("zzz")));
        assert!(analyse(&reads, &truth, &["IV".to_string()])
            .unwrap_err()
            .to_string()
            .contains("IV"));
    }
}
