//! The fuzz targets' seed corpus (`fuzz/corpus/TARGET/`) replayed through the same entry points
//! the fuzzers drive (`surety::fuzzing`), so every `cargo test` runs them and a seed that panics
//! fails the suite even where libFuzzer cannot be built. The coverage-guided runs are
//! `scripts/fuzz.sh` (see SECURITY.md).

use std::collections::BTreeSet;

#[test]
fn every_fuzz_target_has_seeds_and_every_seed_parses_without_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let folders: BTreeSet<String> = std::fs::read_dir(&root)
        .expect("fuzz/corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let targets: BTreeSet<String> = surety::fuzzing::TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(folders, targets, "one seed folder per fuzz target");
    for (name, target) in surety::fuzzing::TARGETS {
        let mut seeds = 0;
        for entry in std::fs::read_dir(root.join(name)).expect("seed folder") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("seed");
            target(&bytes);
            // Every prefix too: truncated input is the commonest malformed input.
            for cut in (0..bytes.len()).step_by(bytes.len() / 16 + 1) {
                target(&bytes[..cut]);
            }
            seeds += 1;
        }
        assert!(seeds > 0, "{name} has seeds");
        let targets_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(targets_dir.exists(), "fuzz/fuzz_targets/{name}.rs exists");
    }
}
