//! Customer imports: NDJSON and CSV lines parsed into upserts and written in batches.
//!
//! NDJSON: one object a line, `{"id": "c1", "attributes": {…}, "active": true,
//! "profiling_consent": false}`; only `id` is required and unknown fields are refused.
//! CSV: a header row naming `id`, optionally `active` and `profiling_consent`, and
//! attribute columns as `name` (string) or `name:type` with type string, number, bool,
//! date or list (`|`-separated); an empty cell leaves the attribute out.

use std::io::Read;

use cohort_core::attributes::ValueKind;
use cohort_core::customer::CustomerUpsert;
use cohort_core::{AttributeName, AttributeValue, Attributes, CustomerId, Invalid, Timestamp};
use cohort_store::codec::attribute_from_json;
use cohort_store::{CustomerImport, Store, StoreResult};
use serde_json::Value;

/// Lines written per store call.
pub const BATCH: usize = 5_000;
/// At most this many failed lines are kept with their reasons (all are counted).
pub const MAX_REPORTED: usize = 1_000;

/// A line that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the input.
    pub line: u64,
    pub error: Invalid,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub written: u64,
    pub failed: u64,
    /// The first `MAX_REPORTED` failures.
    pub errors: Vec<LineError>,
}

/// What to do with a bad line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Report it and import the good lines.
    Skip,
    /// Report it and import nothing.
    Abort,
}

/// Feeds parsed lines to a store import in batches. The store transaction opens with
/// the first full batch, so a small import holds no write lock while its lines arrive.
pub struct Importer {
    store: std::sync::Arc<dyn Store>,
    import: Option<Box<dyn CustomerImport>>,
    batch: Vec<CustomerUpsert>,
    report: Report,
    on_error: OnError,
    now: Timestamp,
}

impl Importer {
    pub fn new(store: std::sync::Arc<dyn Store>, on_error: OnError, now: Timestamp) -> Self {
        Self {
            store,
            import: None,
            batch: Vec::with_capacity(BATCH),
            report: Report::default(),
            on_error,
            now,
        }
    }

    pub async fn push(&mut self, line: u64, parsed: Result<CustomerUpsert, Invalid>) -> StoreResult<()> {
        match parsed {
            Ok(upsert) => {
                if self.on_error == OnError::Abort && self.report.failed > 0 {
                    return Ok(());
                }
                self.batch.push(upsert);
                if self.batch.len() >= BATCH {
                    self.flush().await?;
                }
            }
            Err(error) => {
                self.report.failed += 1;
                if self.report.errors.len() < MAX_REPORTED {
                    self.report.errors.push(LineError { line, error });
                }
                if self.on_error == OnError::Abort {
                    self.batch.clear();
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> StoreResult<()> {
        if !self.batch.is_empty() {
            if self.import.is_none() {
                self.import = Some(self.store.import_customers().await?);
            }
            let import = self.import.as_mut().expect("just opened");
            import.write(&self.batch, self.now).await?;
            self.report.written += self.batch.len() as u64;
            self.batch.clear();
        }
        Ok(())
    }

    /// Commits, unless the mode is `Abort` and a line failed: then nothing is kept.
    pub async fn finish(mut self) -> StoreResult<Report> {
        if self.on_error == OnError::Abort && self.report.failed > 0 {
            self.report.written = 0;
            return Ok(self.report);
        }
        self.flush().await?;
        if let Some(import) = self.import {
            import.commit().await?;
        }
        Ok(self.report)
    }
}

/// Parses one NDJSON line.
pub fn parse_ndjson_line(text: &str) -> Result<CustomerUpsert, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| Invalid::new("", format!("invalid json: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(Invalid::new("", "expected a JSON object"));
    };
    let id = match object.remove("id") {
        Some(Value::String(id)) => CustomerId::parse("id", &id)?,
        Some(_) => return Err(Invalid::new("id", "expected a string")),
        None => return Err(Invalid::new("id", "missing field")),
    };
    let attributes = match object.remove("attributes") {
        None => None,
        Some(Value::Object(map)) => Some(attributes_from_json(&map)?),
        Some(_) => return Err(Invalid::new("attributes", "expected an object")),
    };
    let flag = |object: &mut serde_json::Map<String, Value>, name: &str| match object.remove(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(Invalid::new(name, "expected true or false")),
    };
    let active = flag(&mut object, "active")?;
    let consent = flag(&mut object, "profiling_consent")?;
    if let Some(unknown) = object.keys().next() {
        return Err(Invalid::new(unknown.as_str(), "unknown field"));
    }
    CustomerUpsert::new(id, attributes, active, consent)
}

/// Reads a JSON object as attributes, naming each offending field `attributes.<name>`.
pub fn attributes_from_json(map: &serde_json::Map<String, Value>) -> Result<Attributes, Invalid> {
    map.iter()
        .map(|(k, v)| {
            let field = format!("attributes.{k}");
            let name = AttributeName::parse(&field, k)?;
            Ok((name, attribute_from_json(&field, v)?))
        })
        .collect()
}

enum Column {
    Id,
    Active,
    Consent,
    Attribute(AttributeName, ValueKind),
}

/// Reads CSV rows, calling `each(line, parsed)` for every data row.
pub fn read_csv(
    input: impl Read,
    mut each: impl FnMut(u64, Result<CustomerUpsert, Invalid>) -> StoreResult<()>,
) -> Result<(), ImportFileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportFileError::Header(e.to_string()))?
        .clone();
    let columns = headers
        .iter()
        .map(|h| match h {
            "id" => Ok(Column::Id),
            "active" => Ok(Column::Active),
            "profiling_consent" => Ok(Column::Consent),
            other => {
                let (name, kind) = other.split_once(':').unwrap_or((other, "string"));
                Ok(Column::Attribute(
                    AttributeName::parse(other, name)?,
                    ValueKind::parse(other, kind)?,
                ))
            }
        })
        .collect::<Result<Vec<_>, Invalid>>()
        .map_err(|e| ImportFileError::Header(e.to_string()))?;
    if !columns.iter().any(|c| matches!(c, Column::Id)) {
        return Err(ImportFileError::Header("the header names no id column".into()));
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => each(line, csv_row(&columns, &headers, &record))?,
            Err(e) => each(line, Err(Invalid::new("", e.to_string())))?,
        }
    }
}

fn csv_row(
    columns: &[Column],
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> Result<CustomerUpsert, Invalid> {
    let mut id = None;
    let (mut active, mut consent) = (None, None);
    let mut attributes = Attributes::new();
    for ((column, header), cell) in columns.iter().zip(headers).zip(record) {
        match column {
            Column::Id => id = Some(CustomerId::parse("id", cell)?),
            Column::Active if !cell.is_empty() => {
                active = Some(matches!(
                    AttributeValue::from_typed_text(header, ValueKind::Bool, cell)?,
                    AttributeValue::Bool(true)
                ))
            }
            Column::Consent if !cell.is_empty() => {
                consent = Some(matches!(
                    AttributeValue::from_typed_text(header, ValueKind::Bool, cell)?,
                    AttributeValue::Bool(true)
                ))
            }
            Column::Attribute(name, kind) if !cell.is_empty() => {
                attributes.insert(name.clone(), AttributeValue::from_typed_text(header, *kind, cell)?);
            }
            _ => {}
        }
    }
    let id = id.ok_or_else(|| Invalid::new("id", "missing value"))?;
    CustomerUpsert::new(id, Some(attributes), active, consent)
}

/// An input that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportFileError {
    #[error("bad header: {0}")]
    Header(String),
    #[error(transparent)]
    Store(#[from] cohort_store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ndjson_line_names_the_offending_field() {
        assert_eq!(
            parse_ndjson_line(r#"{"id":"c1","colour":1}"#).unwrap_err().field,
            "colour"
        );
        assert_eq!(
            parse_ndjson_line(r#"{"id":"c1","attributes":{"a":{}}}"#)
                .unwrap_err()
                .field,
            "attributes.a"
        );
        assert_eq!(
            parse_ndjson_line(r#"{"id":"c1","active":"yes"}"#).unwrap_err().field,
            "active"
        );
        assert_eq!(parse_ndjson_line(r#"{"attributes":{}}"#).unwrap_err().field, "id");
        assert!(parse_ndjson_line("{not json").is_err());
        let ok = parse_ndjson_line(r#"{"id":"c1","attributes":{"b":"1990-01-02"},"active":false}"#).unwrap();
        assert_eq!(ok.active, Some(false));
    }

    #[test]
    fn csv_rows_are_typed_by_their_header_and_bad_rows_carry_their_line() {
        let csv = "id,age:number,zip,tags:list,active\nc1,41,01234,ski|bike,true\nc2,old,1,,\nc3,,,,\n";
        let mut seen = Vec::new();
        read_csv(csv.as_bytes(), |line, parsed| {
            seen.push((line, parsed));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        let (line, first) = &seen[0];
        let first = first.as_ref().unwrap();
        assert_eq!((*line, first.active), (2, Some(true)));
        assert_eq!(first.attributes.as_ref().unwrap().len(), 3);
        let (line, second) = &seen[1];
        assert_eq!((*line, second.as_ref().unwrap_err().field.as_str()), (3, "age:number"));
        assert!(seen[2].1.as_ref().unwrap().attributes.as_ref().unwrap().is_empty());
    }

    #[test]
    fn a_csv_header_with_an_unknown_type_is_refused() {
        let err = read_csv("id,age:years\n".as_bytes(), |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, ImportFileError::Header(_)));
    }
}

/// Parses one NDJSON line of a membership import:
/// `{"customer": "c1", "segment": "group/segment", "remove": false, "expires_at": "…"}`.
pub fn parse_membership_line(text: &str) -> Result<cohort_store::ImportedMembership, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| Invalid::new("", format!("invalid json: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(Invalid::new("", "expected a JSON object"));
    };
    let mut text_field = |name: &str| match object.remove(name) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(name, "expected a string")),
        None => Ok(None),
    };
    let customer = text_field("customer")?.ok_or_else(|| Invalid::new("customer", "missing field"))?;
    let segment = text_field("segment")?.ok_or_else(|| Invalid::new("segment", "missing field"))?;
    let expires_at = text_field("expires_at")?
        .map(|t| Timestamp::parse("expires_at", &t))
        .transpose()?;
    let remove = match object.remove("remove") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(Invalid::new("remove", "expected true or false")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(Invalid::new(unknown.as_str(), "unknown field"));
    }
    let (group, segment) = segment
        .split_once('/')
        .ok_or_else(|| Invalid::new("segment", "expected group/segment"))?;
    Ok(cohort_store::ImportedMembership {
        customer: CustomerId::parse("customer", &customer)?,
        group: cohort_core::ReferenceKey::parse("segment", group)?,
        segment: cohort_core::ReferenceKey::parse("segment", segment)?,
        remove,
        expires_at,
    })
}

#[cfg(test)]
mod membership_line_tests {
    use super::*;

    #[test]
    fn a_membership_line_names_its_offending_field() {
        let ok = parse_membership_line(r#"{"customer":"c1","segment":"value/premium","remove":true}"#).unwrap();
        assert!(ok.remove && ok.group.as_str() == "value" && ok.segment.as_str() == "premium");
        assert_eq!(
            parse_membership_line(r#"{"customer":"c1","segment":"premium"}"#)
                .unwrap_err()
                .field,
            "segment"
        );
        assert_eq!(
            parse_membership_line(r#"{"segment":"a/b"}"#).unwrap_err().field,
            "customer"
        );
        assert_eq!(
            parse_membership_line(r#"{"customer":"c1","segment":"a/b","x":1}"#)
                .unwrap_err()
                .field,
            "x"
        );
        assert_eq!(
            parse_membership_line(r#"{"customer":"c1","segment":"a/b","expires_at":"soon"}"#)
                .unwrap_err()
                .field,
            "expires_at"
        );
    }
}
