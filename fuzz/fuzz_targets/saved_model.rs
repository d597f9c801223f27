//! `saved_model.pb` bytes in a copy of TensorFlow Serving's half_plus_two (its variables
//! kept): loaded (graph import, variable restore, init op) and, when that works, run.
#![no_main]

#[path = "../../tests/support/fuzz_cases.rs"]
#[allow(dead_code)]
mod fuzz_cases;

use rustflow::{SessionOptions, Tensor};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's copy of the model.
fn model_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../graphs/tf_serving/saved_model_half_plus_two_cpu/00000123");
        let dir = std::env::temp_dir().join(format!("rustflow-fuzz-sm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fuzz_cases::copy_dir(&source, &dir);
        dir
    })
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let dir = model_dir();
    std::fs::write(dir.join("saved_model.pb"), bytes).unwrap();
    let options = SessionOptions {
        max_memory_bytes: 256 << 20,
        ..SessionOptions::with_threads(1)
    };
    if let Ok(m) = rustflow::saved_model::load(dir, &["serve"], options) {
        let x = Tensor::new(&[2, 1], vec![1f32, 2.0]).unwrap();
        let _ = m.run_signature("serving_default", &[("x", x)]);
    }
});
