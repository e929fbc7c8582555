//! Integration tests of hipfrac-dicom. Conformance tests read ../shared/data/dicom and skip
//! with a message when it is absent; everything else builds its inputs in code.

mod conformance;
mod deid_table;
mod display;
mod jpeg;
mod measurement_report;
mod robustness;
mod support;
