//! CSV cells a spreadsheet will not run (the OWASP rule against CSV/formula injection).
//!
//! A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return, and is not a plain
//! number, is written with a leading `'`: a spreadsheet then shows it as text instead of
//! evaluating it (`=HYPERLINK(...)` in a DICOM attribute, a file name or a reader's name).
//! hipfrac's own readers take the `'` off again, so a manifest or cases.csv reads back as it
//! was written.

use std::borrow::Cow;

const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn is_number(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty()
        && v.parse::<f64>().is_ok()
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
}

/// The cell as written: `'` before a formula-leading value.
pub fn cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(TRIGGERS) && !is_number(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value of a cell written by [`cell`].
pub fn restore(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(TRIGGERS) && !is_number(rest) => rest,
        _ => value,
    }
}

/// CSV bytes with every cell (the header too) passed through [`cell`].
pub fn neutralise(bytes: &[u8]) -> Vec<u8> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for record in reader.records() {
        let record = record.expect("CSV written by hipfrac reads back");
        writer
            .write_record(record.iter().map(|v| cell(v).into_owned()))
            .expect("CSV into memory");
    }
    writer.into_inner().expect("CSV into memory")
}

/// A record with every cell passed through [`restore`].
pub fn restored(record: &csv::StringRecord) -> csv::StringRecord {
    record.iter().map(restore).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_are_not() {
        for formula in [
            "=HYPERLINK(\"http://evil.example/\",\"x\")",
            "+1+2",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(A1)",
            "\t=1",
            "-inf",
            "-",
            "=1",
        ] {
            assert_eq!(cell(formula), format!("'{formula}"), "{formula}");
            assert_eq!(restore(&cell(formula)), formula);
        }
        for plain in [
            "-0.5",
            "+3",
            "-1e-5",
            "1.2.840.10008",
            "DOE^JANE",
            "",
            "'quoted",
            "images/-a.png",
        ] {
            assert_eq!(cell(plain), plain, "{plain}");
            assert_eq!(restore(plain), plain);
        }
        let bytes = neutralise(b"input,verdict\n=HYPERLINK(\"x\"),DF\nhip.dcm,-0.25\n");
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "input,verdict\n\"'=HYPERLINK(\"\"x\"\")\",DF\nhip.dcm,-0.25\n"
        );
    }
}
