//! The OpenAPI document (`GET /openapi.json`) stays in step with the code: its paths are the
//! router's, its problem codes are the ones the source passes to `Problem::new`, and its input
//! schemas list exactly the fields of the structs that parse those inputs. The source is read at
//! test time, so a route, code or field added without the document fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::TestServer;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];
/// The dashboard's route, documented ahead of its landing in the router (see `router_routes`).
const DASHBOARD: (&str, &str) = ("GET", "/");

fn source(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

fn document() -> Value {
    serde_json::from_str(&source("src/api/openapi.json")).expect("src/api/openapi.json parses")
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "components.schemas.{name} is missing");
    s
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"].as_object().expect("properties").keys().cloned().collect()
}

/// The text from `open` (just after an opening parenthesis) to its matching `)`, skipping string
/// literals.
fn until_close(text: &str) -> &str {
    let (mut depth, mut in_str, mut escaped) = (1, false, false);
    for (i, c) in text.char_indices() {
        match (in_str, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after {:?}", &text[..text.len().min(80)]);
}

/// Splits at top-level commas.
fn arguments(args: &str) -> Vec<String> {
    let (mut out, mut current, mut depth, mut in_str) = (Vec::new(), String::new(), 0, false);
    let mut prev = ' ';
    for c in args.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(current.trim().to_owned());
                current.clear();
                prev = c;
                continue;
            }
            _ => {}
        }
        current.push(c);
        prev = c;
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn literal(arg: &str) -> Option<String> {
    arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')).map(str::to_owned)
}

/// Every `(method, path)` the router serves, read from the `.route("…", get(…).post(…))` calls of
/// `src/api/mod.rs`.
fn router_routes() -> BTreeSet<(String, String)> {
    let text = source("src/api/mod.rs");
    let mut routes = BTreeSet::new();
    for (at, _) in text.match_indices(".route(") {
        let args = arguments(until_close(&text[at + ".route(".len()..]));
        let path = literal(&args[0]).unwrap_or_else(|| panic!("a route's path is not a literal: {}", args[0]));
        let handler = &args[1];
        let mut found = false;
        for (i, _) in handler.match_indices('(') {
            let ident: String = handler[..i].chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let ident: String = ident.chars().rev().collect();
            if METHODS.contains(&ident.as_str()) {
                routes.insert((ident.to_uppercase(), path.clone()));
                found = true;
            }
        }
        assert!(found, "no method found for route {path}: {handler}");
    }
    assert!(routes.len() > 10, "the router's routes were not found in src/api/mod.rs");
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method} is not an HTTP method");
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[test]
fn every_route_of_the_router_is_documented_and_nothing_else() {
    let doc = document();
    let served = router_routes();
    let mut documented = documented_routes(&doc);
    // The dashboard is documented ahead of its route; tolerated only while the router lacks it.
    let dashboard = (DASHBOARD.0.to_owned(), DASHBOARD.1.to_owned());
    if !served.iter().any(|(_, p)| p == DASHBOARD.1) {
        documented.remove(&dashboard);
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "routes missing from src/api/openapi.json: {undocumented:?}");
    assert!(unserved.is_empty(), "documented routes the router does not serve: {unserved:?}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals returned by `SignatureError::code`.
fn signature_codes() -> BTreeSet<String> {
    let text = source("src/sources/mod.rs");
    let start = text.find("pub fn code(self) -> &'static str {").expect("SignatureError::code");
    let body = &text[start..];
    let body = &body[..body.find("\n    }\n").expect("end of SignatureError::code")];
    body.split("=> \"").skip(1).map(|s| s.split('"').next().unwrap_or_default().to_owned()).collect()
}

/// The code literals passed to `Problem::new` (`Self::new` in `impl Problem`): directly, through `e.code()` (signatures), or
/// through a closure whose parameter is passed on as the code (`bad("batch_too_large", e)`).
fn source_codes() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut codes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        // Inside `impl Problem`, its constructors call `Self::new`.
        let mut calls: Vec<(usize, usize)> = text.match_indices("Problem::new(").map(|(at, m)| (at, m.len())).collect();
        if text.contains("impl Problem {") {
            calls.extend(text.match_indices("Self::new(").map(|(at, m)| (at, m.len())));
        }
        for (at, len) in calls {
            let args = arguments(until_close(&text[at + len..]));
            let code = args.get(1).unwrap_or_else(|| panic!("{}: Problem::new with one argument", file.display()));
            if let Some(c) = literal(code) {
                codes.insert(c);
            } else if code.ends_with(".code()") {
                codes.extend(signature_codes());
            } else if code.chars().all(|c| c.is_alphanumeric() || c == '_') {
                let before = &text[..at];
                let def = before.rfind(&format!("= |{code}")).unwrap_or_else(|| {
                    panic!(
                        "{}: Problem::new's code `{code}` is neither a literal nor a closure parameter",
                        file.display()
                    )
                });
                let name = before[..def].trim_end().rsplit(' ').next().unwrap_or_default().to_owned();
                let calls: Vec<_> = text.match_indices(&format!("{name}(\"")).collect();
                assert!(!calls.is_empty(), "{}: no literal calls of `{name}`", file.display());
                for (call, _) in calls {
                    let rest = &text[call + name.len() + 2..];
                    codes.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
                }
            } else {
                panic!("{}: unrecognised problem code argument `{code}`", file.display());
            }
        }
    }
    assert!(codes.len() > 20, "too few problem codes found: {codes:?}");
    codes
}

#[test]
fn the_documented_problem_codes_are_exactly_those_in_the_source() {
    let doc = document();
    let documented: BTreeSet<String> = schema(&doc, "ProblemCode")["enum"]
        .as_array()
        .expect("ProblemCode enum")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    let used = source_codes();
    let undocumented: Vec<_> = used.difference(&documented).collect();
    let unused: Vec<_> = documented.difference(&used).collect();
    assert!(undocumented.is_empty(), "codes missing from ProblemCode: {undocumented:?}");
    assert!(unused.is_empty(), "documented codes no source uses: {unused:?}");
    assert_eq!(schema(&doc, "Problem")["properties"]["code"]["$ref"], "#/components/schemas/ProblemCode");
}

/// The field names of `struct {name}` in `path` (serde renames applied), and whether it refuses
/// unknown fields.
fn struct_fields(path: &str, name: &str) -> (BTreeSet<String>, bool) {
    let text = source(path);
    let start = text.find(&format!("struct {name} {{")).unwrap_or_else(|| panic!("struct {name} in {path}"));
    let attrs = &text[text[..start].rfind("\n\n").unwrap_or(0)..start];
    let body = &text[start..];
    let body = &body[..body.find("\n}").expect("end of struct")];
    let (mut fields, mut rename) = (BTreeSet::new(), None);
    for line in body.lines().skip(1).map(str::trim) {
        if let Some(r) = line.strip_prefix("#[serde(rename = \"") {
            rename = r.split('"').next().map(str::to_owned);
        } else if !line.starts_with("//") && !line.starts_with('#') {
            if let Some((field, _)) = line.trim_start_matches("pub ").split_once(':') {
                fields.insert(rename.take().unwrap_or_else(|| field.trim().to_owned()));
            }
        }
    }
    (fields, attrs.contains("deny_unknown_fields"))
}

#[test]
fn input_schemas_list_exactly_the_parsers_fields() {
    let doc = document();
    for (path, parser, documented) in [
        ("src/ingest/canonical.rs", "EventInput", "CanonicalEvent"),
        ("src/ingest/canonical.rs", "SubjectInput", "Subject"),
        ("src/ingest/canonical.rs", "ItemInput", "Item"),
        ("src/ingest/canonical.rs", "IdentityInput", "Identity"),
        ("src/ingest/canonical.rs", "CaptureInput", "IdentityCapture"),
        ("src/core/event.rs", "Consent", "Consent"),
        ("src/api/admin.rs", "ReplayRequest", "ReplayRequest"),
        ("src/api/admin.rs", "SettleRequest", "SettleRequest"),
        ("src/api/reconcile.rs", "ReconcileRequest", "ReconcileRequest"),
        ("src/api/reconcile.rs", "FileInput", "ReconcileFile"),
    ] {
        let (fields, strict) = struct_fields(path, parser);
        let s = schema(&doc, documented);
        assert_eq!(property_names(s), fields, "{documented} against {path} {parser}");
        assert!(strict, "{parser} is expected to refuse unknown fields");
        assert_eq!(s["additionalProperties"], false, "{documented} must refuse unknown fields");
    }
    for (file, parser, path) in [
        ("src/store/read.rs", "DeliveryFilter", "/v1/deliveries"),
        ("src/store/read.rs", "ReceiptFilter", "/v1/receipts"),
        ("src/api/find.rs", "ListParams", "/v1/events"),
        ("src/api/find.rs", "SearchParams", "/v1/search"),
        ("src/api/late.rs", "OverTimeParams", "/v1/deliveries/over-time"),
    ] {
        let (fields, _) = struct_fields(file, parser);
        let params: BTreeSet<String> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_owned())
            .collect();
        assert_eq!(params, fields, "query parameters of GET {path} against {parser}");
    }
}

#[tokio::test]
async fn the_served_document_parses_and_its_schemas_match_what_the_server_takes() {
    let s = TestServer::start().await;
    // Served without a token.
    let r = reqwest::get(s.url("/openapi.json")).await.expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.expect("the served document parses");
    assert_eq!(doc, document(), "the served document is src/api/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");

    // The example names every property of the event schemas, and the server takes it.
    let event_schema = schema(&doc, "CanonicalEvent");
    let mut event = event_schema["examples"][0].clone();
    let keys = |v: &Value| v.as_object().expect("object").keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&event), property_names(event_schema));
    for (at, name) in [("subject", "Subject"), ("identity", "Identity"), ("consent", "Consent")] {
        assert_eq!(keys(&event[at]), property_names(schema(&doc, name)), "example's {at}");
    }
    assert_eq!(keys(&event["items"][0]), property_names(schema(&doc, "Item")), "example's items[0]");
    event["occurred_at"] = json!((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
    let r = s.post("/v1/events", &event).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());

    // A property the schema does not list is refused as unknown, at every level.
    for at in ["", "subject", "identity", "consent", "items[0]"] {
        let mut bad = event.clone();
        bad["event_id"] = json!(format!("openapi-unknown-{at}"));
        let target = match at {
            "" => &mut bad,
            "items[0]" => &mut bad["items"][0],
            field => &mut bad[field],
        };
        target["not_in_schema"] = json!("x");
        let r = s.post("/v1/events", &bad).await;
        assert_eq!(r.status(), 422, "unknown field in {at:?}");
        let body: Value = r.json().await.expect("problem");
        assert_eq!(body["code"], "invalid_event");
        assert_eq!(body["errors"][0]["code"], "unknown_field", "{at:?}: {body}");
    }

    // The identity capture built from its schema's properties is taken too.
    let capture_schema = schema(&doc, "IdentityCapture");
    let capture = json!({
        "subject": event["subject"],
        "captured_at": event["occurred_at"],
        "identity": event["identity"],
        "consent": event["consent"],
    });
    assert_eq!(keys(&capture), property_names(capture_schema));
    let r = s.post("/v1/identities", &capture).await;
    assert_eq!(r.status(), 202);
}
