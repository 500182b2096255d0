//! Segment builder definitions as clients write them (JSON), parsed into engine specs.
//!
//! - `{"kind": "age_groups", "attribute": "birthdate", "ranges": [{"from": 18, "to": 24, "segment": "18-24"}, …]}`
//! - `{"kind": "attribute_mapping", "attribute": "country", "mapping": {"FR": "west", "DE": "central"}, "otherwise": "other"}`
//! - `{"kind": "activity_count", "activity": "order", "window_days": 90, "comparison": ">=", "threshold": 3, "segment": "frequent"}`

use cohort_core::{ActivityType, AttributeName, Invalid, ReferenceKey};
use cohort_engine::{AgeRange, BuilderSpec, Comparison, CompiledBuilder};
use serde_json::{Map, Value};

/// Parses and compiles a builder definition; errors name the offending field.
pub fn parse_builder(value: &Value) -> Result<CompiledBuilder, Invalid> {
    let Value::Object(map) = value else {
        return Err(Invalid::new("", "expected an object"));
    };
    let kind = string(map, "kind")?;
    let allowed: &[&str] = match kind.as_str() {
        "age_groups" => &["kind", "attribute", "ranges"],
        "attribute_mapping" => &["kind", "attribute", "mapping", "otherwise"],
        "activity_count" => &["kind", "activity", "window_days", "comparison", "threshold", "segment"],
        _ => {
            return Err(Invalid::new(
                "kind",
                "expected age_groups, attribute_mapping or activity_count",
            ));
        }
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Invalid::new(unknown.as_str(), "unknown field"));
    }
    let spec = match kind.as_str() {
        "age_groups" => BuilderSpec::AgeGroups {
            attribute: AttributeName::parse("attribute", &string(map, "attribute")?)?,
            ranges: array(map, "ranges")?
                .iter()
                .enumerate()
                .map(|(i, r)| age_range(&format!("ranges[{i}]"), r))
                .collect::<Result<_, _>>()?,
        },
        "attribute_mapping" => {
            let Some(Value::Object(mapping)) = map.get("mapping") else {
                return Err(Invalid::new("mapping", "expected an object of value → segment"));
            };
            BuilderSpec::AttributeMapping {
                attribute: AttributeName::parse("attribute", &string(map, "attribute")?)?,
                mapping: mapping
                    .iter()
                    .map(|(value, segment)| {
                        let field = format!("mapping.{value}");
                        let segment = segment
                            .as_str()
                            .ok_or_else(|| Invalid::new(&field, "expected a segment reference"))?;
                        Ok((value.clone(), ReferenceKey::parse(&field, segment)?))
                    })
                    .collect::<Result<_, Invalid>>()?,
                otherwise: map
                    .get("otherwise")
                    .map(|v| {
                        v.as_str()
                            .ok_or_else(|| Invalid::new("otherwise", "expected a segment reference"))
                            .and_then(|s| ReferenceKey::parse("otherwise", s))
                    })
                    .transpose()?,
            }
        }
        _ => BuilderSpec::ActivityCount {
            activity: ActivityType::parse("activity", &string(map, "activity")?)?,
            window_days: match map.get("window_days") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .and_then(|d| u32::try_from(d).ok())
                        .filter(|d| *d >= 1)
                        .ok_or_else(|| Invalid::new("window_days", "expected a whole number of days, at least 1"))?,
                ),
            },
            comparison: Comparison::parse("comparison", &string(map, "comparison")?)?,
            threshold: map
                .get("threshold")
                .and_then(Value::as_u64)
                .ok_or_else(|| Invalid::new("threshold", "expected a whole number"))?,
            segment: ReferenceKey::parse("segment", &string(map, "segment")?)?,
        },
    };
    CompiledBuilder::compile(spec)
}

fn string(map: &Map<String, Value>, name: &str) -> Result<String, Invalid> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Invalid::new(name, "expected a string")),
        None => Err(Invalid::new(name, "missing field")),
    }
}

fn array<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a Vec<Value>, Invalid> {
    match map.get(name) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Invalid::new(name, "expected a list")),
        None => Err(Invalid::new(name, "missing field")),
    }
}

fn age_range(field: &str, value: &Value) -> Result<AgeRange, Invalid> {
    let Value::Object(map) = value else {
        return Err(Invalid::new(field, "expected an object"));
    };
    let years = |name: &str| -> Result<Option<u32>, Invalid> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Invalid::new(format!("{field}.{name}"), "expected a whole number of years")),
        }
    };
    if let Some(unknown) = map.keys().find(|k| !matches!(k.as_str(), "from" | "to" | "segment")) {
        return Err(Invalid::new(format!("{field}.{unknown}"), "unknown field"));
    }
    let segment = map
        .get("segment")
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid::new(format!("{field}.segment"), "expected a segment reference"))?;
    Ok(AgeRange {
        from: years("from")?.unwrap_or(0),
        to: years("to")?,
        segment: ReferenceKey::parse(&format!("{field}.segment"), segment)?,
    })
}
