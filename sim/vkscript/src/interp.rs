//! Runs a parsed program: statements, expressions, assignments, property access, the `@.`
//! filter and the `API.*` calls that reach the host.
//!
//! This module owns the run-time budgets: it counts API calls against
//! `Limits::max_api_calls` and charges every statement and expression node to the
//! operations budget, so every loop ends. It never recurses deeper than the parser allowed
//! the tree to be.

use std::collections::{BTreeMap, HashMap};

use serde_json::Map;

use crate::ast::{BinOp, Expr, ExprKind, Function, Method, Program, Stmt, Target};
use crate::budget::Budget;
use crate::error::RuntimeError;
use crate::methods::{call_function, call_method};
use crate::operators;
use crate::value::{ArrayRef, Heap, ObjectRef, Value};
use crate::{ApiHost, ExecuteError, ExecuteOutcome, Limits};

/// Largest gap `a[i] = x` may open past the end of an array (filled with nulls). The
/// operations budget bounds it too; this bound holds even under a huge budget.
const MAX_INDEX_GAP: usize = 1 << 20;

/// Runs `program` to its `return` (or its end, which returns null).
pub fn execute(
    program: &Program,
    args: &Map<String, serde_json::Value>,
    host: &mut dyn ApiHost,
    limits: &Limits,
) -> Result<ExecuteOutcome, RuntimeError> {
    let mut heap = Heap::default();
    let args_fields: BTreeMap<String, Value> = args
        .iter()
        .map(|(name, value)| (name.clone(), heap.load_json(value)))
        .collect();
    let args_value = heap.new_object(args_fields);
    let mut interpreter = Interpreter {
        heap,
        vars: HashMap::from([("Args".to_string(), args_value)]),
        host,
        max_api_calls: limits.max_api_calls,
        budget: Budget::new(limits.max_operations),
        api_calls: 0,
        execute_errors: Vec::new(),
    };
    let result = match interpreter.exec_block(&program.body)? {
        Flow::Return(value) => value,
        Flow::Next => Value::Null,
    };
    let response = interpreter.heap.to_json(&result)?;
    Ok(ExecuteOutcome {
        response,
        execute_errors: interpreter.execute_errors,
        api_calls: interpreter.api_calls,
        operations: interpreter.budget.used(),
    })
}

/// Whether a statement finished normally or hit a `return`.
enum Flow {
    Next,
    Return(Value),
}

/// A resolved assignment target: the container is already evaluated.
enum Place {
    Var(String),
    Field(ObjectRef, String),
    Element(ArrayRef, usize),
}

struct Interpreter<'h> {
    heap: Heap,
    /// All variables; VKScript, like JavaScript's `var`, has a single scope here.
    vars: HashMap<String, Value>,
    host: &'h mut dyn ApiHost,
    max_api_calls: usize,
    budget: Budget,
    api_calls: usize,
    execute_errors: Vec<ExecuteError>,
}

impl Interpreter<'_> {
    // ---- statements ----

    fn exec_block(&mut self, body: &[Stmt]) -> Result<Flow, RuntimeError> {
        for stmt in body {
            if let Flow::Return(value) = self.exec(stmt)? {
                return Ok(Flow::Return(value));
            }
        }
        Ok(Flow::Next)
    }

    fn exec(&mut self, stmt: &Stmt) -> Result<Flow, RuntimeError> {
        self.budget.tick()?;
        match stmt {
            Stmt::Var(decls) => self.exec_var(decls),
            Stmt::Expr(expr) => self.exec_expr(expr),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => self.exec_if(cond, then, otherwise.as_deref()),
            Stmt::While { cond, body } => self.exec_while(cond, body),
            Stmt::Return(value) => self.exec_return(value.as_ref()),
            Stmt::Block(body) => self.exec_block(body),
            Stmt::Empty => Ok(Flow::Next),
        }
    }

    fn exec_var(&mut self, decls: &[(String, Option<Expr>)]) -> Result<Flow, RuntimeError> {
        for (name, init) in decls {
            match init {
                Some(init) => {
                    let value = self.eval(init)?;
                    self.vars.insert(name.clone(), value);
                }
                // `var x;` declares without resetting an existing value, as in JS.
                None => {
                    self.vars.entry(name.clone()).or_insert(Value::Null);
                }
            }
        }
        Ok(Flow::Next)
    }

    fn exec_expr(&mut self, expr: &Expr) -> Result<Flow, RuntimeError> {
        self.eval(expr)?;
        Ok(Flow::Next)
    }

    fn exec_if(
        &mut self,
        cond: &Expr,
        then: &Stmt,
        otherwise: Option<&Stmt>,
    ) -> Result<Flow, RuntimeError> {
        if self.eval_truthy(cond)? {
            self.exec(then)
        } else if let Some(otherwise) = otherwise {
            self.exec(otherwise)
        } else {
            Ok(Flow::Next)
        }
    }

    fn exec_while(&mut self, cond: &Expr, body: &Stmt) -> Result<Flow, RuntimeError> {
        // Each round evaluates `cond`, which costs operations: the budget ends every loop.
        while self.eval_truthy(cond)? {
            if let Flow::Return(value) = self.exec(body)? {
                return Ok(Flow::Return(value));
            }
        }
        Ok(Flow::Next)
    }

    fn exec_return(&mut self, value: Option<&Expr>) -> Result<Flow, RuntimeError> {
        let value = match value {
            Some(expr) => self.eval(expr)?,
            None => Value::Null,
        };
        Ok(Flow::Return(value))
    }

    // ---- expressions ----
    //
    // `eval` and `exec` only dispatch: each arm is one call, so that their frames, which
    // deep programs repeat on the stack, stay small (debug builds give every temporary of
    // a function its own slot).

    fn eval(&mut self, expr: &Expr) -> Result<Value, RuntimeError> {
        self.budget.tick()?;
        match &expr.kind {
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Int(n) => Ok(Value::Int(*n)),
            ExprKind::Float(n) => Ok(Value::Float(*n)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::Var(name) => self.read_var(name),
            ExprKind::Array(items) => self.eval_array(items),
            ExprKind::Object(fields) => self.eval_object(fields),
            ExprKind::Member(object, name) => self.eval_member(object, name),
            ExprKind::Index(object, key) => self.eval_index(object, key),
            ExprKind::Pluck(object, name) => self.eval_pluck(object, name),
            ExprKind::Neg(operand) => self.eval_neg(operand),
            ExprKind::Not(operand) => self.eval_not(operand),
            ExprKind::Binary(op, left, right) => self.eval_binary(*op, left, right),
            ExprKind::And(left, right) => self.eval_logical(true, left, right),
            ExprKind::Or(left, right) => self.eval_logical(false, left, right),
            ExprKind::Conditional(cond, then, otherwise) => {
                self.eval_conditional(cond, then, otherwise)
            }
            ExprKind::Assign { target, op, value } => self.eval_assign(target, *op, value),
            ExprKind::Update {
                target,
                delta,
                prefix,
            } => self.eval_update(target, *delta, *prefix),
            ExprKind::Call(function, args) => self.eval_call(*function, args),
            ExprKind::Method(receiver, method, args) => self.eval_method(receiver, *method, args),
            ExprKind::Api { method, params } => self.eval_api(method, params.as_deref()),
        }
    }

    fn eval_truthy(&mut self, expr: &Expr) -> Result<bool, RuntimeError> {
        Ok(self.eval(expr)?.is_truthy())
    }

    fn eval_not(&mut self, operand: &Expr) -> Result<Value, RuntimeError> {
        Ok(Value::Bool(!self.eval_truthy(operand)?))
    }

    fn eval_conditional(
        &mut self,
        cond: &Expr,
        then: &Expr,
        otherwise: &Expr,
    ) -> Result<Value, RuntimeError> {
        if self.eval_truthy(cond)? {
            self.eval(then)
        } else {
            self.eval(otherwise)
        }
    }

    fn eval_call(&mut self, function: Function, args: &[Expr]) -> Result<Value, RuntimeError> {
        let args = self.eval_all(args)?;
        call_function(&self.heap, &mut self.budget, function, &args)
    }

    fn eval_method(
        &mut self,
        receiver: &Expr,
        method: Method,
        args: &[Expr],
    ) -> Result<Value, RuntimeError> {
        let receiver = self.eval(receiver)?;
        let args = self.eval_all(args)?;
        call_method(&mut self.heap, &mut self.budget, method, &receiver, &args)
    }

    fn eval_member(&mut self, object: &Expr, name: &str) -> Result<Value, RuntimeError> {
        let object = self.eval(object)?;
        self.member(&object, name)
    }

    fn read_var(&self, name: &str) -> Result<Value, RuntimeError> {
        self.vars
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::UndefinedVariable(name.to_string()))
    }

    fn eval_all(&mut self, exprs: &[Expr]) -> Result<Vec<Value>, RuntimeError> {
        exprs.iter().map(|e| self.eval(e)).collect()
    }

    fn eval_array(&mut self, items: &[Expr]) -> Result<Value, RuntimeError> {
        let items = self.eval_all(items)?;
        Ok(self.heap.new_array(items))
    }

    fn eval_object(&mut self, fields: &[(String, Expr)]) -> Result<Value, RuntimeError> {
        let mut map = BTreeMap::new();
        for (key, value) in fields {
            let value = self.eval(value)?;
            map.insert(key.clone(), value);
        }
        Ok(self.heap.new_object(map))
    }

    fn eval_neg(&mut self, operand: &Expr) -> Result<Value, RuntimeError> {
        match self.eval(operand)? {
            Value::Int(n) => Ok(n
                .checked_neg()
                .map_or(Value::Float(-(n as f64)), Value::Int)),
            Value::Float(n) => Ok(Value::Float(-n)),
            other => Err(RuntimeError::UnsupportedNegation(other.type_name())),
        }
    }

    fn eval_binary(&mut self, op: BinOp, left: &Expr, right: &Expr) -> Result<Value, RuntimeError> {
        let left = self.eval(left)?;
        let right = self.eval(right)?;
        operators::apply(&mut self.heap, &mut self.budget, op, &left, &right)
    }

    /// `&&` and `||` return one of their operands, evaluating the right one only when needed.
    fn eval_logical(
        &mut self,
        is_and: bool,
        left: &Expr,
        right: &Expr,
    ) -> Result<Value, RuntimeError> {
        let left = self.eval(left)?;
        if left.is_truthy() == is_and {
            self.eval(right)
        } else {
            Ok(left)
        }
    }

    // ---- property access ----

    /// `object.name`. Reading a field of anything that has none (null, a number, `false`
    /// from a failed API call) gives null rather than an error, so one failed call does not
    /// sink the whole batch.
    fn member(&mut self, object: &Value, name: &str) -> Result<Value, RuntimeError> {
        let value = match object {
            Value::Object(r) => field(&self.heap, *r, name),
            Value::Array(r) if name == "length" => length(self.heap.array(*r).len()),
            Value::Str(s) if name == "length" => {
                // Counting characters walks the string.
                self.budget.charge_bulk(s.len())?;
                length(s.chars().count())
            }
            _ => Value::Null,
        };
        Ok(value)
    }

    fn eval_index(&mut self, object: &Expr, key: &Expr) -> Result<Value, RuntimeError> {
        let object = self.eval(object)?;
        let key = self.eval(key)?;
        match (&object, array_index(&key)) {
            (Value::Object(r), _) => {
                let name = self.heap.property_key(&key, &mut self.budget)?;
                Ok(field(&self.heap, *r, &name))
            }
            (Value::Array(r), Some(i)) => {
                Ok(self.heap.array(*r).get(i).cloned().unwrap_or(Value::Null))
            }
            (Value::Str(s), Some(i)) => {
                self.budget.charge_bulk(s.len())?;
                Ok(s.chars()
                    .nth(i)
                    .map_or(Value::Null, |c| Value::str(c.encode_utf8(&mut [0; 4]))))
            }
            // `a["length"]`: a string key that is not an index names a property.
            (_, None) => match &key {
                Value::Str(name) => self.member(&object, name),
                _ => Ok(Value::Null),
            },
            _ => Ok(Value::Null),
        }
    }

    /// `collection@.name`: the `name` of every item. An object with an `items` array (how
    /// VK wraps lists such as `friends.get`) is filtered through its items.
    fn eval_pluck(&mut self, object: &Expr, name: &str) -> Result<Value, RuntimeError> {
        let object = self.eval(object)?;
        let items = match object {
            Value::Array(r) => r,
            Value::Object(r) => match self.heap.object(r).get("items") {
                Some(Value::Array(items)) => *items,
                _ => return Ok(Value::Null),
            },
            _ => return Ok(Value::Null),
        };
        let len = self.heap.array(items).len();
        self.budget.charge_bulk(len)?;
        let mut plucked = Vec::with_capacity(len);
        for i in 0..len {
            let item = self
                .heap
                .array(items)
                .get(i)
                .cloned()
                .unwrap_or(Value::Null);
            plucked.push(self.member(&item, name)?);
        }
        Ok(self.heap.new_array(plucked))
    }

    // ---- assignment ----

    fn eval_assign(
        &mut self,
        target: &Target,
        op: Option<BinOp>,
        value: &Expr,
    ) -> Result<Value, RuntimeError> {
        let place = self.resolve(target)?;
        let new = match op {
            None => self.eval(value)?,
            Some(op) => {
                let old = self.read(&place)?;
                let operand = self.eval(value)?;
                operators::apply(&mut self.heap, &mut self.budget, op, &old, &operand)?
            }
        };
        self.write(place, new.clone())?;
        Ok(new)
    }

    fn eval_update(
        &mut self,
        target: &Target,
        delta: i64,
        prefix: bool,
    ) -> Result<Value, RuntimeError> {
        let place = self.resolve(target)?;
        let old = self.read(&place)?;
        if old.as_f64().is_none() {
            return Err(RuntimeError::UnsupportedOperands {
                op: if delta > 0 { "++" } else { "--" },
                left: old.type_name(),
                right: "number",
            });
        }
        let new = operators::apply(
            &mut self.heap,
            &mut self.budget,
            BinOp::Add,
            &old,
            &Value::Int(delta),
        )?;
        self.write(place, new.clone())?;
        Ok(if prefix { new } else { old })
    }

    /// Evaluates the container and key of a target, once, before the value is computed.
    fn resolve(&mut self, target: &Target) -> Result<Place, RuntimeError> {
        match target {
            Target::Var(name) => Ok(Place::Var(name.clone())),
            Target::Member(object, name) => match self.eval(object)? {
                Value::Object(r) => Ok(Place::Field(r, name.clone())),
                other => Err(RuntimeError::NotAssignable(other.type_name())),
            },
            Target::Index(object, key) => {
                let object = self.eval(object)?;
                let key = self.eval(key)?;
                match object {
                    Value::Object(r) => {
                        let name = self.heap.property_key(&key, &mut self.budget)?;
                        Ok(Place::Field(r, name))
                    }
                    Value::Array(r) => match array_index(&key) {
                        Some(i) => Ok(Place::Element(r, i)),
                        None => {
                            let shown = self.heap.to_display_string(&key, &mut self.budget)?;
                            // The key goes into a VK error message: keep it short.
                            Err(RuntimeError::InvalidIndex(shown.chars().take(40).collect()))
                        }
                    },
                    other => Err(RuntimeError::NotAssignable(other.type_name())),
                }
            }
        }
    }

    fn read(&self, place: &Place) -> Result<Value, RuntimeError> {
        match place {
            Place::Var(name) => self.read_var(name),
            Place::Field(r, key) => Ok(field(&self.heap, *r, key)),
            Place::Element(r, i) => Ok(self.heap.array(*r).get(*i).cloned().unwrap_or(Value::Null)),
        }
    }

    fn write(&mut self, place: Place, value: Value) -> Result<(), RuntimeError> {
        match place {
            Place::Var(name) => {
                // Assigning an undeclared name declares it, as sloppy-mode JavaScript does.
                self.vars.insert(name, value);
            }
            Place::Field(r, key) => {
                self.heap.object_mut(r).insert(key, value);
            }
            Place::Element(r, i) => {
                let len = self.heap.array(r).len();
                if i < len {
                    if let Some(slot) = self.heap.array_mut(r).get_mut(i) {
                        *slot = value;
                    }
                } else {
                    // Writing past the end grows the array, filling the gap with nulls.
                    let gap = i - len;
                    if gap > MAX_INDEX_GAP {
                        return Err(RuntimeError::InvalidIndex(i.to_string()));
                    }
                    self.budget.charge_bulk(gap)?;
                    let items = self.heap.array_mut(r);
                    items.resize(i, Value::Null);
                    items.push(value);
                }
            }
        }
        Ok(())
    }

    // ---- API calls ----

    /// `API.section.method(params)`: a failed call is `false` plus an `execute_errors`
    /// entry; the call past the limit ends the run.
    fn eval_api(&mut self, method: &str, params: Option<&Expr>) -> Result<Value, RuntimeError> {
        let params = match params {
            None => Map::new(),
            Some(expr) => match self.eval(expr)? {
                Value::Object(r) => self.heap.object_to_json(r)?,
                _ => return Err(RuntimeError::ApiParamsNotObject(method.to_string())),
            },
        };
        if self.api_calls >= self.max_api_calls {
            return Err(RuntimeError::TooManyApiCalls);
        }
        self.api_calls += 1;
        match self.host.call(method, &params) {
            Ok(response) => Ok(self.heap.load_json(&response)),
            Err(error) => {
                self.execute_errors.push(ExecuteError {
                    method: method.to_string(),
                    error_code: error.error_code,
                    error_msg: error.error_msg,
                });
                Ok(Value::Bool(false))
            }
        }
    }
}

/// A field of an object, null when absent.
fn field(heap: &Heap, r: ObjectRef, name: &str) -> Value {
    heap.object(r).get(name).cloned().unwrap_or(Value::Null)
}

fn length(len: usize) -> Value {
    Value::Int(i64::try_from(len).unwrap_or(i64::MAX))
}

/// The array index a key names: a non-negative integer, an integral float, or a string of
/// decimal digits (`a["2"]` is `a[2]` in JavaScript).
fn array_index(key: &Value) -> Option<usize> {
    match key {
        Value::Int(n) => usize::try_from(*n).ok(),
        Value::Float(n) if n.fract() == 0.0 && *n >= 0.0 && *n < 9.0e15 => Some(*n as usize),
        Value::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_indices() {
        let cases = [
            (Value::Int(3), Some(3)),
            (Value::Int(-1), None),
            (Value::Float(2.0), Some(2)),
            (Value::Float(2.5), None),
            (Value::Float(f64::NAN), None),
            (Value::str("7"), Some(7)),
            (Value::str("-7"), None),
            (Value::str("length"), None),
            (Value::Null, None),
        ];
        for (key, want) in cases {
            assert_eq!(array_index(&key), want, "{key:?}");
        }
    }
}
