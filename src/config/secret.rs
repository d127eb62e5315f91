//! Secrets: named by where they live (`env:NAME`, `file:PATH`), never inline, never printed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The fewest characters a secret may have. A shorter one is guessable, and it could not be
/// told apart from ordinary text: redacting a one-character secret from a message would cut the
/// message to pieces. Every platform's real credentials are far longer.
pub const MIN_SECRET_CHARS: usize = 8;

/// A secret named by where it lives — `env:NAME` or `file:PATH` — never inline.
/// Neither `Debug` nor `Display` shows the value; only the reference is ever printed.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret {
    reference: String,
}

impl Secret {
    /// Reads the value now (config validation) or fails with why: not set, unreadable, or shorter
    /// than [`MIN_SECRET_CHARS`].
    pub fn resolve(&self) -> Result<SecretValue, String> {
        let value = self.read()?;
        if value.0.trim().chars().count() < MIN_SECRET_CHARS {
            let empty = if value.0.trim().is_empty() { "empty" } else { "too short" };
            return Err(format!(
                "the secret is {empty}: at least {MIN_SECRET_CHARS} characters are required (use the credential the \
                 platform issued, or a random token such as `openssl rand -hex 24`)"
            ));
        }
        Ok(value)
    }

    fn read(&self) -> Result<SecretValue, String> {
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

    /// `text` with every whole-token occurrence of this secret replaced by `[redacted]`. An
    /// occurrence counts only where it is not glued to more letters, digits, `-` or `_` on a side
    /// where the secret itself starts or ends with one: the secret as a token of its own (in a
    /// URL, a JSON string, a header), never a piece of a longer word of ordinary text.
    pub fn redact(&self, text: &[u8]) -> Vec<u8> {
        redact_token(text, self.0.as_bytes())
    }

    #[cfg(test)]
    pub fn for_tests(value: &str) -> Self {
        Self(value.to_owned())
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// See [`SecretValue::redact`].
fn redact_token(text: &[u8], token: &[u8]) -> Vec<u8> {
    const MARK: &[u8] = b"[redacted]";
    let (Some(&first), Some(&last)) = (token.first(), token.last()) else {
        return text.to_vec();
    };
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(token) {
            let end = i + token.len();
            let left_ok = !is_word(first) || i == 0 || !is_word(text[i - 1]);
            let right_ok = !is_word(last) || end == text.len() || !is_word(text[end]);
            if left_ok && right_ok {
                out.extend_from_slice(MARK);
                i = end;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str, token: &str) -> String {
        String::from_utf8(redact_token(text.as_bytes(), token.as_bytes())).unwrap()
    }

    #[test]
    fn a_secret_is_redacted_where_it_stands_as_a_token() {
        let t = "EAAB-s3cr3t-token";
        assert_eq!(redact(t, t), "[redacted]");
        assert_eq!(redact(&format!("?access_token={t}&x=1"), t), "?access_token=[redacted]&x=1");
        assert_eq!(redact(&format!("{{\"token\":\"{t}\"}} {t}"), t), "{\"token\":\"[redacted]\"} [redacted]");
        assert_eq!(redact(&format!("Bearer {t}."), t), "Bearer [redacted].");
    }

    #[test]
    fn ordinary_text_around_or_containing_the_value_is_left_whole() {
        // A value that is part of a longer word is another word, not the secret.
        assert_eq!(redact("password1234 and xpassword123", "password123"), "password1234 and xpassword123");
        assert_eq!(redact("error: invalid parameter", "a"), "error: invalid parameter");
        assert_eq!(redact("nothing here", "s3cr3t-value"), "nothing here");
        assert_eq!(redact("x", ""), "x");
    }

    #[test]
    fn short_and_empty_secrets_are_refused_when_resolved() {
        let dir = tempfile::tempdir().unwrap();
        for (value, ok) in [("", false), ("a", false), ("\n", false), ("1234567", false), ("12345678", true)] {
            let path = dir.path().join("s");
            std::fs::write(&path, value).unwrap();
            let secret = Secret::try_from(format!("file:{}", path.display())).unwrap();
            let result = secret.resolve();
            assert_eq!(result.is_ok(), ok, "{value:?}");
            if let Err(e) = result {
                assert!(e.contains("at least 8 characters"), "{e}");
            }
        }
    }
}
