//! Calibration: does a confidence of 0.8 come true 80 % of the time?

use serde::{Deserialize, Serialize};

/// One bin of the reliability curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Confidence range `[lower, upper)` (the last bin includes 1).
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_confidence: f64,
    /// Fraction of the bin's answers that were right.
    pub accuracy: f64,
}

/// The reliability curve of `(confidence, correct)` pairs in `bins` equal-width bins, and
/// the expected calibration error Σ (n_b/N)·|accuracy_b − confidence_b|.
pub fn reliability(samples: &[(f64, bool)], bins: usize) -> (Vec<Bin>, f64) {
    let bins = bins.max(1);
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for &(confidence, correct) in samples {
        let c = confidence.clamp(0.0, 1.0);
        let index = ((c * bins as f64) as usize).min(bins - 1);
        sums[index].0 += 1;
        sums[index].1 += c;
        sums[index].2 += usize::from(correct);
    }
    let total = samples.len().max(1) as f64;
    let mut ece = 0.0;
    let curve = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, confidence, correct))| {
            let (mean_confidence, accuracy) = if count == 0 {
                (f64::NAN, f64::NAN)
            } else {
                (confidence / count as f64, correct as f64 / count as f64)
            };
            if count > 0 {
                ece += count as f64 / total * (accuracy - mean_confidence).abs();
            }
            Bin {
                lower: i as f64 / bins as f64,
                upper: (i + 1) as f64 / bins as f64,
                count,
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    (curve, ece)
}
