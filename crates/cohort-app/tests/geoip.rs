//! Locations from IP addresses, checked against MaxMind's public test databases
//! (`tests/data/maxmind/`, from the MaxMind-DB repository's test data): every network
//! of the City test database's JSON source is looked up by its first address and must
//! give the source's country and coordinates; and a country rule decides on it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use cohort_app::targeting::geo::Geo;
use cohort_core::targeting::{RuleId, VisitorState};
use cohort_core::{TargetGroupId, Timestamp};
use cohort_engine::targeting::{Device, GroupInfo, Hit, Targeting};
use serde_json::{Value, json};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/maxmind")
        .join(file)
}

/// The first address of a network written as the source writes it: IPv6, IPv4, or
/// IPv4 inside IPv6 (`::81.2.69.160/123`, which IPv4 lookups reach).
fn first_address(network: &str) -> IpAddr {
    let address = network.split('/').next().expect("an address");
    match address.strip_prefix("::") {
        Some(v4) if v4.contains('.') => IpAddr::V4(v4.parse::<Ipv4Addr>().expect("IPv4")),
        _ => address.parse().expect("an address"),
    }
}

#[test]
fn every_network_of_the_city_test_database_has_its_country_and_coordinates() {
    let geo = Geo::open(&data("GeoIP2-City-Test.mmdb")).expect("the test database opens");
    let source: Vec<BTreeMap<String, Value>> =
        serde_json::from_str(&std::fs::read_to_string(data("GeoIP2-City-Test.json")).unwrap()).unwrap();
    // A network listed twice keeps its last record, as in the database.
    let networks: HashMap<&String, &Value> = source.iter().flat_map(|entry| entry.iter()).collect();
    assert!(networks.len() > 200, "{} networks", networks.len());
    let mut checked = 0;
    for (network, record) in &networks {
        let found = geo.locate(first_address(network));
        let country = record["country"]["iso_code"].as_str().map(str::to_owned);
        let coordinates = record["location"]["latitude"]
            .as_f64()
            .zip(record["location"]["longitude"].as_f64());
        assert_eq!((found.country, found.coordinates), (country, coordinates), "{network}");
        checked += 1;
    }
    assert_eq!(checked, networks.len());
}

#[test]
fn unknown_and_private_addresses_have_no_location() {
    let geo = Geo::open(&data("GeoIP2-City-Test.mmdb")).unwrap();
    for address in ["10.0.0.1", "127.0.0.1", "::1"] {
        let found = geo.locate(address.parse().unwrap());
        assert_eq!((found.country, found.coordinates), (None, None), "{address}");
    }
}

#[test]
fn a_country_database_gives_the_country_without_coordinates() {
    let geo = Geo::open(&data("GeoIP2-Country-Test.mmdb")).unwrap();
    let found = geo.locate("81.2.69.160".parse().unwrap());
    assert_eq!((found.country.as_deref(), found.coordinates), (Some("GB"), None));
}

#[test]
fn a_file_that_is_no_database_is_refused_with_its_path() {
    let error = Geo::open(&data("GeoIP2-City-Test.json")).err().expect("refused");
    assert!(error.contains("GeoIP2-City-Test.json"), "{error}");
}

#[test]
fn country_and_geopoint_rules_decide_on_the_located_address() {
    let geo = Geo::open(&data("GeoIP2-City-Test.mmdb")).unwrap();
    let rules = [
        json!({"name": "UK", "conditions": {"country": "GB"}}),
        json!({"name": "near London", "conditions": {"geopoint": {"latitude": 51.5, "longitude": -0.12, "radius_km": 50}}}),
        json!({"name": "Sweden", "conditions": {"country": "SE"}}),
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| cohort_app::targeting::parse_rule(RuleId::new(i as i64 + 1), v).unwrap())
    .collect();
    let groups: HashMap<TargetGroupId, GroupInfo> = HashMap::new();
    let targeting = Targeting::compile(rules, groups, 30 * 60 * 1_000_000).unwrap();
    let device = Device::default();
    let fired = |ip: &str| {
        let location = geo.locate(ip.parse().unwrap());
        let hit = Hit {
            now: Timestamp::from_unix_micros(0),
            url: "https://shop.example/",
            referrer: None,
            device: &device,
            location: &location,
            languages: &[],
            customer: None,
            page_segments: &[],
        };
        let decision = targeting.decide(&mut VisitorState::new(hit.now), &hit, false);
        decision.fired.iter().map(|r| r.get()).collect::<Vec<_>>()
    };
    assert_eq!(fired("81.2.69.160"), [1, 2], "London");
    assert_eq!(fired("2.125.160.216"), [1], "Oxford: the UK, 80 km from London");
    assert_eq!(fired("89.160.20.130"), [3], "Linköping");
    assert!(fired("10.0.0.1").is_empty());
}
