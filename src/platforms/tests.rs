use std::collections::BTreeSet;

use figment::providers::{Format, Toml};
use figment::Figment;

use super::*;

/// The `[[destinations]]` example of `type` in the commented default configuration, uncommented:
/// its keys and tables, without the notes.
fn documented_section(type_name: &str) -> Option<String> {
    let blocks = crate::config::DEFAULT_TOML.split("# [[destinations]]").skip(1);
    let block = blocks.into_iter().find(|b| b.lines().any(|l| l.starts_with(&format!("# type = \"{type_name}\""))))?;
    let mut out = String::new();
    for line in block.lines().skip(1) {
        let Some(text) = line.strip_prefix("# ") else { break };
        let text = text.split("   #").next().unwrap_or(text).trim_end();
        if let Some(table) = text.strip_prefix("[destinations.") {
            out.push_str(&format!("[{table}\n"));
        } else if text.contains(" = ") && !text.starts_with("type ") && !text.starts_with(['(', ' ']) {
            out.push_str(text);
            out.push('\n');
        }
    }
    Some(out)
}

#[test]
fn every_platform_has_a_documented_default_section_that_reads() {
    for entry in ALL {
        let text = documented_section(entry.type_name)
            .unwrap_or_else(|| panic!("config/default.toml documents no [[destinations]] of type {}", entry.type_name));
        let section = Figment::from(Toml::string(&text));
        let section = (entry.read)(&section)
            .unwrap_or_else(|e| panic!("the documented {} section does not read: {e}\n{text}", entry.type_name));
        assert!(!section.name().is_empty());
        assert!(section.window_days() > 0, "{}", entry.type_name);
        assert!(!section.secrets().is_empty(), "{}: what does it send with?", entry.type_name);
    }
}

#[test]
fn every_platform_has_a_section_in_docs_platforms_md() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/platforms.md")).unwrap();
    let headings: BTreeSet<&str> = docs.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    for entry in ALL {
        assert!(headings.contains(entry.label), "docs/platforms.md has no '## {}' section", entry.label);
    }
}

#[tokio::test]
async fn every_platform_has_a_simulator() {
    for entry in ALL {
        let sim = (entry.simulate)(Default::default()).await.unwrap_or_else(|e| panic!("{}: {e}", entry.type_name));
        assert!(sim.base_url().starts_with("http://127.0.0.1:"), "{}", sim.base_url());
        assert_eq!(sim.received(), 0, "{}", entry.type_name);
        sim.shutdown().await;
    }
}

#[test]
fn types_are_listed_once_and_found() {
    let unique: BTreeSet<&str> = TYPES.iter().copied().collect();
    assert_eq!(unique.len(), ALL.len());
    for (t, entry) in TYPES.iter().zip(ALL) {
        assert_eq!(*t, entry.type_name);
        assert!(find(t).is_some_and(|found| found.label == entry.label));
    }
    assert!(find("gaa4").is_none());
}

#[test]
fn a_configured_destination_reaches_its_platform() {
    let mut token = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut token, b"platforms-test-token").unwrap();
    let text = format!(
        "[[destinations]]\nname = \"li\"\ntype = \"linkedin\"\naccess_token = \"file:{}\"\n",
        token.path().display()
    );
    let config = crate::config::Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}"));
    let d = &config.destinations[0];
    assert_eq!(of(d).map(|e| e.label), Some("LinkedIn"));
    assert!(rules_of(d).is_some());
    let built = build(&config.destinations).unwrap();
    assert_eq!(built.len(), 1);
    assert_eq!(built[0].name(), "li");
}

/// What the demo and the bench build from `Showcase` and `Simulator` alone: for every platform,
/// a destination section for each purpose that configuration accepts, with the catalog's routes,
/// and distinct demo names.
#[tokio::test]
async fn every_platform_can_be_shown_by_the_demo_and_the_bench() {
    let names: BTreeSet<&str> = ALL.iter().map(|e| e.showcase.demo_name).collect();
    assert_eq!(names.len(), ALL.len(), "demo names are distinct");
    for entry in ALL {
        let showcase = &entry.showcase;
        assert!(showcase.route("order_paid").is_some(), "{}: the bench routes order_paid", entry.type_name);
        assert!(!showcase.marker.path.is_empty() && !showcase.marker.key.is_empty(), "{}", entry.type_name);
        let sim = (entry.simulate)(SimOptions { counting_only: true, wrap: None }).await.unwrap();
        assert!(!sim.introduce().is_empty() && !sim.describe().is_empty(), "{}", entry.type_name);
        for purpose in [Purpose::Tour, Purpose::Load] {
            let dir = tempfile::tempdir().unwrap();
            let name = showcase.demo_name;
            let section = sim.destination_toml(name, dir.path(), purpose).unwrap();
            let routes: String = showcase
                .routes
                .iter()
                .map(|r| format!("[catalog.{}]\n{name} = {{ event = {}{} }}\n", r.kind, toml_string(r.event), r.extra))
                .collect();
            let text = format!("[storage]\nurl = \"sqlite://{}/x.db\"\n\n{section}\n{routes}", dir.path().display());
            let config =
                Config::from_toml(&text).unwrap_or_else(|e| panic!("{} {purpose:?}: {e}\n{text}", entry.type_name));
            assert_eq!(config.destinations.len(), 1);
            assert_eq!(config.destinations[0].type_name(), entry.type_name);
            build(&config.destinations).unwrap_or_else(|e| panic!("{} {purpose:?}: {e}", entry.type_name));
        }
        sim.shutdown().await;
    }
}

#[test]
fn the_readme_says_which_platforms_can_be_read_back() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for entry in ALL {
        let row = readme
            .lines()
            .map(str::trim_start)
            .find(|l| ["yes", "no: needs a file"].iter().any(|a| l.starts_with(&format!("| {} | {a}", entry.label))))
            .unwrap_or_else(|| panic!("README's read-back table has no row for {}", entry.label));
        match entry.read_back {
            ReadBack::File(why) => {
                assert!(row.contains("no: needs a file"), "{row}");
                assert!(why.contains("DEST=FILE"), "{}: say what to pass instead", entry.label);
            }
            ReadBack::Api | ReadBack::FollowUps => assert!(row.contains("| yes"), "{row}"),
        }
    }
}
