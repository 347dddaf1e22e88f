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
    /// `feed` after `finish`: the stream already ended, so more bytes cannot belong to it
    /// (Python: ValueError, as for I/O on a closed file).
    FeedAfterFinish,
    /// `add_indexers` named an index that already exists (Python: ValueError).
    IndexExists { name: String },
    /// A query named an index that does not exist (Python: KeyError).
    IndexNotFound { name: String },
    /// A user-supplied index function failed; `source` is its own error (for a Python
    /// callable, the exception it raised, re-raised unchanged by `py/error.rs`).
    IndexFunc { index: String, source: Foreign },
    /// A transform was given a field path it cannot drop (Python: ValueError).
    InvalidTransform { message: String },
}

/// An error raised by code outside the core (a Python index function), carried through the
/// core untouched. Compared by identity so `Error` can stay `Eq`.
#[derive(Debug, Clone)]
pub struct Foreign(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl PartialEq for Foreign {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Foreign {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Decode { offset, message } => write!(f, "decode error at offset {offset}: {message}"),
            Error::LineTooLong { offset, limit } => {
                write!(f, "watch line starting at offset {offset} exceeds the {limit}-byte limit")
            }
            Error::Truncated { message } => write!(f, "stream truncated: {message}"),
            Error::Api(s) => write!(f, "{} {}: {}", s.code, s.reason, s.message),
            Error::FeedAfterFinish => {
                write!(f, "feed() after finish(): this decoder's stream has ended; use a new WatchDecoder per response")
            }
            Error::IndexExists { name } => write!(f, "index {name:?} already exists"),
            Error::IndexNotFound { name } => write!(f, "index {name:?} does not exist"),
            Error::IndexFunc { index, source } => write!(f, "index function {index:?} failed: {}", source.0),
            Error::InvalidTransform { message } => write!(f, "invalid transform: {message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
