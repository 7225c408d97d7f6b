//! What can go wrong reading and preparing data. The facade's `kiln::Error` holds these variants
//! too, so `?` carries them into a training program unchanged.

/// A data error: the message names the reader or function, what was found and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument was not acceptable.
    #[error("{context}: {message}")]
    InvalidArgument { context: String, message: String },
    /// The data is unusable as it stands.
    #[error("bad data: {0}")]
    Data(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// `Result` with kiln-data's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for an invalid-argument error.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            context: context.into(),
            message: message.into(),
        }
    }
}
