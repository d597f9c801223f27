//! Compiles `proto/*.proto` (TensorFlow's wire format) and `proto/tensorflow_serving/*.proto`
//! (TensorFlow Serving's API, with its gRPC services) to Rust with prost and tonic. The
//! `.proto` files are parsed by protox, so no system `protoc` is needed.

use std::path::{Path, PathBuf};

fn protos(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    Ok(files)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = protos(Path::new("proto"))?;
    files.extend(protos(Path::new("proto/tensorflow_serving"))?);
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=proto/tensorflow_serving");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, ["proto"])?;
    let mut config = prost_build::Config::new();
    // Sorted maps: serialization is deterministic (byte-identical re-exports).
    config.btree_map(["."]).compile_well_known_types();
    tonic_prost_build::configure()
        .build_server(true)
        // The client (used by the tests) over any transport; no `Channel::connect` helper.
        .build_client(true)
        .build_transport(false)
        .compile_well_known_types(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
