//! Einsum (`tf.einsum`, Keras `EinsumDense` and `MultiHeadAttention`) with one or two
//! operands and explicit labels (`"abc,cd->abd"`; no ellipsis yet). Each output element
//! sums, over the labels missing from the output, the product of the operands' elements
//! at those labels; a label repeated within one operand takes its diagonal. The kernel
//! walks every label combination once (no GEMM yet), so it suits the small contractions
//! of attention heads better than large matrix products. The gradient is not
//! implemented yet: differentiating through Einsum is an error.

use crate::graph::{AttrsExt, TensorSpec};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, Dim, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// A parsed equation: each operand's labels and the output's.
#[derive(Clone, Debug, PartialEq)]
struct Equation {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}

impl Equation {
    fn parse(eq: &str, operands: usize) -> std::result::Result<Equation, String> {
        let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
        if eq.contains("...") {
            return Err(format!(
                "equation '{eq}': ellipsis (...) is not supported yet"
            ));
        }
        let (lhs, rhs) = eq.split_once("->").ok_or_else(|| {
            format!("equation '{eq}' has no '->' (implicit output is not supported)")
        })?;
        let inputs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
        let output: Vec<char> = rhs.chars().collect();
        if inputs.len() != operands || !(1..=2).contains(&operands) {
            return Err(format!(
                "equation '{eq}' names {} operands but the op has {operands}; 1 or 2 are supported",
                inputs.len()
            ));
        }
        let all = inputs.iter().flatten().chain(&output);
        if let Some(c) = all.clone().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!(
                "equation '{eq}' holds '{c}', which is not a label (a-z, A-Z)"
            ));
        }
        for (i, &c) in output.iter().enumerate() {
            if output[..i].contains(&c) {
                return Err(format!("equation '{eq}': output label '{c}' appears twice"));
            }
            if !inputs.iter().flatten().any(|&x| x == c) {
                return Err(format!(
                    "equation '{eq}': output label '{c}' is in no operand"
                ));
            }
        }
        Ok(Equation { inputs, output })
    }

    /// Every distinct label: the output's first, then the summed ones.
    fn labels(&self) -> Vec<char> {
        let mut labels = self.output.clone();
        for &c in self.inputs.iter().flatten() {
            if !labels.contains(&c) {
                labels.push(c);
            }
        }
        labels
    }

    /// Each label's size from the operands' shapes (`None` where unknown); errors when two
    /// uses of a label disagree.
    fn sizes(&self, shapes: &[Vec<Dim>]) -> std::result::Result<Vec<Dim>, String> {
        let labels = self.labels();
        let mut sizes: Vec<Dim> = vec![None; labels.len()];
        for (op, (labs, dims)) in self.inputs.iter().zip(shapes).enumerate() {
            if labs.len() != dims.len() {
                return Err(format!(
                    "operand {op} has rank {} but its subscripts '{}' name {} dims",
                    dims.len(),
                    labs.iter().collect::<String>(),
                    labs.len()
                ));
            }
            for (&c, &d) in labs.iter().zip(dims) {
                let at = labels.iter().position(|&l| l == c).unwrap_or(0);
                sizes[at] = match (sizes[at], d) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(format!(
                        "label '{c}' has size {a} in one place and {b} in another (operand {op})"
                    ))
                    }
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(sizes)
    }
}

fn infer(ctx: &InferCtx<'_>) -> InferResult {
    let n = ctx.num_inputs();
    let eq = Equation::parse(&ctx.attrs().string_or("equation", "")?, n)?;
    let dt = ctx.same_dtype()?;
    if !dt.is_numeric() {
        return Err(format!("operands must be numeric, got {dt}"));
    }
    ctx.check_t_attr(dt)?;
    let shapes: Option<Vec<Vec<Dim>>> = (0..n)
        .map(|i| ctx.shape(i).dims().map(<[Dim]>::to_vec))
        .collect();
    let out = match shapes {
        Some(shapes) => {
            let sizes = eq.sizes(&shapes)?;
            PartialShape::new(sizes[..eq.output.len()].to_vec())
        }
        None => PartialShape::with_rank(eq.output.len()),
    };
    Ok(vec![TensorSpec::new(dt, out)])
}

/// Row-major strides of `labs` over an operand, per label of `labels` (0 when absent;
/// summed when a label repeats, which walks the diagonal).
fn strides(labels: &[char], labs: &[char], dims: &[usize]) -> Vec<usize> {
    let mut s = vec![0; labels.len()];
    let mut step = 1;
    for (&c, &d) in labs.iter().zip(dims).rev() {
        let at = labels.iter().position(|&l| l == c).unwrap_or(0);
        s[at] += step;
        step *= d;
    }
    s
}

fn einsum<T: Number>(eq: &Equation, xs: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<Vec<Dim>> = xs
        .iter()
        .map(|x| x.shape().iter().map(|&d| Some(d)).collect())
        .collect();
    let sizes: Vec<usize> = eq
        .sizes(&shapes)
        .map_err(Error::invalid)?
        .into_iter()
        .map(|d| d.unwrap_or(0))
        .collect();
    let labels = eq.labels();
    let (kept, summed) = sizes.split_at(eq.output.len());
    let out_len: usize = kept.iter().product();
    let sum_len: usize = summed.iter().product();
    if out_len.checked_mul(sum_len).is_none_or(|n| n > 1 << 40) {
        return Err(Error::invalid("Einsum: too many label combinations"));
    }
    let data: Vec<&[T]> = xs
        .iter()
        .map(|x| x.as_slice::<T>())
        .collect::<Result<_>>()?;
    let st: Vec<Vec<usize>> = eq
        .inputs
        .iter()
        .zip(xs)
        .map(|(labs, x)| strides(&labels, labs, x.shape()))
        .collect();
    let mut out = alloc::try_with_capacity(&[out_len])?;
    let mut index = vec![0usize; labels.len()];
    for o in 0..out_len {
        let mut rest = o;
        for l in (0..kept.len()).rev() {
            index[l] = rest % kept[l];
            rest /= kept[l];
        }
        let mut acc = T::ZERO;
        for s in 0..sum_len {
            let mut rest = s;
            for l in (kept.len()..labels.len()).rev() {
                index[l] = rest % sizes[l];
                rest /= sizes[l];
            }
            let mut prod = T::ONE;
            for (d, strides) in data.iter().zip(&st) {
                let at: usize = index.iter().zip(strides).map(|(i, s)| i * s).sum();
                prod = prod.mul(d[at]);
            }
            acc = acc.add(prod);
        }
        out.push(acc);
    }
    Tensor::new(kept, out)
}

fn kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let n = ctx.node.inputs().len();
    let eq = Equation::parse(&ctx.attrs().string_or("equation", "")?, n)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let xs: Vec<&Tensor> = (0..n).map(|i| k.input(i)).collect::<Result<_>>()?;
        let y = einsum::<T>(&eq, &xs)?;
        k.push_output(y);
        Ok(())
    }))
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Einsum", infer, kernel));
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, t};
    use crate::{Graph, Output, Tensor};

    fn einsum(g: &mut Graph, eq: &str, xs: &[Output]) -> crate::Result<Output> {
        let t = g.dtype(xs[0]);
        g.op("Einsum")
            .inputs(xs)
            .attr("equation", eq)
            .attr("N", xs.len() as i64)
            .attr("T", t)
            .build_output()
    }

    #[test]
    fn common_forms_match_tensorflow() {
        let mut g = Graph::new();
        let a = g.constant(iota(&[2, 3])).unwrap();
        let b = g.constant(iota(&[3, 2])).unwrap();
        let mm = einsum(&mut g, "ij,jk->ik", &[a, b]).unwrap();
        let tr = einsum(&mut g, "ij->ji", &[a]).unwrap();
        let sq = g.constant(iota(&[3, 3])).unwrap();
        let diag = einsum(&mut g, "ii->i", &[sq]).unwrap();
        let outer = einsum(&mut g, "i,j->ij", &[diag, diag]).unwrap();
        // Keras MultiHeadAttention's score equation on [1, 2, 1, 2] query/key.
        let q = g.constant(iota(&[1, 2, 1, 2])).unwrap();
        let att = einsum(&mut g, "aecd,abcd->acbe", &[q, q]).unwrap();
        assert_eq!(g.shape(att).to_string(), "[1,1,2,2]");
        let out = run(&g, &[mm, tr, diag, outer, att]);
        assert_eq!(out[0], t(&[2, 2], &[10, 13, 28, 40]));
        assert_eq!(out[1], t(&[3, 2], &[0, 3, 1, 4, 2, 5]));
        assert_eq!(out[2], t(&[3], &[0, 4, 8]));
        assert_eq!(out[3], t(&[3, 3], &[0, 0, 0, 0, 16, 32, 0, 32, 64]));
        assert_eq!(out[4], t(&[1, 1, 2, 2], &[1, 3, 3, 13]));
        let f = g.constant(Tensor::from([1f32, 2.0])).unwrap();
        let e = einsum(&mut g, "ij,jk->ik", &[a, f])
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype") || e.contains("int32"), "{e}");
        let e = einsum(&mut g, "...j->j", &[a]).unwrap_err().to_string();
        assert!(e.contains("ellipsis"), "{e}");
        let e = einsum(&mut g, "ij,jk->ik", &[a, a])
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 'j'"), "{e}");
    }
}
