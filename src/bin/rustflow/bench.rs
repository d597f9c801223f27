//! `rustflow bench`: as TensorFlow's `benchmark_model`, times runs of a SavedModel
//! signature or GraphDef tensors: latency min, median, p90, p99, max; runs and samples per
//! second; peak memory.

use crate::{run_err, Failure};
use rustflow::proto::load_graph;
use rustflow::saved_model::{self, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::tensor::npy::read_npy;
use rustflow::{DType, Graph, Output, PartialShape, Session, SessionOptions, Tensor};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Times repeated runs of a model on fixed inputs.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A SavedModel directory (tag `serve`) or a GraphDef file (`.pb`, text `.pbtxt`).
    pub model: PathBuf,
    /// An input: NAME=SHAPE (comma-separated dims, -1 for the batch size; filled with
    /// deterministic pseudo-random values of the input's dtype) or NAME=FILE.npy. A
    /// SavedModel's inputs default to the signature's shapes with -1 as the batch size.
    #[arg(short, long = "input", value_name = "NAME=SHAPE|FILE.npy", value_parser = crate::run::parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// An output to fetch (default: every output of the signature; required for a GraphDef).
    #[arg(short, long = "output", value_name = "NAME")]
    pub outputs: Vec<String>,
    /// The signature to run (SavedModel only).
    #[arg(short, long, value_name = "KEY")]
    pub signature: Option<String>,
    /// Timed runs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: u64,
    /// Untimed runs first.
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// Threads one run may use (inter-op and intra-op).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: u64,
    /// The batch size: replaces -1 (unknown) dimensions of generated inputs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// The most memory the live tensors of a run may take together (`2G`, `512M`, bytes;
    /// default: the machine's memory): the node that would go over fails, named.
    #[arg(long = "max-memory", value_name = "SIZE", value_parser = crate::parse_bytes)]
    pub max_memory: Option<usize>,
    /// Prints JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A model ready to be timed: a session with resolved feeds and fetches.
struct Prepared {
    session: Session,
    feeds: Vec<(Output, Tensor)>,
    fetches: Vec<Output>,
    /// What the inputs are, for the report.
    described: Vec<(String, Tensor)>,
    /// The batch size (samples per run).
    batch: usize,
}

/// Deterministic pseudo-random values of a dtype (xorshift).
fn generated(dtype: DType, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<f64> = (0..n).map(|_| next()).collect();
    let t = match dtype {
        DType::Float32 => Tensor::new(shape, values.iter().map(|&v| v as f32).collect()),
        DType::Float64 => Tensor::new(shape, values),
        DType::Int32 => Tensor::new(shape, values.iter().map(|&v| (v * 10.0) as i32).collect()),
        DType::Int64 => Tensor::new(shape, values.iter().map(|&v| (v * 10.0) as i64).collect()),
        DType::UInt8 => Tensor::new(shape, values.iter().map(|&v| (v * 256.0) as u8).collect()),
        DType::Bool => Tensor::new(shape, values.iter().map(|&v| v < 0.5).collect()),
        // Signatures take no resource handles; zeros are handles to nothing.
        DType::Resource | DType::Variant => Ok(Tensor::zeros(dtype, shape)),
        // Text of the numbers: enough for string inputs that are not parsed further.
        DType::String => {
            Tensor::from_strings(shape, values.iter().map(|v| v.to_string()).collect())
        }
    };
    t.expect("the shape matches the values")
}

/// Parses a SHAPE (`1,784`, `-1,64`, empty for a scalar) with -1 as `batch`.
fn parse_shape(s: &str, batch: usize) -> Option<Vec<usize>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',')
        .map(|d| match d.trim() {
            "-1" | "?" => Some(batch),
            d => d.parse().ok(),
        })
        .collect()
}

/// The value of an input given as a SHAPE or a `.npy` file.
fn input_value(
    name: &str,
    spec: &std::path::Path,
    dtype: Option<DType>,
    batch: usize,
) -> Result<Tensor, Failure> {
    if spec.extension().is_some_and(|e| e == "npy") || spec.exists() {
        return read_npy(spec).map_err(run_err);
    }
    let text = spec.to_string_lossy();
    let shape = parse_shape(&text, batch).ok_or_else(|| {
        Failure::Usage(format!(
            "--input {name}={text}: not a SHAPE (comma-separated sizes, -1 for the batch) or an existing .npy file"
        ))
    })?;
    let dtype = dtype.ok_or_else(|| {
        Failure::Run(format!(
            "input '{name}' has a dtype rustflow does not support"
        ))
    })?;
    Ok(generated(dtype, &shape))
}

/// A declared shape with unknown dimensions set to the batch size.
fn concrete(shape: &PartialShape, batch: usize, name: &str) -> Result<Vec<usize>, Failure> {
    let dims = shape.dims().ok_or_else(|| {
        Failure::Run(format!(
            "input '{name}' has an unknown rank: give its shape with --input {name}=SHAPE"
        ))
    })?;
    Ok(dims.iter().map(|d| d.unwrap_or(batch)).collect())
}

fn prepare_saved_model(args: &Args, options: SessionOptions) -> Result<Prepared, Failure> {
    let batch = args.batch as usize;
    let model = saved_model::load(&args.model, &[SERVE_TAG], options).map_err(run_err)?;
    let key = args.signature.as_deref().unwrap_or(DEFAULT_SIGNATURE);
    let sig = model.signature(key).map_err(run_err)?;
    let mut inputs = Vec::new();
    for (k, info) in &sig.inputs {
        let t = match args.inputs.iter().find(|(n, _)| n == k) {
            Some((_, spec)) => input_value(k, spec, info.dtype(), batch)?,
            None => {
                let dtype = info.dtype().ok_or_else(|| {
                    Failure::Run(format!(
                        "input '{k}' has dtype {}, which rustflow does not support",
                        rustflow::proto::dtype_name(info.tf_dtype)
                    ))
                })?;
                generated(dtype, &concrete(&info.shape, batch, k)?)
            }
        };
        inputs.push((k.clone(), t));
    }
    if let Some((n, _)) = args
        .inputs
        .iter()
        .find(|(n, _)| !sig.inputs.contains_key(n))
    {
        return Err(Failure::Run(format!(
            "signature '{key}' has no input '{n}'; its inputs: {}",
            sig.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let keys: Vec<&str> = if args.outputs.is_empty() {
        sig.outputs.keys().map(String::as_str).collect()
    } else {
        args.outputs.iter().map(String::as_str).collect()
    };
    // One checked run: dtypes, shapes and names are validated here.
    let feeds: Vec<(&str, Tensor)> = inputs
        .iter()
        .map(|(k, t)| (k.as_str(), t.clone()))
        .collect();
    model
        .run_signature_outputs(key, &feeds, &keys)
        .map_err(run_err)?;
    let by_name = |name: &str| model.graph.output_by_name(name).map_err(run_err);
    let feeds = inputs
        .iter()
        .map(|(k, t)| Ok((by_name(&sig.inputs[k].name)?, t.clone())))
        .collect::<Result<_, Failure>>()?;
    let fetches = keys
        .iter()
        .map(|k| by_name(&sig.outputs[*k].name))
        .collect::<Result<_, Failure>>()?;
    let batch = inputs
        .first()
        .and_then(|(_, t)| t.shape().first().copied())
        .unwrap_or(1);
    Ok(Prepared {
        session: model.session,
        feeds,
        fetches,
        described: inputs,
        batch,
    })
}

fn prepare_graph_def(args: &Args, options: SessionOptions) -> Result<Prepared, Failure> {
    if args.signature.is_some() {
        return Err(Failure::Usage(
            "--signature applies to SavedModels only; a GraphDef is run by tensor names".into(),
        ));
    }
    if args.outputs.is_empty() {
        return Err(Failure::Usage(
            "a GraphDef has no signature: name the tensors to fetch with --output NAME".into(),
        ));
    }
    let graph: Graph = load_graph(&args.model).map_err(run_err)?;
    let mut feeds = Vec::new();
    let mut described = Vec::new();
    for (name, spec) in &args.inputs {
        let o = graph.output_by_name(name).map_err(run_err)?;
        let t = input_value(name, spec, Some(graph.dtype(o)), args.batch as usize)?;
        feeds.push((o, t.clone()));
        described.push((name.clone(), t));
    }
    let fetches = args
        .outputs
        .iter()
        .map(|n| graph.output_by_name(n))
        .collect::<rustflow::Result<Vec<_>>>()
        .map_err(run_err)?;
    let session = Session::with_options(&graph, options);
    session.run(&feeds, &fetches, &[]).map_err(run_err)?;
    let batch = described
        .first()
        .and_then(|(_, t)| t.shape().first().copied())
        .unwrap_or(1);
    Ok(Prepared {
        session,
        feeds,
        fetches,
        described,
        batch,
    })
}

/// The nearest-rank quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The process's peak resident set size in bytes (Linux: `VmHWM`).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `rustflow bench`.
pub fn bench(args: &Args) -> Result<(), Failure> {
    let mut options = SessionOptions::with_threads(args.threads as usize);
    if let Some(bytes) = args.max_memory {
        options.max_memory_bytes = bytes;
    }
    let p = if args.model.is_dir() {
        prepare_saved_model(args, options)?
    } else if args.model.is_file() {
        prepare_graph_def(args, options)?
    } else {
        return Err(Failure::Run(format!(
            "{}: no such SavedModel directory or GraphDef file",
            args.model.display()
        )));
    };
    for _ in 0..args.warmup {
        p.session.run(&p.feeds, &p.fetches, &[]).map_err(run_err)?;
    }
    let mut times = Vec::with_capacity(args.runs as usize);
    let total = Instant::now();
    for _ in 0..args.runs {
        let start = Instant::now();
        let out = p.session.run(&p.feeds, &p.fetches, &[]).map_err(run_err)?;
        times.push(start.elapsed());
        drop(out);
    }
    let wall = total.elapsed().as_secs_f64();
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|&d| us(d)).sum::<f64>() / times.len() as f64;
    let runs_per_s = args.runs as f64 / wall;
    let samples_per_s = runs_per_s * p.batch as f64;
    let stats = [
        ("min", us(times[0])),
        ("median", us(quantile(&times, 0.5))),
        ("p90", us(quantile(&times, 0.9))),
        ("p99", us(quantile(&times, 0.99))),
        ("max", us(*times.last().expect("runs >= 1"))),
        ("mean", mean),
    ];
    let peak = peak_memory();
    if args.json {
        let latency: serde_json::Map<String, serde_json::Value> = stats
            .iter()
            .map(|(k, v)| (k.to_string(), json!((v * 1000.0).round() / 1000.0)))
            .collect();
        let inputs: serde_json::Map<String, serde_json::Value> = p
            .described
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    json!({"dtype": t.dtype().to_string(), "shape": t.shape()}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({
                "model": args.model.display().to_string(),
                "inputs": inputs,
                "batch": p.batch,
                "threads": args.threads,
                "runs": args.runs,
                "warmup": args.warmup,
                "latency_us": latency,
                "runs_per_second": runs_per_s,
                "samples_per_second": samples_per_s,
                "peak_memory_bytes": peak,
            })
        );
        return Ok(());
    }
    println!(
        "model: {} (batch {}, {} thread{})",
        args.model.display(),
        p.batch,
        args.threads,
        if args.threads == 1 { "" } else { "s" }
    );
    for (k, t) in &p.described {
        println!("input {k}: {} {:?}", t.dtype(), t.shape());
    }
    println!("runs: {} timed after {} warm-up", args.runs, args.warmup);
    println!(
        "latency (us): {}",
        stats
            .iter()
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join("  ")
    );
    println!("throughput: {runs_per_s:.1} runs/s, {samples_per_s:.1} samples/s");
    match peak {
        Some(b) => println!(
            "peak memory: {:.1} MiB (peak resident set size of the process)",
            b as f64 / (1 << 20) as f64
        ),
        None => println!("peak memory: unknown on this system"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_quantiles() {
        assert_eq!(parse_shape("-1,784", 8), Some(vec![8, 784]));
        assert_eq!(parse_shape("", 8), Some(vec![]));
        assert_eq!(parse_shape("2,x", 8), None);
        let d: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_micros(50));
        assert_eq!(quantile(&d, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&d[..1], 0.99), Duration::from_micros(1));
        let g = generated(DType::Float32, &[2, 3]);
        assert_eq!(g.shape(), &[2, 3]);
        assert!(g
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .all(|v| (0.0..1.0).contains(v)));
    }
}
