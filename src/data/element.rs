//! The structure of one dataset element: a tensor, a tuple or a dict of elements (what
//! `tf.data` calls an element's structure, and what a PyTorch `DataLoader` yields).

use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// One element of a [`Dataset`](super::Dataset): a tensor, or a tuple or dict (by name, in
/// sorted order) of nested elements. A batch is an element too, each tensor with a leading
/// batch dimension.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// A single tensor.
    Tensor(Tensor),
    /// Components by position, as a Python tuple `(x, y)`.
    Tuple(Vec<Element>),
    /// Components by name, as a Python dict `{"x": x, "y": y}`.
    Dict(BTreeMap<String, Element>),
}

impl Element {
    /// The tensor, or an error if this element is a tuple or dict.
    pub fn tensor(&self) -> Result<&Tensor> {
        match self {
            Element::Tensor(t) => Ok(t),
            other => Err(Error::invalid(format!(
                "expected a tensor element, got {}",
                other.kind()
            ))),
        }
    }

    /// Takes the tensor out, or errors if this element is a tuple or dict.
    pub fn into_tensor(self) -> Result<Tensor> {
        match self {
            Element::Tensor(t) => Ok(t),
            other => Err(Error::invalid(format!(
                "expected a tensor element, got {}",
                other.kind()
            ))),
        }
    }

    /// Component `i` of a tuple.
    pub fn at(&self, i: usize) -> Result<&Element> {
        match self {
            Element::Tuple(v) => v.get(i).ok_or_else(|| {
                Error::invalid(format!(
                    "tuple element has {} components, not {}",
                    v.len(),
                    i + 1
                ))
            }),
            other => Err(Error::invalid(format!(
                "expected a tuple element, got {}",
                other.kind()
            ))),
        }
    }

    /// Component `key` of a dict.
    pub fn get(&self, key: &str) -> Result<&Element> {
        match self {
            Element::Dict(m) => m.get(key).ok_or_else(|| {
                Error::NotFound(format!(
                    "dict element has no key '{key}' (keys: {:?})",
                    m.keys().collect::<Vec<_>>()
                ))
            }),
            other => Err(Error::invalid(format!(
                "expected a dict element, got {}",
                other.kind()
            ))),
        }
    }

    /// The two tensors of an `(x, y)` tuple: the usual `(features, labels)` batch.
    pub fn pair(&self) -> Result<(&Tensor, &Tensor)> {
        match self {
            Element::Tuple(v) if v.len() == 2 => Ok((v[0].tensor()?, v[1].tensor()?)),
            other => Err(Error::invalid(format!(
                "expected an (x, y) tuple element, got {}",
                other.kind()
            ))),
        }
    }

    /// Every tensor, depth first (tuples in order, dicts by sorted key).
    pub fn tensors(&self) -> Vec<&Tensor> {
        let mut out = Vec::new();
        self.visit(&mut |t| out.push(t));
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Tensor)) {
        match self {
            Element::Tensor(t) => f(t),
            Element::Tuple(v) => v.iter().for_each(|e| e.visit(f)),
            Element::Dict(m) => m.values().for_each(|e| e.visit(f)),
        }
    }

    /// A short description of the structure, such as `(tensor, {x: tensor})`.
    pub fn kind(&self) -> String {
        match self {
            Element::Tensor(_) => "tensor".into(),
            Element::Tuple(v) => format!(
                "({})",
                v.iter().map(|e| e.kind()).collect::<Vec<_>>().join(", ")
            ),
            Element::Dict(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, e)| format!("{k}: {}", e.kind()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The same structure with each tensor replaced by `f(tensor)`.
    pub fn map_tensors(&self, f: &mut impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Element> {
        Ok(match self {
            Element::Tensor(t) => Element::Tensor(f(t)?),
            Element::Tuple(v) => {
                Element::Tuple(v.iter().map(|e| e.map_tensors(f)).collect::<Result<_>>()?)
            }
            Element::Dict(m) => Element::Dict(
                m.iter()
                    .map(|(k, e)| Ok((k.clone(), e.map_tensors(f)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// Combines elements of one structure component by component: `f(index, parts)` gets
    /// the depth-first index of a tensor component and that component of every element.
    /// Errors if the structures differ.
    pub fn combine(
        parts: &[Element],
        f: &mut impl FnMut(usize, &[&Tensor]) -> Result<Tensor>,
    ) -> Result<Element> {
        let first = parts
            .first()
            .ok_or_else(|| Error::invalid("cannot combine zero elements"))?;
        let parts: Vec<&Element> = parts.iter().collect();
        let mut index = 0;
        combine_at(first, &parts, &mut index, f)
    }
}

fn combine_at(
    first: &Element,
    parts: &[&Element],
    index: &mut usize,
    f: &mut impl FnMut(usize, &[&Tensor]) -> Result<Tensor>,
) -> Result<Element> {
    let mismatch = |e: &Element| {
        Error::invalid(format!(
            "elements have different structures: {} and {}",
            first.kind(),
            e.kind()
        ))
    };
    Ok(match first {
        Element::Tensor(_) => {
            let ts = parts
                .iter()
                .map(|e| match e {
                    Element::Tensor(t) => Ok(t),
                    other => Err(mismatch(other)),
                })
                .collect::<Result<Vec<_>>>()?;
            *index += 1;
            Element::Tensor(f(*index - 1, &ts)?)
        }
        Element::Tuple(v) => {
            let mut cols: Vec<Vec<&Element>> = vec![Vec::with_capacity(parts.len()); v.len()];
            for e in parts {
                match e {
                    Element::Tuple(w) if w.len() == v.len() => {
                        for (c, x) in cols.iter_mut().zip(w) {
                            c.push(x);
                        }
                    }
                    other => return Err(mismatch(other)),
                }
            }
            Element::Tuple(
                cols.iter()
                    .zip(v)
                    .map(|(c, x)| combine_at(x, c, index, f))
                    .collect::<Result<_>>()?,
            )
        }
        Element::Dict(m) => {
            let mut out = BTreeMap::new();
            for (k, x) in m {
                let col = parts
                    .iter()
                    .map(|e| match e {
                        Element::Dict(w) if w.len() == m.len() => {
                            w.get(k).ok_or_else(|| mismatch(e))
                        }
                        other => Err(mismatch(other)),
                    })
                    .collect::<Result<Vec<_>>>()?;
                out.insert(k.clone(), combine_at(x, &col, index, f)?);
            }
            Element::Dict(out)
        }
    })
}

impl From<Tensor> for Element {
    fn from(t: Tensor) -> Element {
        Element::Tensor(t)
    }
}

impl From<Vec<Element>> for Element {
    fn from(v: Vec<Element>) -> Element {
        Element::Tuple(v)
    }
}

impl<A: Into<Element>, B: Into<Element>> From<(A, B)> for Element {
    fn from((a, b): (A, B)) -> Element {
        Element::Tuple(vec![a.into(), b.into()])
    }
}

impl<A: Into<Element>, B: Into<Element>, C: Into<Element>> From<(A, B, C)> for Element {
    fn from((a, b, c): (A, B, C)) -> Element {
        Element::Tuple(vec![a.into(), b.into(), c.into()])
    }
}

impl<K: Into<String>, V: Into<Element>> FromIterator<(K, V)> for Element {
    /// A dict element from `(name, value)` pairs.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Element {
        Element::Dict(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<V: Into<Element>> From<BTreeMap<String, V>> for Element {
    fn from(m: BTreeMap<String, V>) -> Element {
        m.into_iter().collect()
    }
}

impl<V: Into<Element>, const N: usize> From<[(&str, V); N]> for Element {
    fn from(pairs: [(&str, V); N]) -> Element {
        pairs.into_iter().collect()
    }
}
