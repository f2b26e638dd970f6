//! VKScript: an interpreter for the language of VK's `execute` method.
//!
//! The VK simulator (`vk-sim`) answers `execute` requests with [`run`]: it parses the `code`
//! parameter, runs it against an [`ApiHost`] that answers the inner `API.section.method`
//! calls, and returns the value of `return` with the failed inner calls
//! ([`ExecuteOutcome`]), or a [`ScriptError`] carrying VK's error code (12 compile, 13
//! runtime).
//!
//! The language is VK's subset of JavaScript: `var`, assignment (`=`, `+=`, `-=`, `*=`,
//! `/=`, `%=`, `++`, `--`), `if`/`else`, `while`, `return`, numbers, strings, `true`,
//! `false`, `null`, arrays, objects, member and index access, arithmetic, comparisons,
//! `&& || !`, `?:`, the array and string methods `push pop shift unshift slice splice
//! indexOf split substr join`, `.length`, `parseInt`, `parseDouble`, `Args.name`, the
//! `@.field` collection filter and `API` calls. Values have JavaScript's reference
//! semantics for arrays and objects; integers stay integers while they fit in i64.
//!
//! Untrusted code cannot crash the caller: nesting is capped at parse time (so recursion
//! stays shallow), every statement and expression costs an operation (so loops end), bulk
//! work costs in proportion to its size (so memory stays bounded), and nothing indexes
//! past a bound or overflows.
//!
//! Module map: `lexer` (text to tokens), `parser` (tokens to the `ast`, all compile
//! errors), `interp` (runs the tree, owns the budgets and the host calls), `value` (values,
//! the heap and JSON conversion), `operators` (binary operators), `methods` (built-in
//! methods and functions), `budget` (operation counting), `error` (the error enums).
#![forbid(unsafe_code)]

mod ast;
mod budget;
mod error;
mod interp;
mod lexer;
mod methods;
mod operators;
mod parser;
mod value;

#[cfg(test)]
mod tests;

pub use error::{RuntimeError, ScriptError};
pub use parser::{MAX_DEPTH, MAX_NESTING};

use serde_json::{Map, Value as Json};

/// Budgets of one execute run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inner API calls allowed; the next one aborts the run (VK: 25).
    pub max_api_calls: usize,
    /// Operations allowed: one per evaluated statement or expression node, plus bulk work
    /// by size (VK's budget is unpublished; about 10,000 by reverse engineering).
    pub max_operations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_api_calls: 25,
            max_operations: 10_000,
        }
    }
}

/// The error an inner API call returned (VK error code + message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCallError {
    pub error_code: i64,
    pub error_msg: String,
}

impl ApiCallError {
    pub fn new(error_code: i64, error_msg: impl Into<String>) -> ApiCallError {
        ApiCallError {
            error_code,
            error_msg: error_msg.into(),
        }
    }
}

/// What the interpreter calls for `API.section.method({...})`. `method` is
/// "section.method"; `params` are the object literal's fields as JSON values (numbers,
/// strings, arrays...), exactly as the program built them.
pub trait ApiHost {
    fn call(&mut self, method: &str, params: &Map<String, Json>) -> Result<Json, ApiCallError>;
}

/// One entry of VK's `execute_errors` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecuteError {
    pub method: String,
    pub error_code: i64,
    pub error_msg: String,
}

/// A finished run: the value of `return`, plus the failed inner calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteOutcome {
    /// The returned value; `null` when the program ends without `return`.
    pub response: Json,
    /// One entry per failed inner call, in call order.
    pub execute_errors: Vec<ExecuteError>,
    /// Inner API calls made, failed ones included.
    pub api_calls: usize,
    /// Operations spent.
    pub operations: u64,
}

/// Runs VKScript `code` with the extra request parameters `args` (available as `Args.name`;
/// VK passes them as strings), sending inner calls to `host`.
pub fn run(
    code: &str,
    args: &Map<String, Json>,
    host: &mut dyn ApiHost,
    limits: &Limits,
) -> Result<ExecuteOutcome, ScriptError> {
    let program = parser::parse(code)?;
    Ok(interp::execute(&program, args, host, limits)?)
}
