//! The service's metrics in Prometheus' text exposition format (version 0.0.4): requests by
//! path and status, prediction latency, batch sizes, queue depth, images by verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A histogram with fixed upper bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations ≤ each bound (not cumulative; summed when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

const LATENCY_BOUNDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Debug)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: Histogram,
    batches: Histogram,
    verdicts: BTreeMap<&'static str, u64>,
}

/// Everything counted.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Images waiting for the network.
    pub queue_depth: AtomicUsize,
    /// Prediction requests being read or decoded (not queued yet): while there are any, a
    /// batch waits (up to --max-wait-ms) for their images; when there are none, it runs at once.
    pub arriving: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                latency: Histogram::new(LATENCY_BOUNDS),
                batches: Histogram::new(BATCH_BOUNDS),
                verdicts: BTreeMap::new(),
            }),
            queue_depth: AtomicUsize::new(0),
            arriving: AtomicUsize::new(0),
        }
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic elsewhere never stops the counting.
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut inner)
    }

    /// One request answered; `path` is one of a few fixed names (no unbounded labels).
    pub fn request(&self, path: &'static str, status: u16, seconds: Option<f64>) {
        self.with(|m| {
            *m.requests.entry((path, status)).or_default() += 1;
            if let Some(s) = seconds {
                m.latency.observe(s);
            }
        });
    }

    /// One forward pass of `size` images.
    pub fn batch(&self, size: usize) {
        self.with(|m| m.batches.observe(size as f64));
    }

    /// One image answered with `code` (`DF` … `none`, `not_assessable`).
    pub fn verdict(&self, code: &'static str) {
        self.with(|m| *m.verdicts.entry(code).or_default() += 1);
    }

    /// The text a Prometheus server scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|m| {
            out.push_str("# HELP hipfrac_http_requests_total HTTP requests answered, by path and status.\n# TYPE hipfrac_http_requests_total counter\n");
            for ((path, status), n) in &m.requests {
                let _ = writeln!(out, "hipfrac_http_requests_total{{path=\"{path}\",status=\"{status}\"}} {n}");
            }
            out.push_str("# HELP hipfrac_predict_duration_seconds Time to answer a prediction request.\n# TYPE hipfrac_predict_duration_seconds histogram\n");
            m.latency.write(&mut out, "hipfrac_predict_duration_seconds");
            out.push_str("# HELP hipfrac_batch_size Images per forward pass of the network.\n# TYPE hipfrac_batch_size histogram\n");
            m.batches.write(&mut out, "hipfrac_batch_size");
            out.push_str("# HELP hipfrac_images_total Images answered, by verdict.\n# TYPE hipfrac_images_total counter\n");
            for (code, n) in &m.verdicts {
                let _ = writeln!(out, "hipfrac_images_total{{verdict=\"{code}\"}} {n}");
            }
        });
        out.push_str("# HELP hipfrac_queue_depth Images waiting for the network.\n# TYPE hipfrac_queue_depth gauge\n");
        let _ = writeln!(out, "hipfrac_queue_depth {}", self.queue_depth.load(Ordering::Relaxed));
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn histograms_are_cumulative_in_the_text() {
        let m = super::Metrics::default();
        m.request("/v1/predict", 200, Some(0.02));
        m.request("/v1/predict", 200, Some(0.3));
        m.request("/v1/predict", 503, None);
        m.batch(3);
        m.verdict("none");
        let text = m.render();
        for line in [
            "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"200\"} 2",
            "hipfrac_http_requests_total{path=\"/v1/predict\",status=\"503\"} 1",
            "hipfrac_predict_duration_seconds_bucket{le=\"0.025\"} 1",
            "hipfrac_predict_duration_seconds_bucket{le=\"0.5\"} 2",
            "hipfrac_predict_duration_seconds_count 2",
            "hipfrac_batch_size_bucket{le=\"2\"} 0",
            "hipfrac_batch_size_bucket{le=\"4\"} 1",
            "hipfrac_images_total{verdict=\"none\"} 1",
            "hipfrac_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
