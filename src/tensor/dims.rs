//! A tensor's concrete shape, stored inline for ranks up to four so cloning a tensor never
//! allocates for the shapes that occur almost always.

use std::fmt;
use std::ops::Deref;

const INLINE: usize = 4;

/// Concrete dimensions; dereferences to `&[usize]`.
#[derive(Clone)]
pub struct Dims(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, dims: [usize; INLINE] },
    Heap(Vec<usize>),
}

impl Dims {
    /// Rank-0 dimensions.
    pub const SCALAR: Dims = Dims(Repr::Inline {
        len: 0,
        dims: [0; INLINE],
    });
}

impl From<&[usize]> for Dims {
    fn from(s: &[usize]) -> Dims {
        if s.len() <= INLINE {
            let mut dims = [0; INLINE];
            dims[..s.len()].copy_from_slice(s);
            Dims(Repr::Inline {
                len: s.len() as u8,
                dims,
            })
        } else {
            Dims(Repr::Heap(s.to_vec()))
        }
    }
}

impl From<Vec<usize>> for Dims {
    fn from(v: Vec<usize>) -> Dims {
        if v.len() <= INLINE {
            Dims::from(v.as_slice())
        } else {
            Dims(Repr::Heap(v))
        }
    }
}

impl<const N: usize> From<[usize; N]> for Dims {
    fn from(a: [usize; N]) -> Dims {
        Dims::from(&a[..])
    }
}

impl Deref for Dims {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        match &self.0 {
            Repr::Inline { len, dims } => &dims[..*len as usize],
            Repr::Heap(v) => v,
        }
    }
}

impl PartialEq for Dims {
    fn eq(&self, other: &Dims) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Dims;

    #[test]
    fn inline_and_heap_dims_behave_alike() {
        for s in [vec![], vec![3], vec![2, 3, 4, 5], vec![1, 2, 3, 4, 5, 6]] {
            let d = Dims::from(s.clone());
            assert_eq!(&*d, s.as_slice());
            assert_eq!(d.clone(), Dims::from(s.as_slice()));
        }
        assert_eq!(&*Dims::SCALAR, &[] as &[usize]);
    }
}
