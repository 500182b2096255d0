//! Architecture invariants, checked rather than only written down.
//!
//! Architecture Invariant: the pure crates (cohort-core) depend on no I/O, async,
//! database, HTTP or JSON crate, and their sources never read the clock, a random
//! source, the file system or the network.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PURE: &[&str] = &["cohort-core", "cohort-engine", "cohort-index"];
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "futures",
    "mio",
    "sqlx",
    "sqlx-core",
    "axum",
    "hyper",
    "reqwest",
    "serde_json",
    "rand",
    "getrandom",
    "async-trait",
    "tracing",
];
const FORBIDDEN_TEXT: &[&str] = &[
    "async fn",
    "std::fs",
    "std::net",
    "SystemTime::now",
    "Instant::now",
    "OffsetDateTime::now",
    "std::env",
    "std::process",
];

/// Names of every package `krate` depends on at build or run time (not dev), with
/// features resolved as they are built (`cargo tree`; `cargo metadata` also lists
/// optional dependencies that are never enabled).
fn normal_closure(krate: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args([
            "tree", "--locked", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(root)
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != krate)
        .map(str::to_owned)
        .collect()
}

#[test]
fn pure_crates_depend_on_no_io_async_or_json_crate() {
    for krate in PURE {
        let closure = normal_closure(krate);
        assert!(!closure.is_empty(), "cargo tree listed nothing for {krate}");
        let offending: Vec<_> = FORBIDDEN_CRATES.iter().filter(|c| closure.contains(**c)).collect();
        assert!(offending.is_empty(), "{krate} depends on {offending:?}");
    }
}

#[test]
fn pure_crates_never_read_the_clock_or_touch_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for krate in PURE {
        let mut stack = vec![root.join("crates").join(krate).join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for needle in FORBIDDEN_TEXT {
                        assert!(!text.contains(needle), "{} contains `{needle}`", path.display());
                    }
                }
            }
        }
    }
}

#[test]
fn every_source_file_starts_with_a_header() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.starts_with("//!"), "{} has no //! header", path.display());
            }
        }
    }
}
