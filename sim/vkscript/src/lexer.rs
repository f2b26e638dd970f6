//! Turns VKScript source text into tokens, each tagged with its line for error messages.
//!
//! The lexer knows JavaScript's lexical rules only as far as VKScript uses them: numbers,
//! quoted strings with escapes, identifiers, punctuation and both comment forms. It reads the
//! source through `Peekable<Chars>`, so no input can index past the end.

use std::iter::Peekable;
use std::rc::Rc;
use std::str::Chars;

use crate::error::ScriptError;

/// One lexical unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Ident(String),
    Punct(Punct),
    Eof,
}

/// Operators and separators. `===`/`!==` lex as `==`/`!=`: VKScript has no loose equality
/// to tell them apart from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punct {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Semi,
    Comma,
    Dot,
    At,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Assign,
    PlusAssign,
    MinusAssign,
    StarAssign,
    SlashAssign,
    PercentAssign,
    PlusPlus,
    MinusMinus,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    And,
    Or,
    Not,
}

impl Punct {
    /// The source spelling, for "expected X, found Y" messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Punct::LBrace => "{",
            Punct::RBrace => "}",
            Punct::LParen => "(",
            Punct::RParen => ")",
            Punct::LBracket => "[",
            Punct::RBracket => "]",
            Punct::Semi => ";",
            Punct::Comma => ",",
            Punct::Dot => ".",
            Punct::At => "@",
            Punct::Colon => ":",
            Punct::Question => "?",
            Punct::Plus => "+",
            Punct::Minus => "-",
            Punct::Star => "*",
            Punct::Slash => "/",
            Punct::Percent => "%",
            Punct::Assign => "=",
            Punct::PlusAssign => "+=",
            Punct::MinusAssign => "-=",
            Punct::StarAssign => "*=",
            Punct::SlashAssign => "/=",
            Punct::PercentAssign => "%=",
            Punct::PlusPlus => "++",
            Punct::MinusMinus => "--",
            Punct::Eq => "==",
            Punct::Ne => "!=",
            Punct::Lt => "<",
            Punct::Gt => ">",
            Punct::Le => "<=",
            Punct::Ge => ">=",
            Punct::And => "&&",
            Punct::Or => "||",
            Punct::Not => "!",
        }
    }
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Int(n) => write!(f, "{n}"),
            Tok::Float(n) => write!(f, "{n}"),
            Tok::Str(s) => write!(f, "'{s}'"),
            Tok::Ident(name) => write!(f, "'{name}'"),
            Tok::Punct(p) => write!(f, "'{}'", p.as_str()),
            Tok::Eof => f.write_str("end of code"),
        }
    }
}

/// A token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

/// Splits `code` into tokens, ending with one `Tok::Eof`.
pub fn tokenize(code: &str) -> Result<Vec<Token>, ScriptError> {
    let mut lexer = Lexer {
        chars: code.chars().peekable(),
        line: 1,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blank()?;
        let line = lexer.line;
        let Some(c) = lexer.chars.next() else {
            tokens.push(Token {
                tok: Tok::Eof,
                line,
            });
            return Ok(tokens);
        };
        let tok = lexer.token(c)?;
        tokens.push(Token { tok, line });
    }
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
}

impl Lexer<'_> {
    fn error(&self, message: impl Into<String>) -> ScriptError {
        ScriptError::Compile {
            line: self.line,
            message: message.into(),
        }
    }

    fn eat(&mut self, want: char) -> bool {
        if self.chars.peek() == Some(&want) {
            self.chars.next();
            true
        } else {
            false
        }
    }

    /// Skips whitespace and comments, counting lines.
    fn skip_blank(&mut self) -> Result<(), ScriptError> {
        while let Some(&c) = self.chars.peek() {
            if c == '\n' {
                self.line += 1;
                self.chars.next();
            } else if c.is_whitespace() {
                self.chars.next();
            } else if c == '/' {
                // Only a second '/' or '*' makes a comment; a lone '/' is division.
                let mut ahead = self.chars.clone();
                ahead.next();
                match ahead.peek() {
                    Some('/') => {
                        for c in self.chars.by_ref() {
                            if c == '\n' {
                                self.line += 1;
                                break;
                            }
                        }
                    }
                    Some('*') => self.skip_block_comment()?,
                    _ => return Ok(()),
                }
            } else {
                return Ok(());
            }
        }
        Ok(())
    }

    fn skip_block_comment(&mut self) -> Result<(), ScriptError> {
        let start_line = self.line;
        self.chars.next();
        self.chars.next();
        let mut star = false;
        for c in self.chars.by_ref() {
            if c == '\n' {
                self.line += 1;
            }
            if star && c == '/' {
                return Ok(());
            }
            star = c == '*';
        }
        Err(ScriptError::Compile {
            line: start_line,
            message: "unterminated comment".into(),
        })
    }

    fn token(&mut self, c: char) -> Result<Tok, ScriptError> {
        if c.is_ascii_digit() {
            return self.number(c);
        }
        if c == '.' && self.chars.peek().is_some_and(char::is_ascii_digit) {
            return self.number(c);
        }
        if c == '"' || c == '\'' {
            return self.string(c);
        }
        if is_ident_start(c) {
            let mut name = String::from(c);
            while let Some(&c) = self.chars.peek() {
                if !is_ident_char(c) {
                    break;
                }
                name.push(c);
                self.chars.next();
            }
            return Ok(Tok::Ident(name));
        }
        self.punct(c).map(Tok::Punct)
    }

    fn punct(&mut self, c: char) -> Result<Punct, ScriptError> {
        let p = match c {
            '{' => Punct::LBrace,
            '}' => Punct::RBrace,
            '(' => Punct::LParen,
            ')' => Punct::RParen,
            '[' => Punct::LBracket,
            ']' => Punct::RBracket,
            ';' => Punct::Semi,
            ',' => Punct::Comma,
            '.' => Punct::Dot,
            '@' => Punct::At,
            ':' => Punct::Colon,
            '?' => Punct::Question,
            '+' if self.eat('+') => Punct::PlusPlus,
            '+' if self.eat('=') => Punct::PlusAssign,
            '+' => Punct::Plus,
            '-' if self.eat('-') => Punct::MinusMinus,
            '-' if self.eat('=') => Punct::MinusAssign,
            '-' => Punct::Minus,
            '*' if self.eat('=') => Punct::StarAssign,
            '*' => Punct::Star,
            '/' if self.eat('=') => Punct::SlashAssign,
            '/' => Punct::Slash,
            '%' if self.eat('=') => Punct::PercentAssign,
            '%' => Punct::Percent,
            '=' if self.eat('=') => {
                self.eat('=');
                Punct::Eq
            }
            '=' => Punct::Assign,
            '!' if self.eat('=') => {
                self.eat('=');
                Punct::Ne
            }
            '!' => Punct::Not,
            '<' if self.eat('=') => Punct::Le,
            '<' => Punct::Lt,
            '>' if self.eat('=') => Punct::Ge,
            '>' => Punct::Gt,
            '&' if self.eat('&') => Punct::And,
            '|' if self.eat('|') => Punct::Or,
            other => return Err(self.error(format!("unexpected character '{other}'"))),
        };
        Ok(p)
    }

    fn take_digits(&mut self, text: &mut String, radix: u32) {
        while let Some(&c) = self.chars.peek() {
            if !c.is_digit(radix) {
                break;
            }
            text.push(c);
            self.chars.next();
        }
    }

    /// Integers that fit in i64 stay integers, so ids written in code stay integral in the
    /// JSON response; everything else is an f64, as in JavaScript.
    fn number(&mut self, first: char) -> Result<Tok, ScriptError> {
        if first == '0' && matches!(self.chars.peek(), Some('x' | 'X')) {
            self.chars.next();
            let mut digits = String::new();
            self.take_digits(&mut digits, 16);
            self.reject_ident_after_number()?;
            return match u128::from_str_radix(&digits, 16) {
                Ok(n) => Ok(i64::try_from(n).map_or(Tok::Float(n as f64), Tok::Int)),
                Err(_) if digits.is_empty() => Err(self.error("invalid hexadecimal number")),
                // Only more than 32 hex digits get here: far past f64's exact range anyway.
                Err(_) => Ok(Tok::Float(f64::INFINITY)),
            };
        }
        let mut text = String::from(first);
        let mut is_float = first == '.';
        self.take_digits(&mut text, 10);
        if !is_float && self.chars.peek() == Some(&'.') {
            let mut ahead = self.chars.clone();
            ahead.next();
            // `1.length` is not a thing, but `1.5` is; a dot without a digit is left for the
            // parser to reject.
            if ahead.peek().is_some_and(char::is_ascii_digit) {
                self.chars.next();
                text.push('.');
                is_float = true;
                self.take_digits(&mut text, 10);
            }
        }
        if matches!(self.chars.peek(), Some('e' | 'E')) {
            let mut ahead = self.chars.clone();
            ahead.next();
            if matches!(ahead.peek(), Some('+' | '-')) {
                ahead.next();
            }
            if ahead.peek().is_some_and(char::is_ascii_digit) {
                is_float = true;
                text.push('e');
                self.chars.next();
                if let Some(&sign @ ('+' | '-')) = self.chars.peek() {
                    text.push(sign);
                    self.chars.next();
                }
                self.take_digits(&mut text, 10);
            }
        }
        self.reject_ident_after_number()?;
        if !is_float {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Tok::Int(n));
            }
        }
        text.parse::<f64>()
            .map(Tok::Float)
            .map_err(|_| self.error(format!("invalid number '{text}'")))
    }

    fn reject_ident_after_number(&mut self) -> Result<(), ScriptError> {
        match self.chars.peek() {
            Some(&c) if is_ident_char(c) => {
                Err(self.error(format!("unexpected character '{c}' after a number")))
            }
            _ => Ok(()),
        }
    }

    fn string(&mut self, quote: char) -> Result<Tok, ScriptError> {
        let mut text = String::new();
        loop {
            let Some(c) = self.chars.next() else {
                return Err(self.error("unterminated string"));
            };
            match c {
                '\n' => return Err(self.error("unterminated string")),
                c if c == quote => return Ok(Tok::Str(text.into())),
                '\\' => self.escape(&mut text)?,
                c => text.push(c),
            }
        }
    }

    fn escape(&mut self, text: &mut String) -> Result<(), ScriptError> {
        let Some(c) = self.chars.next() else {
            return Err(self.error("unterminated string"));
        };
        match c {
            'n' => text.push('\n'),
            't' => text.push('\t'),
            'r' => text.push('\r'),
            'b' => text.push('\u{8}'),
            'f' => text.push('\u{c}'),
            'v' => text.push('\u{b}'),
            '0' => text.push('\0'),
            'x' => text.push(self.hex_escape(2)?),
            'u' => text.push(self.hex_escape(4)?),
            // A backslash before a newline continues the string on the next line, as in JS.
            '\n' => self.line += 1,
            // JS keeps the character itself for any other escape (\' \" \\ \/ ...).
            other => text.push(other),
        }
        Ok(())
    }

    /// Reads `len` hex digits; a lone UTF-16 surrogate becomes U+FFFD because Rust strings
    /// cannot hold it.
    fn hex_escape(&mut self, len: usize) -> Result<char, ScriptError> {
        let mut code = 0u32;
        for _ in 0..len {
            let digit = self
                .chars
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error("invalid escape sequence"))?;
            code = code * 16 + digit;
        }
        Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(code: &str) -> Vec<Tok> {
        tokenize(code).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_keep_integers_integral() {
        let cases: &[(&str, Tok)] = &[
            ("42", Tok::Int(42)),
            ("1.5", Tok::Float(1.5)),
            (".5", Tok::Float(0.5)),
            ("1e3", Tok::Float(1000.0)),
            ("0x1F", Tok::Int(31)),
            ("99999999999999999999", Tok::Float(1e20)),
        ];
        for (code, want) in cases {
            assert_eq!(toks(code), vec![want.clone(), Tok::Eof], "{code}");
        }
    }

    #[test]
    fn strings_unescape() {
        let cases = [
            (r#""a\"b""#, "a\"b"),
            (r"'it\'s'", "it's"),
            (r"'\n\t\\'", "\n\t\\"),
            (r"'\u0041\x42'", "AB"),
            (r"'\uD800'", "\u{FFFD}"),
        ];
        for (code, want) in cases {
            assert_eq!(toks(code), vec![Tok::Str(want.into()), Tok::Eof], "{code}");
        }
    }

    #[test]
    fn operators_take_the_longest_match() {
        use Punct::*;
        let got = toks("a === b !== c += ++ -- -= <= >= && || @.");
        let puncts: Vec<Punct> = got
            .into_iter()
            .filter_map(|t| match t {
                Tok::Punct(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            puncts,
            vec![
                Eq,
                Ne,
                PlusAssign,
                PlusPlus,
                MinusMinus,
                MinusAssign,
                Le,
                Ge,
                And,
                Or,
                At,
                Dot
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_lines_counted() {
        let tokens = tokenize("// one\n/* two\n three */ x / y").unwrap();
        assert_eq!(tokens[0].tok, Tok::Ident("x".into()));
        assert_eq!(tokens[0].line, 3);
        assert_eq!(tokens[1].tok, Tok::Punct(Punct::Slash));
    }

    #[test]
    fn lexical_errors_are_compile_errors() {
        for code in [
            "'abc", "\"a\nb\"", "/* open", "a # b", "3abc", "'\\u12'", "0x",
        ] {
            let err = tokenize(code).unwrap_err();
            assert_eq!(err.error_code(), 12, "{code}");
        }
    }
}
