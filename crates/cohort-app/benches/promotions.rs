//! Criterion benchmarks of promotion decisions: catalogs of 200 enabled promotions of
//! every kind (subtotal, category, attribute and first-order conditions; scopes,
//! exclusive and `with` combinations, codes, budgets), compiled once; then the
//! calculation of a 20-line basket for a customer in 10 segments, and the product lookup.
//!
//! Two catalogs: `open`, where most promotions target everyone or the customer's
//! segments (a stress case: dozens apply and take nearly the whole basket), and
//! `targeted`, where targets spread over 100 segments and 100 customers as in a shop
//! with many campaigns (a handful apply).
//!
//! Run: `cargo bench -p cohort-app --bench promotions`

use std::collections::HashMap;
use std::hint::black_box;

use cohort_app::promotions::parse_promotion;
use cohort_core::promotion::DiscountKind;
use cohort_core::{
    ApplicationId, AttributeName, AttributeValue, Attributes, Basket, Currency, CustomerId, Decimal, OrderItem,
    Promotion, PromotionId, QualifiedSegment, Timestamp,
};
use cohort_engine::promotion::{Availability, CodeState, CodeUse, EnteredCode};
use cohort_engine::{Catalog, Context, ProductQuery, calculate, product_promotions};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const PROMOTIONS: usize = 200;
const LINES: usize = 20;
const HELD_SEGMENTS: usize = 10;

fn discount(kind: DiscountKind, i: usize) -> Value {
    let name = kind.as_str();
    match kind {
        DiscountKind::ItemPercentOff | DiscountKind::ShippingPercentOff | DiscountKind::OrderPercentOff => {
            json!({"kind": name, "percent": format!("{}", 1 + i % 20)})
        }
        DiscountKind::ItemAmountOff | DiscountKind::ShippingAmountOff | DiscountKind::OrderAmountOff => {
            json!({"kind": name, "amount": format!("{}.50", 1 + i % 5)})
        }
        DiscountKind::ItemTargetPrice | DiscountKind::ShippingTargetPrice => {
            json!({"kind": name, "price": format!("{}.99", 5 + i % 30)})
        }
        DiscountKind::Gift => json!({"kind": name, "sku": format!("GIFT-{i}")}),
    }
}

/// Two segments of a pool of `pool`, spread by `i`.
fn segments(i: usize, pool: usize) -> Value {
    json!([
        format!("standard/tier/s{}", (i * 7) % pool),
        format!("crm/s{}", (i * 3) % pool)
    ])
}

fn promotion(i: usize, targeted: bool) -> Promotion {
    let kind = DiscountKind::ALL[i % DiscountKind::ALL.len()];
    let target = match (targeted, i % 10) {
        (false, 0..=3) | (true, 0) => json!("everyone"),
        (false, 4 | 5) => json!({"customers": (0..20).map(|c| format!("C{}", (i + c * 7) % 100)).collect::<Vec<_>>()}),
        (true, 1..=3) => {
            json!({"customers": (0..5).map(|c| format!("C{}", (i * 13 + c * 29) % 100)).collect::<Vec<_>>()})
        }
        (false, _) => json!({"segments": segments(i, 50)}),
        (true, _) => json!({"segments": segments(i, 100)}),
    };
    let conditions = match i % 4 {
        0 => json!({"all": []}),
        1 => json!({"subtotal": ">=", "value": format!("{}", (i * 5) % 400)}),
        2 => json!({"all": [
            {"category": format!("cat{}", i % 20), "quantity": ">=", "value": 1},
            {"attribute": "country", "op": "=", "value": "FR"}
        ]}),
        _ => json!({"any": [{"first_order": true}, {"attribute": "age", "op": ">=", "value": 30}]}),
    };
    let products = match i % 3 {
        0 => json!({}),
        1 => json!({"include_categories": [format!("cat{}", i % 20), format!("cat{}", (i + 5) % 20)]}),
        _ => json!({"exclude_skus": [format!("SKU-{}", i % LINES)]}),
    };
    let combination = if i.is_multiple_of(25) {
        json!("exclusive")
    } else if i.is_multiple_of(7) {
        let partners: Vec<usize> = [3, 5, 8].into_iter().filter(|p| *p != i + 1).collect();
        json!({"with": {"kinds": ["item_percent_off", "order_percent_off", "gift"], "promotions": partners}})
    } else {
        json!("all")
    };
    let definition = json!({
        "id": i + 1,
        "name": format!("Promotion {i}"),
        "applications": ["shop"],
        "starts_at": format!("2026-0{}-01T00:00:00Z", 1 + i % 5),
        "currency": "EUR",
        "budget": if i.is_multiple_of(13) && kind != DiscountKind::Gift { json!("1000.00") } else { Value::Null },
        "priority": if i.is_multiple_of(17) { json!(1500) } else { Value::Null },
        "combination": combination,
        "applies_to_discounted": i.is_multiple_of(2),
        "target": target,
        "conditions": conditions,
        "products": products,
        "discount": discount(kind, i),
        "requires_code": i.is_multiple_of(11),
    });
    parse_promotion(&definition).expect("a bench promotion is valid")
}

fn basket() -> Basket {
    let eur = Currency::parse("currency", "EUR").unwrap();
    let items = (0..LINES)
        .map(|j| {
            let categories = vec![format!("cat{}", j % 20), format!("cat{}", (j * 3) % 20)];
            let price = Decimal::new(1000 + j as i64 * 350, 2);
            OrderItem::new("item", &format!("SKU-{j}"), 1 + (j % 3) as i64, price, categories).unwrap()
        })
        .collect();
    Basket::new(eur, items, Decimal::new(490, 2)).unwrap()
}

struct Facts {
    catalog: Catalog,
    definitions: Vec<Promotion>,
    application: ApplicationId,
    customer: CustomerId,
    attributes: Attributes,
    segments: Vec<QualifiedSegment>,
    availability: Availability,
    codes: Vec<EnteredCode>,
    spent: HashMap<PromotionId, Decimal>,
}

fn facts(targeted: bool) -> Facts {
    let definitions: Vec<Promotion> = (0..PROMOTIONS).map(|i| promotion(i, targeted)).collect();
    let mut attributes = Attributes::new();
    attributes.insert(
        AttributeName::parse("a", "country").unwrap(),
        AttributeValue::String("FR".into()),
    );
    attributes.insert(AttributeName::parse("a", "age").unwrap(), AttributeValue::Number(35.0));
    let segment = |s: String| QualifiedSegment::parse("s", &s).unwrap();
    let available = (0..100)
        .flat_map(|s| [format!("standard/tier/s{s}"), format!("crm/s{s}")])
        .map(segment)
        .collect();
    let catalog = Catalog::compile(definitions.clone(), &HashMap::new()).unwrap();
    let availability = catalog.availability(&available);
    Facts {
        catalog,
        definitions,
        application: ApplicationId::parse("a", "shop").unwrap(),
        customer: CustomerId::parse("c", "C42").unwrap(),
        attributes,
        segments: (0..HELD_SEGMENTS)
            .map(|s| segment(format!("standard/tier/s{s}")))
            .collect(),
        availability,
        codes: vec![EnteredCode {
            code: "WELCOME".into(),
            state: CodeState::Found(CodeUse {
                promotion: PromotionId::new(12),
                expires_at: None,
                max_uses: Some(1000),
                used: 10,
                max_uses_per_customer: Some(1),
                used_by_customer: 0,
            }),
        }],
        spent: (0..PROMOTIONS)
            .step_by(13)
            .map(|i| (PromotionId::new(i as i64 + 1), Decimal::from(500)))
            .collect(),
    }
}

fn context(f: &Facts) -> Context<'_> {
    Context {
        now: Timestamp::parse("now", "2026-06-15T12:00:00Z").unwrap(),
        application: &f.application,
        customer: Some(&f.customer),
        attributes: &f.attributes,
        previous_orders: Some(3),
        segments: &f.segments,
        availability: &f.availability,
        unanswered: &[],
        codes: &f.codes,
        spent: &f.spent,
    }
}

fn promotions(c: &mut Criterion) {
    let basket = basket();
    let mut group = c.benchmark_group("promotions");
    for (name, targeted) in [("open", false), ("targeted", true)] {
        let f = facts(targeted);
        let ctx = context(&f);
        let sample = calculate(&f.catalog, &ctx, &basket);
        println!(
            "{name}: {PROMOTIONS} promotions, {LINES} lines, {HELD_SEGMENTS} segments: {} applied, {} not applied, discount {} of {}",
            sample.applied.len(),
            sample.not_applied.len(),
            sample.discount(),
            sample.subtotal + sample.shipping
        );
        let priorities = HashMap::new();
        group.bench_function(format!("{name}: compile 200 promotions"), |b| {
            b.iter(|| Catalog::compile(black_box(f.definitions.clone()), &priorities).unwrap())
        });
        group.bench_function(
            format!("{name}: calculate 20 lines, 200 promotions, 10 segments"),
            |b| b.iter(|| calculate(black_box(&f.catalog), black_box(&ctx), black_box(&basket))),
        );
        let categories = vec!["cat3".to_owned(), "cat9".to_owned()];
        let query = ProductQuery {
            sku: "SKU-3",
            categories: &categories,
            currency: basket.currency(),
        };
        group.bench_function(format!("{name}: product lookup, 200 promotions"), |b| {
            b.iter(|| product_promotions(black_box(&f.catalog), black_box(&ctx), black_box(&query)))
        });
    }
    group.finish();
}

criterion_group!(benches, promotions);
criterion_main!(benches);
