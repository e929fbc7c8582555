//! Manifest CSV (image, annotation, patient, site, label).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hipfrac_data::manifest::parse(data, std::path::Path::new("fuzz.csv"));
});
