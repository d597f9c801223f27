//! `.npy` file bytes (`rustflow run/bench --input NAME=FILE.npy`; `fuzz_cases::npy`).
#![no_main]

#[path = "../../tests/support/fuzz_cases.rs"]
#[allow(dead_code)]
mod fuzz_cases;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| fuzz_cases::npy(bytes));
