//! The syntax tree the parser builds and the interpreter walks.
//!
//! Every expression records its depth (1 for a leaf), so the parser can refuse trees that
//! would make the recursive evaluator overflow the stack, without walking them again.

use std::rc::Rc;

/// A whole program: statements run in order until a `return`.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub body: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `var a = 1, b;` (a declaration without a value sets `null`).
    Var(Vec<(String, Option<Expr>)>),
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    Return(Option<Expr>),
    Block(Vec<Stmt>),
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// Height of this subtree: 1 for a leaf.
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Var(String),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
    /// `a.name`
    Member(Box<Expr>, String),
    /// `a[key]`
    Index(Box<Expr>, Box<Expr>),
    /// `a@.name`: VK's collection filter.
    Pluck(Box<Expr>, String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `cond ? a : b`
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `target = value`, `target += value`, ...; `op` is `None` for plain `=`.
    Assign {
        target: Target,
        op: Option<BinOp>,
        value: Box<Expr>,
    },
    /// `x++`, `--x`, ...
    Update {
        target: Target,
        delta: i64,
        prefix: bool,
    },
    /// `parseInt(s)` and the other global functions.
    Call(Function, Vec<Expr>),
    /// `receiver.method(args)` for the built-in methods.
    Method(Box<Expr>, Method, Vec<Expr>),
    /// `API.section.method({...})`; `method` is "section.method".
    Api {
        method: String,
        params: Option<Box<Expr>>,
    },
}

/// What an assignment writes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Var(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
        }
    }
}

/// The global functions VKScript offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    ParseInt,
    ParseDouble,
}

impl Function {
    pub fn from_name(name: &str) -> Option<Function> {
        match name {
            "parseInt" => Some(Function::ParseInt),
            // parseFloat is the JavaScript name clients may reach for.
            "parseDouble" | "parseFloat" => Some(Function::ParseDouble),
            _ => None,
        }
    }
}

/// The built-in methods of arrays and strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Push,
    Pop,
    Shift,
    Unshift,
    Slice,
    Splice,
    IndexOf,
    Split,
    Substr,
    Join,
}

impl Method {
    pub fn from_name(name: &str) -> Option<Method> {
        let method = match name {
            "push" => Method::Push,
            "pop" => Method::Pop,
            "shift" => Method::Shift,
            "unshift" => Method::Unshift,
            "slice" => Method::Slice,
            "splice" => Method::Splice,
            "indexOf" => Method::IndexOf,
            "split" => Method::Split,
            "substr" => Method::Substr,
            "join" => Method::Join,
            _ => return None,
        };
        Some(method)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Push => "push",
            Method::Pop => "pop",
            Method::Shift => "shift",
            Method::Unshift => "unshift",
            Method::Slice => "slice",
            Method::Splice => "splice",
            Method::IndexOf => "indexOf",
            Method::Split => "split",
            Method::Substr => "substr",
            Method::Join => "join",
        }
    }
}
