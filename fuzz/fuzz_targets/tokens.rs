//! The inference service's bearer-token file (`name<TAB>sha256-hex<TAB>created` per line), as
//! `hipfrac serve` loads it: tokens or an error naming the line, never a panic.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::file_with(data, ".tsv");
    if let Ok(tokens) = hipfrac_service::tokens::Tokens::load(file.path()) {
        assert!(!tokens.entries().is_empty());
        for entry in tokens.entries() {
            let _ = tokens.verify(&entry.name);
        }
        let _ = tokens.verify("");
    }
});
