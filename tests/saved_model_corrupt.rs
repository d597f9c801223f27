//! Damaged SavedModels (flipped bytes, cut files, missing files) give clear errors that
//! name the file, never a panic.

use rustflow::saved_model::load;
use rustflow::SessionOptions;
use std::path::{Path, PathBuf};

fn fresh_copy(tag: &str) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving/saved_model_half_plus_two_cpu/00000123");
    let dst = std::env::temp_dir().join(format!("rustflow-corrupt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn load_err(dir: &Path) -> String {
    match load(dir, &["serve"], SessionOptions::with_threads(1)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cut_and_missing_files() {
    let dir = fresh_copy("cut");
    let pb = dir.join("saved_model.pb");
    let bytes = std::fs::read(&pb).unwrap();
    std::fs::write(&pb, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("saved_model.pb") && e.contains("not a SavedModel"),
        "{e}"
    );
    std::fs::remove_file(&pb).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("saved_model.pb") && e.contains("No such file"),
        "{e}"
    );
    std::fs::write(&pb, &bytes).unwrap();

    let index = dir.join("variables/variables.index");
    let table = std::fs::read(&index).unwrap();
    std::fs::write(&index, &table[..table.len() - 10]).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("variables.index") && e.contains("truncated"),
        "{e}"
    );
    std::fs::write(&index, &table).unwrap();

    let data = dir.join("variables/variables.data-00000-of-00001");
    let values = std::fs::read(&data).unwrap();
    std::fs::write(&data, &values[..values.len() - 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("truncated"), "{e}");
    std::fs::write(&data, &values).unwrap();
    assert_eq!(load_err(&dir), "");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flipped_bytes_in_the_checkpoint() {
    let dir = fresh_copy("flip");
    let data = dir.join("variables/variables.data-00000-of-00001");
    let values = std::fs::read(&data).unwrap();
    let mut bad = values.clone();
    bad[0] ^= 0x10;
    std::fs::write(&data, &bad).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("bad checksum") && e.contains("variables.data"),
        "{e}"
    );
    std::fs::write(&data, &values).unwrap();

    // Every single flipped byte of the index is caught or harmless; never a panic.
    let index = dir.join("variables/variables.index");
    let table = std::fs::read(&index).unwrap();
    let mut caught = 0;
    for i in 0..table.len() {
        let mut bad = table.clone();
        bad[i] ^= 0x21;
        std::fs::write(&index, &bad).unwrap();
        let e = load_err(&dir);
        if !e.is_empty() {
            assert!(e.contains("variables.index"), "byte {i}: {e}");
            caught += 1;
        }
    }
    assert!(caught > table.len() / 2, "{caught} of {}", table.len());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flipped_bytes_in_the_graph_never_panic() {
    let dir = fresh_copy("graph");
    let pb = dir.join("saved_model.pb");
    let bytes = std::fs::read(&pb).unwrap();
    for i in (0..bytes.len()).step_by(5) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x5a;
        std::fs::write(&pb, &bad).unwrap();
        // Either loads (the byte was in a name or a value) or fails with a message.
        let _ = load_err(&dir);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
