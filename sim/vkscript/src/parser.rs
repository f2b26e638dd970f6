//! Builds the syntax tree from tokens: statements by recursive descent, expressions by
//! precedence climbing.
//!
//! The parser is where every compile error (VK code 12) is decided, including the depth cap:
//! it refuses code whose nesting would make the recursive parser or evaluator run out of
//! stack, so nothing later has to guard against deep trees. Semicolons follow a simplified
//! form of JavaScript's insertion rule: a statement also ends before `}`, at the end of the
//! code, or at a line break.

use crate::ast::{BinOp, Expr, ExprKind, Function, Method, Program, Stmt, Target};
use crate::error::ScriptError;
use crate::lexer::{tokenize, Punct, Tok, Token};

/// Tallest expression tree accepted (long operator chains such as `1 + 1 + ...`, runs of
/// prefix operators, member chains). The evaluator recurses once or twice per level.
pub const MAX_DEPTH: usize = 200;

/// Deepest recursion of the parser itself: parentheses, brackets, braces, argument lists
/// and nested statements together. Lower than `MAX_DEPTH` because each level costs the
/// parser several frames: measured in a debug build, the deepest accepted programs parse
/// and run in about 768 KiB of stack, within half of a tokio worker's 2 MiB (release
/// builds need far less). Real programs nest a handful of levels.
pub const MAX_NESTING: usize = 100;

/// Words JavaScript reserves that VKScript does not support; naming them gives a clear
/// compile error instead of "variable not defined" at run time.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "for", "do", "break", "continue", "function", "switch", "case", "default", "new", "this",
    "delete", "typeof", "let", "const", "in", "try", "catch", "throw",
];

/// Parses a whole program.
pub fn parse(code: &str) -> Result<Program, ScriptError> {
    let tokens = tokenize(code)?;
    let last_line = tokens.last().map_or(1, |t| t.line);
    let mut parser = Parser {
        tokens,
        pos: 0,
        nesting: 0,
        prev_line: 1,
        eof: Token {
            tok: Tok::Eof,
            line: last_line,
        },
    };
    let mut body = Vec::new();
    while parser.peek() != &Tok::Eof {
        body.push(parser.statement()?);
    }
    Ok(Program { body })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Current recursion depth of the parser itself.
    nesting: usize,
    /// Line of the last consumed token, for semicolon insertion.
    prev_line: usize,
    /// Returned by `peek` past the end, so lookahead never indexes out of bounds.
    eof: Token,
}

fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "var"
            | "if"
            | "else"
            | "while"
            | "return"
            | "true"
            | "false"
            | "null"
            | "undefined"
            | "API"
    ) || UNSUPPORTED_KEYWORDS.contains(&name)
}

impl Parser {
    fn token_at(&self, offset: usize) -> &Token {
        self.tokens.get(self.pos + offset).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &Tok {
        &self.token_at(0).tok
    }

    fn line(&self) -> usize {
        self.token_at(0).line
    }

    fn advance(&mut self) -> Tok {
        let token = self.token_at(0).clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
            self.prev_line = token.line;
        }
        token.tok
    }

    fn is_punct(&self, p: Punct) -> bool {
        self.peek() == &Tok::Punct(p)
    }

    fn eat(&mut self, p: Punct) -> bool {
        let found = self.is_punct(p);
        if found {
            self.advance();
        }
        found
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(name) if name == word)
    }

    fn error(&self, message: impl Into<String>) -> ScriptError {
        ScriptError::Compile {
            line: self.line(),
            message: message.into(),
        }
    }

    fn expected(&self, what: &str) -> ScriptError {
        self.error(format!("{what} expected, {} found", self.peek()))
    }

    fn expect(&mut self, p: Punct) -> Result<(), ScriptError> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{}'", p.as_str())))
        }
    }

    fn identifier(&mut self) -> Result<String, ScriptError> {
        match self.peek() {
            Tok::Ident(name) if !is_keyword(name) => {
                let name = name.clone();
                self.advance();
                Ok(name)
            }
            _ => Err(self.expected("identifier")),
        }
    }

    /// A property name after `.` or `@.`: keywords are fine there, as in JavaScript.
    fn property_name(&mut self) -> Result<String, ScriptError> {
        match self.advance() {
            Tok::Ident(name) => Ok(name),
            _ => Err(self.error("property name expected")),
        }
    }

    /// Ends a simple statement: `;`, or an inserted one before `}`, at the end, or at a
    /// line break.
    fn end_statement(&mut self) -> Result<(), ScriptError> {
        if self.eat(Punct::Semi)
            || self.is_punct(Punct::RBrace)
            || self.peek() == &Tok::Eof
            || self.line() > self.prev_line
        {
            Ok(())
        } else {
            Err(self.expected("';'"))
        }
    }

    /// Builds an expression node over children of the given heights.
    fn node(&self, kind: ExprKind, children: &[usize]) -> Result<Expr, ScriptError> {
        let depth = children.iter().copied().max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            return Err(self.error("expression is nested too deeply"));
        }
        Ok(Expr { kind, depth })
    }

    // ---- statements ----

    fn statement(&mut self) -> Result<Stmt, ScriptError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.error("code is nested too deeply"));
        }
        self.nesting += 1;
        let result = self.statement_inner();
        self.nesting -= 1;
        result
    }

    /// Dispatches on the first token; each statement kind has its own function so that
    /// this frame, repeated once per level of nested blocks, stays small.
    fn statement_inner(&mut self) -> Result<Stmt, ScriptError> {
        match self.peek() {
            Tok::Punct(Punct::LBrace) => self.block(),
            Tok::Punct(Punct::Semi) => {
                self.advance();
                Ok(Stmt::Empty)
            }
            Tok::Ident(word) => match word.as_str() {
                "var" => self.var_statement(),
                "if" => self.if_statement(),
                "while" => self.while_statement(),
                "return" => self.return_statement(),
                "else" => Err(self.error("'else' without 'if'")),
                w if UNSUPPORTED_KEYWORDS.contains(&w) => {
                    Err(self.error(format!("'{w}' is not supported")))
                }
                _ => self.expression_statement(),
            },
            _ => self.expression_statement(),
        }
    }

    fn block(&mut self) -> Result<Stmt, ScriptError> {
        self.advance();
        let mut body = Vec::new();
        while !self.eat(Punct::RBrace) {
            if self.peek() == &Tok::Eof {
                return Err(self.expected("'}'"));
            }
            body.push(self.statement()?);
        }
        Ok(Stmt::Block(body))
    }

    fn var_statement(&mut self) -> Result<Stmt, ScriptError> {
        self.advance();
        let mut decls = Vec::new();
        loop {
            let name = self.identifier()?;
            let value = if self.eat(Punct::Assign) {
                Some(self.expression()?)
            } else {
                None
            };
            decls.push((name, value));
            if !self.eat(Punct::Comma) {
                break;
            }
        }
        self.end_statement()?;
        Ok(Stmt::Var(decls))
    }

    fn if_statement(&mut self) -> Result<Stmt, ScriptError> {
        self.advance();
        let cond = self.condition()?;
        let then = Box::new(self.statement()?);
        let otherwise = if self.is_word("else") {
            self.advance();
            Some(Box::new(self.statement()?))
        } else {
            None
        };
        Ok(Stmt::If {
            cond,
            then,
            otherwise,
        })
    }

    fn while_statement(&mut self) -> Result<Stmt, ScriptError> {
        self.advance();
        let cond = self.condition()?;
        let body = Box::new(self.statement()?);
        Ok(Stmt::While { cond, body })
    }

    fn return_statement(&mut self) -> Result<Stmt, ScriptError> {
        self.advance();
        let value = if self.is_punct(Punct::Semi)
            || self.is_punct(Punct::RBrace)
            || self.peek() == &Tok::Eof
        {
            None
        } else {
            Some(self.expression()?)
        };
        self.end_statement()?;
        Ok(Stmt::Return(value))
    }

    fn expression_statement(&mut self) -> Result<Stmt, ScriptError> {
        let expr = self.expression()?;
        self.end_statement()?;
        Ok(Stmt::Expr(expr))
    }

    /// `( expr )` after `if` and `while`.
    fn condition(&mut self) -> Result<Expr, ScriptError> {
        self.expect(Punct::LParen)?;
        let cond = self.expression()?;
        self.expect(Punct::RParen)?;
        Ok(cond)
    }

    // ---- expressions ----

    // Expressions recurse once per level of parentheses, so the functions on that path
    // (expression, binary, unary, postfix, primary) keep their
    // own frames small and hand node building to helpers that are not on the recursion
    // path: debug builds give every temporary its own stack slot.

    /// A full expression: assignment, conditional or operator chain. One function handles
    /// all three so that each level of parentheses costs one frame less.
    fn expression(&mut self) -> Result<Expr, ScriptError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.error("code is nested too deeply"));
        }
        self.nesting += 1;
        let result = self.binary(0).and_then(|lhs| {
            if self.is_punct(Punct::Question) {
                self.finish_conditional(lhs)
            } else if let Some(op) = self.assignment_operator() {
                self.finish_assignment(lhs, op)
            } else {
                Ok(lhs)
            }
        });
        self.nesting -= 1;
        result
    }

    /// `Some(None)` for `=`, `Some(Some(op))` for `op=`, `None` when no assignment follows.
    fn assignment_operator(&self) -> Option<Option<BinOp>> {
        let op = match self.peek() {
            Tok::Punct(Punct::Assign) => None,
            Tok::Punct(Punct::PlusAssign) => Some(BinOp::Add),
            Tok::Punct(Punct::MinusAssign) => Some(BinOp::Sub),
            Tok::Punct(Punct::StarAssign) => Some(BinOp::Mul),
            Tok::Punct(Punct::SlashAssign) => Some(BinOp::Div),
            Tok::Punct(Punct::PercentAssign) => Some(BinOp::Rem),
            _ => return None,
        };
        Some(op)
    }

    fn finish_assignment(&mut self, lhs: Expr, op: Option<BinOp>) -> Result<Expr, ScriptError> {
        let (target, target_depth) = self.target(lhs)?;
        self.advance();
        let value = self.expression()?;
        let value_depth = value.depth;
        self.node(
            ExprKind::Assign {
                target,
                op,
                value: Box::new(value),
            },
            &[target_depth, value_depth],
        )
    }

    /// Turns a parsed expression into an assignment target, with the height of its parts.
    fn target(&self, expr: Expr) -> Result<(Target, usize), ScriptError> {
        let depth = expr.depth;
        let target = match expr.kind {
            ExprKind::Var(name) => Target::Var(name),
            ExprKind::Member(object, name) => Target::Member(object, name),
            ExprKind::Index(object, key) => Target::Index(object, key),
            _ => return Err(self.error("invalid assignment target")),
        };
        Ok((target, depth))
    }

    fn finish_conditional(&mut self, cond: Expr) -> Result<Expr, ScriptError> {
        self.advance();
        let then = self.expression()?;
        self.expect(Punct::Colon)?;
        let otherwise = self.expression()?;
        let depths = [cond.depth, then.depth, otherwise.depth];
        self.node(
            ExprKind::Conditional(Box::new(cond), Box::new(then), Box::new(otherwise)),
            &depths,
        )
    }

    /// Precedence climbing over the binary operators; all are left-associative.
    fn binary(&mut self, min_precedence: u8) -> Result<Expr, ScriptError> {
        let mut lhs = self.unary()?;
        while let Some((p, precedence)) = self.binary_operator(min_precedence) {
            self.advance();
            let rhs = self.binary(precedence + 1)?;
            lhs = self.combine(p, lhs, rhs)?;
        }
        Ok(lhs)
    }

    /// The next token as a binary operator binding at least as tight as `min_precedence`.
    fn binary_operator(&self, min_precedence: u8) -> Option<(Punct, u8)> {
        let Tok::Punct(p) = self.peek() else {
            return None;
        };
        let precedence = precedence(*p)?;
        (precedence >= min_precedence).then_some((*p, precedence))
    }

    fn combine(&self, p: Punct, lhs: Expr, rhs: Expr) -> Result<Expr, ScriptError> {
        let depths = [lhs.depth, rhs.depth];
        let (lhs, rhs) = (Box::new(lhs), Box::new(rhs));
        let kind = match p {
            Punct::Or => ExprKind::Or(lhs, rhs),
            Punct::And => ExprKind::And(lhs, rhs),
            other => ExprKind::Binary(binary_op(other), lhs, rhs),
        };
        self.node(kind, &depths)
    }

    /// Prefix operators are collected in a loop and applied innermost first, so a long run
    /// of them (`!!!!x`) costs no recursion; the tree height still counts each one.
    fn unary(&mut self) -> Result<Expr, ScriptError> {
        let prefixes = self.prefixes()?;
        let operand = self.postfix()?;
        self.apply_prefixes(prefixes, operand)
    }

    fn prefixes(&mut self) -> Result<Vec<Punct>, ScriptError> {
        let mut prefixes = Vec::new();
        while let Tok::Punct(
            p @ (Punct::Not | Punct::Minus | Punct::PlusPlus | Punct::MinusMinus),
        ) = self.peek()
        {
            prefixes.push(*p);
            self.advance();
            if prefixes.len() > MAX_DEPTH {
                return Err(self.error("expression is nested too deeply"));
            }
        }
        Ok(prefixes)
    }

    fn apply_prefixes(&self, prefixes: Vec<Punct>, mut expr: Expr) -> Result<Expr, ScriptError> {
        for p in prefixes.into_iter().rev() {
            let depth = expr.depth;
            expr = match p {
                Punct::Not => self.node(ExprKind::Not(Box::new(expr)), &[depth])?,
                Punct::Minus => match expr.kind {
                    // Folding keeps `-5` a plain literal, one node instead of two.
                    ExprKind::Int(n) if n != i64::MIN => self.node(ExprKind::Int(-n), &[])?,
                    ExprKind::Float(n) => self.node(ExprKind::Float(-n), &[])?,
                    kind => self.node(ExprKind::Neg(Box::new(Expr { kind, depth })), &[depth])?,
                },
                _ => {
                    let delta = if p == Punct::PlusPlus { 1 } else { -1 };
                    self.update(expr, delta, true)?
                }
            };
        }
        Ok(expr)
    }

    fn update(&self, operand: Expr, delta: i64, prefix: bool) -> Result<Expr, ScriptError> {
        let (target, depth) = self.target(operand)?;
        self.node(
            ExprKind::Update {
                target,
                delta,
                prefix,
            },
            &[depth],
        )
    }

    fn postfix(&mut self) -> Result<Expr, ScriptError> {
        let mut expr = self.primary()?;
        while self.at_postfix() {
            expr = self.postfix_step(expr)?;
        }
        Ok(expr)
    }

    fn at_postfix(&self) -> bool {
        match self.peek() {
            Tok::Punct(Punct::Dot | Punct::LBracket | Punct::At | Punct::LParen) => true,
            // As in JavaScript, `++` on the next line belongs to the next statement.
            Tok::Punct(Punct::PlusPlus | Punct::MinusMinus) => self.line() == self.prev_line,
            _ => false,
        }
    }

    /// One `.name`, `.method(...)`, `[key]`, `@.name` or postfix `++`/`--` after `expr`.
    fn postfix_step(&mut self, expr: Expr) -> Result<Expr, ScriptError> {
        let depth = expr.depth;
        match self.advance() {
            Tok::Punct(Punct::Dot) => {
                let name = self.property_name()?;
                if !self.is_punct(Punct::LParen) {
                    return self.node(ExprKind::Member(Box::new(expr), name), &[depth]);
                }
                let Some(method) = Method::from_name(&name) else {
                    return Err(self.error(format!("unknown method '{name}'")));
                };
                let args = self.arguments()?;
                let mut depths: Vec<usize> = args.iter().map(|a| a.depth).collect();
                depths.push(depth);
                self.node(ExprKind::Method(Box::new(expr), method, args), &depths)
            }
            Tok::Punct(Punct::LBracket) => {
                let key = self.expression()?;
                self.expect(Punct::RBracket)?;
                let depths = [depth, key.depth];
                self.node(ExprKind::Index(Box::new(expr), Box::new(key)), &depths)
            }
            Tok::Punct(Punct::At) => {
                self.expect(Punct::Dot)?;
                let name = self.property_name()?;
                self.node(ExprKind::Pluck(Box::new(expr), name), &[depth])
            }
            Tok::Punct(Punct::PlusPlus) => self.update(expr, 1, false),
            Tok::Punct(Punct::MinusMinus) => self.update(expr, -1, false),
            _ => Err(ScriptError::Compile {
                line: self.prev_line,
                message: "only built-in functions and methods can be called".into(),
            }),
        }
    }

    fn primary(&mut self) -> Result<Expr, ScriptError> {
        if self.eat(Punct::LParen) {
            let expr = self.expression()?;
            self.expect(Punct::RParen)?;
            Ok(expr)
        } else {
            self.operand()
        }
    }

    /// Everything `primary` accepts except parentheses.
    fn operand(&mut self) -> Result<Expr, ScriptError> {
        match self.advance() {
            Tok::Int(n) => self.node(ExprKind::Int(n), &[]),
            Tok::Float(n) => self.node(ExprKind::Float(n), &[]),
            Tok::Str(s) => self.node(ExprKind::Str(s), &[]),
            Tok::Punct(Punct::LBracket) => self.array_literal(),
            Tok::Punct(Punct::LBrace) => self.object_literal(),
            Tok::Ident(name) => self.word(name),
            other => Err(ScriptError::Compile {
                line: self.prev_line,
                message: format!("unexpected {other}"),
            }),
        }
    }

    /// An identifier in expression position: a literal word, `API`, a function or a variable.
    fn word(&mut self, name: String) -> Result<Expr, ScriptError> {
        match name.as_str() {
            "true" => self.node(ExprKind::Bool(true), &[]),
            "false" => self.node(ExprKind::Bool(false), &[]),
            // VKScript has no undefined value of its own worth keeping apart from null.
            "null" | "undefined" => self.node(ExprKind::Null, &[]),
            "API" => self.api_call(),
            w if is_keyword(w) => Err(ScriptError::Compile {
                line: self.prev_line,
                message: format!("unexpected '{w}'"),
            }),
            _ if self.is_punct(Punct::LParen) => {
                let Some(function) = Function::from_name(&name) else {
                    return Err(self.error(format!("unknown function '{name}'")));
                };
                let args = self.arguments()?;
                let depths: Vec<usize> = args.iter().map(|a| a.depth).collect();
                self.node(ExprKind::Call(function, args), &depths)
            }
            _ => self.node(ExprKind::Var(name), &[]),
        }
    }

    /// `API.section.method(params?)`, with `API` already consumed.
    fn api_call(&mut self) -> Result<Expr, ScriptError> {
        self.expect(Punct::Dot)?;
        let section = self.property_name()?;
        self.expect(Punct::Dot)?;
        let name = self.property_name()?;
        if !self.is_punct(Punct::LParen) {
            return Err(self.expected("'('"));
        }
        let mut args = self.arguments()?;
        if args.len() > 1 {
            return Err(self.error("API methods take one object of parameters"));
        }
        let params = args.pop();
        let depths: Vec<usize> = params.iter().map(|p| p.depth).collect();
        self.node(
            ExprKind::Api {
                method: format!("{section}.{name}"),
                params: params.map(Box::new),
            },
            &depths,
        )
    }

    /// `( a, b, ... )`, a trailing comma allowed.
    fn arguments(&mut self) -> Result<Vec<Expr>, ScriptError> {
        self.expect(Punct::LParen)?;
        let mut args = Vec::new();
        while !self.eat(Punct::RParen) {
            args.push(self.expression()?);
            if !self.eat(Punct::Comma) {
                self.expect(Punct::RParen)?;
                break;
            }
        }
        Ok(args)
    }

    fn array_literal(&mut self) -> Result<Expr, ScriptError> {
        let mut items = Vec::new();
        while !self.eat(Punct::RBracket) {
            items.push(self.expression()?);
            if !self.eat(Punct::Comma) {
                self.expect(Punct::RBracket)?;
                break;
            }
        }
        let depths: Vec<usize> = items.iter().map(|i| i.depth).collect();
        self.node(ExprKind::Array(items), &depths)
    }

    fn object_literal(&mut self) -> Result<Expr, ScriptError> {
        let mut fields = Vec::new();
        while !self.eat(Punct::RBrace) {
            let key = match self.advance() {
                Tok::Ident(name) => name,
                Tok::Str(s) => s.to_string(),
                Tok::Int(n) => n.to_string(),
                _ => {
                    return Err(ScriptError::Compile {
                        line: self.prev_line,
                        message: "property name expected".into(),
                    })
                }
            };
            self.expect(Punct::Colon)?;
            fields.push((key, self.expression()?));
            if !self.eat(Punct::Comma) {
                self.expect(Punct::RBrace)?;
                break;
            }
        }
        let depths: Vec<usize> = fields.iter().map(|(_, v)| v.depth).collect();
        self.node(ExprKind::Object(fields), &depths)
    }
}

/// Binding strength of binary operators, loosest first; `None` for anything else.
fn precedence(p: Punct) -> Option<u8> {
    let precedence = match p {
        Punct::Or => 0,
        Punct::And => 1,
        Punct::Eq | Punct::Ne => 2,
        Punct::Lt | Punct::Gt | Punct::Le | Punct::Ge => 3,
        Punct::Plus | Punct::Minus => 4,
        Punct::Star | Punct::Slash | Punct::Percent => 5,
        _ => return None,
    };
    Some(precedence)
}

/// The operator for a punctuation that `precedence` accepted (other than `&&`/`||`).
fn binary_op(p: Punct) -> BinOp {
    match p {
        Punct::Plus => BinOp::Add,
        Punct::Minus => BinOp::Sub,
        Punct::Star => BinOp::Mul,
        Punct::Slash => BinOp::Div,
        Punct::Percent => BinOp::Rem,
        Punct::Eq => BinOp::Eq,
        Punct::Ne => BinOp::Ne,
        Punct::Lt => BinOp::Lt,
        Punct::Gt => BinOp::Gt,
        Punct::Le => BinOp::Le,
        _ => BinOp::Ge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr_of(code: &str) -> ExprKind {
        match parse(code).unwrap().body.into_iter().next() {
            Some(Stmt::Expr(e)) => e.kind,
            other => panic!("not an expression statement: {other:?}"),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        // 1 - 2 - 3 * 4 parses as (1 - 2) - (3 * 4)
        let ExprKind::Binary(BinOp::Sub, lhs, rhs) = expr_of("1 - 2 - 3 * 4;") else {
            panic!("top is not '-'");
        };
        assert!(matches!(lhs.kind, ExprKind::Binary(BinOp::Sub, _, _)));
        assert!(matches!(rhs.kind, ExprKind::Binary(BinOp::Mul, _, _)));
        // a || b && c parses as a || (b && c)
        let ExprKind::Or(_, rhs) = expr_of("a || b && c") else {
            panic!("top is not '||'");
        };
        assert!(matches!(rhs.kind, ExprKind::And(_, _)));
    }

    #[test]
    fn api_calls_and_plucks() {
        let ExprKind::Pluck(inner, field) = expr_of("API.users.get({user_ids: 1})@.id") else {
            panic!("not a pluck");
        };
        assert_eq!(field, "id");
        assert!(
            matches!(inner.kind, ExprKind::Api { ref method, params: Some(_) } if method == "users.get")
        );
        assert!(matches!(
            expr_of("API.utils.getServerTime()"),
            ExprKind::Api { params: None, .. }
        ));
    }

    #[test]
    fn semicolons_may_be_left_out_at_line_ends() {
        let program = parse("var a = 1\nvar b = 2\nreturn a + b").unwrap();
        assert_eq!(program.body.len(), 3);
        assert!(parse("var a = 1 var b = 2;").is_err());
    }

    #[test]
    fn compile_errors() {
        let cases = [
            "var = 1;",
            "return 1 +;",
            "if (a { }",
            "while (1)",
            "a.foo(1);",
            "foo(1);",
            "API.users(1);",
            "API.users.get(1, 2);",
            "1 = 2;",
            "(a + b)++;",
            "for (;;) {}",
            "{ var a = 1;",
            "a(1);",
            "else {}",
            "var if = 1;",
            "{a: }",
            "x = {1.5: 2};",
        ];
        for code in cases {
            let err = parse(code).unwrap_err();
            assert_eq!(err.error_code(), 12, "{code}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let deep = |open: &str, close: &str, n: usize| {
            format!("return {}1{};", open.repeat(n), close.repeat(n))
        };
        assert!(parse(&deep("(", ")", MAX_NESTING - 5)).is_ok());
        assert_eq!(
            parse(&deep("(", ")", MAX_NESTING + 5))
                .unwrap_err()
                .error_code(),
            12
        );
        for (open, close) in [("(", ")"), ("[", "]"), ("-", ""), ("!", ""), ("{a:", "}")] {
            let err = parse(&deep(open, close, 100_000)).unwrap_err();
            assert_eq!(err.error_code(), 12, "{open}");
        }
        let long_chain = format!("return 1{};", "+1".repeat(100_000));
        assert_eq!(parse(&long_chain).unwrap_err().error_code(), 12);
        let member_chain = format!("return a{};", ".b".repeat(100_000));
        assert_eq!(parse(&member_chain).unwrap_err().error_code(), 12);
        let blocks = format!("{}{}", "if (1) {".repeat(100_000), "}".repeat(100_000));
        assert_eq!(parse(&blocks).unwrap_err().error_code(), 12);
    }
}
