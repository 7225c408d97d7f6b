//! What can go wrong building, scheduling and running graphs. Every message names the op, what was
//! found, what was expected, and — where there is one — the fix. Data, file and doctor errors belong
//! to the crates above; the facade's `kiln::Error` holds every variant.

use crate::Shape;

/// A graph or device error.
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
}

/// `Result` with Kiln's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a shape error on `op`.
    pub fn shape(op: &str, found: impl Into<String>, expected: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            found: found.into(),
            expected: expected.into(),
        }
    }

    /// Shorthand for an invalid-argument error.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a device error.
    pub fn device(device: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Device {
            device: device.into(),
            message: message.into(),
        }
    }

    /// Shorthand for a plan too large for the device's limits.
    pub fn too_large(device: impl Into<String>, message: impl Into<String>) -> Self {
        Error::TooLarge {
            device: device.into(),
            message: message.into(),
        }
    }
}

/// Formats a list of shapes as `[2, 3] and [4]` for error messages.
pub fn shapes_list(shapes: &[&Shape]) -> String {
    shapes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" and ")
}
