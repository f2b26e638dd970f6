//! Values that must never be printed: VK tokens, proxy keys, API keys, S3 secrets.
//!
//! A [`Secret`] formats as `***` under both `Debug` and `Display`, so a settings dump, an error
//! chain or a `tracing` field cannot leak it by accident. The only way to read the value is
//! [`Secret::expose`], which is greppable. Logs that need to tell tokens apart use
//! [`Secret::suffix`]: the last four characters, the most the house rules allow.
//!
//! Written by hand rather than with `secrecy`: what is needed is this formatting, `suffix`, a
//! serde impl and equality (settings tests compare them), and `SecretString` offers neither
//! `suffix` nor equality, so a wrapper over it would be this file again plus a dependency.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A string that is never printed whole.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it (an HTTP header, a form field).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `…abcd`: the last four characters, for telling tokens apart in logs.
    pub fn suffix(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        // Short values would be printed almost whole by a 4-character suffix: show nothing.
        if chars.len() < 12 {
            return "…".to_owned();
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("vk1.a.very-secret-token-value");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.suffix(), "…alue");
        assert_eq!(s.expose(), "vk1.a.very-secret-token-value");
    }

    #[test]
    fn short_values_show_no_suffix() {
        assert_eq!(Secret::new("abcdef").suffix(), "…");
        assert_eq!(Secret::new("").suffix(), "…");
        // Multi-byte characters are cut on character boundaries, never inside one.
        assert_eq!(Secret::new("токен-пользователя").suffix(), "…теля");
    }
}
