//! PNG input (8- and 16-bit radiographs) and the dataset check's completeness test.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new().suffix(".png").tempfile().expect("a temp file");
    file.write_all(data).expect("write");
    let _ = hipfrac_data::images::check_complete(file.path());
    if let Ok(image) = hipfrac_dicom::read_radiograph(file.path()) {
        let _ = hipfrac_dicom::display::to_display(&image);
    }
});
