//! The error of the model API, and through the facade `kiln::Error`: every variant of the graph and
//! data errors, flattened so one `match` sees them all, plus the doctor's verdicts. `?` converts the
//! lower crates' errors into it.

/// Everything that can go wrong between building a model and reading its results. Every message
/// names the op, layer or file, what was found, what was expected, and — where there is one — the
/// fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An op was given operands whose shapes do not fit together.
    #[error("{op}: shape mismatch: {found}; expected {expected}")]
    Shape {
        op: String,
        found: String,
        expected: String,
    },
    /// A layer, model or fit argument was not acceptable.
    #[error("{context}: {message}")]
    InvalidArgument { context: String, message: String },
    /// The data handed to fit/evaluate/predict is unusable as it stands.
    #[error("bad data: {0}")]
    Data(String),
    /// The model, loss and labels do not make sense together (the doctor's verdict).
    #[error("{0}")]
    Doctor(String),
    /// Training produced non-finite values (a diverging loss, NaN weights).
    #[error("{0}")]
    Diverged(String),
    /// A gradient was asked of an op that has none.
    #[error("{op} is not differentiable: {why}")]
    NotDifferentiable { op: String, why: String },
    /// The device cannot hold or run what the model needs.
    #[error("device {device}: {message}")]
    Device { device: String, message: String },
    /// What a plan needs at its batch size exceeds the device's limits (a buffer, a binding, a
    /// dispatch grid, free memory): a smaller batch may fit.
    #[error("device {device}: {message}")]
    TooLarge { device: String, message: String },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// `Result` with the model API's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a shape error on `op`.
    pub fn shape(op: &str, found: impl Into<String>, expected: impl Into<String>) -> Self {
        kiln_graph::Error::shape(op, found, expected).into()
    }

    /// Shorthand for an invalid-argument error.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        kiln_graph::Error::invalid(context, message).into()
    }
}

impl From<kiln_graph::Error> for Error {
    fn from(e: kiln_graph::Error) -> Self {
        match e {
            kiln_graph::Error::Shape { op, found, expected } => Error::Shape { op, found, expected },
            kiln_graph::Error::InvalidArgument { context, message } => Error::InvalidArgument { context, message },
            kiln_graph::Error::NotDifferentiable { op, why } => Error::NotDifferentiable { op, why },
            kiln_graph::Error::Device { device, message } => Error::Device { device, message },
            kiln_graph::Error::TooLarge { device, message } => Error::TooLarge { device, message },
        }
    }
}

impl From<kiln_data::Error> for Error {
    fn from(e: kiln_data::Error) -> Self {
        match e {
            kiln_data::Error::InvalidArgument { context, message } => Error::InvalidArgument { context, message },
            kiln_data::Error::Data(message) => Error::Data(message),
            kiln_data::Error::Io { path, message } => Error::Io { path, message },
        }
    }
}
