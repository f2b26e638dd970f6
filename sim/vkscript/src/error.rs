//! The ways a VKScript run can fail as a whole, and the VK error code each one maps to.
//!
//! Messages follow VK's wording (capitalised, as VK sends them in `error_msg`) rather than
//! the house style for log messages, because the simulator copies them into VK error bodies
//! that clients match on.

/// Why a run failed as a whole; the caller turns it into a VK error body.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ScriptError {
    /// The code does not parse (VK error 12).
    #[error("Unable to compile code: {message} in line {line}")]
    Compile {
        /// 1-based line of the offending token.
        line: usize,
        /// What the parser expected or rejected.
        message: String,
    },
    /// The code parsed but failed while running (VK error 13).
    #[error("Runtime error occurred during code invocation: {0}")]
    Runtime(#[from] RuntimeError),
}

impl ScriptError {
    /// The VK `error_code` for this failure: 12 for compile errors, 13 for runtime errors.
    pub fn error_code(&self) -> i64 {
        match self {
            ScriptError::Compile { .. } => 12,
            ScriptError::Runtime(_) => 13,
        }
    }
}

/// A failure while the program runs; always VK error 13.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum RuntimeError {
    /// One more inner call than `Limits::max_api_calls` allows.
    #[error("Too many API calls")]
    TooManyApiCalls,
    /// The program used up `Limits::max_operations`.
    #[error("Too many operations")]
    TooManyOperations,
    /// `<`, `>`, `<=`, `>=` on values that have no order between them.
    #[error("Comparing values of different or unsupported types")]
    IncomparableTypes,
    /// An arithmetic operator applied to values it does not accept.
    #[error("Operation '{op}' is not supported for {left} and {right}")]
    UnsupportedOperands {
        op: &'static str,
        left: &'static str,
        right: &'static str,
    },
    /// Unary minus on something that is not a number.
    #[error("Operation '-' is not supported for {0}")]
    UnsupportedNegation(&'static str),
    /// Reading a variable that was never declared or assigned.
    #[error("Variable '{0}' is not defined")]
    UndefinedVariable(String),
    /// A method called on a value of the wrong kind, e.g. `push` on a string.
    #[error("Method '{method}' is not supported for {receiver}")]
    UnsupportedMethod {
        method: &'static str,
        receiver: &'static str,
    },
    /// Assigning a field or an index of something that is not an object or an array.
    #[error("Cannot assign a field of {0}")]
    NotAssignable(&'static str),
    /// An array index that is negative, fractional, not a number, or too far past the end.
    #[error("Invalid array index {0}")]
    InvalidIndex(String),
    /// `API.x.y(v)` where `v` is not an object literal's value.
    #[error("Parameters of {0} must be an object")]
    ApiParamsNotObject(String),
    /// A value nested too deeply to convert, which is also how self-containing values end.
    #[error("Value is nested too deeply or contains itself")]
    TooDeep,
    /// A value too large to send back, a guard against programs that multiply data.
    #[error("Response size is too big")]
    ResponseTooBig,
}
