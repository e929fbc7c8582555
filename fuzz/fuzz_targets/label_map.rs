//! Label maps (`name = CODE` per line, `#` starts a comment), as `--label-map` reads them: a
//! map or an error naming the line, never a panic; every name a map lists then resolves.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = common::file_with(data, ".map");
    if let Ok(map) = hipfrac_data::LabelMap::from_file(file.path()) {
        let text = std::str::from_utf8(data).expect("a map that loads is UTF-8");
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            if let Some((name, _)) = line.split_once('=') {
                assert!(map.resolve(name, std::path::Path::new("fuzz.xml")).is_ok(), "{name:?}");
            }
        }
        let _ = map.resolve("fractured", std::path::Path::new("fuzz.xml"));
    }
});
