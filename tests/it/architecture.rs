//! ARCHITECTURE.md's layers, checked against the code: every `crate::MODULE` a source file names
//! must sit on a lower layer than the file's own module, so imports flow one way and no cycle
//! between modules can come back. Test code (`tests.rs`, `*_tests.rs`, `tests/` folders and the
//! `#[cfg(test)] mod` at the end of a file) may reach anywhere and is not read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use the modules of the layers below its own, never its own layer's
/// other modules or anything above. `(root)` is `lib.rs`: the composition of the service (`run`).
const LAYERS: &[&[&str]] = &[
    &["core"],
    &["config", "sim", "telemetry"],
    &["store", "serve"],
    &["sources", "delivery"],
    &["ingest", "worker"],
    &["import"],
    &["reconcile"],
    &["api"],
    &["(root)"],
    &["demo", "bench", "fuzzing"],
    &["cli", "(main)"],
];

/// Edges the layers would allow but the design rules out, with the reason.
const FORBIDDEN: &[(&str, &str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                source_files(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    match first.trim_end_matches(".rs") {
        "lib" => "(root)".to_owned(),
        "main" => "(main)".to_owned(),
        m => m.to_owned(),
    }
}

/// The code of a file without its comments and without its trailing test module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod ")) {
            // `#[cfg(test)] mod x;` declares a test file (not read); `mod x {` opens the test
            // module, which runs to the end of the file by the project's convention.
            if lines.peek().is_some_and(|next| next.trim_end().ends_with('{')) {
                break;
            }
            lines.next();
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line.split(" // ").next().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// `(file's module, named module, file)` for every `crate::X` in non-test code.
fn edges() -> Vec<(String, String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut edges = Vec::new();
    for file in files {
        let from = module_of(&src, &file);
        let text = code(&std::fs::read_to_string(&file).unwrap());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let is_module = src.join(&name).is_dir() || src.join(format!("{name}.rs")).is_file();
            let to = if is_module { name } else { "(root)".to_owned() };
            if to != from {
                edges.push((from.clone(), to, file.clone()));
            }
        }
    }
    edges
}

#[test]
fn every_module_is_on_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).filter(|m| layer(m).is_none()).collect();
    assert!(unplaced.is_empty(), "modules missing from LAYERS in tests/it/architecture.rs: {unplaced:?}");
}

#[test]
fn imports_flow_one_way() {
    let mut wrong = BTreeSet::new();
    for (from, to, file) in edges() {
        let (Some(f), Some(t)) = (layer(&from), layer(&to)) else { continue };
        if t >= f {
            wrong.insert(format!(
                "{} uses crate::{to}: `{from}` (layer {f}) may not use `{to}` (layer {t})",
                file.display()
            ));
        }
        for (a, b, why) in FORBIDDEN {
            if *a == from && *b == to {
                wrong.insert(format!("{} uses crate::{to}: {why}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run back up (ARCHITECTURE.md, \"Layers\"):\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_check_sees_a_back_edge() {
    // The reader must see what it is meant to catch: `store` does use `core`, so the edge list is
    // not empty, and a line in a test module or a comment is not counted.
    let all = edges();
    assert!(all.iter().any(|(f, t, _)| f == "store" && t == "core"));
    assert!(code("// crate::api\nuse crate::core;\n#[cfg(test)]\nmod tests {\n use crate::api;\n}\n")
        .contains("crate::core"));
    assert!(!code("// crate::api\nuse crate::core;\n#[cfg(test)]\nmod tests {\n use crate::api;\n}\n")
        .contains("crate::api"));
}
