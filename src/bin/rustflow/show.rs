//! `rustflow show`: what `saved_model_cli show` prints (tag sets, signatures with each
//! input and output), and for a GraphDef its placeholders, op types and candidate outputs.

use crate::{run_err, Failure};
use rustflow::proto::{dtype_name, read_graph_def, tf};
use rustflow::saved_model::read_saved_model;
use rustflow::serving::codec::{signature_def_json, signature_def_map_json};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Shows a model's tag sets and signatures (as `saved_model_cli show`), or a GraphDef's
/// placeholders, op types and candidate outputs.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A SavedModel directory or a GraphDef file (`.pb`, text `.pbtxt`).
    pub model: PathBuf,
    /// The MetaGraphDef's tags, comma-separated: lists its signature keys.
    #[arg(long = "tag-set", alias = "tag_set", value_name = "TAGS")]
    pub tag_set: Option<String>,
    /// With --tag-set: shows this signature's inputs, outputs and method name.
    #[arg(
        long = "signature_def",
        alias = "signature-def",
        value_name = "KEY",
        requires = "tag_set"
    )]
    pub signature_def: Option<String>,
    /// Shows every MetaGraphDef's signatures with their inputs and outputs.
    #[arg(long, conflicts_with_all = ["tag_set", "signature_def"])]
    pub all: bool,
    /// Prints JSON (TensorFlow Serving's form of signatures) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `rustflow show`.
pub fn show(args: &Args) -> Result<(), Failure> {
    if args.model.is_dir() {
        show_saved_model(args)
    } else if args.model.is_file() {
        if args.tag_set.is_some() || args.all {
            return Err(Failure::Usage(
                "--tag-set, --signature_def and --all apply to SavedModels; MODEL is a GraphDef file"
                    .into(),
            ));
        }
        show_graph_def(args)
    } else {
        Err(Failure::Run(format!(
            "{}: no such SavedModel directory or GraphDef file",
            args.model.display()
        )))
    }
}

fn tags_of(m: &tf::MetaGraphDef) -> BTreeSet<String> {
    m.meta_info_def
        .as_ref()
        .map(|i| i.tags.iter().cloned().collect())
        .unwrap_or_default()
}

fn show_saved_model(args: &Args) -> Result<(), Failure> {
    let model = read_saved_model(&args.model).map_err(run_err)?;
    if model.meta_graphs.is_empty() {
        return Err(Failure::Run(format!(
            "{}: saved_model.pb holds no MetaGraphDef (is the file empty or truncated?)",
            args.model.display()
        )));
    }
    let mut metas: Vec<(BTreeSet<String>, &tf::MetaGraphDef)> =
        model.meta_graphs.iter().map(|m| (tags_of(m), m)).collect();
    metas.sort_by(|a, b| a.0.cmp(&b.0));
    let joined = |t: &BTreeSet<String>| t.iter().cloned().collect::<Vec<_>>().join(", ");

    let Some(tag_set) = &args.tag_set else {
        if args.json {
            let all: Vec<Value> = metas
                .iter()
                .map(|(t, m)| json!({"tags": t, "signature_def": signature_def_map_json(&m.signature_def)["signature_def"]}))
                .collect();
            println!("{}", json!({ "meta_graphs": all }));
        } else if args.all {
            for (tags, m) in &metas {
                println!(
                    "\nMetaGraphDef with tag-set: '{}' contains the following SignatureDefs:",
                    joined(tags)
                );
                for (key, sig) in &m.signature_def {
                    println!("\nsignature_def['{key}']:");
                    print_signature(sig, 1);
                }
            }
        } else {
            println!("The given SavedModel contains the following tag-sets:");
            for (tags, _) in &metas {
                println!("'{}'", joined(tags));
            }
        }
        return Ok(());
    };

    let want: BTreeSet<String> = tag_set
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let meta = metas
        .iter()
        .find(|(t, _)| *t == want)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            Failure::Run(format!(
                "{}: no MetaGraphDef with tag-set '{}'; it has {}",
                args.model.display(),
                joined(&want),
                metas
                    .iter()
                    .map(|(t, _)| format!("'{}'", joined(t)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    match &args.signature_def {
        None if args.json => println!(
            "{}",
            json!({"tags": want, "signature_def": signature_def_map_json(&meta.signature_def)["signature_def"]})
        ),
        None => {
            println!(
                "The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:"
            );
            for key in meta.signature_def.keys() {
                println!("SignatureDef key: \"{key}\"");
            }
        }
        Some(key) => {
            let sig = meta.signature_def.get(key).ok_or_else(|| {
                Failure::Run(format!(
                    "no signature '{key}' in the MetaGraphDef; it has: {}",
                    meta.signature_def
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            if args.json {
                println!("{}", signature_def_json(sig));
            } else {
                print_signature(sig, 0);
            }
        }
    }
    Ok(())
}

/// A shape as `saved_model_cli` writes it: `(-1, 784)`, `()`, or `unknown_rank`.
fn shape_text(s: Option<&tf::TensorShapeProto>) -> String {
    match s {
        Some(s) if s.unknown_rank => "unknown_rank".into(),
        Some(s) => format!(
            "({})",
            s.dim
                .iter()
                .map(|d| d.size.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "unknown_rank".into(),
    }
}

fn print_signature(sig: &tf::SignatureDef, indent: usize) {
    let pad = "  ".repeat(indent);
    let infos = |what: &str, m: &BTreeMap<String, tf::TensorInfo>| {
        let plural = if what == "inputs" { "input" } else { "output" };
        println!("{pad}The given SavedModel SignatureDef contains the following {plural}(s):");
        for (k, info) in m {
            println!("{pad}  {what}['{k}'] tensor_info:");
            println!("{pad}      dtype: {}", dtype_name(info.dtype));
            println!(
                "{pad}      shape: {}",
                shape_text(info.tensor_shape.as_ref())
            );
            match &info.encoding {
                Some(tf::tensor_info::Encoding::Name(n)) => println!("{pad}      name: {n}"),
                Some(tf::tensor_info::Encoding::CooSparse(c)) => println!(
                    "{pad}      sparse: values {}, indices {}, dense_shape {}",
                    c.values_tensor_name, c.indices_tensor_name, c.dense_shape_tensor_name
                ),
                _ => println!("{pad}      name: "),
            }
        }
    };
    infos("inputs", &sig.inputs);
    infos("outputs", &sig.outputs);
    println!("{pad}Method name is: {}", sig.method_name);
}

fn show_graph_def(args: &Args) -> Result<(), Failure> {
    let g = read_graph_def(&args.model).map_err(run_err)?;
    let attr = |n: &tf::NodeDef, k: &str| n.attr.get(k).and_then(|a| a.value.clone());
    let mut placeholders = Vec::new();
    let mut op_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut read: BTreeSet<&str> = BTreeSet::new();
    for n in &g.node {
        *op_counts.entry(n.op.as_str()).or_default() += 1;
        for i in &n.input {
            let i = i.trim_start_matches('^');
            read.insert(i.rsplit_once(':').map_or(i, |(node, _)| node));
        }
        if matches!(n.op.as_str(), "Placeholder" | "PlaceholderWithDefault") {
            let dtype = match attr(n, "dtype") {
                Some(tf::attr_value::Value::Type(t)) => dtype_name(t),
                _ => "?".into(),
            };
            let shape = match attr(n, "shape") {
                Some(tf::attr_value::Value::Shape(s)) => shape_text(Some(&s)),
                _ => "unknown_rank".into(),
            };
            placeholders.push((n.name.as_str(), dtype, shape, n.op.as_str()));
        }
    }
    let outputs: Vec<(&str, &str)> = g
        .node
        .iter()
        .filter(|n| !read.contains(n.name.as_str()))
        .map(|n| (n.name.as_str(), n.op.as_str()))
        .collect();
    if args.json {
        println!(
            "{}",
            json!({
                "nodes": g.node.len(),
                "placeholders": placeholders.iter().map(|(n, d, s, op)| json!({"name": n, "dtype": d, "shape": s, "op": op})).collect::<Vec<_>>(),
                "op_counts": op_counts,
                "candidate_outputs": outputs.iter().map(|(n, op)| json!({"name": n, "op": op})).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    println!("GraphDef {}: {} nodes", args.model.display(), g.node.len());
    println!("Placeholders (inputs):");
    for (n, d, s, op) in &placeholders {
        let default = if *op == "PlaceholderWithDefault" {
            " (has a default)"
        } else {
            ""
        };
        println!("  {n}:0 dtype: {d} shape: {s}{default}");
    }
    println!("Op types:");
    for (op, c) in &op_counts {
        println!("  {op}: {c}");
    }
    println!("Candidate outputs (nodes no other node reads):");
    for (n, op) in &outputs {
        println!("  {n} ({op})");
    }
    Ok(())
}
