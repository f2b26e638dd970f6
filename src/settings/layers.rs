//! The three layers of settings and how they merge: the compiled-in defaults, an optional TOML
//! file, the environment (typed like each key's default), each leaf remembering the layer that
//! set it so an error can name it.

use std::collections::HashMap;
use std::path::Path;

use super::{SettingsError, CONFIG_FILE_ENV, DEFAULT_TOML, GENERIC_ENV_PREFIX, SEED_ENV};

/// The merged TOML tree and, per key, which layer set it (for error messages).
pub(super) struct Layered {
    pub(super) root: toml::Table,
    pub(super) origins: HashMap<String, String>,
}

impl Layered {
    pub(super) fn defaults() -> Self {
        let root: toml::Table =
            toml::from_str(DEFAULT_TOML).expect("config/default.toml is valid TOML (unit-tested)");
        Layered {
            root,
            origins: HashMap::new(),
        }
    }

    pub(super) fn apply_file(&mut self, path: &Path) -> Result<(), SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| SettingsError::ParseFile {
            path: path.to_path_buf(),
            message: e.message().to_owned(),
        })?;
        let origin = format!("settings file {}", path.display());
        merge(&mut self.root, table, "", &origin, &mut self.origins);
        Ok(())
    }

    pub(super) fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), SettingsError> {
        for (var, key) in SEED_ENV {
            if let Some(value) = env.get(*var) {
                self.set_from_env(var, key, value)?;
            }
        }
        // Sorted so that the outcome never depends on the environment's iteration order.
        let mut generic: Vec<(&String, &String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with(GENERIC_ENV_PREFIX) && k.as_str() != CONFIG_FILE_ENV)
            .collect();
        generic.sort();
        for (var, value) in generic {
            let key = var[GENERIC_ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".");
            self.set_from_env(var, &key, value)?;
        }
        Ok(())
    }

    /// Sets `key` from an environment string, typed like the key's default.
    fn set_from_env(&mut self, var: &str, key: &str, raw: &str) -> Result<(), SettingsError> {
        let Some((section, name)) = key.split_once('.') else {
            return Err(unknown_env(var, key));
        };
        let Some(slot) = self
            .root
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .and_then(|t| t.get_mut(name))
        else {
            return Err(unknown_env(var, key));
        };
        let invalid = |message: String| SettingsError::Invalid {
            key: key.to_owned(),
            origin: format!("environment variable {var}"),
            message,
        };
        let trimmed = raw.trim();
        *slot = match slot {
            toml::Value::Integer(_) => trimmed
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| invalid(format!("expected an integer, found {trimmed:?}")))?,
            toml::Value::Float(_) => trimmed
                .parse::<f64>()
                .map(toml::Value::Float)
                .map_err(|_| invalid(format!("expected a number, found {trimmed:?}")))?,
            toml::Value::Boolean(_) => trimmed
                .parse::<bool>()
                .map(toml::Value::Boolean)
                .map_err(|_| invalid(format!("expected true or false, found {trimmed:?}")))?,
            // Lists are comma-separated; values are not echoed (token lists are secret).
            toml::Value::Array(_) => toml::Value::Array(
                trimmed
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
            _ => toml::Value::String(raw.to_owned()),
        };
        self.origins
            .insert(key.to_owned(), format!("environment variable {var}"));
        Ok(())
    }
}

fn unknown_env(var: &str, key: &str) -> SettingsError {
    SettingsError::UnknownEnv {
        var: var.to_owned(),
        key: key.to_owned(),
    }
}

/// Deep-merges `overlay` into `base`, recording each leaf's origin. Unknown keys are kept, so
/// deserialization (with `deny_unknown_fields`) reports them with their path.
fn merge(
    base: &mut toml::Table,
    overlay: toml::Table,
    prefix: &str,
    origin: &str,
    origins: &mut HashMap<String, String>,
) {
    for (name, value) in overlay {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match (base.get_mut(&name), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => {
                merge(into, from, &key, origin, origins)
            }
            (_, value) => {
                origins.insert(key, origin.to_owned());
                base.insert(name, value);
            }
        }
    }
}
