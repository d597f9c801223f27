//! The outcome of a serving request: TensorFlow's canonical error code and a message, and
//! how each front end reports it (an HTTP status as TensorFlow Serving's REST API maps it,
//! a gRPC status).

use crate::proto::tf::error::Code;
use crate::Error;
use std::fmt;

/// A failed request: TensorFlow's error code and a one-line message.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// TensorFlow's canonical error code (the same numbers as gRPC's).
    pub code: Code,
    /// What went wrong, one line.
    pub message: String,
}

impl Status {
    /// A status with `code` and `message` (lines are joined into one).
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        let message: String = message.into();
        Status {
            code,
            message: message.replace('\n', " "),
        }
    }

    /// `INVALID_ARGUMENT`: a malformed or wrong request (HTTP 400).
    pub fn invalid(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    /// `NOT_FOUND`: an unknown model or version (HTTP 404).
    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, message)
    }

    /// The HTTP status TensorFlow Serving answers for this code
    /// (`tensorflow_serving/util/net_http/...` `ToHTTPStatusCode`).
    pub fn http_status(&self) -> u16 {
        match self.code {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::InvalidArgument | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::Unauthenticated => 401,
            Code::ResourceExhausted => 429,
            Code::FailedPrecondition => 412,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            _ => 500,
        }
    }

    /// The code's name as TensorFlow Serving writes it in JSON (`OK`, `NOT_FOUND`).
    pub fn code_name(&self) -> &'static str {
        self.code.as_str_name()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Status {
    /// An engine error as TensorFlow reports it: a bad feed or a failing kernel is
    /// `INVALID_ARGUMENT`, an unknown name `INVALID_ARGUMENT` too (a request naming a
    /// signature, input or output the model lacks), a file or device problem `INTERNAL`, device memory
    /// running out `RESOURCE_EXHAUSTED`.
    fn from(e: Error) -> Status {
        match e {
            Error::InvalidArgument(m) | Error::NotFound(m) => Status::invalid(m),
            Error::FailedPrecondition(m) => Status::new(Code::FailedPrecondition, m),
            Error::Io(m) | Error::Parse(m) | Error::Internal(m) => Status::new(Code::Internal, m),
            Error::ResourceExhausted(m) => Status::new(Code::ResourceExhausted, m),
            e @ (Error::Build { .. } | Error::Run { .. }) => Status::invalid(e.to_string()),
        }
    }
}

impl From<Status> for tonic::Status {
    fn from(s: Status) -> tonic::Status {
        tonic::Status::new(tonic::Code::from_i32(s.code as i32), s.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_tf_serving_does() {
        assert_eq!(Status::invalid("x").http_status(), 400);
        assert_eq!(Status::not_found("x").http_status(), 404);
        assert_eq!(Status::new(Code::DeadlineExceeded, "x").http_status(), 504);
        assert_eq!(Status::new(Code::Internal, "x").http_status(), 500);
        let s = Status::from(Error::NotFound("no signature 'z'".into()));
        assert_eq!(
            (s.code, s.message.as_str()),
            (Code::InvalidArgument, "no signature 'z'")
        );
        assert_eq!(Status::invalid("a\nb").message, "a b");
        let g: tonic::Status = Status::not_found("m").into();
        assert_eq!(g.code(), tonic::Code::NotFound);
    }
}
