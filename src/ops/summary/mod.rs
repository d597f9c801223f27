//! TensorFlow 1's summary ops: `ScalarSummary`, `HistogramSummary` and `MergeSummary`, each
//! giving a serialized `Summary` proto as a string scalar that a session fetches and a
//! [`FileWriter`](crate::summary::FileWriter) writes (`add_summary_bytes`), as
//! `tf.compat.v1.summary.scalar` / `histogram` / `merge` / `merge_all` do. They are not
//! differentiable and have no effect on the rest of the graph.
//!
//! [`histogram`] holds TensorFlow's bucket layout and [`value`] the `Summary.Value`s the
//! ops (and the event-file writer) encode.

pub mod histogram;
pub mod value;

use super::math::{check_family, Family};
use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult, Op, Registry};
use crate::graph::{Cost, Graph, Output, TensorSpec};
use crate::pb::tf;
use crate::tensor::{DType, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use histogram::Histogram;
use prost::Message;
use std::collections::HashSet;

/// The op types that make summaries (what [`Graph::merge_all_summaries`] collects).
pub const SUMMARY_OPS: [&str; 2] = ["ScalarSummary", "HistogramSummary"];

pub(crate) fn register(r: &mut Registry) {
    r.add(Op::new("ScalarSummary", infer_scalar_summary, scalar_summary_kernel).no_grad());
    r.add(
        Op::new(
            "HistogramSummary",
            infer_histogram_summary,
            histogram_summary_kernel,
        )
        .no_grad(),
    );
    r.add(
        Op::new("MergeSummary", infer_merge_summary, merge_summary_kernel)
            .no_grad()
            .cost(Cost::Cheap),
    );
}

fn string_scalar_output() -> InferResult {
    Ok(vec![TensorSpec::new(DType::String, PartialShape::scalar())])
}

fn expect_strings(ctx: &InferCtx<'_>, i: usize, what: &str) -> std::result::Result<(), String> {
    match ctx.dtype(i) {
        DType::String => Ok(()),
        other => Err(format!("{what} must be a string tensor, got {other}")),
    }
}

/// `tags` (string) and `values` (real numbers) of one shape → one string scalar.
fn infer_scalar_summary(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    expect_strings(ctx, 0, "tags")?;
    check_family(ctx, 1, Family::Number)?;
    ctx.shape(0).merge(ctx.shape(1)).map_err(|e| {
        format!(
            "tags and values must have the same shape, got {} and {}: {e}",
            ctx.shape(0),
            ctx.shape(1)
        )
    })?;
    string_scalar_output()
}

/// TensorFlow's `SummaryScalarOp`: one `simple_value` per (tag, value) pair.
fn scalar_summary_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(number, ctx.input_dtype(1), T => kernel_fn(|k| {
        let tags = k.input(0)?;
        let values = k.input(1)?;
        if tags.shape() != values.shape() {
            return Err(Error::invalid(format!(
                "tags and values are not the same shape: {:?} != {:?}",
                tags.shape(),
                values.shape()
            )));
        }
        let summary = tf::Summary {
            value: tags
                .as_strings()?
                .iter()
                .zip(values.as_slice::<T>()?)
                .map(|(tag, v)| value::scalar(&String::from_utf8_lossy(tag), v.to_f64() as f32))
                .collect(),
        };
        k.push_output(Tensor::string_scalar(summary.encode_to_vec()));
        Ok(())
    }))
}

/// A string scalar `tag` and `values` of any shape → one string scalar.
fn infer_histogram_summary(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    expect_strings(ctx, 0, "tag")?;
    if ctx.shape(0).rank().is_some_and(|r| r != 0) {
        return Err(format!("tag must be a scalar, got shape {}", ctx.shape(0)));
    }
    check_family(ctx, 1, Family::Number)?;
    string_scalar_output()
}

/// TensorFlow's `SummaryHistoOp`: the values' histogram over the default buckets; a NaN or
/// an infinity is an error naming the tag.
fn histogram_summary_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(number, ctx.input_dtype(1), T => kernel_fn(|k| {
        let tag = k.input(0)?;
        let tag = match (tag.rank(), tag.as_strings()?) {
            (0, [tag]) => String::from_utf8_lossy(tag).into_owned(),
            _ => {
                return Err(Error::invalid(format!(
                    "tag must be a scalar, got shape {:?}",
                    tag.shape()
                )))
            }
        };
        let values = k.input(1)?;
        let h = Histogram::from_values(&tag, values.as_slice::<T>()?.iter().map(|v| v.to_f64()))?;
        let summary = tf::Summary {
            value: vec![value::histogram(&tag, &h)],
        };
        k.push_output(Tensor::string_scalar(summary.encode_to_vec()));
        Ok(())
    }))
}

/// Any number of string tensors → one string scalar.
fn infer_merge_summary(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    for i in 0..ctx.num_inputs() {
        expect_strings(ctx, i, &format!("input {i}"))?;
    }
    string_scalar_output()
}

/// TensorFlow's `SummaryMergeOp`: the values of every serialized `Summary` of every input,
/// in order; a tag seen twice is an error.
fn merge_summary_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let mut merged = tf::Summary::default();
        let mut tags = HashSet::new();
        for i in 0..k.num_inputs() {
            for bytes in k.input(i)?.as_strings()? {
                let s = tf::Summary::decode(bytes.as_slice()).map_err(|e| {
                    Error::invalid(format!("Could not parse one of the summary inputs: {e}"))
                })?;
                for v in s.value {
                    if !v.tag.is_empty() && !tags.insert(v.tag.clone()) {
                        return Err(Error::invalid(format!(
                            "Duplicate tag {} found in summary inputs",
                            v.tag
                        )));
                    }
                    merged.value.push(v);
                }
            }
        }
        k.push_output(Tensor::string_scalar(merged.encode_to_vec()));
        Ok(())
    })
}

impl Graph {
    /// `tf.compat.v1.summary.scalar(tag, value)`: a `ScalarSummary` node named `tag` whose
    /// serialized `Summary` holds `value` (a real scalar) under `tag`.
    pub fn scalar_summary(&mut self, tag: &str, value: Output) -> Result<Output> {
        let tags = self.constant_named(Tensor::string_scalar(tag), &format!("{tag}/tags"))?;
        let t = self.dtype(value);
        self.op("ScalarSummary")
            .input(tags)
            .input(value)
            .attr("T", t)
            .name(tag)
            .build_output()
    }

    /// `tf.compat.v1.summary.histogram(tag, values)`: a `HistogramSummary` node named `tag`
    /// whose serialized `Summary` holds the histogram of `values` (any shape) under `tag`.
    pub fn histogram_summary(&mut self, tag: &str, values: Output) -> Result<Output> {
        let tag_value = self.constant_named(Tensor::string_scalar(tag), &format!("{tag}/tag"))?;
        let t = self.dtype(values);
        self.op("HistogramSummary")
            .input(tag_value)
            .input(values)
            .attr("T", t)
            .name(tag)
            .build_output()
    }

    /// `tf.compat.v1.summary.merge(inputs)`: one serialized `Summary` with the values of
    /// every input, in order.
    pub fn merge_summary(&mut self, inputs: &[Output]) -> Result<Output> {
        if inputs.is_empty() {
            return Err(Error::invalid("merge_summary needs at least one input"));
        }
        self.op("MergeSummary")
            .inputs(inputs)
            .attr("N", inputs.len() as i64)
            .build_output()
    }

    /// `tf.compat.v1.summary.merge_all()`: [`merge_summary`](Self::merge_summary) of every
    /// scalar and histogram summary in the graph (in creation order), or `None` when there
    /// are none.
    pub fn merge_all_summaries(&mut self) -> Result<Option<Output>> {
        let summaries: Vec<Output> = self
            .nodes()
            .filter(|(_, n)| SUMMARY_OPS.contains(&n.op_type()))
            .map(|(id, _)| id.output(0))
            .collect();
        match summaries.as_slice() {
            [] => Ok(None),
            s => self.merge_summary(s).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Session;

    fn decode(t: &Tensor) -> tf::Summary {
        assert_eq!((t.dtype(), t.rank()), (DType::String, 0));
        tf::Summary::decode(t.as_strings().unwrap()[0].as_slice()).unwrap()
    }

    #[test]
    fn scalar_histogram_and_merge() {
        let mut g = Graph::new();
        let loss = g
            .placeholder(DType::Float32, PartialShape::scalar(), "loss_value")
            .unwrap();
        let w = g.constant(Tensor::from([0.0f64, 1.0, 1.0, -2.0])).unwrap();
        let s = g.scalar_summary("loss", loss).unwrap();
        let h = g.histogram_summary("w", w).unwrap();
        let m = g.merge_all_summaries().unwrap().unwrap();
        let sess = Session::new(&g);
        let out = sess
            .run(&[(loss, Tensor::scalar(0.25f32))], &[s, h, m], &[])
            .unwrap();
        let scalar = decode(&out[0]);
        assert_eq!(
            scalar,
            tf::Summary {
                value: vec![value::scalar("loss", 0.25)]
            }
        );
        let histo = decode(&out[1]);
        assert_eq!(histo.value[0].tag, "w");
        let Some(tf::summary::value::Value::Histo(p)) = &histo.value[0].value else {
            panic!("{histo:?}")
        };
        assert_eq!((p.min, p.max, p.num, p.sum_squares), (-2.0, 1.0, 4.0, 6.0));
        let merged = decode(&out[2]);
        assert_eq!(merged.value, [scalar.value, histo.value].concat());
    }

    #[test]
    fn errors_name_the_problem() {
        let mut g = Graph::new();
        let tags = g
            .constant(Tensor::from_strings(&[2], vec!["a", "b"]).unwrap())
            .unwrap();
        let three = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let e = g
            .op("ScalarSummary")
            .input(tags)
            .input(three)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("same shape"), "{e}");
        let e = g
            .op("ScalarSummary")
            .input(three)
            .input(three)
            .build()
            .unwrap_err();
        assert!(
            e.to_string().contains("tags must be a string tensor"),
            "{e}"
        );
        let bad = g.constant(Tensor::from([1.0f32, f32::NAN])).unwrap();
        let h = g.histogram_summary("weights", bad).unwrap();
        let a = g.scalar_summary("x", three).unwrap_err();
        assert!(a.to_string().contains("same shape"), "{a}");
        let one = g.constant(1.0f32).unwrap();
        let x1 = g.scalar_summary("x", one).unwrap();
        let x2 = g.scalar_summary("x", one).unwrap();
        let dup = g.merge_summary(&[x1, x2]).unwrap();
        let sess = Session::new(&g);
        let e = sess.run(&[], &[h], &[]).unwrap_err().to_string();
        assert!(e.contains("Nan in summary histogram for: weights"), "{e}");
        let e = sess.run(&[], &[dup], &[]).unwrap_err().to_string();
        assert!(e.contains("Duplicate tag x found in summary inputs"), "{e}");
        let junk = g
            .constant(Tensor::string_scalar(vec![0xffu8, 0xff]))
            .unwrap();
        let m = g.merge_summary(&[junk]).unwrap();
        let e = Session::new(&g)
            .run(&[], &[m], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Could not parse one of the summary inputs"),
            "{e}"
        );
    }
}
