//! Serialized `tf.Example` bytes through `ParseExample`, as a classify or regress request
//! feeds them (`fuzz_cases::parse_example_graph`).
#![no_main]

#[path = "../../tests/support/fuzz_cases.rs"]
#[allow(dead_code)]
mod fuzz_cases;

use rustflow::{Output, Session, SessionOptions, Tensor};
use std::sync::OnceLock;

/// The parsing graph's session, its input and its outputs.
fn parser() -> &'static (Session, Output, Vec<Output>) {
    static PARSER: OnceLock<(Session, Output, Vec<Output>)> = OnceLock::new();
    PARSER.get_or_init(|| {
        let (g, serialized, fetches) = fuzz_cases::parse_example_graph();
        let options = SessionOptions {
            max_memory_bytes: 256 << 20,
            ..SessionOptions::with_threads(1)
        };
        (Session::with_options(&g, options), serialized, fetches)
    })
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let (session, serialized, fetches) = parser();
    let t = Tensor::from_strings(&[1], vec![bytes.to_vec()]).unwrap();
    let _ = session.run(&[(*serialized, t)], fetches, &[]);
});
