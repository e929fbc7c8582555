//! ROC curves and the area under them, from image-level scores.

/// One operating point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RocPoint {
    /// Scores ≥ threshold are called positive.
    pub threshold: f64,
    pub false_positive_rate: f64,
    pub true_positive_rate: f64,
}

/// The ROC curve of `(score, is_positive)` pairs: one point per distinct score, from the
/// highest threshold down, starting at (0, 0) with threshold +∞. `None` when either class
/// is absent.
pub fn roc_curve(samples: &[(f64, bool)]) -> Option<Vec<RocPoint>> {
    let positives = samples.iter().filter(|(_, p)| *p).count() as f64;
    let negatives = samples.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = samples.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        false_positive_rate: 0.0,
        true_positive_rate: 0.0,
    }];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < sorted.len() {
        let threshold = sorted[i].0;
        // Tied scores move together: one point per distinct score.
        while i < sorted.len() && sorted[i].0 == threshold {
            if sorted[i].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        points.push(RocPoint {
            threshold,
            false_positive_rate: fp / negatives,
            true_positive_rate: tp / positives,
        });
    }
    Some(points)
}

/// Area under the ROC curve (trapezoids; ties count one half), or `None` when either class
/// is absent.
pub fn auc(samples: &[(f64, bool)]) -> Option<f64> {
    let points = roc_curve(samples)?;
    Some(
        points
            .windows(2)
            .map(|w| {
                (w[1].false_positive_rate - w[0].false_positive_rate)
                    * (w[1].true_positive_rate + w[0].true_positive_rate)
                    / 2.0
            })
            .sum(),
    )
}
