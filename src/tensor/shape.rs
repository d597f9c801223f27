//! Partially known shapes used by build-time shape inference (`None` dims as in TensorFlow).

use std::fmt;

/// One dimension: `Some(n)` when known, `None` when unknown (TensorFlow's `None` / `-1`).
pub type Dim = Option<usize>;

/// A shape that may have unknown dimensions or an unknown rank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PartialShape(Option<Vec<Dim>>);

impl PartialShape {
    /// Unknown rank.
    pub fn unknown() -> Self {
        PartialShape(None)
    }

    /// Known rank with the given (possibly unknown) dims.
    pub fn new(dims: Vec<Dim>) -> Self {
        PartialShape(Some(dims))
    }

    /// A fully known shape.
    pub fn known(dims: &[usize]) -> Self {
        PartialShape(Some(dims.iter().map(|&d| Some(d)).collect()))
    }

    /// Rank-0 shape.
    pub fn scalar() -> Self {
        PartialShape(Some(Vec::new()))
    }

    /// Known rank, every dim unknown.
    pub fn with_rank(rank: usize) -> Self {
        PartialShape(Some(vec![None; rank]))
    }

    /// From TensorFlow-style dims where a negative value means unknown.
    pub fn from_i64(dims: &[i64]) -> Self {
        PartialShape(Some(
            dims.iter()
                .map(|&d| if d < 0 { None } else { Some(d as usize) })
                .collect(),
        ))
    }

    /// TensorFlow-style dims (-1 for an unknown dim) when the rank is known; the inverse
    /// of [`PartialShape::from_i64`].
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        let dims = self.0.as_ref()?;
        Some(dims.iter().map(|d| d.map_or(-1, |d| d as i64)).collect())
    }

    /// The dims when the rank is known.
    pub fn dims(&self) -> Option<&[Dim]> {
        self.0.as_deref()
    }

    /// The rank when known.
    pub fn rank(&self) -> Option<usize> {
        self.0.as_ref().map(|d| d.len())
    }

    /// Dim `i` (None when unknown or the rank is unknown).
    pub fn dim(&self, i: usize) -> Dim {
        self.0.as_ref().and_then(|d| d.get(i).copied().flatten())
    }

    /// The shape when every dim is known.
    pub fn to_known(&self) -> Option<Vec<usize>> {
        self.0.as_ref()?.iter().copied().collect()
    }

    /// True when rank and every dim are known.
    pub fn is_fully_defined(&self) -> bool {
        self.to_known().is_some()
    }

    /// Number of elements when fully known.
    pub fn num_elements(&self) -> Option<usize> {
        self.to_known().map(|d| d.iter().product())
    }

    /// True when a concrete shape fits this partial shape.
    pub fn is_compatible_with(&self, shape: &[usize]) -> bool {
        match &self.0 {
            None => true,
            Some(d) => {
                d.len() == shape.len()
                    && d.iter().zip(shape).all(|(a, &b)| a.is_none_or(|a| a == b))
            }
        }
    }

    /// Combines what two shapes know; errors when they contradict each other.
    pub fn merge(&self, other: &PartialShape) -> Result<PartialShape, String> {
        match (&self.0, &other.0) {
            (None, _) => Ok(other.clone()),
            (_, None) => Ok(self.clone()),
            (Some(a), Some(b)) => {
                if a.len() != b.len() {
                    return Err(format!("shapes {self} and {other} have different ranks"));
                }
                a.iter()
                    .zip(b)
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) if x != y => {
                            Err(format!("shapes {self} and {other} are incompatible"))
                        }
                        _ => Ok(x.or(*y)),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(PartialShape::new)
            }
        }
    }

    /// NumPy broadcasting of two partial shapes; errors when known dims clash.
    pub fn broadcast(&self, other: &PartialShape) -> Result<PartialShape, String> {
        let (Some(a), Some(b)) = (&self.0, &other.0) else {
            return Ok(PartialShape::unknown());
        };
        let n = a.len().max(b.len());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let x = if i + a.len() >= n {
                a[i + a.len() - n]
            } else {
                Some(1)
            };
            let y = if i + b.len() >= n {
                b[i + b.len() - n]
            } else {
                Some(1)
            };
            out.push(match (x, y) {
                (Some(1), d) | (d, Some(1)) => d,
                (Some(x), Some(y)) if x == y => Some(x),
                (Some(x), Some(y)) => {
                    return Err(format!(
                        "Incompatible shapes: {self} vs. {other} (dimensions {x} and {y} cannot be broadcast)"
                    ))
                }
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            });
        }
        Ok(PartialShape::new(out))
    }
}

impl From<&[usize]> for PartialShape {
    fn from(d: &[usize]) -> Self {
        PartialShape::known(d)
    }
}

impl<const N: usize> From<[usize; N]> for PartialShape {
    fn from(d: [usize; N]) -> Self {
        PartialShape::known(&d)
    }
}

impl<const N: usize> From<[Dim; N]> for PartialShape {
    fn from(d: [Dim; N]) -> Self {
        PartialShape::new(d.to_vec())
    }
}

impl From<Vec<Dim>> for PartialShape {
    fn from(d: Vec<Dim>) -> Self {
        PartialShape::new(d)
    }
}

impl fmt::Display for PartialShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("<unknown>"),
            Some(d) => {
                f.write_str("[")?;
                for (i, x) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match x {
                        Some(n) => write!(f, "{n}")?,
                        None => f.write_str("?")?,
                    }
                }
                f.write_str("]")
            }
        }
    }
}
