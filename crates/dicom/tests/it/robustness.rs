//! Mutated inputs never crash the readers: every outcome is `Ok` or an error naming the file.
//! (A deterministic stand-in for a fuzzer, cheap enough for every test run.)

use crate::support::shared_dicom;
use hipfrac_dicom::{jpeg12, read_dicom};
use rand::{Rng, SeedableRng};

const MUTANTS: usize = 300;
/// Far above a normal read of the 512×512 test file (a few ms), far below a 4 GiB allocation.
const MAX_READ_TIME: std::time::Duration = std::time::Duration::from_secs(1);

fn mutate(bytes: &[u8], rng: &mut rand_chacha::ChaCha8Rng, protect: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.gen_range(0..3) {
        0 => {
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(protect.min(out.len() - 1)..out.len());
                out[at] = rng.gen();
            }
        }
        1 => out.truncate(rng.gen_range(protect.min(out.len())..out.len())),
        _ => {
            let at = rng.gen_range(protect.min(out.len() - 1)..out.len());
            let len = rng.gen_range(1..64).min(out.len() - at);
            let chunk: Vec<u8> = out[at..at + len].to_vec();
            out.splice(at..at, chunk);
        }
    }
    out
}

#[test]
fn mutated_jpeg_streams_never_panic() {
    let Some(root) = shared_dicom() else { return };
    let object = dicom_object::open_file(root.join("dicom_wg04_hip/RG2_JPLY_fixed.dcm")).unwrap();
    let element = object.element(dicom_dictionary_std::tags::PIXEL_DATA).unwrap();
    let dicom_core::value::Value::PixelSequence(sequence) = element.value() else {
        panic!("encapsulated")
    };
    let stream: Vec<u8> = sequence.fragments().iter().flat_map(|f| f.iter().copied()).collect();
    // The headers are in the first ~700 bytes; mutate there more often than in the data.
    let head: Vec<u8> = stream[..2048].to_vec();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for _ in 0..MUTANTS {
        let mutant = mutate(&head, &mut rng, 2);
        let _ = jpeg12::decode(&mutant);
    }
}

#[test]
fn mutated_dicom_files_never_panic() {
    let Some(root) = shared_dicom() else { return };
    let original = std::fs::read(root.join("dicom_edgecases/vlut_04.dcm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for i in 0..MUTANTS / 3 {
        // Keep the preamble and mutate the header region (the first 2 KiB) mostly.
        let head_len = 2048.min(original.len());
        let mut mutant = mutate(&original[..head_len], &mut rng, 132);
        mutant.extend_from_slice(&original[head_len..]);
        let path = dir.path().join(format!("m{i}.dcm"));
        std::fs::write(&path, &mutant).unwrap();
        let started = std::time::Instant::now();
        let result = read_dicom(&path);
        // A corrupt length must be refused before anything is allocated for it (the parser
        // alone spends seconds and gigabytes on a 4 GiB length).
        assert!(
            started.elapsed() < MAX_READ_TIME,
            "m{i}: {:?} {:?}",
            started.elapsed(),
            result.as_ref().err()
        );
        if let Err(e) = result {
            assert!(e.to_string().contains(&format!("m{i}.dcm")), "{e}");
        }
    }
}
