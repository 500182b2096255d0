//! Criterion benchmarks of targeting decisions: 100 active rules of 2 to 4 conditions
//! each (URL patterns from a pool of 20, country, browser, platform, language, pages
//! seen, tracked segment counts, target groups; combined with all / any / not), scope
//! `hit`, each with an action that leaves the state alone (so both sides see the same
//! facts and must match the same rules, which is checked); a request whose user agent
//! is already parsed. Side by side, the same conditions as CEL expressions run
//! with cel-interpreter over a context holding the same facts. And where an address
//! is: cohort's lookup (country and coordinates only) beside decoding the whole
//! GeoIP2 City record, on MaxMind's City test database.
//!
//! Run: `cargo bench -p cohort-app --bench targeting`

use std::collections::HashMap;
use std::hint::black_box;

use cel_interpreter::{Context as CelContext, Program};
use cohort_app::targeting::parse_rule;
use cohort_core::targeting::{Platform, RuleId, VisitorState};
use cohort_core::{SegmentId, TargetGroupId, Timestamp};
use cohort_engine::targeting::{Device, GroupInfo, Hit, Location, SESSION_TIMEOUT_MICROS, Targeting};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const RULES: usize = 100;
const COUNTRIES: [&str; 5] = ["FR", "DE", "CH", "AT", "IT"];
const BROWSERS: [&str; 4] = ["chrome", "firefox", "safari", "edge"];
const PLATFORMS: [&str; 3] = ["desktop", "mobile", "tablet"];
const LANGUAGES: [&str; 4] = ["de", "fr", "en", "it"];

/// A condition as cohort's JSON and as CEL, for rule `i`, condition `k`.
fn condition(i: usize, k: usize) -> (Value, String) {
    match (i + k) % 8 {
        0 => {
            let pattern = format!("^https://shop\\.example/(cat{}|landing)/", (i * 7 + k) % 20);
            let cel = format!("url.matches('{}')", pattern.replace('\\', "\\\\"));
            (json!({"url": pattern}), cel)
        }
        1 => {
            let c = COUNTRIES[(i + k) % 5];
            (json!({"country": c}), format!("country == '{c}'"))
        }
        2 => {
            let b = BROWSERS[(i + k) % 4];
            (json!({"browser": b}), format!("browser == '{b}'"))
        }
        3 => {
            let p = PLATFORMS[(i + k) % 3];
            (json!({"platform": p}), format!("platform == '{p}'"))
        }
        4 => {
            let l = LANGUAGES[(i + k) % 4];
            (
                json!({"language": l}),
                format!("languages.exists(x, x == '{l}' || x.startsWith('{l}-'))"),
            )
        }
        5 => {
            let n = (i + k) % 6;
            (json!({"visited_pages_before": n}), format!("pages_before >= {n}"))
        }
        6 => {
            let s = 1 + (i + k) % 10;
            (
                json!({"has_segment": s, "customer": false, "op": ">=", "value": 2}),
                format!("(string({s}) in tracked ? tracked[string({s})] : 0) >= 2"),
            )
        }
        _ => {
            let g = 1 + (i + k) % 5;
            (
                json!({"not": {"target_group": g}}),
                format!("!(string({g}) in groups && groups[string({g})] >= 1)"),
            )
        }
    }
}

fn rules() -> (Vec<Value>, Vec<String>) {
    let mut json_rules = Vec::new();
    let mut cel_rules = Vec::new();
    for i in 0..RULES {
        let count = 2 + i % 3;
        let (leaves, cels): (Vec<Value>, Vec<String>) = (0..count).map(|k| condition(i, k)).unzip();
        let (tree, cel) = if i % 4 == 3 {
            (json!({"any": leaves}), cels.join(" || "))
        } else {
            (json!({"all": leaves}), cels.join(" && "))
        };
        // An action that leaves the visitor's state alone (the visitor is anonymous), so
        // every rule sees the same facts as its CEL twin and the matches can be compared.
        let action = json!({"track_activity": format!("rule_{i}")});
        json_rules.push(json!({"name": format!("rule {i}"), "priority": i, "conditions": tree, "actions": [action]}));
        cel_rules.push(cel);
    }
    (json_rules, cel_rules)
}

fn bench(c: &mut Criterion) {
    let (json_rules, cel_rules) = rules();
    let parsed = json_rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(RuleId::new(i as i64 + 1), r).expect("bench rule"))
        .collect();
    let groups: HashMap<TargetGroupId, GroupInfo> = (1..=5)
        .map(|g| {
            (
                TargetGroupId::new(g),
                GroupInfo {
                    threshold: 1,
                    active: true,
                    linked_segment: None,
                },
            )
        })
        .collect();
    let targeting = Targeting::compile(parsed, groups, SESSION_TIMEOUT_MICROS).expect("bench rules compile");
    let device = Device {
        browser: Some("chrome".into()),
        os: Some("windows".into()),
        platform: Platform::Desktop,
        bot: false,
    };
    let location = Location {
        country: Some("CH".into()),
        coordinates: Some((47.37, 8.54)),
    };
    let languages = vec!["de-ch".to_owned(), "de".to_owned(), "en".to_owned()];
    let now = Timestamp::from_unix_micros(1_790_000_000_000_000);
    let mut state = VisitorState::new(now);
    state.visited_pages = 3;
    state.tracked_segments = (1..=10).map(|s| (SegmentId::new(s), (s % 4) as u32)).collect();
    state.target_groups.insert(TargetGroupId::new(2), 3);
    let url = "https://shop.example/cat7/ski-boots?size=42";
    let hit = Hit {
        now,
        url,
        referrer: Some("https://www.google.ch/search?q=ski"),
        device: &device,
        location: &location,
        languages: &languages,
        customer: None,
        page_segments: &[],
    };
    let fired = targeting.decide(&mut state.clone(), &hit, false).fired.len();

    let programs: Vec<Program> = cel_rules
        .iter()
        .map(|r| Program::compile(r).unwrap_or_else(|e| panic!("{r}: {e}")))
        .collect();
    let cel_decide = |state: &VisitorState| -> usize {
        let mut ctx = CelContext::default();
        ctx.add_variable("url", url).unwrap();
        ctx.add_variable("country", "CH").unwrap();
        ctx.add_variable("browser", "chrome").unwrap();
        ctx.add_variable("platform", "desktop").unwrap();
        ctx.add_variable("languages", languages.clone()).unwrap();
        ctx.add_variable("pages_before", i64::from(state.visited_pages))
            .unwrap();
        let tracked: HashMap<String, i64> = state
            .tracked_segments
            .iter()
            .map(|(s, n)| (s.get().to_string(), i64::from(*n)))
            .collect();
        ctx.add_variable("tracked", tracked).unwrap();
        let groups: HashMap<String, i64> = state
            .target_groups
            .iter()
            .map(|(g, n)| (g.get().to_string(), i64::from(*n)))
            .collect();
        ctx.add_variable("groups", groups).unwrap();
        programs
            .iter()
            .filter(|p| p.execute(&ctx) == Ok(cel_interpreter::Value::Bool(true)))
            .count()
    };
    let cel_fired = cel_decide(&state);
    assert_eq!(fired, cel_fired, "cohort and CEL match the same rules");
    eprintln!("{RULES} rules: {fired} match, in cohort and in CEL");

    let mut group = c.benchmark_group("targeting");
    group.bench_function("decide: 100 rules of 2-4 conditions", |b| {
        b.iter_batched_ref(
            || state.clone(),
            |s| black_box(targeting.decide(s, black_box(&hit), false)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cel-interpreter: the same 100 conditions", |b| {
        b.iter(|| black_box(cel_decide(black_box(&state))))
    });
    group.bench_function("compile 100 rules", |b| {
        b.iter(|| {
            let rules = json_rules
                .iter()
                .enumerate()
                .map(|(i, r)| parse_rule(RuleId::new(i as i64 + 1), r).unwrap())
                .collect();
            black_box(Targeting::compile(rules, HashMap::new(), SESSION_TIMEOUT_MICROS).unwrap())
        })
    });
    group.finish();
}

fn geoip(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/maxmind/GeoIP2-City-Test.mmdb");
    let geo = cohort_app::targeting::geo::Geo::open(&path).unwrap();
    let reader = maxminddb::Reader::open_readfile(&path).unwrap();
    let ip: std::net::IpAddr = "81.2.69.160".parse().unwrap();
    let full = |ip| {
        let city = reader
            .lookup(ip)
            .unwrap()
            .decode::<maxminddb::geoip2::City>()
            .unwrap()
            .unwrap();
        (city.country.iso_code.map(str::to_owned), city.location.latitude)
    };
    assert_eq!(geo.locate(ip).country, full(ip).0, "both read the same record");
    let mut group = c.benchmark_group("geoip");
    group.bench_function("locate: country and coordinates", |b| {
        b.iter(|| black_box(geo.locate(black_box(ip))))
    });
    group.bench_function("decode the whole City record", |b| {
        b.iter(|| black_box(full(black_box(ip))))
    });
    group.finish();
}

criterion_group!(benches, bench, geoip);
criterion_main!(benches);
