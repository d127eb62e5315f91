//! `GET /openapi.json`: the OpenAPI 3.1 document of this API (`src/api/openapi.json`), kept in
//! step with the router, the problem codes and the canonical parser by `tests/it/openapi.rs`.
//! Served without auth: it describes the API and holds no data.

use axum::http::header;
use axum::response::IntoResponse;

/// Compiled in, so the bytes served are the bytes the tests checked.
const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn document_is_openapi_3_1_json() {
        let doc: Value = serde_json::from_str(super::DOCUMENT).expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }
}
