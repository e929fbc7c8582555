//! Losses and assignment against the reference implementation (tinyvision/DAMO-YOLO,
//! `damo/base_models/losses/gfocal_loss.py` and `core/ota_assigner.py`, run with PyTorch
//! 2.11). The snippet that produced each golden value is pasted above its test.

use hipfrac_model::loss::{aligned_iou, distribution_focal_loss, quality_focal_loss, AlignOta};
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-5;

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < TOLERANCE)
}

/// ```python
/// logits = torch.tensor([[0.5,-1.0,2.0],[-0.3,0.8,-2.0],[1.5,0.2,-0.7],[-1.2,-0.4,0.9]])
/// labels = torch.tensor([2, 3, 0, 1])   # 3 = background
/// scores = torch.tensor([0.7, 0.0, 0.4, 0.9])
/// quality_focal_loss(logits.sigmoid(), (labels, scores), use_sigmoid=False, reduction='none')
/// # [0.4238311946, 0.6597166657, 0.4777334332, 0.8585566878]
/// ```
#[test]
fn quality_focal_loss_matches_the_reference() {
    let logits =
        Tensor::from_slice(&[0.5f32, -1.0, 2.0, -0.3, 0.8, -2.0, 1.5, 0.2, -0.7, -1.2, -0.4, 0.9]).reshape([4, 3]);
    let labels = Tensor::from_slice(&[2i64, 3, 0, 1]);
    let scores = Tensor::from_slice(&[0.7f32, 0.0, 0.4, 0.9]);
    let got = values(&quality_focal_loss(&logits, &labels, &scores, 2.0));
    assert!(
        close(&got, &[0.4238311946, 0.6597166657, 0.4777334332, 0.8585566878]),
        "{got:?}"
    );
}

/// ```python
/// d_logits = torch.tensor([[0.1,0.5,-0.2,1.0,0.3],[1.0,-1.0,0.0,0.5,0.2]])
/// distribution_focal_loss(d_logits, torch.tensor([2.3, 0.75]), reduction='none')
/// # [1.8734977245, 2.4396457672]
/// ```
#[test]
fn distribution_focal_loss_matches_the_reference() {
    let logits = Tensor::from_slice(&[0.1f32, 0.5, -0.2, 1.0, 0.3, 1.0, -1.0, 0.0, 0.5, 0.2]).reshape([2, 5]);
    let got = values(&distribution_focal_loss(&logits, &Tensor::from_slice(&[2.3f32, 0.75])));
    assert!(close(&got, &[1.8734977245, 2.4396457672]), "{got:?}");
}

/// ```python
/// a = torch.tensor([[0.,0.,10.,10.],[5.,5.,15.,25.]]); b = torch.tensor([[2.,3.,12.,9.],[20.,20.,30.,30.]])
/// giou_loss(a, b, reduction='none')   # [0.6380952597, 1.5199999809]
/// ```
#[test]
fn giou_loss_matches_the_reference() {
    let a = Tensor::from_slice(&[0.0f32, 0.0, 10.0, 10.0, 5.0, 5.0, 15.0, 25.0]).reshape([2, 4]);
    let b = Tensor::from_slice(&[2.0f32, 3.0, 12.0, 9.0, 20.0, 20.0, 30.0, 30.0]).reshape([2, 4]);
    let got = values(&(1.0 - aligned_iou(&a, &b, true, 1e-7)));
    assert!(close(&got, &[0.6380952597, 1.5199999809]), "{got:?}");
}

/// ```python
/// priors = torch.tensor([[x*8., y*8., 8., 8.] for y in range(3) for x in range(4)])
/// gt = torch.tensor([[4.,2.,20.,14.],[14.,6.,30.,22.]]); gl = torch.tensor([0, 1])
/// boxes = torch.stack([priors[:,0]-6+torch.arange(12.)*0.3, priors[:,1]-5,
///                      priors[:,0]+9-torch.arange(12.)*0.2, priors[:,1]+7], 1)
/// scores = torch.sigmoid(torch.tensor([[0.2*((i*7)%5)-0.5, 0.3*((i*3)%4)-0.6] for i in range(12)]))
/// r = AlignOTAAssigner(center_radius=2.5, candidate_topk=10, iou_weight=3.0, cls_weight=1.0)
///         .assign(scores, priors, boxes, gt, gl)
/// r.gt_inds - 1        # [-1,-1,-1,-1,-1, 0,-1,-1,-1,-1, 1,-1]
/// r.max_overlaps       # anchor 5: 0.6285715, anchor 10: 0.3574007
/// ```
#[test]
fn align_ota_matches_the_reference_on_a_hand_made_case() {
    let mut priors = Vec::new();
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    for i in 0..12 {
        let (x, y) = ((i % 4) as f32 * 8.0, (i / 4) as f32 * 8.0);
        priors.extend([x, y, 8.0, 8.0]);
        boxes.extend([x - 6.0 + i as f32 * 0.3, y - 5.0, x + 9.0 - i as f32 * 0.2, y + 7.0]);
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        scores.extend([
            sig(0.2 * ((i * 7) % 5) as f32 - 0.5),
            sig(0.3 * ((i * 3) % 4) as f32 - 0.6),
        ]);
    }
    let priors = Tensor::from_slice(&priors).reshape([12, 4]);
    let boxes = Tensor::from_slice(&boxes).reshape([12, 4]);
    let scores = Tensor::from_slice(&scores).reshape([12, 2]);
    let gt = Tensor::from_slice(&[4.0f32, 2.0, 20.0, 14.0, 14.0, 6.0, 30.0, 22.0]).reshape([2, 4]);
    let labels = Tensor::from_slice(&[0i64, 1]);
    let a = AlignOta::default().assign(&scores, &priors, &boxes, &gt, &labels);
    assert_eq!(
        Vec::<i64>::try_from(&a.gt_index).unwrap(),
        vec![-1, -1, -1, -1, -1, 0, -1, -1, -1, -1, 1, -1]
    );
    let ious = values(&a.iou);
    assert!(
        (ious[5] - 0.6285715).abs() < TOLERANCE && (ious[10] - 0.3574007).abs() < TOLERANCE,
        "{ious:?}"
    );
}

/// A positive of unknown type (label C + 1) is taught through its most confident class only:
/// its loss is that class's positive term, no other class of that anchor gets a gradient, and
/// the typed and background rows are as before.
#[test]
fn an_untyped_positive_teaches_only_its_most_confident_class() {
    let logits = Tensor::from_slice(&[0.5f32, -1.0, 2.0, -0.3, 0.8, -2.0, 1.5, 0.2, -0.7, -1.2, -0.4, 0.9])
        .reshape([4, 3])
        .set_requires_grad(true);
    // Row 2 is untyped (label 4 = C + 1); its strongest class is 0 (logit 1.5).
    let labels = Tensor::from_slice(&[2i64, 3, 4, 1]);
    let scores = Tensor::from_slice(&[0.7f32, 0.0, 0.4, 0.9]);
    let loss = quality_focal_loss(&logits, &labels, &scores, 2.0);
    let got = values(&loss);
    // Rows 0, 1 and 3 as the reference computed them above.
    assert!(
        close(&[got[0], got[1], got[3]], &[0.4238311946, 0.6597166657, 0.8585566878]),
        "{got:?}"
    );
    // Row 2: BCE(σ(1.5), 0.4)·|0.4 − σ(1.5)|² alone.
    let p = 1.0 / (1.0 + (-1.5f64).exp());
    let bce = -(0.4 * p.ln() + 0.6 * (1.0 - p).ln());
    assert!((got[2] - bce * (0.4 - p).powi(2)).abs() < TOLERANCE, "{got:?}");
    loss.sum(Kind::Float).backward();
    let grad = values(&logits.grad().reshape([-1]));
    assert!(grad[6].abs() > 1e-4, "the strongest class learns: {grad:?}");
    assert_eq!(
        (grad[7], grad[8]),
        (0.0, 0.0),
        "no other type is taught on an untyped box"
    );
}

/// A truth of unknown type (label -1) is matched like a typed one, by its most confident
/// class's cost.
#[test]
fn align_ota_matches_an_untyped_truth() {
    let priors = Tensor::from_slice(&[8.0f32, 8.0, 8.0, 8.0, 24.0, 8.0, 8.0, 8.0]).reshape([2, 4]);
    let boxes = Tensor::from_slice(&[2.0f32, 2.0, 14.0, 14.0, 18.0, 2.0, 30.0, 14.0]).reshape([2, 4]);
    let scores = Tensor::from_slice(&[0.2f32, 0.7, 0.1, 0.1]).reshape([2, 2]);
    let gt = Tensor::from_slice(&[1.0f32, 1.0, 15.0, 15.0]).reshape([1, 4]);
    let untyped = Tensor::from_slice(&[hipfrac_model::loss::UNTYPED]);
    let a = AlignOta::default().assign(&scores, &priors, &boxes, &gt, &untyped);
    assert_eq!(Vec::<i64>::try_from(&a.gt_index).unwrap(), vec![0, -1]);
    assert!(values(&a.iou)[0] > 0.7);
}
