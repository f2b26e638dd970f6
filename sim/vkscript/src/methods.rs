//! The built-in methods of arrays and strings (`push`, `split`, ...) and the global
//! functions (`parseInt`, `parseDouble`), with JavaScript's argument rules: indices may be
//! negative (counted from the end) and are clamped to the bounds, so no index a program
//! passes can reach past the end of anything.
//!
//! Strings are indexed by characters (Unicode scalar values), not bytes, so slicing can
//! never split a character.

use crate::ast::{Function, Method};
use crate::budget::Budget;
use crate::error::RuntimeError;
use crate::operators::strict_equals;
use crate::value::{Heap, Value};

/// Calls a built-in method on `receiver`. Array methods change the array in place, which is
/// visible through every reference to it.
pub fn call_method(
    heap: &mut Heap,
    budget: &mut Budget,
    method: Method,
    receiver: &Value,
    args: &[Value],
) -> Result<Value, RuntimeError> {
    match receiver {
        Value::Array(r) => array_method(heap, budget, method, *r, args),
        Value::Str(s) => {
            // Every string method walks the characters.
            budget.charge_bulk(s.len())?;
            string_method(heap, budget, method, s, args)
        }
        other => Err(unsupported(method, other)),
    }
}

fn unsupported(method: Method, receiver: &Value) -> RuntimeError {
    RuntimeError::UnsupportedMethod {
        method: method.name(),
        receiver: receiver.type_name(),
    }
}

fn array_method(
    heap: &mut Heap,
    budget: &mut Budget,
    method: Method,
    r: crate::value::ArrayRef,
    args: &[Value],
) -> Result<Value, RuntimeError> {
    let len = heap.array(r).len();
    // Charge what each method touches: appending is cheap, moving or scanning items is not.
    let touched = match method {
        Method::Push | Method::Pop => args.len(),
        _ => len + args.len(),
    };
    budget.charge_bulk(touched)?;
    let result = match method {
        Method::Push => {
            let items = heap.array_mut(r);
            items.extend_from_slice(args);
            length_value(items.len())
        }
        Method::Pop => heap.array_mut(r).pop().unwrap_or(Value::Null),
        Method::Shift => {
            let items = heap.array_mut(r);
            if items.is_empty() {
                Value::Null
            } else {
                items.remove(0)
            }
        }
        Method::Unshift => {
            let items = heap.array_mut(r);
            items.splice(0..0, args.iter().cloned());
            length_value(items.len())
        }
        Method::Slice => {
            let start = relative_index(args.first(), len, 0);
            let end = relative_index(args.get(1), len, len);
            let items = heap.array(r).get(start..end).unwrap_or_default().to_vec();
            heap.new_array(items)
        }
        Method::Splice => {
            let start = relative_index(args.first(), len, len);
            let available = len - start;
            let delete = match args.get(1) {
                None if args.is_empty() => 0,
                None => available,
                Some(count) => clamp_count(to_integer(count), available),
            };
            let inserted = args.get(2..).unwrap_or_default().iter().cloned();
            let removed: Vec<Value> = heap
                .array_mut(r)
                .splice(start..start + delete, inserted)
                .collect();
            heap.new_array(removed)
        }
        Method::IndexOf => {
            let needle = args.first().unwrap_or(&Value::Null);
            let from = relative_index(args.get(1), len, 0);
            let found = heap
                .array(r)
                .iter()
                .skip(from)
                .position(|item| strict_equals(item, needle))
                .map(|i| i + from);
            index_value(found)
        }
        Method::Join => {
            let separator = match args.first() {
                None => ",".to_string(),
                Some(sep) => heap.to_display_string(sep, budget)?,
            };
            let mut text = String::new();
            for (i, item) in heap.array(r).iter().enumerate() {
                if i > 0 {
                    text.push_str(&separator);
                    budget.charge_bulk(separator.len())?;
                }
                if *item != Value::Null {
                    text.push_str(&heap.to_display_string(item, budget)?);
                }
            }
            Value::str(&text)
        }
        Method::Split | Method::Substr => return Err(unsupported(method, &Value::Array(r))),
    };
    Ok(result)
}

fn string_method(
    heap: &mut Heap,
    budget: &mut Budget,
    method: Method,
    s: &str,
    args: &[Value],
) -> Result<Value, RuntimeError> {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let result = match method {
        Method::Slice => {
            let start = relative_index(args.first(), len, 0);
            let end = relative_index(args.get(1), len, len);
            substring(&chars, start, end)
        }
        Method::Substr => {
            let start = relative_index(args.first(), len, 0);
            let available = len - start;
            let count = args
                .get(1)
                .map_or(available, |n| clamp_count(to_integer(n), available));
            substring(&chars, start, start + count)
        }
        Method::IndexOf => {
            let needle = match args.first() {
                Some(v) => heap.to_display_string(v, budget)?,
                None => "null".to_string(),
            };
            let from = relative_index(args.get(1), len, 0);
            let from_byte = s.char_indices().nth(from).map_or(s.len(), |(b, _)| b);
            let found = s
                .get(from_byte..)
                .and_then(|rest| rest.find(&needle))
                .map(|b| {
                    from + s
                        .get(from_byte..from_byte + b)
                        .map_or(0, |p| p.chars().count())
                });
            index_value(found)
        }
        Method::Split => {
            let limit = args
                .get(1)
                .map_or(usize::MAX, |n| usize::try_from(to_integer(n)).unwrap_or(0));
            let parts: Vec<Value> = match args.first() {
                None | Some(Value::Null) => vec![Value::str(s)],
                Some(sep) => {
                    let sep = heap.to_display_string(sep, budget)?;
                    if sep.is_empty() {
                        chars
                            .iter()
                            .map(|c| Value::str(c.encode_utf8(&mut [0; 4])))
                            .collect()
                    } else {
                        s.split(sep.as_str()).map(Value::str).collect()
                    }
                }
            };
            let parts = parts.into_iter().take(limit).collect();
            heap.new_array(parts)
        }
        _ => return Err(unsupported(method, &Value::str(s))),
    };
    Ok(result)
}

fn substring(chars: &[char], start: usize, end: usize) -> Value {
    let text: String = chars.get(start..end).unwrap_or_default().iter().collect();
    Value::str(&text)
}

fn length_value(len: usize) -> Value {
    Value::Int(i64::try_from(len).unwrap_or(i64::MAX))
}

fn index_value(found: Option<usize>) -> Value {
    found.map_or(Value::Int(-1), length_value)
}

/// JavaScript's ToIntegerOrInfinity, saturated to i64: NaN and non-numbers are 0, strings
/// holding a number are that number.
pub fn to_integer(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        // `as` saturates and maps NaN to 0, which is exactly the rule wanted here.
        Value::Float(n) => n.trunc() as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => s.trim().parse::<f64>().map_or(0, |n| n.trunc() as i64),
        Value::Null | Value::Array(_) | Value::Object(_) => 0,
    }
}

/// A start or end position: negative counts from the end, the result is within `0..=len`.
fn relative_index(arg: Option<&Value>, len: usize, default: usize) -> usize {
    let Some(arg) = arg else {
        return default;
    };
    let n = i128::from(to_integer(arg));
    let len_i = len as i128;
    let index = if n < 0 {
        (len_i + n).max(0)
    } else {
        n.min(len_i)
    };
    usize::try_from(index).unwrap_or(0)
}

/// A count clamped to `0..=available`.
fn clamp_count(n: i64, available: usize) -> usize {
    usize::try_from(n.max(0)).unwrap_or(0).min(available)
}

/// Calls a global function.
pub fn call_function(
    heap: &Heap,
    budget: &mut Budget,
    function: Function,
    args: &[Value],
) -> Result<Value, RuntimeError> {
    let arg = args.first().unwrap_or(&Value::Null);
    let value = match function {
        Function::ParseInt => match arg {
            Value::Int(n) if args.len() < 2 => Value::Int(*n),
            other => {
                let radix = args.get(1).map_or(0, to_integer);
                parse_int(&heap.to_display_string(other, budget)?, radix)
            }
        },
        Function::ParseDouble => match arg {
            Value::Int(_) | Value::Float(_) => arg.clone(),
            other => parse_double(&heap.to_display_string(other, budget)?),
        },
    };
    Ok(value)
}

/// JavaScript's `parseInt`: leading whitespace, a sign, the longest run of digits in the
/// radix (a `0x` prefix means 16 when no radix is given); NaN when there are no digits.
pub fn parse_int(text: &str, radix: i64) -> Value {
    let text = text.trim_start();
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let has_hex_prefix = text.starts_with("0x") || text.starts_with("0X");
    let (radix, text) = match radix {
        0 | 16 if has_hex_prefix => (16, text.get(2..).unwrap_or_default()),
        0 => (10, text),
        2..=36 => (radix as u32, text),
        _ => return Value::Float(f64::NAN),
    };
    let digit_text: String = text.chars().take_while(|c| c.is_digit(radix)).collect();
    let digits: Vec<u32> = digit_text
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .collect();
    if digits.is_empty() {
        return Value::Float(f64::NAN);
    }
    let exact = digits.iter().try_fold(0i64, |acc, &d| {
        acc.checked_mul(i64::from(radix))?.checked_add(i64::from(d))
    });
    match exact {
        Some(n) => Value::Int(if negative { -n } else { n }),
        None => {
            // Decimal text parses exactly rounded; other radices are rare enough for a fold.
            let n = match digit_text.parse::<f64>() {
                Ok(n) if radix == 10 => n,
                _ => digits
                    .iter()
                    .fold(0f64, |acc, &d| acc * f64::from(radix) + f64::from(d)),
            };
            Value::Float(if negative { -n } else { n })
        }
    }
}

/// `parseDouble` (JavaScript's `parseFloat`): the longest prefix that reads as a decimal
/// number; NaN when there is none.
pub fn parse_double(text: &str) -> Value {
    let text = text.trim_start();
    let bytes = text.as_bytes();
    let mut end = 0;
    let mut valid_end = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    if text
        .get(end..)
        .is_some_and(|rest| rest.starts_with("Infinity"))
    {
        let sign = if bytes.first() == Some(&b'-') {
            -1.0
        } else {
            1.0
        };
        return Value::Float(sign * f64::INFINITY);
    }
    let digits_from = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let int_end = digits_from(end);
    let mut seen_digit = int_end > end;
    end = int_end;
    if seen_digit {
        valid_end = end;
    }
    if bytes.get(end) == Some(&b'.') {
        let frac_end = digits_from(end + 1);
        seen_digit |= frac_end > end + 1;
        end = frac_end;
        if seen_digit {
            valid_end = end;
        }
    }
    if seen_digit && matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_end = digits_from(exp);
        if exp_end > exp {
            valid_end = exp_end;
        }
    }
    if !seen_digit {
        return Value::Float(f64::NAN);
    }
    let number = text
        .get(..valid_end)
        .and_then(|prefix| prefix.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    Value::Float(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_nan(v: &Value) -> bool {
        matches!(v, Value::Float(n) if n.is_nan())
    }

    #[test]
    fn parse_int_table() {
        let cases = [
            ("42", 0, Value::Int(42)),
            ("  -17abc", 0, Value::Int(-17)),
            ("+5", 0, Value::Int(5)),
            ("0x1f", 0, Value::Int(31)),
            ("ff", 16, Value::Int(255)),
            ("101", 2, Value::Int(5)),
            ("12.9", 0, Value::Int(12)),
            (
                "99999999999999999999",
                0,
                Value::Float(99_999_999_999_999_999_999.0),
            ),
        ];
        for (text, radix, want) in cases {
            assert_eq!(parse_int(text, radix), want, "{text}");
        }
        for (text, radix) in [("", 0), ("abc", 0), ("-", 0), ("12", 1), ("12", 37)] {
            assert!(is_nan(&parse_int(text, radix)), "{text}");
        }
    }

    #[test]
    fn parse_double_table() {
        let cases = [
            ("1.5", 1.5),
            (" -2.5e3x", -2500.0),
            ("7", 7.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e", 1.0),
            ("3e+", 3.0),
            ("-Infinity", f64::NEG_INFINITY),
        ];
        for (text, want) in cases {
            assert_eq!(parse_double(text), Value::Float(want), "{text}");
        }
        for text in ["", ".", "-", "e5", "abc", "-.e1"] {
            assert!(is_nan(&parse_double(text)), "{text}");
        }
    }

    #[test]
    fn relative_indices_clamp() {
        let cases = [
            (Some(Value::Int(2)), 5, 2),
            (Some(Value::Int(-2)), 5, 3),
            (Some(Value::Int(-20)), 5, 0),
            (Some(Value::Int(20)), 5, 5),
            (Some(Value::Int(i64::MIN)), 5, 0),
            (Some(Value::Float(f64::NAN)), 5, 0),
            (Some(Value::str("3")), 5, 3),
            (None, 5, 4),
        ];
        for (arg, len, want) in cases {
            assert_eq!(relative_index(arg.as_ref(), len, 4), want, "{arg:?}");
        }
    }
}
