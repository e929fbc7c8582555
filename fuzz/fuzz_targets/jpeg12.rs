//! The in-house JPEG Extended (8/12-bit) decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hipfrac_dicom::jpeg12::decode(data);
});
