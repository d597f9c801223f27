//! `rustflow`: runs a TensorFlow model from the command line.
//!
//! ```text
//! rustflow run MODEL --input NAME=FILE.npy ... [--output NAME ...] [--signature KEY] [--outdir DIR]
//! ```
//!
//! MODEL is a SavedModel directory (tag `serve`) or a GraphDef file (`.pb`, or text
//! `.pbtxt`). For a SavedModel, NAMEs are keys of the signature (default
//! `serving_default`) and the outputs default to all of the signature's; for a GraphDef,
//! NAMEs are tensor names (`x` or `x:0`) and at least one `--output` is needed. Outputs are
//! printed, or written to `DIR/<name>.npy` with every character outside `[A-Za-z0-9_.-]` of
//! the name replaced by `_`. Errors are one line on stderr and a non-zero exit status.

use rustflow::proto::{load_graph, unsupported};
use rustflow::saved_model::{self, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::tensor::npy::{read_npy, write_npy};
use rustflow::{DType, Session, SessionOptions, Tensor};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: rustflow run MODEL --input NAME=FILE.npy ... [--output NAME ...] \
                     [--signature KEY] [--outdir DIR]";

/// The parsed command line of `rustflow run`.
#[derive(Debug, Default)]
struct Args {
    model: PathBuf,
    inputs: Vec<(String, PathBuf)>,
    outputs: Vec<String>,
    signature: Option<String>,
    outdir: Option<PathBuf>,
}

/// A failure: a usage error (exit status 2) or a run error (exit status 1).
enum Failure {
    Usage(String),
    Run(String),
}

fn run_err(e: impl std::fmt::Display) -> Failure {
    Failure::Run(e.to_string())
}

fn parse_args(argv: &[String]) -> Result<Args, Failure> {
    let usage = |msg: &str| Failure::Usage(format!("{msg}\n{USAGE}"));
    let mut it = argv.iter();
    match it.next().map(String::as_str) {
        Some("run") => {}
        Some(cmd) => return Err(usage(&format!("unknown command '{cmd}'"))),
        None => return Err(usage("missing command")),
    }
    let mut args = Args::default();
    let mut model = None;
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag {
            "--input" | "-i" => {
                let v = value()?;
                let (name, file) = v
                    .split_once('=')
                    .filter(|(n, f)| !n.is_empty() && !f.is_empty())
                    .ok_or_else(|| usage(&format!("--input wants NAME=FILE.npy, got '{v}'")))?;
                args.inputs.push((name.to_string(), PathBuf::from(file)));
            }
            "--output" | "-o" => args.outputs.push(value()?),
            "--signature" | "-s" => args.signature = Some(value()?),
            "--outdir" => args.outdir = Some(PathBuf::from(value()?)),
            f if f.starts_with('-') => return Err(usage(&format!("unknown option '{f}'"))),
            _ if model.is_none() => model = Some(PathBuf::from(arg)),
            _ => return Err(usage(&format!("unexpected argument '{arg}'"))),
        }
    }
    args.model = model.ok_or_else(|| usage("missing MODEL"))?;
    Ok(args)
}

/// The file name an output is written to: `probs:0` → `probs_0.npy`.
fn npy_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.npy")
}

fn read_inputs(args: &Args) -> Result<Vec<(String, Tensor)>, Failure> {
    args.inputs
        .iter()
        .map(|(name, path)| Ok((name.clone(), read_npy(path).map_err(run_err)?)))
        .collect()
}

/// Runs a SavedModel signature; returns (output key, value) pairs.
fn run_saved_model(args: &Args) -> Result<Vec<(String, Tensor)>, Failure> {
    let model =
        saved_model::load(&args.model, &[SERVE_TAG], SessionOptions::default()).map_err(run_err)?;
    let key = args.signature.as_deref().unwrap_or(DEFAULT_SIGNATURE);
    let sig = model.signature(key).map_err(run_err)?;
    let inputs = read_inputs(args)?;
    let feeds: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(k, t)| (k.as_str(), t.clone()))
        .collect();
    let keys: Vec<&str> = if args.outputs.is_empty() {
        sig.outputs.keys().map(String::as_str).collect()
    } else {
        args.outputs.iter().map(String::as_str).collect()
    };
    let values = model
        .run_signature_outputs(key, &feeds, &keys)
        .map_err(run_err)?;
    Ok(keys.iter().map(|k| k.to_string()).zip(values).collect())
}

/// Runs a GraphDef: feeds and fetches by tensor name.
fn run_graph_def(args: &Args) -> Result<Vec<(String, Tensor)>, Failure> {
    if args.signature.is_some() {
        return Err(Failure::Usage(
            "--signature applies to SavedModels only; a GraphDef is run by tensor names"
                .to_string(),
        ));
    }
    if args.outputs.is_empty() {
        return Err(Failure::Usage(format!(
            "a GraphDef has no signature: name the tensors to fetch with --output NAME\n{USAGE}"
        )));
    }
    let graph = load_graph(&args.model).map_err(run_err)?;
    let mut feeds = Vec::new();
    for (name, t) in read_inputs(args)? {
        let o = graph.output_by_name(&name).map_err(run_err)?;
        let tf_dtype = unsupported::tf_output_dtype(&graph, o);
        if DType::from_tf_enum(tf_dtype).is_none() {
            return Err(Failure::Run(format!(
                "input '{name}' has dtype {}, which rustflow does not support",
                rustflow::proto::dtype_name(tf_dtype)
            )));
        }
        feeds.push((o, t));
    }
    let fetches = args
        .outputs
        .iter()
        .map(|n| graph.output_by_name(n))
        .collect::<rustflow::Result<Vec<_>>>()
        .map_err(run_err)?;
    let values = Session::new(&graph)
        .run(&feeds, &fetches, &[])
        .map_err(run_err)?;
    Ok(args.outputs.iter().cloned().zip(values).collect())
}

fn run(args: &Args) -> Result<(), Failure> {
    let results = if args.model.is_dir() {
        run_saved_model(args)?
    } else if args.model.is_file() {
        run_graph_def(args)?
    } else {
        return Err(Failure::Run(format!(
            "{}: no such SavedModel directory or GraphDef file",
            args.model.display()
        )));
    };
    match &args.outdir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::Run(format!("{}: {e}", dir.display())))?;
            for (name, t) in &results {
                write_npy(Path::new(dir).join(npy_file_name(name)), t).map_err(run_err)?;
            }
        }
        None => {
            for (name, t) in &results {
                println!("{name}: {t}");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_args(&argv).and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("rustflow: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            // One line: messages that span lines are joined.
            eprintln!("rustflow: error: {}", msg.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args, Failure> {
        parse_args(&s.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_flags_in_both_forms() {
        let a = args(&[
            "run",
            "m",
            "--input",
            "x=a.npy",
            "--input=y:0=b.npy",
            "-o",
            "p:0",
            "--outdir=out",
        ])
        .ok()
        .unwrap();
        assert_eq!(a.model, PathBuf::from("m"));
        assert_eq!(
            a.inputs,
            [
                ("x".to_string(), PathBuf::from("a.npy")),
                ("y:0".to_string(), PathBuf::from("b.npy"))
            ]
        );
        assert_eq!(a.outputs, ["p:0"]);
        assert_eq!(a.outdir, Some(PathBuf::from("out")));
        for bad in [
            &["run"][..],
            &["go", "m"],
            &["run", "m", "--input", "x"],
            &["run", "m", "--input"],
            &["run", "m", "--bogus"],
            &["run", "m", "extra"],
        ] {
            assert!(matches!(args(bad), Err(Failure::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn output_file_names_are_sanitized() {
        assert_eq!(npy_file_name("probs:0"), "probs_0.npy");
        assert_eq!(npy_file_name("dense/Softmax:1"), "dense_Softmax_1.npy");
        assert_eq!(npy_file_name("a.b-c_d"), "a.b-c_d.npy");
    }
}
