//! Secrets: named by where they live (`env:NAME`, `file:PATH`), never inline, never printed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret named by where it lives — `env:NAME` or `file:PATH` — never inline.
/// Neither `Debug` nor `Display` shows the value; only the reference is ever printed.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret {
    reference: String,
}

impl Secret {
    /// Reads the value now (config validation) or fails with why.
    pub fn resolve(&self) -> Result<SecretValue, String> {
        if let Some(name) = self.reference.strip_prefix("env:") {
            std::env::var(name).map(SecretValue).map_err(|_| format!("environment variable {name} is not set"))
        } else if let Some(path) = self.reference.strip_prefix("file:") {
            std::fs::read_to_string(path)
                .map(|s| SecretValue(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read secret file {path}: {e}"))
        } else {
            Err("a secret must be written env:NAME or file:PATH".into())
        }
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl TryFrom<String> for Secret {
    type Error = String;
    fn try_from(reference: String) -> Result<Self, Self::Error> {
        if reference.starts_with("env:") || reference.starts_with("file:") {
            Ok(Self { reference })
        } else {
            Err("secrets are never written inline: use \"env:NAME\" or \"file:/path\"".into())
        }
    }
}

impl From<Secret> for String {
    fn from(s: Secret) -> String {
        s.reference
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.reference)
    }
}

/// A resolved secret. No `Debug`, no `Display`: it can be used, not printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub fn for_tests(value: &str) -> Self {
        Self(value.to_owned())
    }
}
