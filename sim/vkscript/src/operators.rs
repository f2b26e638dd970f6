//! The binary operators: arithmetic, `+` in all its forms, equality and ordering.
//!
//! Integers stay integers while the result fits in i64 (and, for `/`, divides exactly);
//! otherwise the result is an f64, as every JavaScript number is. Equality is strict: values
//! of different types are simply unequal, so `res != false` works on any API result.
//! Ordering only exists between two numbers or two strings; anything else is VK's
//! "Comparing values of different or unsupported types".

use std::cmp::Ordering;

use crate::ast::BinOp;
use crate::budget::Budget;
use crate::error::RuntimeError;
use crate::value::{Heap, Value};

/// Applies a (non-short-circuit) binary operator.
pub fn apply(
    heap: &mut Heap,
    budget: &mut Budget,
    op: BinOp,
    left: &Value,
    right: &Value,
) -> Result<Value, RuntimeError> {
    match op {
        BinOp::Add => add(heap, budget, left, right),
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => arithmetic(op, left, right),
        BinOp::Eq => Ok(Value::Bool(strict_equals(left, right))),
        BinOp::Ne => Ok(Value::Bool(!strict_equals(left, right))),
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let ordering = compare(left, right)?;
            let holds = match (op, ordering) {
                // NaN is unordered: every comparison with it is false.
                (_, None) => false,
                (BinOp::Lt, Some(o)) => o == Ordering::Less,
                (BinOp::Gt, Some(o)) => o == Ordering::Greater,
                (BinOp::Le, Some(o)) => o != Ordering::Greater,
                (_, Some(o)) => o != Ordering::Less,
            };
            Ok(Value::Bool(holds))
        }
    }
}

/// `+`: numbers add; a string on either side concatenates; two arrays concatenate.
fn add(
    heap: &mut Heap,
    budget: &mut Budget,
    left: &Value,
    right: &Value,
) -> Result<Value, RuntimeError> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => Ok(a
            .checked_add(*b)
            .map_or(Value::Float(*a as f64 + *b as f64), Value::Int)),
        (Value::Str(_), _) | (_, Value::Str(_)) => {
            // Printing charges the budget by the length of the text.
            let mut text = heap.to_display_string(left, budget)?;
            text.push_str(&heap.to_display_string(right, budget)?);
            Ok(Value::str(&text))
        }
        (Value::Array(a), Value::Array(b)) => {
            let (a, b) = (heap.array(*a), heap.array(*b));
            budget.charge_bulk(a.len() + b.len())?;
            let items = a.iter().chain(b.iter()).cloned().collect();
            Ok(heap.new_array(items))
        }
        _ => match (left.as_f64(), right.as_f64()) {
            (Some(a), Some(b)) => Ok(Value::Float(a + b)),
            _ => Err(unsupported(BinOp::Add, left, right)),
        },
    }
}

fn arithmetic(op: BinOp, left: &Value, right: &Value) -> Result<Value, RuntimeError> {
    if let (Value::Int(a), Value::Int(b)) = (left, right) {
        if let Some(n) = integer_arithmetic(op, *a, *b) {
            return Ok(n);
        }
    }
    let (Some(a), Some(b)) = (left.as_f64(), right.as_f64()) else {
        return Err(unsupported(op, left, right));
    };
    let n = match op {
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => a % b,
    };
    Ok(Value::Float(n))
}

/// The integer result when there is an exact one; `None` sends the caller to f64.
fn integer_arithmetic(op: BinOp, a: i64, b: i64) -> Option<Value> {
    let n = match op {
        BinOp::Sub => a.checked_sub(b)?,
        BinOp::Mul => a.checked_mul(b)?,
        BinOp::Div if b != 0 && a.checked_rem(b) == Some(0) => a.checked_div(b)?,
        // i64::MIN % -1 overflows in Rust; mathematically (and in JavaScript) it is 0.
        BinOp::Rem if b == -1 => 0,
        BinOp::Rem if b != 0 => a.checked_rem(b)?,
        _ => return None,
    };
    Some(Value::Int(n))
}

fn unsupported(op: BinOp, left: &Value, right: &Value) -> RuntimeError {
    RuntimeError::UnsupportedOperands {
        op: op.symbol(),
        left: left.type_name(),
        right: right.type_name(),
    }
}

/// `==`/`===`: same type and same value; arrays and objects are equal only to themselves.
pub fn strict_equals(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            left.as_f64() == right.as_f64()
        }
        _ => left == right,
    }
}

/// The order of two numbers or two strings; `None` when a NaN makes them unordered.
fn compare(left: &Value, right: &Value) -> Result<Option<Ordering>, RuntimeError> {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => Ok(Some(a.cmp(b))),
        (Value::Str(a), Value::Str(b)) => Ok(Some(a.cmp(b))),
        _ => match (left.as_f64(), right.as_f64()) {
            (Some(a), Some(b)) => Ok(a.partial_cmp(&b)),
            _ => Err(RuntimeError::IncomparableTypes),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: BinOp, left: Value, right: Value) -> Result<Value, RuntimeError> {
        apply(
            &mut Heap::default(),
            &mut Budget::new(1000),
            op,
            &left,
            &right,
        )
    }

    #[test]
    fn arithmetic_table() {
        use BinOp::*;
        use Value::{Float as F, Int as I};
        let cases = [
            (Add, I(2), I(3), I(5)),
            (Add, I(i64::MAX), I(1), F(i64::MAX as f64 + 1.0)),
            (Sub, I(2), I(3), I(-1)),
            (Sub, I(i64::MIN), I(1), F(i64::MIN as f64 - 1.0)),
            (Mul, I(4), I(5), I(20)),
            (Mul, I(i64::MAX), I(2), F(i64::MAX as f64 * 2.0)),
            (Div, I(6), I(3), I(2)),
            (Div, I(7), I(2), F(3.5)),
            (Div, I(i64::MIN), I(-1), F(-(i64::MIN as f64))),
            (Rem, I(7), I(3), I(1)),
            (Rem, I(-7), I(3), I(-1)),
            (Rem, I(i64::MIN), I(-1), I(0)),
            (Add, F(0.5), I(1), F(1.5)),
            (Mul, F(0.5), F(4.0), F(2.0)),
            (Div, I(1), I(0), F(f64::INFINITY)),
        ];
        for (op, a, b, want) in cases {
            assert_eq!(
                run(op, a.clone(), b.clone()).unwrap(),
                want,
                "{a:?} {op:?} {b:?}"
            );
        }
        let Value::Float(nan) = run(Rem, I(1), I(0)).unwrap() else {
            panic!("not a float");
        };
        assert!(nan.is_nan());
    }

    #[test]
    fn plus_concatenates_strings() {
        let cases = [
            (Value::str("a"), Value::Int(1), "a1"),
            (Value::Int(1), Value::str("a"), "1a"),
            (Value::str("a"), Value::Float(1.5), "a1.5"),
            (Value::str("a"), Value::Null, "anull"),
            (Value::Bool(false), Value::str("!"), "false!"),
        ];
        for (a, b, want) in cases {
            assert_eq!(run(BinOp::Add, a, b).unwrap(), Value::str(want));
        }
    }

    #[test]
    fn equality_is_strict() {
        assert!(strict_equals(&Value::Int(1), &Value::Float(1.0)));
        assert!(!strict_equals(&Value::Int(1), &Value::str("1")));
        assert!(!strict_equals(&Value::Bool(false), &Value::Int(0)));
        assert!(strict_equals(&Value::Null, &Value::Null));
        assert!(strict_equals(&Value::str("x"), &Value::str("x")));
    }

    #[test]
    fn ordering_needs_matching_types() {
        use BinOp::*;
        assert_eq!(
            run(Lt, Value::Int(1), Value::Float(1.5)),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Ge, Value::str("b"), Value::str("a")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            run(Lt, Value::Float(f64::NAN), Value::Int(1)),
            Ok(Value::Bool(false))
        );
        for (a, b) in [
            (Value::Int(1), Value::str("2")),
            (Value::Null, Value::Int(0)),
            (Value::Bool(true), Value::Bool(false)),
        ] {
            assert_eq!(run(Lt, a, b), Err(RuntimeError::IncomparableTypes));
        }
        assert!(matches!(
            run(Sub, Value::str("a"), Value::Int(1)),
            Err(RuntimeError::UnsupportedOperands { op: "-", .. })
        ));
        assert!(run(Add, Value::Null, Value::Int(1)).is_err());
    }
}
