//! LabelImg Pascal VOC XML.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(voc) = hipfrac_data::voc::parse(
            text,
            std::path::Path::new("fuzz.xml"),
            &hipfrac_data::LabelMap::default(),
        ) {
            let _ = hipfrac_data::validate(std::path::Path::new("fuzz.xml"), std::slice::from_ref(&voc.annotation));
            let _ = hipfrac_data::voc::to_string(&voc);
        }
    }
});
