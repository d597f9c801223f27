//! `GraphDef` bytes, decoded and imported (`fuzz_cases::graph_def`).
#![no_main]

#[path = "../../tests/support/fuzz_cases.rs"]
#[allow(dead_code)]
mod fuzz_cases;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzz_cases::graph_def(bytes));
