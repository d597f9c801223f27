//! NumPy `.npy` files as datasets, read by [`crate::tensor::npy`].

use super::dataset::Dataset;
use super::Element;
use crate::tensor::npy::read_npy;
use crate::{Error, Result};
use std::path::Path;

impl Dataset {
    /// One element per row of the arrays in these `.npy` files: a tensor for one file, a
    /// tuple for several (`from_tensor_slices((np.load(a), np.load(b)))`). The arrays are
    /// read whole; their first dimensions must agree.
    pub fn from_npy<P: AsRef<Path>>(paths: &[P]) -> Result<Dataset> {
        let mut tensors = paths
            .iter()
            .map(|p| read_npy(p).map(Element::Tensor))
            .collect::<Result<Vec<_>>>()?;
        match tensors.len() {
            0 => Err(Error::invalid("from_npy needs at least one file")),
            1 => Dataset::from_tensor_slices(tensors.remove(0)),
            _ => Dataset::from_tensor_slices(Element::Tuple(tensors)),
        }
    }
}
