//! YOLO txt lines (classes DF VF SF UF none, a 2140 × 1760 image).
#![no_main]
use hipfrac_core::Label;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let classes: Vec<Label> = ["DF", "VF", "SF", "UF", "none"]
            .iter()
            .map(|c| c.parse().expect("a label"))
            .collect();
        let _ = hipfrac_data::yolo::parse(text, std::path::Path::new("fuzz.txt"), &classes, 2140, 1760);
    }
});
