//! The crate's single error type.

use std::fmt;

/// Every fallible rustflow call returns this error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A node could not be added to a graph: wrong dtypes, incompatible shapes, bad attrs.
    #[error("invalid node '{node}' (op {op}{inputs}): {msg}")]
    Build {
        /// Name the node would have had.
        node: String,
        /// TensorFlow op type.
        op: String,
        /// The inputs' dtypes and shapes, already formatted (empty when the op has none).
        inputs: InputSummary,
        /// What went wrong.
        msg: String,
    },
    /// A kernel failed while a `Session` ran it.
    #[error("node '{node}' (op {op}) failed: {msg}")]
    Run {
        /// Name of the failing node.
        node: String,
        /// TensorFlow op type.
        op: String,
        /// What went wrong.
        msg: String,
    },
    /// An argument given by the caller is wrong (bad feed, bad shape, bad value).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A name (node, tensor, op type, file) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Something must happen first (a variable must be initialized, a value fed).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// Reading or writing a file failed.
    #[error("i/o error: {0}")]
    Io(String),
    /// A file or buffer is not in the expected format.
    #[error("parse error: {0}")]
    Parse(String),
    /// Out of memory or another resource (a device's memory).
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// A device or its driver failed (a CUDA call returned an error).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// The formatted input list shown in [`Error::Build`] messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputSummary(pub String);

impl fmt::Display for InputSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ", inputs {}", self.0)
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns early with an [`Error::InvalidArgument`] built by `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::InvalidArgument(format!($($arg)*)))
    };
}
