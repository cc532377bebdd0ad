//! Replays every committed fuzz input (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
//! through the same function the fuzz target calls (`provisor::fuzzing`), so a crash the
//! fuzzer once found stays fixed and the seeds stay meaningful, on every `cargo test`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use provisor::fuzzing::{saml_accepts, target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The input files of a folder (dot files such as `.gitkeep` are not inputs).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Runs `run` over every file, returning the files that panicked with the message.
fn replay(run: fn(&[u8]), files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        let data = std::fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    failures
}

#[test]
fn every_corpus_and_regression_input_replays_without_panic() {
    let mut failures = Vec::new();
    for t in TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(t.name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{} has no seed", t.name);
        let regressions = inputs(&fuzz_dir().join("regressions").join(t.name));
        failures.extend(replay(t.run, &corpus));
        failures.extend(replay(t.run, &regressions));
    }
    assert!(failures.is_empty(), "fuzz inputs that panic:\n{}", failures.join("\n"));
}

#[test]
fn every_fuzz_target_file_has_a_replayed_body() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut names: Vec<String> =
        inputs(&dir).iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    known.sort();
    assert_eq!(names, known, "fuzz/fuzz_targets/ and provisor::fuzzing::TARGETS disagree");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &known {
        assert!(manifest.contains(&format!("fuzz_targets/{name}.rs")), "fuzz/Cargo.toml has no [[bin]] {name}");
        let source = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
        assert!(source.contains(&format!("provisor::fuzzing::{name}(")), "{name}.rs does not call its body");
    }
}

#[test]
fn a_panicking_input_is_reported() {
    fn boom(data: &[u8]) {
        assert!(data.is_empty(), "not empty");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash");
    std::fs::write(&file, b"x").unwrap();
    let failures = replay(boom, &[file]);
    assert_eq!(failures.len(), 1);
    assert!(failures[0].ends_with("crash: not empty"), "{failures:?}");
    assert!(target("scim_filter").is_some() && target("nope").is_none());
}

/// The SAML seeds are genuinely signed responses for the fixed instant the target validates
/// at: the signed SHA-256 ones must still be accepted, or the fuzzer would never get past
/// the signature checks.
#[test]
fn the_saml_seeds_are_accepted_responses() {
    let seeds = inputs(&fuzz_dir().join("corpus").join("saml_validate"));
    let accepted = seeds.iter().filter(|f| saml_accepts(&std::fs::read(f).unwrap())).count();
    assert!(accepted >= 8, "only {accepted} of {} SAML seeds are accepted", seeds.len());
}
