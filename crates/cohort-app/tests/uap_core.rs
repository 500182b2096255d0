//! The user-agent parsing behind browser, operating system and platform conditions,
//! checked against every case of uap-core's own test suite (`tests/test_ua.yaml`,
//! `test_os.yaml`, `test_device.yaml`, as shipped with the ua-parser crate cohort
//! builds with), using cohort's vendored copy of the regexes; and the vendored regexes
//! are the ones those cases were written for.

use std::path::{Path, PathBuf};

use cohort_app::targeting::devices::{UAP_CORE_REGEXES, parse};
use serde::Deserialize;

/// uap-core as shipped in the ua-parser crate's package: the version `Cargo.lock`
/// names, unpacked by cargo under `$CARGO_HOME/registry/src/<index>/`.
fn uap_core() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"ua-parser\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("ua-parser in Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registries = std::fs::read_dir(home.join("registry/src")).expect("cargo's unpacked registry sources");
    registries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(format!("ua-parser-{version}/uap-core")))
        .find(|dir| dir.join("regexes.yaml").is_file())
        .unwrap_or_else(|| panic!("ua-parser {version} is not unpacked under {}", home.display()))
}

#[derive(Deserialize)]
struct Cases<T> {
    test_cases: Vec<T>,
}

#[derive(Deserialize)]
struct FamilyCase {
    user_agent_string: String,
    family: String,
}

#[derive(Deserialize)]
struct DeviceCase {
    user_agent_string: String,
    family: String,
    brand: Option<String>,
    model: Option<String>,
}

fn cases<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<T> {
    let path = uap_core().join("tests").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: Cases<T> = serde_norway::from_str(&text).expect("a uap-core test file");
    assert!(
        parsed.test_cases.len() > 100,
        "{file} has only {} cases",
        parsed.test_cases.len()
    );
    parsed.test_cases
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

#[test]
fn the_vendored_regexes_are_the_released_ones() {
    let shipped = std::fs::read_to_string(uap_core().join("regexes.yaml")).expect("uap-core regexes");
    assert!(
        shipped == UAP_CORE_REGEXES,
        "data/uap-core/regexes.yaml differs from the ua-parser crate's copy"
    );
}

/// Every case of a family test file against the family `family` picks from a parse.
fn families_match(file: &str, family: fn(&cohort_app::targeting::devices::Parsed) -> &str) {
    let all: Vec<FamilyCase> = cases(file);
    let wrong: Vec<String> = all
        .iter()
        .filter_map(|c| {
            let parsed = parse(&c.user_agent_string);
            let got = family(&parsed);
            (got != c.family).then(|| format!("{:?}: {got} != {}", c.user_agent_string, c.family))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} differ, e.g. {:?}",
        wrong.len(),
        all.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn browser_families_match_every_uap_core_case() {
    families_match("test_ua.yaml", |p| &p.browser);
}

#[test]
fn operating_system_families_match_every_uap_core_case() {
    families_match("test_os.yaml", |p| &p.os);
}

#[test]
fn devices_match_every_uap_core_case() {
    let all: Vec<DeviceCase> = cases("test_device.yaml");
    let wrong: Vec<String> = all
        .iter()
        .filter_map(|c| {
            let got = parse(&c.user_agent_string);
            let same = got.device == c.family
                && got.brand.as_deref() == non_empty(&c.brand)
                && got.model.as_deref() == non_empty(&c.model);
            (!same).then(|| format!("{:?}: {got:?}", c.user_agent_string))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} differ, e.g. {:?}",
        wrong.len(),
        all.len(),
        &wrong[..wrong.len().min(5)]
    );
}
