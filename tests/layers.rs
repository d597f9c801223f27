//! The crate's modules import downwards only: each top-level module of `src/` may use the
//! modules of lower layers, never those of its own layer's neighbours or above (test code
//! excepted: a `#[cfg(test)]` item may use anything). Run with `cargo test --test layers`;
//! a failure names the file, the line and the path that breaks the order.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// Layers from the bottom up; a module may use any module of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["util", "crc", "pb"],
    &["tensor"],
    &["device"],
    &["graph"],
    &["kernel"],
    &["ops"],
    &["passes"],
    &["session"],
    &["autodiff"],
    &["train"],
    &["proto"],
    &["saved_model", "data"],
    &["summary"],
    &["keras"],
    &["serving"],
];

/// Top-level entries of `src/` that are not library modules of a layer.
const NOT_LAYERED: &[&str] = &["lib", "bin", "test_util"];

/// Names the crate root re-exports, with the module that defines them.
const ROOT_NAMES: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("bail", "error"),
    ("with_dtype", "tensor"),
    ("atomic_write", "util"),
    ("Tensor", "tensor"),
    ("DType", "tensor"),
    ("PartialShape", "tensor"),
    ("Graph", "graph"),
    ("NodeId", "graph"),
    ("Output", "graph"),
    ("TensorSpec", "graph"),
    ("AttrValue", "graph"),
    ("VariableHandle", "graph"),
    ("Session", "session"),
    ("SessionOptions", "session"),
];

/// The source without its `#[cfg(test)]` items (an attribute line, then the item up to
/// its closing brace or semicolon).
fn without_test_items(src: &str) -> Vec<(usize, String)> {
    let mut kept = Vec::new();
    let mut lines = src.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            let mut depth = 0i64;
            let mut opened = false;
            for (_, l) in lines.by_ref() {
                let code = l.split("//").next().unwrap_or("");
                depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
                opened |= code.contains('{');
                if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        kept.push((n + 1, line.to_string()));
    }
    kept
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn check_dir(dir: &Path, module: &str, errors: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return,
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            check_dir(&path, module, errors);
        } else if path.extension().is_some_and(|e| e == "rs") {
            check_file(&path, module, errors);
        }
    }
}

fn check_file(path: &Path, module: &str, errors: &mut Vec<String>) {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") || name == "test_util.rs" {
        return;
    }
    let own = layer_of(module).unwrap_or_else(|| panic!("module {module} has no layer"));
    let roots: HashMap<&str, &str> = ROOT_NAMES.iter().copied().collect();
    let src = fs::read_to_string(path).unwrap();
    for (n, line) in without_test_items(&src) {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let first: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let target = if first.is_empty() {
                // `crate::{A, B}`: every root name in the braces.
                rest.trim_start_matches('{')
                    .split(['}', ','])
                    .map(|s| s.trim())
                    .filter_map(|s| roots.get(s).copied())
                    .max_by_key(|m| layer_of(m))
            } else {
                roots.get(first.as_str()).copied().or(Some(first.as_str()))
            };
            let Some(target) = target else { continue };
            if target == module {
                continue;
            }
            match layer_of(target) {
                Some(l) if l < own => {}
                Some(_) => errors.push(format!(
                    "{}:{n}: {module} uses crate::{target}, which is not below it: {}",
                    path.display(),
                    line.trim()
                )),
                None => {}
            }
        }
    }
}

#[test]
fn modules_import_downwards_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut errors = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if layer_of(&name).is_none() && !NOT_LAYERED.contains(&name.as_str()) {
            errors.push(format!("src/{name} is in no layer: add it to LAYERS"));
        }
    }
    for layer in LAYERS {
        for module in *layer {
            let dir = src.join(module);
            if dir.is_dir() {
                check_dir(&dir, module, &mut errors);
            }
            let file = src.join(format!("{module}.rs"));
            if file.is_file() {
                check_file(&file, module, &mut errors);
            }
        }
    }
    assert!(
        errors.is_empty(),
        "imports against the layer order:\n{}",
        errors.join("\n")
    );
}
