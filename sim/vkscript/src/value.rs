//! Runtime values and the heap that owns every array and object of one run.
//!
//! Arrays and objects live in `Heap` and values refer to them by index, which gives
//! JavaScript's reference semantics (`var b = a; b.push(1);` changes `a`) with O(1) copies
//! and no reference counting: cycles such as `a.push(a)` cannot leak or overflow the stack
//! on drop, because the heap is two flat vectors freed together at the end of the run.
//! Conversions to and from JSON live here too, since only the heap can follow references;
//! converting out is bounded in depth and size, which is where cycles and programs that
//! multiply data end.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{Map, Number, Value as Json};

use crate::budget::Budget;
use crate::error::RuntimeError;

/// Deepest value converted to JSON; deeper (or self-containing) values are an error.
pub const MAX_JSON_DEPTH: usize = 128;

/// Rough upper bound on the bytes of one converted value. Not VK's 5 MB response rule
/// (that one belongs to the caller): a guard against programs that build huge shared
/// structures cheaply, such as `a = [a, a]` in a loop.
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;

/// Nesting beyond which `to_display_string` stops descending into arrays.
const MAX_DISPLAY_DEPTH: usize = 32;

/// A VKScript value. Copying one is cheap: strings are shared, containers are references.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Array(ArrayRef),
    Object(ObjectRef),
}

/// A reference to an array in the heap. Only `Heap` creates these, so they always point
/// at a live array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayRef(usize);

/// A reference to an object in the heap; see `ArrayRef`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectRef(usize);

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    /// The type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// JavaScript truthiness: 0, NaN, "", null and false are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(n) => *n != 0.0 && !n.is_nan(),
            Value::Str(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// A number as f64, for mixed integer/float arithmetic.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(n) => Some(*n),
            _ => None,
        }
    }
}

/// Formats a float as JavaScript prints it for the common cases (`2`, `1.5`, `NaN`).
pub fn format_float(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == 0.0 {
        // Rust prints -0.0 as "-0"; JavaScript prints "0".
        "0".into()
    } else {
        n.to_string()
    }
}

/// The storage of all arrays and objects created during one run.
#[derive(Debug, Default)]
pub struct Heap {
    arrays: Vec<Vec<Value>>,
    objects: Vec<BTreeMap<String, Value>>,
}

impl Heap {
    pub fn new_array(&mut self, items: Vec<Value>) -> Value {
        self.arrays.push(items);
        Value::Array(ArrayRef(self.arrays.len() - 1))
    }

    pub fn new_object(&mut self, fields: BTreeMap<String, Value>) -> Value {
        self.objects.push(fields);
        Value::Object(ObjectRef(self.objects.len() - 1))
    }

    // The four accessors index directly: references are only made by `new_array` and
    // `new_object` and the vectors never shrink, so an index is always in bounds.

    pub fn array(&self, r: ArrayRef) -> &Vec<Value> {
        &self.arrays[r.0]
    }

    pub fn array_mut(&mut self, r: ArrayRef) -> &mut Vec<Value> {
        &mut self.arrays[r.0]
    }

    pub fn object(&self, r: ObjectRef) -> &BTreeMap<String, Value> {
        &self.objects[r.0]
    }

    pub fn object_mut(&mut self, r: ObjectRef) -> &mut BTreeMap<String, Value> {
        &mut self.objects[r.0]
    }

    /// JavaScript's `String(v)`: arrays join their items with ",", objects print as
    /// "[object Object]". Building the text is charged to `budget` as it grows, because an
    /// array that holds itself or shares its items (`a = [a, a]` in a loop) can be
    /// exponentially long when printed; arrays nested deeper than a fixed cap print as "".
    pub fn to_display_string(
        &self,
        value: &Value,
        budget: &mut Budget,
    ) -> Result<String, RuntimeError> {
        let mut out = String::new();
        self.write_display(value, 0, &mut out, budget)?;
        Ok(out)
    }

    fn write_display(
        &self,
        value: &Value,
        depth: usize,
        out: &mut String,
        budget: &mut Budget,
    ) -> Result<(), RuntimeError> {
        let before = out.len();
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Float(n) => out.push_str(&format_float(*n)),
            Value::Str(s) => out.push_str(s),
            Value::Object(_) => out.push_str("[object Object]"),
            Value::Array(r) => {
                if depth >= MAX_DISPLAY_DEPTH {
                    return Ok(());
                }
                for (i, item) in self.array(*r).iter().enumerate() {
                    budget.charge_bulk(1)?;
                    if i > 0 {
                        out.push(',');
                    }
                    // Inside arrays JavaScript prints null as an empty slot.
                    if *item != Value::Null {
                        self.write_display(item, depth + 1, out, budget)?;
                    }
                }
            }
        }
        if !matches!(value, Value::Array(_)) {
            budget.charge_bulk(out.len() - before)?;
        }
        Ok(())
    }

    /// The key a value names when used as `obj[value]`: numbers by their decimal form, so
    /// `r[123]` and `r["123"]` are the same field, as in JavaScript.
    pub fn property_key(&self, value: &Value, budget: &mut Budget) -> Result<String, RuntimeError> {
        match value {
            Value::Str(s) => Ok(s.to_string()),
            other => self.to_display_string(other, budget),
        }
    }

    /// Copies a JSON value (an API response, `Args`) into the heap.
    pub fn load_json(&mut self, json: &Json) -> Value {
        self.load_json_at(json, 0)
    }

    fn load_json_at(&mut self, json: &Json, depth: usize) -> Value {
        if depth > MAX_JSON_DEPTH {
            return Value::Null;
        }
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::str(s),
            Json::Array(items) => {
                let items = items
                    .iter()
                    .map(|item| self.load_json_at(item, depth + 1))
                    .collect();
                self.new_array(items)
            }
            Json::Object(fields) => {
                let fields = fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.load_json_at(v, depth + 1)))
                    .collect();
                self.new_object(fields)
            }
        }
    }

    /// Converts a value to JSON for the response or for API parameters.
    pub fn to_json(&self, value: &Value) -> Result<Json, RuntimeError> {
        let mut bytes = 0;
        self.to_json_at(value, 0, &mut bytes)
    }

    /// The fields of an object as a JSON map (API parameters).
    pub fn object_to_json(&self, r: ObjectRef) -> Result<Map<String, Json>, RuntimeError> {
        let mut bytes = 0;
        self.fields_to_json(r, 0, &mut bytes)
    }

    fn fields_to_json(
        &self,
        r: ObjectRef,
        depth: usize,
        bytes: &mut usize,
    ) -> Result<Map<String, Json>, RuntimeError> {
        let mut map = Map::new();
        for (key, item) in self.object(r) {
            count_bytes(bytes, key.len() + 4)?;
            map.insert(key.clone(), self.to_json_at(item, depth + 1, bytes)?);
        }
        Ok(map)
    }

    fn to_json_at(
        &self,
        value: &Value,
        depth: usize,
        bytes: &mut usize,
    ) -> Result<Json, RuntimeError> {
        if depth > MAX_JSON_DEPTH {
            return Err(RuntimeError::TooDeep);
        }
        count_bytes(bytes, 8)?;
        let json = match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(n) => Json::Number((*n).into()),
            Value::Float(n) => float_to_json(*n),
            Value::Str(s) => {
                count_bytes(bytes, s.len())?;
                Json::String(s.to_string())
            }
            Value::Array(r) => {
                let mut items = Vec::with_capacity(self.array(*r).len());
                for item in self.array(*r) {
                    items.push(self.to_json_at(item, depth + 1, bytes)?);
                }
                Json::Array(items)
            }
            Value::Object(r) => Json::Object(self.fields_to_json(*r, depth, bytes)?),
        };
        Ok(json)
    }
}

fn count_bytes(bytes: &mut usize, more: usize) -> Result<(), RuntimeError> {
    *bytes = bytes.saturating_add(more);
    if *bytes > MAX_JSON_BYTES {
        Err(RuntimeError::ResponseTooBig)
    } else {
        Ok(())
    }
}

/// Integral floats become JSON integers (JavaScript does not tell 5 and 5.0 apart, and ids
/// must stay integers); NaN and infinities become null, as `JSON.stringify` does.
fn float_to_json(n: f64) -> Json {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        return Json::Number((n as i64).into());
    }
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let mut heap = Heap::default();
        let original = json!({"items": [1, 2.5, "x", null, true, {"id": -7}], "count": 3});
        let value = heap.load_json(&original);
        assert_eq!(heap.to_json(&value).unwrap(), original);
    }

    #[test]
    fn floats_become_integers_when_integral() {
        let heap = Heap::default();
        let cases = [
            (Value::Float(5.0), json!(5)),
            (Value::Float(-0.0), json!(0)),
            (Value::Float(0.25), json!(0.25)),
            (Value::Float(f64::NAN), json!(null)),
            (Value::Float(f64::INFINITY), json!(null)),
            (Value::Float(1e300), json!(1e300)),
        ];
        for (value, want) in cases {
            assert_eq!(heap.to_json(&value).unwrap(), want, "{value:?}");
        }
    }

    #[test]
    fn self_containing_values_fail_instead_of_looping() {
        let mut heap = Heap::default();
        let a = heap.new_array(vec![]);
        let Value::Array(r) = a.clone() else {
            unreachable!()
        };
        heap.array_mut(r).push(a.clone());
        assert_eq!(heap.to_json(&a), Err(RuntimeError::TooDeep));
        let mut budget = Budget::new(1000);
        assert_eq!(heap.to_display_string(&a, &mut budget).unwrap(), "");
    }

    #[test]
    fn shared_structures_are_bounded_in_size() {
        let mut heap = Heap::default();
        let mut a = heap.new_array(vec![Value::str(&"x".repeat(1000))]);
        for _ in 0..40 {
            a = heap.new_array(vec![a.clone(), a]);
        }
        assert_eq!(heap.to_json(&a), Err(RuntimeError::ResponseTooBig));
    }

    #[test]
    fn display_strings_follow_javascript() {
        let mut heap = Heap::default();
        let inner = heap.new_array(vec![Value::Int(2), Value::Null]);
        let obj = heap.new_object(BTreeMap::new());
        let arr = heap.new_array(vec![Value::Int(1), inner, Value::Float(1.5), obj]);
        let mut budget = Budget::new(1000);
        let mut show = |v: &Value| heap.property_key(v, &mut budget).unwrap();
        assert_eq!(show(&arr), "1,2,,1.5,[object Object]");
        assert_eq!(show(&Value::Int(123)), "123");
        assert_eq!(show(&Value::Float(2.0)), "2");
    }

    #[test]
    fn printing_shared_structures_is_charged() {
        let mut heap = Heap::default();
        let mut a = heap.new_array(vec![Value::Int(1)]);
        for _ in 0..30 {
            a = heap.new_array(vec![a.clone(), a]);
        }
        let mut budget = Budget::new(10_000);
        assert_eq!(
            heap.to_display_string(&a, &mut budget),
            Err(RuntimeError::TooManyOperations)
        );
    }
}
