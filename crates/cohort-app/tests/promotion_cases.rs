//! Promotion decisions, as data: every case in `tests/cases/promotions.json` is a set of
//! promotion definitions (the JSON format of `cohort_app::promotions`), a time, an
//! application (default `shop`) with optional type priorities, a customer (id or
//! anonymous, attributes, previous orders, segments as the provider returned them,
//! segments available in the application, services that did not answer), entered codes
//! as looked up, spent budgets, and a basket or a product to look up — with partial
//! expectations; or the field a refused definition names (`error`, optional `reason`
//! prefix).
//!
//! `available_segments` defaults, when absent, to every segment the customer holds or a
//! promotion targets (an application providing everything asked about); a case about
//! stale segments states the list. A basket the core refuses (money finer than the
//! currency's minor unit) is expected with `basket_error`, the field it names.
//!
//! `unavailable` expects the assigned segments the application no longer provides, as
//! the catalog lists them. Every calculation is also checked for the invariants: no
//! discount below zero, no line, shipping or total below zero, discounts adding up,
//! lines summing to the totals.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cohort_app::import::attributes_from_json;
use cohort_app::promotions::{parse_promotion, parse_type_priorities};
use cohort_core::{
    ApplicationId, Attributes, Basket, Currency, CustomerId, Decimal, Invalid, OrderItem, Promotion, PromotionId,
    PromotionTarget, QualifiedSegment, ServiceId, Timestamp,
};
use cohort_engine::promotion::{CodeState, CodeUse, EnteredCode};
use cohort_engine::{Calculation, Catalog, Context, ProductQuery, calculate, product_promotions};
use serde_json::{Map, Value};

fn dec(name: &str, value: &Value) -> Decimal {
    match value {
        Value::String(s) => Decimal::from_str(s).unwrap_or_else(|_| panic!("{name}: bad decimal {s}")),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap(),
        other => panic!("{name}: expected a decimal, got {other}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn segments(value: &Value) -> Vec<QualifiedSegment> {
    strings(value)
        .iter()
        .map(|s| QualifiedSegment::parse("segment", s).unwrap())
        .collect()
}

fn time(value: &Value) -> Option<Timestamp> {
    value.as_str().map(|t| Timestamp::parse("time", t).unwrap())
}

fn basket(name: &str, value: &Value) -> Result<Basket, Invalid> {
    let currency = Currency::parse("currency", value["currency"].as_str().unwrap_or("EUR")).unwrap();
    let items = value["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: a basket has items"))
        .iter()
        .enumerate()
        .map(|(i, item)| {
            OrderItem::new(
                &format!("items[{i}]"),
                item["sku"].as_str().unwrap(),
                item["quantity"].as_i64().unwrap_or(1),
                dec(name, &item["unit_price"]),
                strings(&item["categories"]),
            )
            .unwrap()
        })
        .collect();
    let shipping = value.get("shipping").map_or(Decimal::ZERO, |s| dec(name, s));
    Basket::new(currency, items, shipping)
}

fn codes(value: &Value) -> Vec<EnteredCode> {
    let number = |c: &Value, key: &str| c.get(key).and_then(Value::as_u64).map(|n| n as u32);
    value
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| EnteredCode {
            code: c["code"].as_str().unwrap().to_owned(),
            state: match c.get("promotion").and_then(Value::as_i64) {
                None => CodeState::Unknown,
                Some(id) => CodeState::Found(CodeUse {
                    promotion: PromotionId::new(id),
                    expires_at: time(&c["expires_at"]),
                    max_uses: number(c, "max_uses"),
                    used: number(c, "used").unwrap_or(0),
                    max_uses_per_customer: number(c, "max_uses_per_customer"),
                    used_by_customer: number(c, "used_by_customer").unwrap_or(0),
                }),
            },
        })
        .collect()
}

fn ids(value: &Value) -> Vec<i64> {
    value.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()
}

fn by_id<'a>(name: &str, value: &'a Value) -> impl Iterator<Item = (PromotionId, &'a Value)> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{name}: expected an object by promotion id"))
        .iter()
        .map(|(id, v)| (PromotionId::new(id.parse().unwrap()), v))
}

/// Promotions parsed and compiled, or the error a refused definition (or a catalog of
/// them, `[i].field`) gives.
fn catalog(case: &Value) -> Result<(Catalog, Vec<Promotion>), Invalid> {
    let promotions = case["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(parse_promotion)
        .collect::<Result<Vec<_>, _>>()?;
    let mut priorities = HashMap::new();
    if let Some(tables) = case.get("type_priorities").and_then(Value::as_object) {
        for (application, table) in tables {
            let application = ApplicationId::parse("application", application).unwrap();
            priorities.insert(application, parse_type_priorities(table)?);
        }
    }
    Catalog::compile(promotions.clone(), &priorities).map(|c| (c, promotions))
}

fn check_invariants(name: &str, c: &Calculation) {
    let zero = Decimal::ZERO;
    for (i, line) in c.lines.iter().enumerate() {
        assert!(line.total >= zero && line.discount >= zero, "{name}: line {line:?}");
        assert_eq!(line.subtotal - line.discount, line.total, "{name}: line {line:?}");
        let taken: Decimal = c.discounts_of(i).map(|d| d.amount).sum();
        assert_eq!(taken, line.discount, "{name}: line discounts add up");
    }
    assert!(
        c.line_discounts.iter().all(|d| d.amount > zero),
        "{name}: empty line discounts"
    );
    assert!(c.shipping_total >= zero && c.total >= zero, "{name}: totals below zero");
    let lines: Decimal = c.lines.iter().map(|l| l.total).sum();
    let discounts: Decimal = c.lines.iter().map(|l| l.discount).sum();
    assert_eq!(discounts, c.item_discount + c.order_discount, "{name}: line discounts");
    assert_eq!(lines + c.shipping_total, c.total, "{name}: total");
    assert_eq!(c.shipping - c.shipping_discount, c.shipping_total, "{name}: shipping");
    assert!(
        c.shipping_discount >= zero && c.shipping_total <= c.shipping,
        "{name}: shipping discount"
    );
    assert!(
        c.applied.iter().all(|a| a.amount >= zero),
        "{name}: applied amounts below zero"
    );
    let applied: Decimal = c.applied.iter().map(|a| a.amount).sum();
    assert_eq!(applied, c.discount(), "{name}: applied amounts");
}

fn check_calculation(name: &str, c: &Calculation, expect: &Value) {
    check_invariants(name, c);
    let got: Vec<i64> = c.applied.iter().map(|a| a.promotion.get()).collect();
    if let Some(applied) = expect.get("applied") {
        let reasons: Vec<String> = c
            .not_applied
            .iter()
            .map(|n| format!("{}: {}", n.promotion, n.reason))
            .collect();
        assert_eq!(got, ids(applied), "{name}: applied (not applied: {reasons:?})");
    }
    if let Some(reasons) = expect.get("reasons") {
        for (id, code) in by_id(name, reasons) {
            let reason = c
                .reason(id)
                .unwrap_or_else(|| panic!("{name}: no reason for {id}, applied {got:?}"));
            assert_eq!(
                reason.code(),
                code.as_str().unwrap(),
                "{name}: reason of {id}: {reason}"
            );
        }
    }
    if let Some(texts) = expect.get("reason_texts") {
        for (id, text) in by_id(name, texts) {
            let reason = c.reason(id).unwrap_or_else(|| panic!("{name}: no reason for {id}"));
            assert_eq!(
                reason.to_string(),
                text.as_str().unwrap(),
                "{name}: reason text of {id}"
            );
        }
    }
    if let Some(absent) = expect.get("not_considered") {
        for id in ids(absent) {
            let id = PromotionId::new(id);
            assert!(
                c.reason(id).is_none() && !c.applied.iter().any(|a| a.promotion == id),
                "{name}: {id} was considered"
            );
        }
    }
    if let Some(amounts) = expect.get("amounts") {
        for (id, amount) in by_id(name, amounts) {
            let applied = c.applied.iter().find(|a| a.promotion == id);
            let applied = applied.unwrap_or_else(|| panic!("{name}: {id} did not apply"));
            assert_eq!(applied.amount, dec(name, amount), "{name}: amount of {id}");
        }
    }
    if let Some(used) = expect.get("codes_used") {
        for (id, code) in by_id(name, used) {
            let applied = c.applied.iter().find(|a| a.promotion == id).unwrap();
            assert_eq!(applied.code.as_deref(), code.as_str(), "{name}: code used by {id}");
        }
    }
    if let Some(totals) = expect.get("totals").and_then(Value::as_object) {
        for (key, value) in totals {
            let got = match key.as_str() {
                "subtotal" => c.subtotal,
                "item_discount" => c.item_discount,
                "order_discount" => c.order_discount,
                "shipping" => c.shipping,
                "shipping_discount" => c.shipping_discount,
                "shipping_total" => c.shipping_total,
                "total" => c.total,
                other => panic!("{name}: unknown total {other}"),
            };
            assert_eq!(got, dec(name, value), "{name}: {key}");
        }
    }
    if let Some(lines) = expect.get("lines").and_then(Value::as_array) {
        assert_eq!(lines.len(), c.lines.len(), "{name}: expected every line");
        for (i, (want, line)) in lines.iter().zip(&c.lines).enumerate() {
            if let Some(d) = want.get("discount") {
                assert_eq!(line.discount, dec(name, d), "{name}: line {i} discount");
            }
            if let Some(t) = want.get("total") {
                assert_eq!(line.total, dec(name, t), "{name}: line {i} total");
            }
            if let Some(by) = want.get("by") {
                let got: Vec<(i64, Decimal)> = c.discounts_of(i).map(|d| (d.promotion.get(), d.amount)).collect();
                let want: Vec<(i64, Decimal)> = by_id(name, by).map(|(id, a)| (id.get(), dec(name, a))).collect();
                assert_eq!(got, want, "{name}: line {i} discounts");
            }
        }
    }
    if let Some(gifts) = expect.get("gifts").and_then(Value::as_array) {
        let got: Vec<(i64, &str, u32)> = c
            .gifts
            .iter()
            .map(|g| (g.promotion.get(), g.sku.as_str(), g.quantity))
            .collect();
        let want: Vec<(i64, &str, u32)> = gifts
            .iter()
            .map(|g| {
                let quantity = g["quantity"].as_u64().unwrap() as u32;
                (g["promotion"].as_i64().unwrap(), g["sku"].as_str().unwrap(), quantity)
            })
            .collect();
        assert_eq!(got, want, "{name}: gifts");
    }
    if let Some(statuses) = expect.get("codes").and_then(Value::as_object) {
        for (code, status) in statuses {
            let result = c.codes.iter().find(|r| &r.code == code);
            let result = result.unwrap_or_else(|| panic!("{name}: no status for code {code}"));
            assert_eq!(result.status.code(), status.as_str().unwrap(), "{name}: code {code}");
        }
    }
}

fn check(case: &Value) {
    let name = case["name"].as_str().expect("every case has a name");
    let compiled = catalog(case);
    if let Some(field) = case.get("error") {
        let err = compiled.err().unwrap_or_else(|| panic!("{name}: expected an error"));
        assert_eq!(err.field, field.as_str().unwrap(), "{name}: {err}");
        if let Some(reason) = case.get("reason") {
            assert!(err.reason.starts_with(reason.as_str().unwrap()), "{name}: {err}");
        }
        return;
    }
    let (catalog, promotions) = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
    let now = Timestamp::parse("now", case["now"].as_str().unwrap_or("2026-06-01T12:00:00Z")).unwrap();
    let application = ApplicationId::parse("application", case["application"].as_str().unwrap_or("shop")).unwrap();
    let customer = &case["customer"];
    let customer_id = customer["id"].as_str().map(|c| CustomerId::parse("id", c).unwrap());
    let attributes: Attributes = match customer["attributes"].as_object() {
        Some(map) => attributes_from_json(map).unwrap(),
        None => attributes_from_json(&Map::new()).unwrap(),
    };
    let held = segments(&customer["segments"]);
    let available: HashSet<QualifiedSegment> = match case.get("available_segments") {
        Some(list) => segments(list).into_iter().collect(),
        None => {
            let targeted = promotions.iter().filter_map(|p| match &p.target {
                PromotionTarget::Segments(s) => Some(s.iter().cloned()),
                _ => None,
            });
            held.iter().cloned().chain(targeted.flatten()).collect()
        }
    };
    let unanswered: Vec<ServiceId> = strings(&case["unanswered"])
        .iter()
        .map(|s| ServiceId::parse("service", s).unwrap())
        .collect();
    let entered = codes(&case["codes"]);
    let spent: HashMap<PromotionId, Decimal> = case
        .get("spent")
        .map(|s| by_id(name, s).map(|(id, v)| (id, dec(name, v))).collect())
        .unwrap_or_default();
    let availability = catalog.availability(&available);
    let ctx = Context {
        now,
        application: &application,
        customer: customer_id.as_ref(),
        attributes: &attributes,
        previous_orders: customer["previous_orders"].as_u64().map(|n| n as u32),
        segments: &held,
        availability: &availability,
        unanswered: &unanswered,
        codes: &entered,
        spent: &spent,
    };
    let expect = &case["expect"];
    if let Some(unavailable) = expect.get("unavailable") {
        let mut got: Vec<(i64, String)> = catalog
            .unavailable_segments(&application, &available)
            .into_iter()
            .map(|(id, s)| (id.get(), s.to_string()))
            .collect();
        got.sort();
        let want: Vec<(i64, String)> = by_id(name, unavailable)
            .flat_map(|(id, list)| strings(list).into_iter().map(move |s| (id.get(), s)))
            .collect();
        assert_eq!(got, want, "{name}: unavailable segments");
    }
    let mut checked = false;
    if let Some(b) = case.get("basket") {
        let basket = match (basket(name, b), case.get("basket_error")) {
            (Ok(basket), None) => basket,
            (Err(err), Some(field)) => {
                assert_eq!(err.field, field.as_str().unwrap(), "{name}: {err}");
                return;
            }
            (Ok(_), Some(_)) => panic!("{name}: expected the basket to be refused"),
            (Err(err), None) => panic!("{name}: basket refused: {err}"),
        };
        let calculation = calculate(&catalog, &ctx, &basket);
        check_calculation(name, &calculation, expect);
        checked = true;
    }
    if let Some(lookup) = case.get("lookup") {
        let categories = strings(&lookup["categories"]);
        let query = ProductQuery {
            sku: lookup["sku"].as_str().unwrap(),
            categories: &categories,
            currency: Currency::parse("currency", lookup["currency"].as_str().unwrap_or("EUR")).unwrap(),
        };
        let offers = product_promotions(&catalog, &ctx, &query);
        let got: Vec<Value> = offers
            .iter()
            .map(|o| {
                serde_json::json!({
                    "id": o.promotion.id.get(),
                    "depends_on_basket": o.depends_on_basket,
                    "requires_code": o.requires_code,
                })
            })
            .collect();
        assert_eq!(Value::Array(got), expect["offers"], "{name}: offers");
        checked = true;
    }
    assert!(checked, "{name}: a case has a basket, a lookup or an error");
}

#[test]
fn every_promotion_case_holds() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/promotions.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 60, "the case file is read");
    let mut names = HashSet::new();
    let mut failed = Vec::new();
    for case in &cases {
        assert!(names.insert(case["name"].as_str().unwrap()), "case names are unique");
        if std::panic::catch_unwind(|| check(case)).is_err() {
            failed.push(case["name"].as_str().unwrap());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:#?}",
        failed.len(),
        cases.len()
    );
}
