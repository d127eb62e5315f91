//! The simulated token endpoint: Google's OAuth 2.0 JWT bearer grant for service accounts
//! (RFC 7523; developers.google.com/identity/protocols/oauth2/service-account). It checks the
//! assertion's RS256 signature against the service account's public key, `iss`, `aud`, `scope`,
//! and that it is short-lived and unexpired, and answers as Google does:
//! `{access_token, expires_in, token_type}` or `400 {error, error_description}`.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// The grant type of a JWT bearer assertion.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scope the Data Manager API needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";

/// An OAuth error answer: `error` code and description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantError {
    pub error: &'static str,
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> GrantError {
    GrantError { error, description: description.into() }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    aud: String,
    iat: i64,
    exp: i64,
}

/// Checks a token request's form body. `audience` is the token URL the assertion must name
/// (`None`: any URL ending in `/token`).
pub fn check_grant(
    form: &[u8],
    key: &DecodingKey,
    client_email: &str,
    audience: Option<&str>,
) -> Result<(), GrantError> {
    check_grant_for(form, key, client_email, audience, SCOPE)
}

/// [`check_grant`] for another API's `scope` (the GA4 simulator's Data API).
pub fn check_grant_for(
    form: &[u8],
    key: &DecodingKey,
    client_email: &str,
    audience: Option<&str>,
    scope: &str,
) -> Result<(), GrantError> {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(form).into_owned().collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if field("grant_type") != Some(GRANT_TYPE) {
        return Err(refuse("unsupported_grant_type", "Invalid grant_type: expected the JWT bearer grant."));
    }
    let assertion =
        field("assertion").ok_or_else(|| refuse("invalid_request", "Missing required parameter: assertion"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.set_issuer(&[client_email]);
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    let data = jsonwebtoken::decode::<Claims>(assertion, key, &validation).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature | ErrorKind::InvalidToken | ErrorKind::InvalidAlgorithm | ErrorKind::Base64(_) => {
            refuse("invalid_grant", "Invalid JWT Signature.")
        }
        ErrorKind::ExpiredSignature => refuse(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. \
             Check your iat and exp values in the JWT claim.",
        ),
        ErrorKind::InvalidIssuer => refuse("invalid_grant", "Invalid JWT: the issuer is not the service account."),
        ErrorKind::InvalidAudience => refuse("invalid_grant", "Invalid JWT: the audience is not the token URL."),
        _ => refuse("invalid_grant", "Invalid JWT."),
    })?;
    let claims = data.claims;
    // Without a known URL, still insist on a token endpoint as the audience.
    if audience.is_none() && !claims.aud.ends_with("/token") {
        return Err(refuse("invalid_grant", "Invalid JWT: the audience is not a token URL."));
    }
    if claims.exp - claims.iat > 3600 || claims.exp <= claims.iat {
        return Err(refuse(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        ));
    }
    if !claims.scope.split(' ').any(|s| s == scope) {
        return Err(refuse("invalid_scope", format!("The assertion does not ask for {scope}.")));
    }
    Ok(())
}
