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
    &["platforms"],
    &["ingest", "worker"],
    &["import"],
    &["reconcile"],
    &["alerts"],
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

/// The non-test code of every source file under `src/`, with its path.
fn sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.into_iter().map(|f| (f.clone(), code(&std::fs::read_to_string(&f).unwrap()))).collect()
}

#[test]
fn the_window_is_checked_by_planning_and_the_worker_only() {
    // G5: planning skips what is outside a destination's window; after that only the worker
    // (`end_unsendable`, just before a batch leaves) checks it. An adapter gives its window
    // through `Rules::window` and never checks it itself.
    let allowed = [Path::new("src/core/plan.rs"), Path::new("src/worker/mod.rs")];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let callers: BTreeSet<PathBuf> = sources()
        .into_iter()
        .filter(|(_, text)| text.contains("outside_window("))
        .map(|(file, _)| file.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    let stray: Vec<&PathBuf> = callers.iter().filter(|f| !allowed.contains(&f.as_path())).collect();
    assert!(stray.is_empty(), "the window is checked outside planning and the worker: {stray:?}");
    assert_eq!(callers.len(), 2, "{callers:?}");
}

#[test]
fn no_control_flow_reads_reason_text() {
    // A halt is `Outcome::Halt`, not a reason that starts with "halt:": a typo in a string would
    // turn it into a retry storm, a typo in a variant does not compile.
    let readers: Vec<PathBuf> = sources()
        .into_iter()
        .filter(|(_, text)| text.contains("starts_with(\"halt") || text.contains("contains(\"halt"))
        .map(|(file, _)| file)
        .collect();
    assert!(readers.is_empty(), "control flow on a reason's text: {readers:?}");
}

#[test]
fn no_two_files_of_a_folder_import_each_other() {
    // `a.rs` naming `super::b` and `b.rs` naming `super::a` is a file cycle: one of them should
    // own what both need.
    let mut uses = BTreeSet::new();
    for (file, text) in sources() {
        let (Some(dir), Some(stem)) = (file.parent(), file.file_stem()) else { continue };
        let stem = stem.to_string_lossy().into_owned();
        if stem == "mod" || stem == "lib" || stem == "main" {
            continue;
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("super::") {
            rest = &rest[at + "super::".len()..];
            for name in first_segments(rest) {
                let sibling = dir.join(format!("{name}.rs")).is_file() || dir.join(&name).join("mod.rs").is_file();
                if sibling && name != stem {
                    uses.insert((dir.to_path_buf(), stem.clone(), name));
                }
            }
        }
    }
    let cycles: Vec<String> = uses
        .iter()
        .filter(|(dir, a, b)| a < b && uses.contains(&(dir.clone(), b.clone(), a.clone())))
        .map(|(dir, a, b)| format!("{}: {a}.rs <-> {b}.rs", dir.display()))
        .collect();
    assert!(cycles.is_empty(), "file cycles:\n{}", cycles.join("\n"));
}

/// The first path segment(s) at the start of `rest`: `a::X` gives `a`; `{a::{X, Y}, b}` gives `a`, `b`.
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let Some(list) = rest.strip_prefix('{') else { return vec![ident(rest)] };
    let (mut depth, mut names, mut start) = (0usize, Vec::new(), 0usize);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(&list[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&list[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

#[test]
fn the_file_cycle_check_reads_grouped_imports() {
    assert_eq!(first_segments("payload::{self, X};"), ["payload"]);
    assert_eq!(first_segments("{payload::{self, X}, restate::restate};"), ["payload", "restate"]);
}

/// A production file longer than this is split into cohesive submodules (ARCHITECTURE.md,
/// "Invariants"; STYLE.md: read in one sitting). Test-only files (`tests.rs`, `*_tests.rs`,
/// `tests/` folders) may be longer.
const MAX_LINES: usize = 400;

#[test]
fn no_production_file_is_over_400_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    assert!(files.iter().any(|f| f.ends_with("store/mod.rs")), "the walk reads the production files");
    let mut over = BTreeSet::new();
    for file in &files {
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        if lines > MAX_LINES {
            let name = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            over.insert(format!("{name}: {lines} lines"));
        }
    }
    assert!(
        over.is_empty(),
        "production files over {MAX_LINES} lines; split them into submodules:\n{}",
        over.into_iter().collect::<Vec<_>>().join("\n")
    );
}
