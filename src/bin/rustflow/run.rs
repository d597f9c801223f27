//! `rustflow run`: runs a SavedModel signature or GraphDef tensors on `.npy` inputs.
//!
//! For a SavedModel, NAMEs are keys of the signature (default `serving_default`) and the
//! outputs default to all of the signature's; for a GraphDef, NAMEs are tensor names (`x` or
//! `x:0`) and at least one `--output` is needed. Outputs are printed, or written to
//! `DIR/<name>.npy` with every character outside `[A-Za-z0-9_.-]` of the name replaced by `_`.

use crate::{run_err, Failure};
use rustflow::proto::{load_graph, unsupported};
use rustflow::saved_model::{self, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::tensor::npy::{read_npy, write_npy};
use rustflow::{DType, Session, SessionOptions, Tensor};
use std::path::{Path, PathBuf};

/// Runs a model on inputs from `.npy` files and prints or saves the outputs.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A SavedModel directory (tag `serve`) or a GraphDef file (`.pb`, text `.pbtxt`).
    pub model: PathBuf,
    /// An input: a signature input key (SavedModel) or a tensor name (GraphDef), and the
    /// `.npy` file holding its value. Repeat for each input.
    #[arg(short, long = "input", value_name = "NAME=FILE.npy", value_parser = parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// An output to fetch: a signature output key or a tensor name (default: every output
    /// of the signature; required for a GraphDef). Repeat for several.
    #[arg(short, long = "output", value_name = "NAME")]
    pub outputs: Vec<String>,
    /// The signature to run (SavedModel only).
    #[arg(short, long, value_name = "KEY")]
    pub signature: Option<String>,
    /// Write each output to DIR/<name>.npy instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub outdir: Option<PathBuf>,
    /// The most memory the live tensors of a run may take together (`2G`, `512M`, bytes;
    /// default: the machine's memory): the node that would go over fails, named.
    #[arg(long = "max-memory", value_name = "SIZE", value_parser = crate::parse_bytes)]
    pub max_memory: Option<usize>,
}

impl Args {
    /// The session options the flags ask for.
    fn session_options(&self) -> SessionOptions {
        let defaults = SessionOptions::default();
        SessionOptions {
            max_memory_bytes: self.max_memory.unwrap_or(defaults.max_memory_bytes),
            ..defaults
        }
    }
}

/// Parses `NAME=FILE`.
pub fn parse_input(v: &str) -> Result<(String, PathBuf), String> {
    v.split_once('=')
        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        .map(|(n, f)| (n.to_string(), PathBuf::from(f)))
        .ok_or_else(|| format!("wants NAME=FILE.npy, got '{v}'"))
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
        saved_model::load(&args.model, &[SERVE_TAG], args.session_options()).map_err(run_err)?;
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
        return Err(Failure::Usage(
            "a GraphDef has no signature: name the tensors to fetch with --output NAME \
             (usage: rustflow run MODEL --input NAME=FILE.npy ... --output NAME ...)"
                .to_string(),
        ));
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
    let values = Session::with_options(&graph, args.session_options())
        .run(&feeds, &fetches, &[])
        .map_err(run_err)?;
    Ok(args.outputs.iter().cloned().zip(values).collect())
}

/// `rustflow run`.
pub fn run(args: &Args) -> Result<(), Failure> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(s: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("run").chain(s.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn parses_flags_in_both_forms() {
        let a = args(&[
            "m",
            "--input",
            "x=a.npy",
            "--input=y:0=b.npy",
            "-o",
            "p:0",
            "--outdir=out",
        ])
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
            &[][..],
            &["m", "--input", "x"],
            &["m", "--input"],
            &["m", "--bogus"],
            &["m", "extra"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn output_file_names_are_sanitized() {
        assert_eq!(npy_file_name("probs:0"), "probs_0.npy");
        assert_eq!(npy_file_name("dense/Softmax:1"), "dense_Softmax_1.npy");
        assert_eq!(npy_file_name("a.b-c_d"), "a.b-c_d.npy");
    }
}
