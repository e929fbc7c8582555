//! `operating_points.json` (and a site's `operating_points.<site>.json`), as loading a model
//! folder reads it: thresholds in [0, 1] with fracture ≥ suspicious, or an error naming the
//! file; never a panic. What loads gives a verdict for any class scores.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::file_with(data, ".json");
    if let Ok(points) = hipfrac_infer::calibrate::read_points(file.path()) {
        for scores in [
            [0.0; 4],
            [1.0; 4],
            [0.3, 0.2, 0.6, 0.1],
            [0.6, 0.5, 0.0, 0.0],
            [0.05, 0.0, 0.0, 0.95],
        ] {
            let verdict = hipfrac_infer::verdict::decide(scores, &points);
            if let Some(confidence) = verdict.confidence {
                assert!((0.0..=1.0).contains(&confidence));
            }
        }
    }
});
