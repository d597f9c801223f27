//! Compiles `proto/*.proto` (TensorFlow's wire format) to Rust with prost. The `.proto`
//! files are parsed by protox, so no system `protoc` is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("proto")?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, ["proto"])?;
    prost_build::Config::new()
        // Sorted maps: serialization is deterministic (byte-identical re-exports).
        .btree_map(["."])
        .compile_well_known_types()
        .compile_fds(fds)?;
    Ok(())
}
