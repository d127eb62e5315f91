//! Structural problems in a configuration — unknown keys, wrong types, bad values, inline
//! secrets — all found in one run and told in Surety's words, with "did you mean" for a
//! misspelt key. The parser stops at its first error, so each one found is recorded, the value
//! at fault is put back to its default (or taken out), and parsing runs again.

use figment::error::{Actual, Kind};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Tag, Value};
use figment::Figment;

use super::{Config, DestinationConfig, SectionReader};

/// Most parse rounds: every round finds one problem and removes it.
const MAX_ROUNDS: usize = 100;

/// The parsed configuration (after the faulty values were put back to their defaults or taken
/// out) and the figment it came from; and every structural problem found on the way.
pub(super) struct Parsed {
    pub config: Option<(Config, Figment)>,
    pub problems: Vec<String>,
    /// Destinations left out because they could not be read (an unknown `type`, a missing
    /// `name`): the catalog's routes to them are not problems of their own.
    pub dropped_destinations: Vec<String>,
}

pub(super) fn parse(figment: &Figment, sections: &SectionReader) -> Parsed {
    let mut root = match figment.extract::<Dict>() {
        Ok(dict) => Value::Dict(Tag::Default, dict),
        // The file is not TOML at all: the parser's message (with its line and column) is all there is.
        Err(e) => {
            let problems = e.into_iter().map(|e| e.to_string()).collect();
            return Parsed { config: None, problems, dropped_destinations: Vec::new() };
        }
    };
    let defaults =
        Figment::from(Toml::string(super::DEFAULT_TOML)).extract::<Dict>().map(|d| Value::Dict(Tag::Default, d)).ok();
    let mut problems = Vec::new();
    let mut dropped_destinations = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let current = Figment::from(Serialized::defaults(&root));
        let errors = match extract(&root, sections) {
            Ok(config) => return Parsed { config: Some((config, current)), problems, dropped_destinations },
            Err(errors) => errors,
        };
        let mut progressed = false;
        for e in errors {
            let (problem, fix) = describe(&root, &e.path, &e.kind);
            if !problems.contains(&problem) {
                problems.push(problem);
            }
            if let Fix::Drop(path) = &fix {
                if let [section, _] = path.as_slice() {
                    let name = get(&root, path).and_then(|d| get(d, &["name".to_owned()])).and_then(Value::as_str);
                    if let (true, Some(name)) = (section == "destinations", name) {
                        dropped_destinations.push(name.to_owned());
                    }
                }
            }
            progressed |= apply(&mut root, defaults.as_ref(), fix);
        }
        if !progressed {
            break;
        }
    }
    Parsed { config: None, problems, dropped_destinations }
}

/// The configuration in `root`, or the first error in key order, as one `extract::<Config>()`
/// would find it: every key but `destinations` through `Config`'s own `Deserialize`, each
/// destination through its platform's [`SectionReader`] (which sits above this module).
fn extract(root: &Value, sections: &SectionReader) -> Result<Config, Vec<figment::Error>> {
    let mut rest = root.clone();
    let listed = remove_key(&mut rest, "destinations");
    let config = Figment::from(Serialized::defaults(&rest)).extract::<Config>();
    // Keys are read in order (a dict is sorted): an error at a key before `destinations` is met first.
    if let Err(e) = &config {
        if e.path.first().is_some_and(|key| key.as_str() < "destinations") {
            return Err(e.clone().into_iter().collect());
        }
    }
    let destinations = match listed {
        None => Vec::new(),
        Some(Value::Array(_, items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(destination(item, sections).map_err(|mut e| {
                    e.path.splice(0..0, ["destinations".to_owned(), i.to_string()]);
                    vec![*e]
                })?);
            }
            out
        }
        Some(other) => {
            let mut e = figment::Error::from(Kind::InvalidType(other.to_actual(), "a sequence".into()));
            e.path = vec!["destinations".to_owned()];
            return Err(vec![e]);
        }
    };
    let mut config = config.map_err(|e| e.into_iter().collect::<Vec<_>>())?;
    config.destinations = destinations;
    Ok(config)
}

/// One `[[destinations]]` entry, read by the platform its `type` names (errors' paths start
/// inside the entry).
fn destination(item: &Value, sections: &SectionReader) -> Result<DestinationConfig, Box<figment::Error>> {
    let Value::Dict(_, dict) = item else {
        return Err(Box::new(Kind::InvalidType(item.to_actual(), "a table".into()).into()));
    };
    let type_name = match dict.get("type") {
        None => return Err(Box::new(Kind::MissingField("type".into()).into())),
        Some(Value::String(_, t)) => t,
        Some(other) => {
            let mut e = figment::Error::from(Kind::InvalidType(other.to_actual(), "a string".into()));
            e.path = vec!["type".to_owned()];
            return Err(Box::new(e));
        }
    };
    let unknown = || {
        let mut e = figment::Error::from(Kind::UnknownVariant(type_name.clone(), sections.types));
        e.path = vec!["type".to_owned()];
        Box::new(e)
    };
    let known = sections.types.iter().find(|t| **t == type_name.as_str()).ok_or_else(unknown)?;
    let mut section = dict.clone();
    section.remove("type");
    let figment = Figment::from(Serialized::defaults(Value::Dict(Tag::Default, section)));
    let read = (sections.read)(known, &figment).ok_or_else(unknown)?;
    read.map(|section| DestinationConfig::new(known, section))
}

/// Takes `key` out of a table, returning its value.
fn remove_key(root: &mut Value, key: &str) -> Option<Value> {
    match root {
        Value::Dict(_, d) => d.remove(key),
        _ => None,
    }
}

/// What to change so the next round gets past a problem.
enum Fix {
    /// Put the default value back at this path, or take the key out where there is none.
    Reset(Vec<String>),
    /// Take out the table or list item at this path (a required key of it is missing).
    Drop(Vec<String>),
    Nothing,
}

fn describe(root: &Value, path: &[String], kind: &Kind) -> (String, Fix) {
    let here = path.to_vec();
    // Where the parser had already entered the key, the path ends with it.
    let joined = |field: &str| -> Vec<String> {
        if path.last().is_some_and(|last| last == field) {
            path.to_vec()
        } else {
            path.iter().cloned().chain([field.to_owned()]).collect()
        }
    };
    match kind {
        Kind::UnknownField(field, expected) => {
            let key = joined(field);
            let hint = suggestion(field, expected.iter().copied())
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            (format!("{}: unknown key{hint}", show(root, &key)), Fix::Reset(key))
        }
        // A flattened table (a destination's shared settings) reports unknown keys as a message
        // and without the list of known ones: suggest from every key the default file documents.
        Kind::Message(m) if m.starts_with("unknown field `") => {
            let field = m.trim_start_matches("unknown field `").split('`').next().unwrap_or_default();
            let key = joined(field);
            let hint =
                suggestion(field, documented_keys()).map(|s| format!("; did you mean '{s}'?")).unwrap_or_default();
            (format!("{}: unknown key{hint}", show(root, &key)), Fix::Reset(key))
        }
        Kind::UnknownVariant(value, expected) => {
            let here = locate(root, here, &Actual::Str(value.clone()));
            let hint = suggestion(value, expected.iter().copied())
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            let allowed = expected.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ");
            let problem = format!("{}: \"{value}\" is not one of {allowed}{hint}", show(root, &here));
            // A destination of an unknown type cannot be checked further: leave it out.
            match here.split_last() {
                Some((last, parent)) if last == "type" => (problem, Fix::Drop(parent.to_vec())),
                _ => (problem, reset_or_drop(root, here)),
            }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let here = locate(root, here, actual);
            let found = found(actual, path);
            (
                format!("{}: expected {}, found {found}", show(root, &here), expected_words(expected)),
                reset_or_drop(root, here),
            )
        }
        Kind::MissingField(field) => (format!("{}: required key missing", show(root, &joined(field))), Fix::Drop(here)),
        Kind::DuplicateField(field) => {
            (format!("{}: written twice", show(root, &joined(field))), Fix::Reset(joined(field)))
        }
        Kind::Message(m) => (format!("{}: {m}", show(root, &here)), reset_or_drop(root, here)),
        other => (format!("{}: {other}", show(root, &here)), reset_or_drop(root, here)),
    }
}

/// Inside a destination (an internally tagged table) the parser reports a wrong value at the
/// table, not at its key: find the key holding that value, so the message names it and only
/// that key is reset.
fn locate(root: &Value, path: Vec<String>, actual: &Actual) -> Vec<String> {
    fn search(value: &Value, want: &str, path: &mut Vec<String>, depth: usize) -> bool {
        match value {
            Value::Dict(_, d) if depth < 3 => d.iter().any(|(k, v)| {
                path.push(k.clone());
                let hit = search(v, want, path, depth + 1);
                if !hit {
                    path.pop();
                }
                hit
            }),
            Value::Dict(..) | Value::Array(..) => false,
            scalar => scalar.to_actual().to_string() == want,
        }
    }
    match get(root, &path) {
        Some(table @ Value::Dict(..)) => {
            let mut found = path.clone();
            if search(table, &actual.to_string(), &mut found, 0) {
                found
            } else {
                path
            }
        }
        _ => path,
    }
}

/// A value that is itself a whole list item or table (a destination whose `type` is unknown) is
/// dropped; a key is reset.
fn reset_or_drop(root: &Value, path: Vec<String>) -> Fix {
    if path.is_empty() {
        return Fix::Nothing;
    }
    match get(root, &path) {
        Some(Value::Dict(..)) if path.len() >= 2 && path[path.len() - 1].parse::<usize>().is_ok() => Fix::Drop(path),
        _ => Fix::Reset(path),
    }
}

fn apply(root: &mut Value, defaults: Option<&Value>, fix: Fix) -> bool {
    match fix {
        Fix::Nothing => false,
        Fix::Drop(path) if path.is_empty() => false,
        Fix::Drop(path) => remove(root, &path),
        Fix::Reset(path) => match defaults.and_then(|d| get(d, &path)).cloned() {
            Some(default) if get(root, &path) != Some(&default) => set(root, &path, default),
            _ => remove(root, &path),
        },
    }
}

fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Dict(_, d) => d.get(key),
        Value::Array(_, a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Dict(_, d) => d.get_mut(key),
        Value::Array(_, a) => key.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
        _ => None,
    })
}

fn remove(root: &mut Value, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    match get_mut(root, parent) {
        Some(Value::Dict(_, d)) => d.remove(last).is_some(),
        Some(Value::Array(_, a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn set(root: &mut Value, path: &[String], value: Value) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    match get_mut(root, parent) {
        Some(Value::Dict(_, d)) => {
            d.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}

/// A key path as a person reads it: `server.listen`, `destinations.meta.batch_size` (a
/// destination by its name), `auth.admin_tokens[0]`.
fn show(root: &Value, path: &[String]) -> String {
    if path.is_empty() {
        return "the configuration".into();
    }
    let mut out = String::new();
    for (i, key) in path.iter().enumerate() {
        if let Ok(index) = key.parse::<usize>() {
            let name = match get(root, &path[..=i]) {
                Some(Value::Dict(_, d)) => d.get("name").and_then(|n| n.as_str()).map(str::to_owned),
                _ => None,
            };
            match name {
                Some(name) if i == 1 && path[0] == "destinations" => out.push_str(&format!(".{name}")),
                _ => out.push_str(&format!("[{index}]")),
            }
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(key);
        }
    }
    out
}

/// Whether a value may be a credential, so it is never repeated in a message.
fn secret_like(path: &[String]) -> bool {
    path.iter().any(|k| ["token", "secret", "key", "password"].iter().any(|s| k.contains(s)))
}

fn found(actual: &Actual, path: &[String]) -> String {
    match actual {
        Actual::Str(_) if secret_like(path) => "text".into(),
        Actual::Str(s) => format!("the text \"{}\"", s.chars().take(60).collect::<String>()),
        Actual::Bool(b) => format!("{b}"),
        Actual::Unsigned(n) => format!("the number {n}"),
        Actual::Signed(n) => format!("the number {n}"),
        Actual::Float(n) => format!("the number {n}"),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        other => other.to_string(),
    }
}

/// serde's names for what it expected, in words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "string" => "text in quotes".into(),
        "a sequence" => "a list [ … ]".into(),
        "a boolean" => "true or false".into(),
        "a map" => "a table".into(),
        _ if e.starts_with("struct ") || e.starts_with("internally tagged enum") => "a table".into(),
        _ if e.starts_with("a sequence") => "a list [ … ]".into(),
        _ => e.to_owned(),
    }
}

/// The closest known name to a misspelt one, if it is close enough to be what was meant.
fn suggestion<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&given, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Every key the commented default file names (`key =` or `# key =`).
fn documented_keys() -> impl Iterator<Item = &'static str> {
    super::DEFAULT_TOML.lines().filter_map(|line| {
        let line = line.trim_start_matches(|c: char| c == '#' || c.is_whitespace());
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        (!key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            .then_some(key)
    })
}
