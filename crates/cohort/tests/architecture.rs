//! Architecture invariants, checked rather than only written down.
//!
//! Architecture Invariant: the pure crates (cohort-core) depend on no I/O, async,
//! database, HTTP or JSON crate, and their sources never read the clock, a random
//! source, the file system or the network.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PURE: &[&str] = &["cohort-core"];
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

fn metadata() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints json")
}

/// Names of every package `root` depends on at build or run time (not dev).
fn normal_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = names
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .expect("the crate is in the workspace");
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(names[dep_id].to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn pure_crates_depend_on_no_io_async_or_json_crate() {
    let meta = metadata();
    for krate in PURE {
        let closure = normal_closure(&meta, krate);
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
