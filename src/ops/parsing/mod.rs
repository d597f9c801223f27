//! Parsing ops: `ParseExample` (TensorFlow 1's `tf.io.parse_example`) and `ParseExampleV2`
//! (TensorFlow 2's), which turn a batch of serialized `tf.train.Example` protos into dense
//! tensors (`FixedLenFeature`) and sparse ones (`VarLenFeature`: indices, values and dense
//! shape). TensorFlow Serving's `classify` and `regress` signatures start with one.
//! [`FeatureSpec`] and [`parse_features`] are shared with
//! [`ExampleParser`](crate::data::ExampleParser).

mod features;
mod wire;

pub use features::{parse_features, FeatureSpec};

use super::{
    kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelCtx, KernelResult, Op, Registry,
};
use crate::graph::{AttrValue, Attrs, AttrsExt, Graph, Output, TensorSpec};
use crate::tensor::rows;
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};

pub(crate) fn register(r: &mut Registry) {
    r.add(Op::new("ParseExample", infer_parse_example, parse_example_kernel).no_grad());
    r.add(
        Op::new(
            "ParseExampleV2",
            infer_parse_example_v2,
            parse_example_kernel,
        )
        .no_grad(),
    );
}

/// Which of the two ops a node is: they differ in how the keys come (`ParseExample`: one
/// scalar input per key; `ParseExampleV2`: a vector of keys per kind, and ragged keys) and
/// in the attrs that count them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn of(op: &str) -> Version {
        if op == "ParseExampleV2" {
            Version::V2
        } else {
            Version::V1
        }
    }

    /// The number of inputs.
    fn num_inputs(self, ns: usize, nd: usize) -> usize {
        match self {
            Version::V1 => 2 + ns + 2 * nd,
            Version::V2 => 5 + nd,
        }
    }

    /// The input index of the first dense default.
    fn defaults_start(self, ns: usize, nd: usize) -> usize {
        match self {
            Version::V1 => 2 + ns + nd,
            Version::V2 => 5,
        }
    }
}

/// The dtypes a feature may have (`list({float, int64, string})`).
const FEATURE_DTYPES: [DType; 3] = [DType::Float32, DType::Int64, DType::String];

/// `ParseExample`'s attrs, checked.
struct Signature {
    sparse_types: Vec<DType>,
    dense_types: Vec<DType>,
    dense_shapes: Vec<PartialShape>,
    /// `ParseExampleV2`'s ragged features: their values' dtypes and their row splits'
    /// (int32 or int64); none for `ParseExample`.
    ragged_types: Vec<DType>,
    ragged_split_types: Vec<DType>,
}

impl Signature {
    fn read(attrs: &Attrs, version: Version) -> std::result::Result<Signature, String> {
        let count = |name: &str| -> std::result::Result<usize, String> {
            usize::try_from(attrs.int_or(name, 0)?).map_err(|_| format!("attr {name} is negative"))
        };
        // An empty list attr carries no element type in a GraphDef (it reads as ints).
        let empty =
            |name: &str| matches!(attrs.value(name), Some(AttrValue::IntList(v)) if v.is_empty());
        let types = |name: &str| match empty(name) {
            true => Ok(Vec::new()),
            false => attrs.dtypes(name),
        };
        let sig = Signature {
            sparse_types: types("sparse_types")?,
            dense_types: types("Tdense")?,
            dense_shapes: match attrs.value("dense_shapes") {
                Some(AttrValue::ShapeList(s)) => s.clone(),
                None => Vec::new(),
                Some(_) if empty("dense_shapes") => Vec::new(),
                Some(other) => {
                    return Err(format!(
                        "attr dense_shapes must be a list of shapes, got {other:?}"
                    ))
                }
            },
            ragged_types: match version {
                Version::V1 => Vec::new(),
                Version::V2 => types("ragged_value_types")?,
            },
            ragged_split_types: match version {
                Version::V1 => Vec::new(),
                Version::V2 => types("ragged_split_types")?,
            },
        };
        let (nsparse, ndense) = match version {
            Version::V1 => (count("Nsparse")?, count("Ndense")?),
            Version::V2 => (count("num_sparse")?, sig.dense_types.len()),
        };
        if sig.ragged_types.len() != sig.ragged_split_types.len() {
            return Err(format!(
                "ragged_value_types has {} types but ragged_split_types {}",
                sig.ragged_types.len(),
                sig.ragged_split_types.len()
            ));
        }
        if let Some(t) = sig
            .ragged_split_types
            .iter()
            .find(|t| ![DType::Int32, DType::Int64].contains(t))
        {
            return Err(format!("ragged row splits must be int32 or int64, got {t}"));
        }
        if sig.sparse_types.len() != nsparse {
            return Err(format!(
                "Nsparse is {nsparse} but sparse_types has {} types",
                sig.sparse_types.len()
            ));
        }
        if sig.dense_types.len() != ndense || sig.dense_shapes.len() != ndense {
            return Err(format!(
                "Ndense is {ndense} but Tdense has {} types and dense_shapes {} shapes",
                sig.dense_types.len(),
                sig.dense_shapes.len()
            ));
        }
        for t in sig
            .sparse_types
            .iter()
            .chain(&sig.dense_types)
            .chain(&sig.ragged_types)
        {
            if !FEATURE_DTYPES.contains(t) {
                return Err(format!("feature dtype {t} is not float32, int64 or string"));
            }
        }
        Ok(sig)
    }

    fn nsparse(&self) -> usize {
        self.sparse_types.len()
    }

    fn ndense(&self) -> usize {
        self.dense_types.len()
    }

    fn nragged(&self) -> usize {
        self.ragged_types.len()
    }
}

/// `ParseExample`'s inputs: `serialized` (string vector), `names` (strings), `Nsparse`
/// sparse keys, `Ndense` dense keys (string scalars) and `Ndense` defaults.
/// `ParseExampleV2`'s: `serialized` (a string vector, or a scalar: one example without a
/// batch dimension), `names`, the sparse, dense and ragged keys (string vectors), and the
/// defaults. Both output the sparse indices, values and shapes, then the dense values
/// (`[batch] + dense_shapes[i]`); `ParseExampleV2` then the ragged features' values (every
/// example's, concatenated) and row splits (`[batch + 1]`; `[0]` for a scalar
/// `serialized`, as TensorFlow gives them).
fn infer(ctx: &InferCtx<'_>, version: Version) -> InferResult {
    let sig = Signature::read(ctx.attrs(), version)?;
    let (ns, nd) = (sig.nsparse(), sig.ndense());
    ctx.expect_inputs(version.num_inputs(ns, nd))?;
    let defaults = version.defaults_start(ns, nd);
    for i in 0..defaults {
        if ctx.dtype(i) != DType::String {
            return Err(format!(
                "input {i} must be a string tensor, got {}",
                ctx.dtype(i)
            ));
        }
    }
    let batch: Option<Vec<Option<usize>>> = match (version, ctx.shape(0).rank()) {
        (_, Some(1)) => Some(vec![ctx.shape(0).dim(0)]),
        (Version::V2, Some(0)) => Some(vec![]),
        (Version::V2, None) => None,
        (Version::V1, None) => Some(vec![None]),
        _ => {
            return Err(format!(
                "serialized must be a vector{}, got shape {}",
                if version == Version::V2 {
                    " or a scalar"
                } else {
                    ""
                },
                ctx.shape(0)
            ))
        }
    };
    if version == Version::V2 {
        let nr = sig.nragged();
        for (i, (what, n)) in [("sparse_keys", ns), ("dense_keys", nd), ("ragged_keys", nr)]
            .into_iter()
            .enumerate()
        {
            let want = PartialShape::known(&[n]);
            if ctx.shape(2 + i).merge(&want).is_err() {
                return Err(format!(
                    "{what} must have shape [{n}], got {}",
                    ctx.shape(2 + i)
                ));
            }
        }
    }
    for (i, &t) in sig.dense_types.iter().enumerate() {
        let d = ctx.dtype(defaults + i);
        if d != t {
            return Err(format!("dense_defaults[{i}] must be {t} (Tdense), got {d}"));
        }
    }
    // A sparse index has one column per dimension of `serialized` and one for the values.
    let index_rank = batch.as_ref().map(|b| b.len() + 1);
    let mut out = Vec::with_capacity(3 * ns + nd + 2 * sig.nragged());
    out.extend(
        (0..ns).map(|_| TensorSpec::new(DType::Int64, PartialShape::new(vec![None, index_rank]))),
    );
    out.extend(
        sig.sparse_types
            .iter()
            .map(|&t| TensorSpec::new(t, PartialShape::new(vec![None]))),
    );
    out.extend((0..ns).map(|_| TensorSpec::new(DType::Int64, PartialShape::new(vec![index_rank]))));
    for (&t, shape) in sig.dense_types.iter().zip(&sig.dense_shapes) {
        let shape = match (&batch, shape.dims()) {
            (Some(batch), Some(dims)) => {
                PartialShape::new(batch.iter().chain(dims).copied().collect())
            }
            _ => PartialShape::unknown(),
        };
        out.push(TensorSpec::new(t, shape));
    }
    out.extend(
        sig.ragged_types
            .iter()
            .map(|&t| TensorSpec::new(t, PartialShape::new(vec![None]))),
    );
    let splits = match batch.as_deref() {
        Some([]) => Some(0),
        Some([b]) => b.map(|b| b + 1),
        _ => None,
    };
    out.extend(
        sig.ragged_split_types
            .iter()
            .map(|&t| TensorSpec::new(t, PartialShape::new(vec![splits]))),
    );
    Ok(out)
}

/// Where a feature's tensors go.
#[derive(Clone, Copy)]
enum Slot {
    Sparse(usize),
    Dense(usize),
    Ragged(usize),
}

/// A string scalar input (a feature key), as text.
fn key(t: &Tensor, what: &str) -> Result<String> {
    match (t.rank(), t.as_strings()?) {
        (0, [k]) => Ok(String::from_utf8_lossy(k).into_owned()),
        _ => Err(Error::invalid(format!(
            "{what} must be a string scalar, got shape {:?}",
            t.shape()
        ))),
    }
}

fn infer_parse_example(ctx: &InferCtx<'_>) -> InferResult {
    infer(ctx, Version::V1)
}

fn infer_parse_example_v2(ctx: &InferCtx<'_>) -> InferResult {
    infer(ctx, Version::V2)
}

/// `n` keys from a string vector (`ParseExampleV2`'s keys).
fn keys(t: &Tensor, n: usize, what: &str) -> Result<Vec<String>> {
    match (t.shape(), t.as_strings()?) {
        ([len], keys) if *len == n => Ok(keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()),
        (shape, _) => Err(Error::invalid(format!(
            "{what} must be a vector of {n} strings, got shape {shape:?}"
        ))),
    }
}

/// The sparse, dense and ragged feature keys of a node's inputs.
fn feature_keys(k: &KernelCtx<'_>, version: Version, sig: &Signature) -> Result<[Vec<String>; 3]> {
    let (ns, nd) = (sig.nsparse(), sig.ndense());
    match version {
        Version::V1 => Ok([
            (0..ns)
                .map(|j| key(k.input(2 + j)?, &format!("sparse_keys[{j}]")))
                .collect::<Result<_>>()?,
            (0..nd)
                .map(|i| key(k.input(2 + ns + i)?, &format!("dense_keys[{i}]")))
                .collect::<Result<_>>()?,
            Vec::new(),
        ]),
        Version::V2 => Ok([
            keys(k.input(2)?, ns, "sparse_keys")?,
            keys(k.input(3)?, nd, "dense_keys")?,
            keys(k.input(4)?, sig.nragged(), "ragged_keys")?,
        ]),
    }
}

/// TensorFlow's `ParseExampleOp` (both versions): each record parsed by the keys' specs; a
/// dense feature missing from a record takes its default (an error when the default is
/// empty), a sparse one is empty. A scalar `serialized` (`ParseExampleV2`) is parsed as a
/// batch of one whose batch dimension is then dropped.
fn parse_example_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let version = Version::of(ctx.node.op_type());
    let sig = Signature::read(ctx.attrs(), version)?;
    let mut dense_shapes = Vec::with_capacity(sig.ndense());
    for (i, s) in sig.dense_shapes.iter().enumerate() {
        dense_shapes.push(s.to_known().ok_or_else(|| {
            format!("dense_shapes[{i}] is {s}: variable-length dense features are not supported")
        })?);
    }
    kernel_fn(move |k| {
        let (ns, nd) = (sig.nsparse(), sig.ndense());
        let serialized = k.input(0)?;
        let scalar = match (version, serialized.rank()) {
            (_, 1) => false,
            (Version::V2, 0) => true,
            _ => {
                return Err(Error::invalid(format!(
                    "serialized must be a vector{}, got shape {:?}",
                    if version == Version::V2 {
                        " or a scalar"
                    } else {
                        ""
                    },
                    serialized.shape()
                )))
            }
        };
        let nr = sig.nragged();
        let [sparse_keys, dense_keys, ragged_keys] = feature_keys(k, version, &sig)?;
        let defaults = version.defaults_start(ns, nd);
        let mut specs: Vec<(String, FeatureSpec, Slot)> = Vec::with_capacity(ns + nd + nr);
        for (j, (&dtype, name)) in sig.sparse_types.iter().zip(sparse_keys).enumerate() {
            specs.push((name, FeatureSpec::var_len(dtype), Slot::Sparse(j)));
        }
        for (r, (&dtype, name)) in sig.ragged_types.iter().zip(ragged_keys).enumerate() {
            specs.push((name, FeatureSpec::var_len(dtype), Slot::Ragged(r)));
        }
        for (i, ((&dtype, shape), name)) in sig
            .dense_types
            .iter()
            .zip(&dense_shapes)
            .zip(dense_keys)
            .enumerate()
        {
            let default = k.input(defaults + i)?;
            let mut spec = FeatureSpec::fixed_len(dtype, shape);
            if !default.is_empty() {
                let default = default.reshape(shape).map_err(|_| {
                    Error::invalid(format!(
                        "dense_defaults[{i}] for '{name}' has shape {:?}, not {shape:?}",
                        default.shape()
                    ))
                })?;
                spec = spec.with_default(default);
            }
            specs.push((name, spec, Slot::Dense(i)));
        }
        specs.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = specs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid(format!(
                "feature key '{}' is given twice",
                w[0].0
            )));
        }
        let features: Vec<(&str, &FeatureSpec)> =
            specs.iter().map(|(n, s, _)| (n.as_str(), s)).collect();
        let records = serialized.as_strings()?;
        let mut sparse: Vec<Vec<Tensor>> = vec![Vec::with_capacity(records.len()); ns];
        let mut dense: Vec<Vec<Tensor>> = vec![Vec::with_capacity(records.len()); nd];
        let mut ragged: Vec<Vec<Tensor>> = vec![Vec::with_capacity(records.len()); nr];
        for (b, record) in records.iter().enumerate() {
            let tensors = parse_features(record, &features)
                .map_err(|e| Error::invalid(format!("example {b}: {e}")))?;
            for ((_, _, slot), t) in specs.iter().zip(tensors) {
                match *slot {
                    Slot::Sparse(j) => sparse[j].push(t),
                    Slot::Dense(i) => dense[i].push(t),
                    Slot::Ragged(r) => ragged[r].push(t),
                }
            }
        }
        let batch = records.len();
        let mut shapes = Vec::with_capacity(ns);
        let mut values = Vec::with_capacity(ns);
        for (j, rows_j) in sparse.iter().enumerate() {
            let max_len = rows_j.iter().map(Tensor::len).max().unwrap_or(0);
            let indices: Vec<i64> = rows_j
                .iter()
                .enumerate()
                .flat_map(|(b, t)| {
                    (0..t.len())
                        .flat_map(move |i| [b as i64, i as i64].into_iter().skip(scalar as usize))
                })
                .collect();
            let columns = if scalar { 1 } else { 2 };
            k.push_output(Tensor::new(&[indices.len() / columns, columns], indices)?);
            let parts: Vec<&Tensor> = rows_j.iter().collect();
            values.push(rows::concat_vectors(&parts, sig.sparse_types[j])?);
            shapes.push(if scalar {
                Tensor::from([max_len as i64])
            } else {
                Tensor::from([batch as i64, max_len as i64])
            });
        }
        for v in values.into_iter().chain(shapes) {
            k.push_output(v);
        }
        for (i, rows_i) in dense.iter().enumerate() {
            let t = if rows_i.is_empty() {
                let mut shape = vec![0];
                shape.extend_from_slice(&dense_shapes[i]);
                Tensor::zeros(sig.dense_types[i], &shape)
            } else if scalar {
                rows_i[0].clone()
            } else {
                let parts: Vec<&Tensor> = rows_i.iter().collect();
                rows::stack(&parts)?
            };
            k.push_output(t);
        }
        let mut splits = Vec::with_capacity(nr);
        for (r, rows_r) in ragged.iter().enumerate() {
            let parts: Vec<&Tensor> = rows_r.iter().collect();
            k.push_output(rows::concat_vectors(&parts, sig.ragged_types[r])?);
            splits.push(row_splits(rows_r, scalar, sig.ragged_split_types[r])?);
        }
        for t in splits {
            k.push_output(t);
        }
        Ok(())
    })
}

/// The row splits of a ragged feature whose examples hold `rows` (`[0, n0, n0 + n1, ...]`,
/// as `dtype`); empty for a scalar `serialized`, as TensorFlow gives them.
fn row_splits(rows: &[Tensor], scalar: bool, dtype: DType) -> Result<Tensor> {
    if scalar {
        return Ok(Tensor::zeros(dtype, &[0]));
    }
    let mut splits = Vec::with_capacity(rows.len() + 1);
    splits.push(0i64);
    for t in rows {
        splits.push(splits[splits.len() - 1] + t.len() as i64);
    }
    let splits = Tensor::vector(splits);
    match dtype {
        DType::Int32 => {
            let last = splits.as_slice::<i64>()?.last().copied().unwrap_or(0);
            if i32::try_from(last).is_err() {
                return Err(Error::invalid(format!(
                    "{last} ragged values overflow int32 row splits"
                )));
            }
            splits.cast(DType::Int32)
        }
        _ => Ok(splits),
    }
}

/// A dense feature for [`Graph::parse_example`]: `tf.io.FixedLenFeature(shape, dtype,
/// default_value)`.
#[derive(Clone, Debug)]
pub struct DenseFeature {
    /// The feature's key.
    pub key: String,
    /// float32, int64 or string.
    pub dtype: DType,
    /// The value's shape per example.
    pub shape: Vec<usize>,
    /// Used when an example lacks the feature; `None` makes it required.
    pub default: Option<Tensor>,
}

/// What [`Graph::parse_example`] gives: each sparse feature as (indices, values, dense
/// shape), each dense feature as one tensor, in the order the keys were given.
#[derive(Clone, Debug)]
pub struct ParsedExamples {
    /// `(indices [n, 2], values [n], dense_shape [2])` per sparse key.
    pub sparse: Vec<(Output, Output, Output)>,
    /// `[batch] + shape` per dense feature.
    pub dense: Vec<Output>,
}

impl Graph {
    /// `tf.io.parse_example(serialized, features)` (TensorFlow 1's `ParseExample`):
    /// `sparse` are `VarLenFeature`s (key and dtype), `dense` `FixedLenFeature`s.
    pub fn parse_example(
        &mut self,
        serialized: Output,
        sparse: &[(&str, DType)],
        dense: &[DenseFeature],
    ) -> Result<ParsedExamples> {
        let names = self.constant(Tensor::from_strings::<Vec<u8>>(&[0], vec![])?)?;
        let mut inputs = vec![serialized, names];
        for (k, _) in sparse {
            inputs.push(self.constant(Tensor::string_scalar(*k))?);
        }
        for f in dense {
            inputs.push(self.constant(Tensor::string_scalar(f.key.as_str()))?);
        }
        for f in dense {
            let default = match &f.default {
                Some(t) => t.clone(),
                None => Tensor::zeros(f.dtype, &[0]),
            };
            inputs.push(self.constant(default)?);
        }
        let node = self
            .op("ParseExample")
            .inputs(&inputs)
            .attr("Nsparse", sparse.len() as i64)
            .attr("Ndense", dense.len() as i64)
            .attr(
                "sparse_types",
                sparse.iter().map(|s| s.1).collect::<Vec<_>>(),
            )
            .attr("Tdense", dense.iter().map(|f| f.dtype).collect::<Vec<_>>())
            .attr(
                "dense_shapes",
                AttrValue::ShapeList(
                    dense
                        .iter()
                        .map(|f| PartialShape::known(&f.shape))
                        .collect(),
                ),
            )
            .build()?;
        let ns = sparse.len();
        Ok(ParsedExamples {
            sparse: (0..ns)
                .map(|j| (node.output(j), node.output(ns + j), node.output(2 * ns + j)))
                .collect(),
            dense: (0..dense.len()).map(|i| node.output(3 * ns + i)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ExampleBuilder;
    use crate::Session;

    fn batch(records: Vec<Vec<u8>>) -> Tensor {
        let n = records.len();
        Tensor::from_strings(&[n], records).unwrap()
    }

    /// Two examples: x = [1, 2], label 7, tags "a", "bc"; then x = [3, 4] alone.
    fn two_records() -> Vec<Vec<u8>> {
        vec![
            ExampleBuilder::new()
                .float("x", &[1.0, 2.0])
                .int64("label", &[7])
                .bytes("tags", &[b"a", b"bc"])
                .to_bytes(),
            ExampleBuilder::new().float("x", &[3.0, 4.0]).to_bytes(),
        ]
    }

    /// Tags' indices, values and shape, x and label (-1 by default) of [`two_records`].
    fn assert_two_records_parsed(out: &[Tensor]) {
        assert_eq!(out[0], Tensor::from([[0i64, 0], [0, 1]]));
        assert_eq!(out[1], Tensor::from_strings(&[2], vec!["a", "bc"]).unwrap());
        assert_eq!(out[2], Tensor::from([2i64, 2]));
        assert_eq!(out[3], Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]));
        assert_eq!(out[4], Tensor::from([7i64, -1]));
    }

    #[test]
    fn dense_and_sparse_features_of_a_batch() {
        let mut g = Graph::new();
        let serialized = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "serialized")
            .unwrap();
        let parsed = g
            .parse_example(
                serialized,
                &[("tags", DType::String)],
                &[
                    DenseFeature {
                        key: "x".into(),
                        dtype: DType::Float32,
                        shape: vec![2],
                        default: None,
                    },
                    DenseFeature {
                        key: "label".into(),
                        dtype: DType::Int64,
                        shape: vec![],
                        default: Some(Tensor::scalar(-1i64)),
                    },
                ],
            )
            .unwrap();
        let (idx, vals, shape) = parsed.sparse[0];
        assert_eq!(
            g.spec(parsed.dense[0]).shape,
            PartialShape::new(vec![None, Some(2)])
        );
        let records = two_records();
        let fetches = [idx, vals, shape, parsed.dense[0], parsed.dense[1]];
        let out = Session::new(&g)
            .run(&[(serialized, batch(records.clone()))], &fetches, &[])
            .unwrap();
        assert_two_records_parsed(&out);
        // An empty batch gives empty tensors of the right shapes.
        let out = Session::new(&g)
            .run(&[(serialized, batch(vec![]))], &fetches, &[])
            .unwrap();
        assert_eq!(out[3].shape(), &[0, 2]);
        assert_eq!(out[2], Tensor::from([0i64, 0]));
    }

    /// A `ParseExampleV2` node of `serialized`: sparse string `tags`, dense float32 `x` of
    /// shape [2] (required) and int64 `label` (default -1), and ragged features of the given
    /// keys, value types and row-split types; all its outputs.
    fn parse_v2(
        g: &mut Graph,
        serialized: Output,
        ragged: &[(&str, DType, DType)],
    ) -> Result<Vec<Output>> {
        let strings = |g: &mut Graph, v: &[&str]| {
            g.constant(Tensor::from_strings(&[v.len()], v.to_vec()).unwrap())
        };
        let names = strings(g, &[])?;
        let sparse_keys = strings(g, &["tags"])?;
        let dense_keys = strings(g, &["x", "label"])?;
        let ragged_keys: Vec<&str> = ragged.iter().map(|r| r.0).collect();
        let ragged_keys = strings(g, &ragged_keys)?;
        let no_x = g.constant(Tensor::zeros(DType::Float32, &[0]))?;
        let label = g.constant(Tensor::scalar(-1i64))?;
        let node = g
            .op("ParseExampleV2")
            .inputs(&[
                serialized,
                names,
                sparse_keys,
                dense_keys,
                ragged_keys,
                no_x,
                label,
            ])
            .attr("num_sparse", 1i64)
            .attr("sparse_types", vec![DType::String])
            .attr("Tdense", vec![DType::Float32, DType::Int64])
            .attr(
                "dense_shapes",
                AttrValue::ShapeList(vec![PartialShape::known(&[2]), PartialShape::scalar()]),
            )
            .attr(
                "ragged_value_types",
                ragged.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
            .attr(
                "ragged_split_types",
                ragged.iter().map(|r| r.2).collect::<Vec<_>>(),
            )
            .build()?;
        Ok((0..5 + 2 * ragged.len()).map(|i| node.output(i)).collect())
    }

    #[test]
    fn parse_example_v2_takes_key_vectors_and_a_scalar_or_a_batch() {
        let records = two_records();
        let mut g = Graph::new();
        let serialized = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "serialized")
            .unwrap();
        let out = parse_v2(&mut g, serialized, &[]).unwrap();
        assert_eq!(g.spec(out[0]).shape, PartialShape::new(vec![None, Some(2)]));
        assert_eq!(g.spec(out[3]).shape, PartialShape::new(vec![None, Some(2)]));
        let got = Session::new(&g)
            .run(&[(serialized, batch(records.clone()))], &out, &[])
            .unwrap();
        assert_two_records_parsed(&got);

        // One example as a scalar: no batch dimension anywhere.
        let mut g = Graph::new();
        let one = g
            .placeholder(DType::String, PartialShape::scalar(), "one")
            .unwrap();
        let out = parse_v2(&mut g, one, &[]).unwrap();
        assert_eq!(g.spec(out[0]).shape, PartialShape::new(vec![None, Some(1)]));
        assert_eq!(g.spec(out[3]).shape, PartialShape::known(&[2]));
        let record = Tensor::string_scalar(records[0].clone());
        let got = Session::new(&g).run(&[(one, record)], &out, &[]).unwrap();
        assert_eq!(got[0], Tensor::from([[0i64], [1]]));
        assert_eq!(got[2], Tensor::from([2i64]));
        assert_eq!(got[3], Tensor::from([1.0f32, 2.0]));
        assert_eq!(got[4], Tensor::scalar(7i64));
    }

    /// What TensorFlow 2.21 gives (`gen_parsing_ops.parse_example_v2` with
    /// `ragged_keys=["r", "ri"]`, `ragged_value_types=[float32, int64]`,
    /// `ragged_split_types=[int64, int32]`): for the batch of examples `{r: [1, 2], ri: [5]}`,
    /// `{r: [], ri: []}`, `{r: [3]}`, values `[1, 2, 3]` and `[5]`, row splits `[0, 2, 2, 3]`
    /// and `[0, 1, 1, 1]` (int32); for the first alone as a scalar, values `[1, 2]` and `[5]`
    /// and empty row splits; for an empty batch, no values and splits `[0]`.
    #[test]
    fn parse_example_v2_ragged_features_as_tensorflow() {
        let ragged = [
            ("r", DType::Float32, DType::Int64),
            ("ri", DType::Int64, DType::Int32),
        ];
        let records = vec![
            ExampleBuilder::new()
                .float("x", &[0.0, 0.0])
                .float("r", &[1.0, 2.0])
                .int64("ri", &[5])
                .to_bytes(),
            ExampleBuilder::new()
                .float("x", &[0.0, 0.0])
                .float("r", &[])
                .int64("ri", &[])
                .to_bytes(),
            ExampleBuilder::new()
                .float("x", &[0.0, 0.0])
                .float("r", &[3.0])
                .to_bytes(),
        ];
        let mut g = Graph::new();
        let serialized = g
            .placeholder(
                DType::String,
                PartialShape::new(vec![Some(3)]),
                "serialized",
            )
            .unwrap();
        let out = parse_v2(&mut g, serialized, &ragged).unwrap();
        assert_eq!(g.spec(out[5]).dtype, DType::Float32);
        assert_eq!(g.spec(out[8]).shape, PartialShape::known(&[4]));
        assert_eq!(g.spec(out[8]).dtype, DType::Int32);
        let got = Session::new(&g)
            .run(&[(serialized, batch(records.clone()))], &out[5..], &[])
            .unwrap();
        assert_eq!(got[0], Tensor::from([1.0f32, 2.0, 3.0]));
        assert_eq!(got[1], Tensor::from([5i64]));
        assert_eq!(got[2], Tensor::from([0i64, 2, 2, 3]));
        assert_eq!(got[3], Tensor::from([0i32, 1, 1, 1]));
        // One example as a scalar: its values, no row splits.
        let mut g = Graph::new();
        let one = g
            .placeholder(DType::String, PartialShape::scalar(), "one")
            .unwrap();
        let out = parse_v2(&mut g, one, &ragged).unwrap();
        assert_eq!(g.spec(out[7]).shape, PartialShape::known(&[0]));
        let record = Tensor::string_scalar(records[0].clone());
        let got = Session::new(&g)
            .run(&[(one, record)], &out[5..], &[])
            .unwrap();
        assert_eq!(got[0], Tensor::from([1.0f32, 2.0]));
        assert_eq!(got[1], Tensor::from([5i64]));
        assert_eq!(got[2], Tensor::zeros(DType::Int64, &[0]));
        assert_eq!(got[3], Tensor::zeros(DType::Int32, &[0]));
        // An empty batch: no values, splits [0]; a value of another type is an error.
        let mut g = Graph::new();
        let serialized = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "serialized")
            .unwrap();
        let out = parse_v2(&mut g, serialized, &ragged).unwrap();
        let sess = Session::new(&g);
        let got = sess
            .run(&[(serialized, batch(vec![]))], &out[5..], &[])
            .unwrap();
        assert_eq!(got[0], Tensor::zeros(DType::Float32, &[0]));
        assert_eq!(got[2], Tensor::from([0i64]));
        let wrong = ExampleBuilder::new()
            .float("x", &[0.0, 0.0])
            .int64("r", &[1])
            .to_bytes();
        let e = sess
            .run(&[(serialized, batch(vec![wrong]))], &out[5..], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'r'") && e.contains("int64_list"), "{e}");
        // Row splits must be int32 or int64.
        let e = parse_v2(&mut g, serialized, &[("r", DType::Float32, DType::Float32)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row splits must be int32 or int64"), "{e}");
    }

    #[test]
    fn parse_example_v2_refuses_bad_keys() {
        let mut g = Graph::new();
        let serialized = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "serialized")
            .unwrap();
        // Keys fed at run time must match the counts of the attrs.
        let keys = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "keys")
            .unwrap();
        let names = g
            .constant(Tensor::from_strings::<&str>(&[0], vec![]).unwrap())
            .unwrap();
        let x = g.constant(Tensor::zeros(DType::Float32, &[0])).unwrap();
        let node = g
            .op("ParseExampleV2")
            .inputs(&[serialized, names, names, keys, names, x])
            .attr("num_sparse", 0i64)
            .attr("sparse_types", Vec::<DType>::new())
            .attr("Tdense", vec![DType::Float32])
            .attr(
                "dense_shapes",
                AttrValue::ShapeList(vec![PartialShape::known(&[1])]),
            )
            .attr("ragged_value_types", Vec::<DType>::new())
            .attr("ragged_split_types", Vec::<DType>::new())
            .build()
            .unwrap();
        let two = Tensor::from_strings(&[2], vec!["x", "y"]).unwrap();
        let e = Session::new(&g)
            .run(
                &[(serialized, batch(vec![])), (keys, two)],
                &[node.output(0)],
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dense_keys must be a vector of 1 strings"),
            "{e}"
        );
    }

    #[test]
    fn bad_records_and_missing_features_are_errors() {
        let mut g = Graph::new();
        let serialized = g
            .placeholder(DType::String, PartialShape::new(vec![None]), "serialized")
            .unwrap();
        let x = DenseFeature {
            key: "x".into(),
            dtype: DType::Float32,
            shape: vec![1],
            default: None,
        };
        let parsed = g.parse_example(serialized, &[], &[x]).unwrap();
        let sess = Session::new(&g);
        let run = |records: Vec<Vec<u8>>| {
            sess.run(&[(serialized, batch(records))], &[parsed.dense[0]], &[])
                .unwrap_err()
                .to_string()
        };
        let e = run(vec![ExampleBuilder::new().float("y", &[1.0]).to_bytes()]);
        assert!(
            e.contains("example 0") && e.contains("'x'") && e.contains("missing"),
            "{e}"
        );
        let e = run(vec![ExampleBuilder::new()
            .float("x", &[1.0, 2.0])
            .to_bytes()]);
        assert!(e.contains("expected 1 values"), "{e}");
        let e = run(vec![ExampleBuilder::new().int64("x", &[1]).to_bytes()]);
        assert!(e.contains("int64_list"), "{e}");
        let e = run(vec![vec![0xff, 0xff, 0xff]]);
        assert!(e.contains("not a serialized tf.train.Example"), "{e}");
        // Build-time checks: a dense default of the wrong dtype.
        let bad = DenseFeature {
            key: "x".into(),
            dtype: DType::Float32,
            shape: vec![1],
            default: Some(Tensor::from([1i64])),
        };
        let e = g
            .parse_example(serialized, &[], &[bad])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dense_defaults[0] must be float32"), "{e}");
    }
}
