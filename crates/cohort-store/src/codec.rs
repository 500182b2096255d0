//! Text encodings of domain values in SQL columns, shared by the SQL backends.
//!
//! Attributes are stored as a JSON object (dates as `YYYY-MM-DD` strings, read back
//! as dates); scope lists as space-separated text; origin lists as JSON arrays.

use cohort_core::targeting::{RuleId, VisitorState};
use cohort_core::{
    AttributeName, AttributeValue, Attributes, Currency, CustomerId, Decimal, HttpSettings, KeyScope, Membership,
    MembershipSource, Name, Order, OrderItem, Origin, ReferenceKey, Segment, SegmentGroup, SegmentGroupId, SegmentId,
    ServiceId, ServiceKind, TargetGroupId, Timestamp,
};
use serde_json::{Map, Number, Value};

use crate::{GroupedSegment, StoreError, StoreResult};

pub fn attribute_to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::String(s) => Value::String(s.clone()),
        AttributeValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::Number(Number::from(*n as i64)),
        AttributeValue::Number(n) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Date(d) => Value::String(AttributeValue::format_date(*d)),
        AttributeValue::List(items) => Value::Array(items.iter().map(attribute_to_json).collect()),
    }
}

pub fn attributes_to_json(attributes: &Attributes) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), attribute_to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

pub fn encode_attributes(attributes: &Attributes) -> String {
    attributes_to_json(attributes).to_string()
}

/// Reads a JSON value as an attribute; `field` names it in errors.
pub fn attribute_from_json(field: &str, value: &Value) -> Result<AttributeValue, cohort_core::Invalid> {
    match value {
        Value::String(s) => AttributeValue::from_text(field, s),
        Value::Number(n) => AttributeValue::number(field, n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Ok(AttributeValue::Bool(*b)),
        Value::Array(items) => {
            let items = items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Array(_) => Err(cohort_core::Invalid::new(
                        format!("{field}[{i}]"),
                        "a list holds scalar values only",
                    )),
                    v => attribute_from_json(&format!("{field}[{i}]"), v),
                })
                .collect::<Result<Vec<_>, _>>()?;
            AttributeValue::list(field, items)
        }
        Value::Null => Err(cohort_core::Invalid::new(field, "null is not a value")),
        Value::Object(_) => Err(cohort_core::Invalid::new(
            field,
            "an attribute value is a string, number, bool, date or list",
        )),
    }
}

pub fn decode_attributes(text: &str) -> Result<Attributes, StoreError> {
    let corrupt = |e: String| StoreError::Backend(format!("stored attributes are not valid: {e}"));
    let Value::Object(map) = serde_json::from_str::<Value>(text).map_err(|e| corrupt(e.to_string()))? else {
        return Err(corrupt("not an object".into()));
    };
    map.iter()
        .map(|(k, v)| {
            let name = AttributeName::parse(k, k).map_err(|e| corrupt(e.to_string()))?;
            let value = attribute_from_json(k, v).map_err(|e| corrupt(e.to_string()))?;
            Ok((name, value))
        })
        .collect()
}

/// Only the `named` attributes of stored attributes: the others are skipped unparsed
/// (automation reads the fields its conditions test for many customers at once).
pub fn decode_named_attributes(text: &str, named: &[AttributeName]) -> Result<Attributes, StoreError> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Named<'a>(&'a [AttributeName]);
    impl<'de> DeserializeSeed<'de> for Named<'_> {
        type Value = Vec<(AttributeName, Value)>;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Named<'_> {
        type Value = Vec<(AttributeName, Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of attributes")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = Vec::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match self.0.iter().find(|name| name.as_str() == key) {
                    Some(name) => found.push((name.clone(), map.next_value::<Value>()?)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }

    let corrupt = |e: String| StoreError::Backend(format!("stored attributes are not valid: {e}"));
    if named.is_empty() {
        return Ok(Attributes::default());
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let found = Named(named)
        .deserialize(&mut deserializer)
        .map_err(|e| corrupt(e.to_string()))?;
    found
        .into_iter()
        .map(|(name, value)| {
            let value = attribute_from_json(name.as_str(), &value).map_err(|e| corrupt(e.to_string()))?;
            Ok((name, value))
        })
        .collect()
}

pub fn encode_scopes(scopes: &[KeyScope]) -> String {
    scopes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

pub fn decode_scopes(text: &str) -> Result<Vec<KeyScope>, StoreError> {
    text.split_whitespace()
        .map(|s| {
            KeyScope::parse("scopes", s).map_err(|e| StoreError::Backend(format!("stored scope is not valid: {e}")))
        })
        .collect()
}

pub fn encode_origins(origins: &[Origin]) -> String {
    Value::Array(origins.iter().map(|o| Value::String(o.as_str().to_owned())).collect()).to_string()
}

pub fn decode_origins(text: &str) -> Result<Vec<Origin>, StoreError> {
    let corrupt = |e: String| StoreError::Backend(format!("stored origins are not valid: {e}"));
    let list: Vec<String> = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    list.iter()
        .map(|o| Origin::parse("allowed_origins", o).map_err(|e| corrupt(e.to_string())))
        .collect()
}

pub fn decode_source(text: &str) -> Result<MembershipSource, StoreError> {
    MembershipSource::parse("source", text).map_err(|e| StoreError::Backend(format!("stored source is not valid: {e}")))
}

/// The `kind` and `config` columns of a segmentation service.
pub fn encode_service_kind(kind: &ServiceKind) -> (&'static str, String) {
    let config = match kind {
        ServiceKind::Http(h) => serde_json::json!({
            "base_url": h.base_url,
            "timeout_ms": h.timeout_ms,
            "cache_ttl_ms": h.cache_ttl_ms,
            "breaker_failures": h.breaker_failures,
            "breaker_open_ms": h.breaker_open_ms,
        }),
        _ => serde_json::json!({}),
    };
    (kind.name(), config.to_string())
}

pub fn decode_service_kind(kind: &str, config: &str) -> Result<ServiceKind, StoreError> {
    let corrupt = |e: String| StoreError::Backend(format!("stored service is not valid: {e}"));
    match kind {
        "standard" => Ok(ServiceKind::Standard),
        "import" => Ok(ServiceKind::Import),
        "http" => {
            let v: Value = serde_json::from_str(config).map_err(|e| corrupt(e.to_string()))?;
            let n = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok());
            let base = v["base_url"].as_str().ok_or_else(|| corrupt("no base_url".into()))?;
            HttpSettings::new(
                base,
                n("timeout_ms"),
                n("cache_ttl_ms"),
                n("breaker_failures"),
                n("breaker_open_ms"),
            )
            .map(ServiceKind::Http)
            .map_err(|e| corrupt(e.to_string()))
        }
        other => Err(corrupt(format!("unknown kind {other}"))),
    }
}

/// An order as stored: decimals as strings, so nothing is rounded.
pub fn encode_order(order: &Order) -> String {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        total: String,
        currency: &'a str,
        items: Vec<StoredItem<'a>>,
    }
    #[derive(serde::Serialize)]
    struct StoredItem<'a> {
        sku: &'a str,
        quantity: u32,
        unit_price: String,
        categories: &'a [String],
    }
    let stored = Stored {
        total: order.total.to_string(),
        currency: order.currency.code(),
        items: order
            .items
            .iter()
            .map(|i| StoredItem {
                sku: &i.sku,
                quantity: i.quantity,
                unit_price: i.unit_price.to_string(),
                categories: &i.categories,
            })
            .collect(),
    };
    serde_json::to_string(&stored).expect("an order serializes")
}

pub fn decode_order(text: &str) -> Result<Order, StoreError> {
    let corrupt = |e: String| StoreError::Backend(format!("stored order is not valid: {e}"));
    let v: Value = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let decimal = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<Decimal>().ok())
            .ok_or_else(|| corrupt("bad decimal".into()))
    };
    let currency =
        Currency::parse("currency", v["currency"].as_str().unwrap_or("")).map_err(|e| corrupt(e.to_string()))?;
    let items = v["items"]
        .as_array()
        .ok_or_else(|| corrupt("no items".into()))?
        .iter()
        .map(|i| {
            let categories = i["categories"]
                .as_array()
                .map(|c| c.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect());
            OrderItem::new(
                "items",
                i["sku"].as_str().unwrap_or(""),
                i["quantity"].as_i64().unwrap_or(0),
                decimal(&i["unit_price"])?,
                categories.unwrap_or_default(),
            )
            .map_err(|e| corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Order::new(decimal(&v["total"])?, currency, items).map_err(|e| corrupt(e.to_string()))
}

/// A visitor's state as stored: compact JSON without the customer (the customer is a
/// column, so the link follows the customer's deletion).
pub fn encode_visitor_state(state: &VisitorState) -> String {
    let stored = StoredVisitorState {
        g: state.target_groups.iter().map(|(g, w)| (g.get(), *w)).collect(),
        t: state.tracked_segments.iter().map(|(s, c)| (s.get(), *c)).collect(),
        p: state.visited_pages,
        s: state.sessions,
        ss: state.session_started.unix_micros(),
        ls: state.last_seen.unix_micros(),
        sr: state.session_rules.iter().map(|r| r.get()).collect(),
        sv: state.session_variables.iter().map(|(r, h)| (r.get(), *h)).collect(),
        vr: state.visitor_rules.iter().map(|r| r.get()).collect(),
    };
    serde_json::to_string(&stored).expect("a visitor state serializes")
}

pub fn decode_visitor_state(text: &str, customer: Option<CustomerId>) -> Result<VisitorState, StoreError> {
    let s: StoredVisitorState = serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("stored visitor state is not valid: {e}")))?;
    Ok(VisitorState {
        target_groups: s.g.into_iter().map(|(g, w)| (TargetGroupId::new(g), w)).collect(),
        tracked_segments: s.t.into_iter().map(|(id, c)| (SegmentId::new(id), c)).collect(),
        visited_pages: s.p,
        sessions: s.s,
        session_started: Timestamp::from_unix_micros(s.ss),
        last_seen: Timestamp::from_unix_micros(s.ls),
        session_rules: s.sr.into_iter().map(RuleId::new).collect(),
        session_variables: s.sv.into_iter().map(|(r, h)| (RuleId::new(r), h)).collect(),
        visitor_rules: s.vr.into_iter().map(RuleId::new).collect(),
        customer,
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredVisitorState {
    g: Vec<(i64, u32)>,
    t: Vec<(i64, u32)>,
    p: u32,
    s: u32,
    ss: i64,
    ls: i64,
    sr: Vec<i64>,
    sv: Vec<(i64, u64)>,
    vr: Vec<i64>,
}

/// Reads a stored value into a domain type, reporting a corrupt row as a backend failure.
pub fn stored<T>(parsed: Result<T, cohort_core::Invalid>) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Backend(format!("stored value is not valid: {e}")))
}

/// An order's total as ten-thousandths, the unit aggregates sum exactly in SQL on
/// both backends; `None` beyond ±922 trillion.
pub fn amount_e4(order: &Order) -> Option<i64> {
    use rust_decimal::RoundingStrategy::MidpointAwayFromZero;
    let scaled = (order.total * cohort_core::Decimal::new(10_000, 0)).round_dp_with_strategy(0, MidpointAwayFromZero);
    i64::try_from(scaled).ok()
}

/// A summed amount of ten-thousandths as a decimal.
pub fn amount_from_e4(sum: i64) -> cohort_core::Decimal {
    cohort_core::Decimal::new(sum, 4).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_through_json_text() {
        let text = r#"{"age":41,"birth":"1985-03-01","city":"Lyon","tags":["ski","1999-12-31"],"vip":true}"#;
        let attributes = decode_attributes(text).unwrap();
        assert!(matches!(
            attributes[&AttributeName::parse("a", "birth").unwrap()],
            AttributeValue::Date(_)
        ));
        assert_eq!(encode_attributes(&attributes), text);
    }

    #[test]
    fn named_attributes_are_read_as_all_are_and_the_others_skipped() {
        let text = r#"{"age":41,"birth":"1985-03-01","city":"Lyon","tags":["ski",{"x":[1]}],"vip":true}"#;
        let name = |n: &str| AttributeName::parse("a", n).unwrap();
        let named = decode_named_attributes(text, &[name("birth"), name("vip"), name("zip")]).unwrap();
        let mut all = decode_attributes(r#"{"birth":"1985-03-01","vip":true}"#).unwrap();
        assert_eq!(
            named, all,
            "unnamed ones are skipped, even one not valid as an attribute"
        );
        all.clear();
        assert_eq!(decode_named_attributes(text, &[]).unwrap(), all);
        assert!(decode_named_attributes(r#"{"vip":null}"#, &[name("vip")]).is_err());
    }

    #[test]
    fn scopes_round_trip_through_text() {
        let scopes = decode_scopes("admin public:shop").unwrap();
        assert_eq!(encode_scopes(&scopes), "admin public:shop");
    }
}

/// Memberships read with their segment and group as one JSON array of
/// `[segment_id, source, assigned_at, application_counter, expires_at, group_id,
/// segment name, segment reference, segment calculated, service, group name, group
/// reference, group calculated, group exclusive]` (booleans as 0 or 1), in the order
/// read.
pub fn decode_memberships(customer: &CustomerId, json: &str) -> Result<Vec<(Membership, GroupedSegment)>, StoreError> {
    let rows: Vec<MembershipRow> =
        serde_json::from_str(json).map_err(|e| StoreError::Backend(format!("memberships of {customer}: {e}")))?;
    rows.into_iter().map(|r| r.decode(customer)).collect()
}

/// One element of `decode_memberships`.
#[derive(serde::Deserialize)]
struct MembershipRow(
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    i64,
);

impl MembershipRow {
    fn decode(self, customer: &CustomerId) -> StoreResult<(Membership, GroupedSegment)> {
        let Self(
            segment,
            source,
            assigned_at,
            counter,
            expires_at,
            group,
            name,
            reference,
            calculated,
            service,
            group_name,
            group_reference,
            group_calculated,
            exclusive,
        ) = self;
        let membership = Membership {
            customer: customer.clone(),
            segment: SegmentId::new(segment),
            source: decode_source(&source)?,
            assigned_at: Timestamp::from_unix_micros(assigned_at),
            application_counter: u32::try_from(counter).unwrap_or(u32::MAX),
            expires_at: expires_at.map(Timestamp::from_unix_micros),
        };
        let grouped = GroupedSegment {
            segment: Segment {
                id: SegmentId::new(segment),
                group: SegmentGroupId::new(group),
                name: stored(Name::parse("name", &name))?,
                reference: stored(ReferenceKey::parse("reference", &reference))?,
                calculated: calculated != 0,
            },
            group: SegmentGroup {
                id: SegmentGroupId::new(group),
                service: stored(ServiceId::parse("service", &service))?,
                name: stored(Name::parse("name", &group_name))?,
                reference: stored(ReferenceKey::parse("reference", &group_reference))?,
                calculated: group_calculated != 0,
                exclusive: exclusive != 0,
            },
        };
        Ok((membership, grouped))
    }
}
