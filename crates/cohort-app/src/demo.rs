//! The demo data set: two storefronts, several thousand customers with plausible
//! attributes and orders, segments by loyalty tier and interests (standard service),
//! calculated by builders (age group, country, RFM scores, engagement conditions), and
//! value segments pushed by a CRM (an import service active in the EU shop only), so a
//! new user sees something real at once. Deterministic (seeded).

use std::collections::HashMap;

use cohort_core::customer::CustomerUpsert;
use cohort_core::segment::{NewSegment, NewSegmentGroup};
use cohort_core::target_group::NewTargetGroup;
use cohort_core::{
    Activity, ActivityId, ActivityType, Application, ApplicationId, AttributeName, AttributeValue, Attributes,
    Currency, CustomerId, Decimal, MembershipSource, Name, NameFilter, Order, Origin, PageRequest, ReferenceKey,
    Segment, SegmentAdd, SegmentChange, SegmentGroupId, Threshold, Timestamp,
};
use cohort_core::{SegmentationService, ServiceId, ServiceKind};
use cohort_store::{ImportMode, ImportedMembership, Store, StoreResult};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use time::Duration;

use crate::App;
use crate::building::Silent;

/// Customers in the demo data set.
pub const CUSTOMERS: usize = 5_000;

const FIRST: &[&str] = &[
    "Anna", "Louis", "Emma", "Jonas", "Chiara", "Lucas", "Sofia", "Noah", "Lea", "Marco", "Clara", "Paul", "Eva",
    "Hugo", "Mia", "Felix",
];
const LAST: &[&str] = &[
    "Martin", "Müller", "Rossi", "Bernard", "Schmid", "García", "Dubois", "Huber", "Smith", "Bianchi", "Weber",
    "Moreau", "Keller", "López",
];
const COUNTRIES: &[(&str, &str, &[&str])] = &[
    ("FR", "France", &["Paris", "Lyon", "Grenoble", "Annecy"]),
    ("DE", "Germany", &["München", "Berlin", "Hamburg", "Freiburg"]),
    ("AT", "Austria", &["Wien", "Innsbruck", "Salzburg", "Graz"]),
    ("CH", "Switzerland", &["Zürich", "Bern", "Luzern", "Davos"]),
    ("IT", "Italy", &["Milano", "Torino", "Bolzano", "Roma"]),
    (
        "GB",
        "United Kingdom",
        &["London", "Manchester", "Edinburgh", "Bristol"],
    ),
];
const TIERS: &[(&str, u32)] = &[("bronze", 55), ("silver", 28), ("gold", 13), ("platinum", 4)];
const INTERESTS: &[&str] = &["skiing", "cycling", "running", "hiking", "swimming", "yoga"];
const AGE_GROUPS: &[(&str, &str, i32, i32)] = &[
    ("18-24", "Age 18–24", 18, 24),
    ("25-34", "Age 25–34", 25, 34),
    ("35-44", "Age 35–44", 35, 44),
    ("45-54", "Age 45–54", 45, 54),
    ("55-64", "Age 55–64", 55, 64),
    ("65-plus", "Age 65+", 65, 200),
];

/// A demo group: reference, name, calculated, exclusive, segments as (reference, name).
type GroupSpec = (&'static str, &'static str, bool, bool, Vec<(String, String)>);

/// What `load` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    Loaded {
        customers: usize,
        segments: usize,
    },
    /// The store already had applications: nothing was changed.
    AlreadyPopulated,
}

fn name(text: &str) -> Name {
    Name::parse("name", text).expect("demo names are valid")
}

fn reference(text: &str) -> ReferenceKey {
    ReferenceKey::parse("reference", text).expect("demo references are valid")
}

fn attribute(text: &str) -> AttributeName {
    AttributeName::parse("attribute", text).expect("demo attribute names are valid")
}

/// Loads the demo data set into an empty store.
pub async fn load(app: &App) -> StoreResult<Loaded> {
    let store: &dyn Store = &*app.store;
    let now = app.now();
    if !store
        .list_applications(&NameFilter::default(), PageRequest::first())
        .await?
        .items
        .is_empty()
    {
        return Ok(Loaded::AlreadyPopulated);
    }
    for (id, label, currency, origins) in [
        (
            "web-shop",
            "Web shop (EU)",
            "EUR",
            &["http://localhost:8080", "http://127.0.0.1:8080"][..],
        ),
        ("uk-shop", "Web shop (UK)", "GBP", &["http://localhost:8081"][..]),
    ] {
        store
            .create_application(&Application {
                id: ApplicationId::parse("id", id).expect("demo id"),
                name: name(label),
                default_currency: Currency::parse("currency", currency).expect("demo currency"),
                allowed_origins: origins
                    .iter()
                    .map(|o| Origin::parse("origin", o).expect("demo origin"))
                    .collect(),
                enabled: true,
            })
            .await?;
    }

    let mut segments: HashMap<(&str, String), Segment> = HashMap::new();
    // (reference, name, calculated, exclusive, its segments as (reference, name))
    let groups: [GroupSpec; 6] = [
        (
            "age-group",
            "Age group",
            true,
            true,
            AGE_GROUPS
                .iter()
                .map(|(r, label, ..)| (r.to_string(), label.to_string()))
                .collect(),
        ),
        (
            "country",
            "Country",
            true,
            true,
            COUNTRIES
                .iter()
                .map(|(c, n, _)| (c.to_lowercase(), n.to_string()))
                .collect(),
        ),
        (
            "loyalty-tier",
            "Loyalty tier",
            false,
            true,
            TIERS.iter().map(|(t, _)| (t.to_string(), capitalized(t))).collect(),
        ),
        (
            "interests",
            "Interests",
            false,
            false,
            INTERESTS.iter().map(|i| (i.to_string(), capitalized(i))).collect(),
        ),
        ("rfm", "RFM scores", true, false, Vec::new()),
        (
            "engagement",
            "Engagement",
            true,
            false,
            vec![
                ("lapsed".into(), "Lapsed buyers".into()),
                ("winter-regular".into(), "Winter sports regulars".into()),
            ],
        ),
    ];
    let mut group_ids: HashMap<&str, SegmentGroupId> = HashMap::new();
    for (group_ref, group_name, calculated, exclusive, members) in groups {
        let new_group = NewSegmentGroup {
            service: cohort_core::ServiceId::standard(),
            name: name(group_name),
            reference: reference(group_ref),
            calculated,
            exclusive,
        };
        let group = store.create_segment_group(&new_group).await?;
        group_ids.insert(group_ref, group.id);
        for (seg_ref, seg_name) in members {
            let new = NewSegment {
                group: group.id,
                name: name(&seg_name),
                reference: reference(&seg_ref),
                calculated,
            };
            segments.insert((group_ref, seg_ref), store.create_segment(&new).await?);
        }
    }
    for (label, threshold) in [
        ("Winter sports fans", 3),
        ("Outdoor families", 1),
        ("Bargain hunters", 2),
    ] {
        let new = NewTargetGroup {
            name: name(label),
            threshold: Threshold::parse("threshold", threshold).expect("demo"),
            active: true,
        };
        store.create_target_group(&new).await?;
    }
    targeting(app, &segments).await?;

    let mut rng = StdRng::seed_from_u64(0xC0FFEE);
    let people: Vec<Person> = (0..CUSTOMERS).map(|i| Person::random(i, &mut rng, now)).collect();
    let mut import = store.import_customers().await?;
    let lines: Vec<CustomerUpsert> = people.iter().map(Person::upsert).collect();
    for batch in lines.chunks(1_000) {
        import.write(batch, now).await?;
    }
    import.commit().await?;

    for person in &people {
        let mut add = Vec::new();
        let mut push = |group: &str, seg: &str, source| {
            let segment = &segments[&(group, seg.to_owned())];
            add.push(SegmentAdd {
                segment: segment.id,
                source,
                expires_at: None,
            });
        };
        push("loyalty-tier", person.tier, MembershipSource::Manual);
        for interest in &person.interests {
            push("interests", interest, MembershipSource::Tracked);
        }
        let change = SegmentChange::new(add, vec![]).expect("demo segments are distinct");
        store.change_segments(&person.id, &change, now).await?;
    }

    // Orders over the last two years, then the builders computing the calculated groups.
    let mut activities = Vec::new();
    for (i, person) in people.iter().enumerate() {
        for n in 0..person.orders.min(8) {
            let days = rng.random_range(0..730);
            let total = Decimal::new(rng.random_range(1_500..30_000), 2);
            let order = Order::new(total, Currency::parse("c", "EUR").expect("demo"), Vec::new()).expect("demo");
            activities.push(
                Activity::new(
                    ActivityId::parse("id", &format!("demo-{i}-{n}")).expect("demo ids"),
                    person.id.clone(),
                    ActivityType::parse("type", "order").expect("demo"),
                    now.plus_micros(-days * 86_400_000_000),
                    Attributes::new(),
                    Some(order),
                )
                .expect("demo orders are valid"),
            );
        }
    }
    for batch in activities.chunks(5_000) {
        store
            .record_activities(batch, now, cohort_store::Reacting::Reacts)
            .await?;
    }
    for (group, label, definition) in builder_definitions() {
        app.builds
            .create(
                name(label),
                group_ids[group],
                &definition,
                Some("0 3 * * *".into()),
                true,
            )
            .await?;
    }
    app.builds.run_full(None, &Silent).await?;
    let queued = store.queued_for_building(CUSTOMERS as u32 * 2).await?;
    store.built(&queued).await?;

    // A second source: memberships a CRM pushes, used by the EU web shop only.
    let crm = SegmentationService {
        id: ServiceId::parse("id", "crm").expect("demo id"),
        name: name("CRM (imported)"),
        kind: ServiceKind::Import,
        available: true,
    };
    store.create_service(&crm).await?;
    store
        .set_service_active(&ApplicationId::parse("id", "web-shop").expect("demo id"), &crm.id, true)
        .await?;
    let mut lines = Vec::new();
    for person in &people {
        let number = |k: &str| match person.attributes.get(&attribute(k)) {
            Some(AttributeValue::Number(n)) => *n,
            _ => 0.0,
        };
        let mut push = |segment: &str| {
            lines.push(ImportedMembership {
                customer: person.id.clone(),
                group: reference("value"),
                segment: reference(segment),
                remove: false,
                expires_at: None,
            })
        };
        if number("total_spent") >= 3_000.0 {
            push("high-value");
        }
        if number("orders_count") >= 30.0 {
            push("frequent-buyer");
        }
    }
    let imported = store
        .import_memberships(&crm.id, ImportMode::Snapshot, &lines, now)
        .await?;
    for definition in promotion_definitions() {
        app.promotions.create(&definition).await?;
    }
    let ski = app.store.list_promotions().await?;
    if let Some(ski) = ski.iter().find(|p| p.name.as_str() == "Ski week") {
        let spec =
            crate::promotions::codes::CodeSpec::parse("Ski week", Some("SKI10"), None, None, None, Some(1), None)?;
        app.promotions.create_code_group(ski.id, spec).await?;
    }
    // Written straight to the store: what this process kept of services and customers
    // is read again.
    app.segments.services_changed();
    Ok(Loaded::Loaded {
        customers: people.len(),
        segments: segments.len() + imported.segments_created as usize,
    })
}

/// The demo page's target groups (`skiers`, `cyclists`: its hero banner has a variant
/// for each) and rules: a department page gives weight and tracks the interest
/// segment; a returning visitor gets a code snippet.
async fn targeting(app: &App, segments: &HashMap<(&str, String), Segment>) -> StoreResult<()> {
    let mut groups = HashMap::new();
    for label in ["skiers", "cyclists"] {
        let new = NewTargetGroup {
            name: name(label),
            threshold: Threshold::DEFAULT,
            active: true,
        };
        groups.insert(label, app.store.create_target_group(&new).await?.id.get());
    }
    let interest = |reference: &str| segments.get(&("interests", reference.to_owned())).map(|s| s.id.get());
    let mut rules = vec![
        json!({"name": "Ski department", "conditions": {"url": "/demo/[^/]+/ski"},
               "actions": [{"assign_target_group": groups["skiers"]}]}),
        json!({"name": "Bike department", "conditions": {"url": "/demo/[^/]+/bike"},
               "actions": [{"assign_target_group": groups["cyclists"]}]}),
        json!({"name": "Welcome back", "scope": "session",
               "conditions": {"all": [{"url": "/demo/"}, {"visited_pages_before": 3}]},
               "actions": [{"code_snippet": "<p style=\"margin:0;padding:.5rem 2rem;background:#fff3c4\">Welcome back! Free shipping on your next order.</p>",
                            "place": "body", "position": "beginning"}]}),
    ];
    for (index, reference) in ["skiing", "cycling"].into_iter().enumerate() {
        if let Some(segment) = interest(reference) {
            rules[index]["actions"]
                .as_array_mut()
                .expect("actions")
                .push(json!({"track_segment": segment}));
        }
    }
    for rule in rules {
        app.targeting.create_rule(&rule).await?;
    }
    Ok(())
}

/// The demo's promotions: one for a CRM segment (web shop only, where the CRM is
/// active), one for a loyalty tier in both shops, one with a code, one for first orders.
fn promotion_definitions() -> Vec<Value> {
    vec![
        json!({"name": "High value 15%", "description": "For the CRM's high-value customers",
               "applications": ["web-shop"], "currency": "EUR", "budget": "5000.00",
               "target": {"segments": ["crm/value/high-value"]},
               "discount": {"kind": "item_percent_off", "percent": "15"}}),
        json!({"name": "Gold and platinum ship free", "applications": ["web-shop", "uk-shop"],
               "target": {"segments": ["standard/loyalty-tier/gold", "standard/loyalty-tier/platinum"]},
               "discount": {"kind": "shipping_percent_off", "percent": "100"}}),
        json!({"name": "Ski week", "applications": ["web-shop", "uk-shop"], "target": "everyone",
               "requires_code": true, "products": {"include_categories": ["ski"]},
               "discount": {"kind": "item_percent_off", "percent": "10"}}),
        json!({"name": "Welcome", "applications": ["web-shop"], "currency": "EUR", "target": "everyone",
               "conditions": {"all": [{"first_order": true}, {"subtotal": ">=", "value": "50.00"}]},
               "discount": {"kind": "order_amount_off", "amount": "5.00"}, "combination": "exclusive"}),
    ]
}

/// The demo's builders: (group, name, definition).
fn builder_definitions() -> Vec<(&'static str, &'static str, Value)> {
    let ranges: Vec<Value> = AGE_GROUPS
        .iter()
        .map(|(r, _, lo, hi)| match *r {
            "65-plus" => json!({"from": lo, "segment": r}),
            _ => json!({"from": lo, "to": hi, "segment": r}),
        })
        .collect();
    let countries: serde_json::Map<String, Value> = COUNTRIES
        .iter()
        .map(|(code, ..)| (code.to_string(), Value::String(code.to_lowercase())))
        .collect();
    vec![
        (
            "age-group",
            "Age groups",
            json!({"kind": "age_groups", "attribute": "birthdate", "ranges": ranges}),
        ),
        (
            "country",
            "Countries",
            json!({"kind": "attribute_mapping", "attribute": "country", "mapping": countries}),
        ),
        (
            "rfm",
            "RFM",
            json!({"kind": "rfm", "activity": "order", "window_days": 365}),
        ),
        (
            "engagement",
            "Engagement",
            json!({"kind": "conditions", "segments": [
                {"segment": "lapsed", "when": {"all": [
                    {"activity": "order", "op": ">", "value": 0},
                    {"not": {"activity": "order", "window_days": 180, "op": ">", "value": 0}}]}},
                {"segment": "winter-regular", "when": {"all": [
                    {"attribute": "interests", "op": "contains", "value": "skiing"},
                    {"activity": "order", "window_days": 365, "op": ">=", "value": 3}]}}]}),
        ),
    ]
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

struct Person {
    id: CustomerId,
    attributes: Attributes,
    consent: bool,
    orders: u32,
    tier: &'static str,
    interests: Vec<&'static str>,
}

impl Person {
    fn random(i: usize, rng: &mut StdRng, now: Timestamp) -> Self {
        let first = *FIRST.choose(rng).expect("names");
        let last = *LAST.choose(rng).expect("names");
        let (country, _, cities) = *COUNTRIES.choose(rng).expect("countries");
        let city = *cities.choose(rng).expect("cities");
        let age: i32 = 18 + (rng.random::<f64>().powf(1.3) * 62.0) as i32;
        let today = now.to_datetime().date();
        let birthdate = today - Duration::days(i64::from(age) * 365 + rng.random_range(0..365));
        let roll = rng.random_range(0..100);
        let mut acc = 0;
        let tier = TIERS.iter().find(|(_, share)| {
            acc += share;
            roll < acc
        });
        let tier = tier.map_or("bronze", |(t, _)| *t);
        let mut interests: Vec<&str> = INTERESTS.iter().copied().filter(|_| rng.random_bool(0.25)).collect();
        if matches!(country, "AT" | "CH") && !interests.contains(&"skiing") && rng.random_bool(0.5) {
            interests.push("skiing");
        }
        let orders = rng.random_range(0..40u32);
        let mut attributes = Attributes::new();
        let mut set = |k: &str, v: AttributeValue| {
            attributes.insert(attribute(k), v);
        };
        set("first_name", AttributeValue::String(first.into()));
        set("last_name", AttributeValue::String(last.into()));
        set(
            "email",
            AttributeValue::String(format!("{}.{}{}@example.com", first.to_lowercase(), ascii(last), i)),
        );
        set(
            "gender",
            AttributeValue::String(if rng.random_bool(0.5) { "female" } else { "male" }.into()),
        );
        set("birthdate", AttributeValue::Date(birthdate));
        set("country", AttributeValue::String(country.into()));
        set("city", AttributeValue::String(city.into()));
        set(
            "zip",
            AttributeValue::String(format!("{:05}", rng.random_range(1000..99999))),
        );
        set("loyalty_tier", AttributeValue::String(tier.into()));
        set("orders_count", AttributeValue::Number(f64::from(orders)));
        set(
            "total_spent",
            AttributeValue::Number((f64::from(orders) * rng.random_range(20.0..180.0) * 100.0).round() / 100.0),
        );
        set("newsletter", AttributeValue::Bool(rng.random_bool(0.4)));
        set(
            "interests",
            AttributeValue::List(interests.iter().map(|s| AttributeValue::String((*s).into())).collect()),
        );
        Self {
            id: CustomerId::parse("id", &format!("C{:06}", i + 1)).expect("demo ids"),
            attributes,
            consent: rng.random_bool(0.7),
            orders,
            tier,
            interests,
        }
    }

    fn upsert(&self) -> CustomerUpsert {
        CustomerUpsert::new(
            self.id.clone(),
            Some(self.attributes.clone()),
            Some(true),
            Some(self.consent),
        )
        .expect("demo customers are valid")
    }
}

fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'ü' => 'u',
            'í' => 'i',
            'ó' => 'o',
            c => c,
        })
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_lowercase()
}
