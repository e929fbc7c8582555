//! Confidence intervals.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A point estimate with a two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval for `successes` of `trials` (Wilson 1927). With no trials the
/// value is NaN and the interval [0, 1].
pub fn wilson(successes: u64, trials: u64, z: f64) -> Estimate {
    if trials == 0 {
        return Estimate {
            value: f64::NAN,
            lower: 0.0,
            upper: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Estimate {
        value: p,
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    }
}

/// Percentile bootstrap over clusters (patients): resamples whole clusters with replacement
/// `replicates` times and recomputes `statistic` on the resampled items; returns the
/// statistic on all items with the 2.5th and 97.5th percentiles. Replicates where the
/// statistic is not finite (e.g. no positives drawn) are skipped.
pub fn bootstrap_by_cluster<T: Clone>(
    items: &[T],
    cluster: impl Fn(&T) -> String,
    statistic: impl Fn(&[T]) -> f64,
    replicates: usize,
    seed: u64,
) -> Estimate {
    let value = statistic(items);
    let mut clusters: std::collections::BTreeMap<String, Vec<T>> = Default::default();
    for item in items {
        clusters.entry(cluster(item)).or_default().push(item.clone());
    }
    let groups: Vec<Vec<T>> = clusters.into_values().collect();
    if groups.is_empty() {
        return Estimate {
            value,
            lower: f64::NAN,
            upper: f64::NAN,
        };
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(replicates);
    let mut sample = Vec::new();
    for _ in 0..replicates {
        sample.clear();
        for _ in 0..groups.len() {
            sample.extend_from_slice(&groups[rng.gen_range(0..groups.len())]);
        }
        let v = statistic(&sample);
        if v.is_finite() {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Estimate {
            value,
            lower: f64::NAN,
            upper: f64::NAN,
        };
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Estimate {
        value,
        lower: pick(0.025),
        upper: pick(0.975),
    }
}
