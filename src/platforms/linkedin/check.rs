//! LinkedIn's side of `surety destinations test`: LinkedIn documents no validation route for
//! conversions, so the closest check is a lookup of each conversion rule the catalog routes to,
//! `GET /rest/conversions/{id}` with the same token and version headers — 401 (token), 403 (no
//! access to the rule's ad account), 404 (no such rule), 426 (a retired version) all fail
//! (docs/platforms.md §LinkedIn, "Checking without sending"). In `mode = "validate"` a batch is
//! built and checked locally only, and its detail says so.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::Linkedin;
use crate::core::Route;
use crate::delivery::http;
use crate::delivery::Check;

/// Where conversion rules are read, under `base_url`.
pub const RULES_PATH: &str = "/rest/conversions/";

/// What validate mode says of a LinkedIn batch.
pub const NO_VALIDATION_ROUTE: &str = "LinkedIn has no validation route for conversions; nothing was sent";

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl Linkedin {
    pub(super) async fn do_check(&self, routes: &[Route]) -> Vec<Check> {
        let ids: BTreeSet<&str> = routes.iter().map(|r| r.event.as_str()).collect();
        if ids.is_empty() {
            return vec![Check::new(
                "conversion rules",
                true,
                "not checked: no catalog route names a conversion rule of this destination (the token is only \
                 used with one)",
            )];
        }
        let mut checks = Vec::new();
        for id in ids {
            let what = format!("conversion rule {id}");
            let started = std::time::Instant::now();
            let answer = match url::Url::parse(&format!("{}{id}", self.rules_url)) {
                Ok(url) => self.lookup.get(url).send().await,
                Err(e) => {
                    checks.push(Check::new(what, false, format!("not a URL: {e}")));
                    continue;
                }
            };
            tracing::debug!(destination = %self.name, rule = id, duration_ms = started.elapsed().as_millis() as u64,
                "LinkedIn conversion rule lookup");
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    checks.push(Check::new(what, false, format!("no answer: {e}")));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            let excerpt = http::excerpt(&body);
            let check = match status {
                200..=299 => match serde_json::from_slice::<Rule>(&body) {
                    Ok(Rule { enabled: Some(false), name }) => Check::new(
                        what,
                        false,
                        format!("found ({}) but disabled: it matches no conversion", name.unwrap_or_default()),
                    ),
                    Ok(Rule { name, .. }) => {
                        Check::new(what, true, format!("found: {}", name.unwrap_or_else(|| "unnamed".into())))
                    }
                    Err(_) => Check::new(what, true, format!("found (HTTP {status})")),
                },
                401 => Check::new(what, false, format!("the access token was refused (HTTP 401): {excerpt}")),
                403 => Check::new(what, false, format!("no access to the rule's ad account (HTTP 403): {excerpt}")),
                404 => Check::new(what, false, format!("no such conversion rule (HTTP 404): {excerpt}")),
                426 => Check::new(what, false, format!("linkedin_version is retired (HTTP 426): {excerpt}")),
                _ => Check::new(what, false, format!("HTTP {status}: {excerpt}")),
            };
            checks.push(check);
        }
        checks
    }
}
