//! Segment builder definitions as clients write them (JSON), parsed into engine specs.
//!
//! - `{"kind": "age_groups", "attribute": "birthdate", "ranges": [{"from": 18, "to": 24, "segment": "18-24"}, …]}`
//! - `{"kind": "attribute_mapping", "attribute": "country", "mapping": {"FR": "west", "DE": "central"}, "otherwise": "other"}`
//! - `{"kind": "activity_count", "activity": "order", "window_days": 90, "comparison": ">=", "threshold": 3, "segment": "frequent"}`
//! - `{"kind": "rfm", "activity": "order", "window_days": 365}` → segments `r1`…`r5`, `f1`…`f5`, `m1`…`m5`
//! - `{"kind": "conditions", "segments": [{"segment": "vip", "when": TREE}, …]}` where TREE is
//!   `{"all": [TREE, …]}`, `{"any": [TREE, …]}`, `{"not": TREE}`, an attribute test
//!   `{"attribute": "country", "op": "in", "value": ["FR", "BE"]}` (ops `=`, `!=`, `<`,
//!   `<=`, `>`, `>=`, `in`, `contains`, `exists`) or an activity aggregate
//!   `{"activity": "order", "window_days": 90, "measure": "count", "op": ">=", "value": 3}`
//!   (measures `count`, `amount`, `days_since_last`).

use cohort_core::{ActivityType, AttributeName, AttributeValue, Invalid, ReferenceKey};
use cohort_engine::condition::text;
use cohort_engine::{
    AgeRange, Aggregate, AttributeTest, Bound, BuilderSpec, Comparison, CompiledBuilder, Condition, ConditionalSegment,
    MAX_TREE_DEPTH, Measure, Tree,
};
use serde_json::{Map, Value};

use crate::activities::decimal;

/// The builder kinds, as the `kind` field names them.
pub const KINDS: [&str; 5] = ["age_groups", "attribute_mapping", "activity_count", "rfm", "conditions"];

/// Parses and compiles a builder definition; errors name the offending field.
pub fn parse_builder(value: &Value) -> Result<CompiledBuilder, Invalid> {
    let map = object("", value)?;
    let kind = string(map, "", "kind")?;
    let allowed: &[&str] = match kind.as_str() {
        "age_groups" => &["kind", "attribute", "ranges"],
        "attribute_mapping" => &["kind", "attribute", "mapping", "otherwise"],
        "activity_count" => &["kind", "activity", "window_days", "comparison", "threshold", "segment"],
        "rfm" => &["kind", "activity", "window_days"],
        "conditions" => &["kind", "segments"],
        _ => return Err(Invalid::new("kind", format!("expected one of {}", KINDS.join(", ")))),
    };
    only(map, "", allowed)?;
    let spec = match kind.as_str() {
        "age_groups" => BuilderSpec::AgeGroups {
            attribute: attribute_name(map, "")?,
            ranges: array(map, "", "ranges")?
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
                attribute: attribute_name(map, "")?,
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
        "activity_count" => BuilderSpec::ActivityCount {
            aggregate: aggregate(map, "", None)?,
            comparison: Comparison::parse("comparison", &string(map, "", "comparison")?)?,
            threshold: map
                .get("threshold")
                .and_then(Value::as_u64)
                .ok_or_else(|| Invalid::new("threshold", "expected a whole number"))?,
            segment: ReferenceKey::parse("segment", &string(map, "", "segment")?)?,
        },
        "rfm" => BuilderSpec::Rfm {
            aggregate: aggregate(map, "", Some("order"))?,
        },
        _ => BuilderSpec::Conditions {
            segments: array(map, "", "segments")?
                .iter()
                .enumerate()
                .map(|(i, rule)| {
                    let field = format!("segments[{i}]");
                    let rule = object(&field, rule)?;
                    only(rule, &field, &["segment", "when"])?;
                    Ok(ConditionalSegment {
                        segment: ReferenceKey::parse(&join(&field, "segment"), &string(rule, &field, "segment")?)?,
                        when: tree(
                            &join(&field, "when"),
                            rule.get("when")
                                .ok_or_else(|| Invalid::new(join(&field, "when"), "missing field"))?,
                            1,
                        )?,
                    })
                })
                .collect::<Result<_, Invalid>>()?,
        },
    };
    CompiledBuilder::compile(spec)
}

fn tree(field: &str, value: &Value, depth: usize) -> Result<Tree<Condition>, Invalid> {
    let leaf = |field: &str, map: &Map<String, Value>| {
        if map.contains_key("attribute") {
            Some(attribute_condition(field, map, |attribute, test| {
                Condition::Attribute { attribute, test }
            }))
        } else if map.contains_key("activity") {
            Some(activity_condition(field, map))
        } else {
            None
        }
    };
    let expected = "expected all, any, not, an attribute condition or an activity condition";
    condition_tree(field, value, depth, MAX_TREE_DEPTH, &leaf, expected)
}

/// Reads the leaves of a condition tree: `None` for an object that is none of them.
pub(crate) type LeafReader<'a, L> = dyn Fn(&str, &Map<String, Value>) -> Option<Result<Tree<L>, Invalid>> + 'a;

/// An `all` / `any` / `not` tree over the leaves `leaf` reads; any other object is
/// refused with `expected`. Nesting deeper than `max_depth` is refused at the node that
/// passes it; errors name the path (`conditions.all[1].value`).
pub(crate) fn condition_tree<L>(
    field: &str,
    value: &Value,
    depth: usize,
    max_depth: usize,
    leaf: &LeafReader<'_, L>,
    expected: &str,
) -> Result<Tree<L>, Invalid> {
    if depth > max_depth {
        return Err(Invalid::new(field, format!("nested deeper than {max_depth} levels")));
    }
    let map = object(field, value)?;
    let branch = |name: &str| -> Result<Vec<Tree<L>>, Invalid> {
        let here = join(field, name);
        array(map, field, name)?
            .iter()
            .enumerate()
            .map(|(i, t)| condition_tree(&format!("{here}[{i}]"), t, depth + 1, max_depth, leaf, expected))
            .collect()
    };
    if map.contains_key("all") {
        only(map, field, &["all"])?;
        Ok(Tree::All(branch("all")?))
    } else if map.contains_key("any") {
        only(map, field, &["any"])?;
        Ok(Tree::Any(branch("any")?))
    } else if let Some(inner) = map.get("not") {
        only(map, field, &["not"])?;
        let inner = condition_tree(&join(field, "not"), inner, depth + 1, max_depth, leaf, expected)?;
        Ok(Tree::Not(Box::new(inner)))
    } else {
        leaf(field, map).unwrap_or_else(|| Err(Invalid::new(field, expected)))
    }
}

/// `{"attribute": …, "op": …, "value": …}` as a tree of attribute tests (`!=` is
/// "set and not equal"); `make` turns a test into the caller's leaf.
pub(crate) fn attribute_condition<L>(
    field: &str,
    map: &Map<String, Value>,
    make: impl Fn(AttributeName, AttributeTest) -> L,
) -> Result<Tree<L>, Invalid> {
    only(map, field, &["attribute", "op", "value"])?;
    let attribute = attribute_name(map, field)?;
    let op = string(map, field, "op")?;
    let value_field = join(field, "value");
    let value = map.get("value");
    let leaf = |test| Tree::Leaf(make(attribute.clone(), test));
    let scalar = |v: Option<&Value>| -> Result<String, Invalid> {
        let parsed = match v {
            Some(Value::String(s)) => AttributeValue::from_text(&value_field, s)?,
            Some(Value::Number(n)) => AttributeValue::number(&value_field, n.as_f64().unwrap_or(f64::NAN))?,
            Some(Value::Bool(b)) => AttributeValue::Bool(*b),
            _ => return Err(Invalid::new(&value_field, "expected a string, number or boolean")),
        };
        Ok(text(&parsed).expect("a scalar has a text"))
    };
    Ok(match op.as_str() {
        "exists" => {
            if value.is_some() {
                return Err(Invalid::new(&value_field, "exists takes no value"));
            }
            leaf(AttributeTest::Exists)
        }
        "=" => leaf(AttributeTest::In(vec![scalar(value)?])),
        "!=" => Tree::All(vec![
            leaf(AttributeTest::Exists),
            Tree::Not(Box::new(leaf(AttributeTest::In(vec![scalar(value)?])))),
        ]),
        "in" => {
            let Some(Value::Array(items)) = value else {
                return Err(Invalid::new(&value_field, "expected a list of values"));
            };
            leaf(AttributeTest::In(
                items.iter().map(|v| scalar(Some(v))).collect::<Result<_, _>>()?,
            ))
        }
        "contains" => match value {
            Some(Value::String(s)) => leaf(AttributeTest::Contains(s.clone())),
            _ => return Err(Invalid::new(&value_field, "expected a string")),
        },
        _ => {
            let comparison = Comparison::parse(&join(field, "op"), &op).map_err(|_| {
                Invalid::new(
                    join(field, "op"),
                    "expected one of =, !=, <, <=, >, >=, in, contains, exists",
                )
            })?;
            let bound = match value {
                Some(Value::Number(n)) => Bound::Number(n.as_f64().unwrap_or(f64::NAN)),
                Some(Value::String(s)) => match AttributeValue::from_text(&value_field, s)? {
                    AttributeValue::Date(d) => Bound::Date(d),
                    _ => return Err(Invalid::new(&value_field, "expected a number or a YYYY-MM-DD date")),
                },
                _ => return Err(Invalid::new(&value_field, "expected a number or a YYYY-MM-DD date")),
            };
            leaf(AttributeTest::Compare(comparison, bound))
        }
    })
}

fn activity_condition(field: &str, map: &Map<String, Value>) -> Result<Tree<Condition>, Invalid> {
    only(map, field, &["activity", "window_days", "measure", "op", "value"])?;
    let measure = match map.get("measure") {
        None => Measure::Count,
        Some(Value::String(m)) if m == "count" => Measure::Count,
        Some(Value::String(m)) if m == "amount" => Measure::Amount,
        Some(Value::String(m)) if m == "days_since_last" => Measure::DaysSinceLast,
        Some(_) => {
            return Err(Invalid::new(
                join(field, "measure"),
                "expected count, amount or days_since_last",
            ));
        }
    };
    Ok(Tree::Leaf(Condition::Activity {
        aggregate: aggregate(map, field, None)?,
        measure,
        comparison: Comparison::parse(&join(field, "op"), &string(map, field, "op")?)?,
        value: decimal(&join(field, "value"), map.get("value"))?,
    }))
}

/// `activity` (or its default) and `window_days` of an object.
fn aggregate(map: &Map<String, Value>, field: &str, default: Option<&str>) -> Result<Aggregate, Invalid> {
    let activity = match (map.get("activity"), default) {
        (None, Some(d)) => d.to_owned(),
        _ => string(map, field, "activity")?,
    };
    let window_field = join(field, "window_days");
    Ok(Aggregate {
        activity: ActivityType::parse(&join(field, "activity"), &activity)?,
        window_days: match map.get("window_days") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .filter(|d| (1..=36_500).contains(d))
                    .ok_or_else(|| Invalid::new(&window_field, "expected a whole number of days, 1 to 36500"))?,
            ),
        },
    })
}

pub(crate) fn join(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_owned()
    } else {
        format!("{field}.{name}")
    }
}

pub(crate) fn object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, Invalid> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Invalid::new(field, "expected an object")),
    }
}

pub(crate) fn only(map: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), Invalid> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Invalid::new(join(field, unknown), "unknown field")),
        None => Ok(()),
    }
}

fn attribute_name(map: &Map<String, Value>, field: &str) -> Result<AttributeName, Invalid> {
    AttributeName::parse(&join(field, "attribute"), &string(map, field, "attribute")?)
}

pub(crate) fn string(map: &Map<String, Value>, field: &str, name: &str) -> Result<String, Invalid> {
    match map.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Invalid::new(join(field, name), "expected a string")),
        None => Err(Invalid::new(join(field, name), "missing field")),
    }
}

pub(crate) fn array<'a>(map: &'a Map<String, Value>, field: &str, name: &str) -> Result<&'a Vec<Value>, Invalid> {
    match map.get(name) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Invalid::new(join(field, name), "expected a list")),
        None => Err(Invalid::new(join(field, name), "missing field")),
    }
}

fn age_range(field: &str, value: &Value) -> Result<AgeRange, Invalid> {
    let map = object(field, value)?;
    only(map, field, &["from", "to", "segment"])?;
    let years = |name: &str| -> Result<Option<u32>, Invalid> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Invalid::new(join(field, name), "expected a whole number of years")),
        }
    };
    Ok(AgeRange {
        from: years("from")?.unwrap_or(0),
        to: years("to")?,
        segment: ReferenceKey::parse(&join(field, "segment"), &string(map, field, "segment")?)?,
    })
}
