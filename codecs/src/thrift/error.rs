//! Why reading a Thrift structure stopped.

/// A failure while walking Thrift bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The bytes end before the structure does; `at_least` more total bytes
    /// (counted from the start of the walked slice) are needed before trying again.
    #[error("incomplete: need at least {at_least} bytes")]
    Incomplete {
        /// The smallest total length worth trying again with.
        at_least: usize,
    },
    /// The bytes do not follow the protocol.
    #[error("{0}")]
    Malformed(String),
    /// A length, count or nesting depth exceeds a limit.
    #[error("{0}")]
    TooLarge(String),
}

impl ReadError {
    /// A malformed-input error.
    pub fn malformed(message: impl Into<String>) -> Self {
        ReadError::Malformed(message.into())
    }
}
