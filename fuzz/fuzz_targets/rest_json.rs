//! REST predict / classify / regress bodies → tensors (`fuzz_cases::rest_json`).
#![no_main]

#[path = "../../tests/support/fuzz_cases.rs"]
#[allow(dead_code)]
mod fuzz_cases;

libfuzzer_sys::fuzz_target!(|body: &[u8]| fuzz_cases::rest_json(body));
