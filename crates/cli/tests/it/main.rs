//! End-to-end tests of the `hipfrac` binary: real files, real dcmtk where it is installed.

mod bad_input;
mod convert;
mod dataset;
mod deid;
mod distributed;
mod labels;
mod layers;
mod node;
mod orthanc;
mod phantom;
mod predict;
mod real;
mod service;
mod study;
mod support;
mod workstation;
