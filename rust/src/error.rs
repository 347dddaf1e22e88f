//! The one error enum of the Rust core. `py/error.rs` maps each variant to its class in
//! `kfast.errors`; nothing else converts errors to Python.

use std::fmt;

/// A Kubernetes `Status` carried by an ERROR watch event or a non-2xx response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// The whole Status object as JSON, so Python can expose `details` etc.
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A malformed line, chunk header or HTTP head. `offset` is the byte offset in the
    /// de-chunked body (or in the raw stream for head/framing errors) where it starts.
    Decode { offset: u64, message: String },
    /// One line exceeded the configured limit.
    LineTooLong { offset: u64, limit: usize },
    /// The stream ended inside a chunk, a line or the head.
    Truncated { message: String },
    /// The server answered with a failure Status (HTTP status or ERROR event).
    Api(Status),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode { offset, message } => write!(f, "decode error at offset {offset}: {message}"),
            Error::LineTooLong { offset, limit } => {
                write!(f, "watch line starting at offset {offset} exceeds the {limit}-byte limit")
            }
            Error::Truncated { message } => write!(f, "stream truncated: {message}"),
            Error::Api(s) => write!(f, "{} {}: {}", s.code, s.reason, s.message),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
