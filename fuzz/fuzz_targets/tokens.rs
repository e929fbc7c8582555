//! The inference service's bearer-token file (`name<TAB>sha256-hex<TAB>created` per line), as
//! `hipfrac serve` loads it: tokens or an error naming the line, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::Builder::new().suffix(".tsv").tempfile().expect("a temp file");
    file.write_all(data).expect("write");
    if let Ok(tokens) = hipfrac_service::tokens::Tokens::load(file.path()) {
        assert!(!tokens.entries().is_empty());
        for entry in tokens.entries() {
            let _ = tokens.verify(&entry.name);
        }
        let _ = tokens.verify("");
    }
});
