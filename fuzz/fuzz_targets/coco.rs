//! COCO json.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(annotations) = hipfrac_data::coco::parse(
            text,
            std::path::Path::new("fuzz.json"),
            &hipfrac_data::LabelMap::default(),
        ) {
            let _ = hipfrac_data::validate(std::path::Path::new("fuzz.json"), &annotations);
            let _ = hipfrac_data::coco::to_string(&annotations);
        }
    }
});
