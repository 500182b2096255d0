//! Customers: known people with typed attributes, an active flag and profiling consent.

use std::collections::BTreeMap;

use crate::attributes::check_attributes;
use crate::{AttributeName, AttributeValue, Attributes, CustomerId, Invalid, Timestamp};

/// A stored customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub attributes: Attributes,
    pub active: bool,
    pub profiling_consent: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A customer to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub id: CustomerId,
    pub attributes: Attributes,
    pub active: bool,
    pub profiling_consent: bool,
}

impl NewCustomer {
    pub fn new(id: CustomerId, attributes: Attributes, active: bool, profiling_consent: bool) -> Result<Self, Invalid> {
        check_attributes("attributes", &attributes)?;
        Ok(Self {
            id,
            attributes,
            active,
            profiling_consent,
        })
    }

    pub fn into_customer(self, now: Timestamp) -> Customer {
        Customer {
            id: self.id,
            attributes: self.attributes,
            active: self.active,
            profiling_consent: self.profiling_consent,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A partial update: attributes are merged (`None` removes one), flags replaced when given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerPatch {
    pub attributes: BTreeMap<AttributeName, Option<AttributeValue>>,
    pub active: Option<bool>,
    pub profiling_consent: Option<bool>,
}

impl CustomerPatch {
    /// Applies the patch; fails when the merged attributes break the size rules.
    pub fn apply(&self, customer: &mut Customer, now: Timestamp) -> Result<(), Invalid> {
        let mut attributes = customer.attributes.clone();
        for (name, value) in &self.attributes {
            match value {
                Some(value) => attributes.insert(name.clone(), value.clone()),
                None => attributes.remove(name),
            };
        }
        check_attributes("attributes", &attributes)?;
        customer.attributes = attributes;
        if let Some(active) = self.active {
            customer.active = active;
        }
        if let Some(consent) = self.profiling_consent {
            customer.profiling_consent = consent;
        }
        customer.updated_at = now;
        Ok(())
    }
}

/// One line of a bulk import: creates the customer or updates it.
///
/// Given attributes replace the stored ones as a whole; flags left out keep their
/// stored value (or the default for a new customer: active, no consent).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerUpsert {
    pub id: CustomerId,
    pub attributes: Option<Attributes>,
    pub active: Option<bool>,
    pub profiling_consent: Option<bool>,
}

impl CustomerUpsert {
    pub fn new(
        id: CustomerId,
        attributes: Option<Attributes>,
        active: Option<bool>,
        profiling_consent: Option<bool>,
    ) -> Result<Self, Invalid> {
        if let Some(attributes) = &attributes {
            check_attributes("attributes", attributes)?;
        }
        Ok(Self {
            id,
            attributes,
            active,
            profiling_consent,
        })
    }
}

/// Folds lines with the same id into one, in first-seen order: a later line's given
/// fields override an earlier line's, fields it leaves out keep the earlier value.
pub fn fold_upserts(batch: &[CustomerUpsert]) -> Vec<CustomerUpsert> {
    let mut position: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut folded: Vec<CustomerUpsert> = Vec::with_capacity(batch.len());
    for line in batch {
        match position.get(line.id.as_str()) {
            Some(&i) => {
                let earlier = &mut folded[i];
                if line.attributes.is_some() {
                    earlier.attributes.clone_from(&line.attributes);
                }
                earlier.active = line.active.or(earlier.active);
                earlier.profiling_consent = line.profiling_consent.or(earlier.profiling_consent);
            }
            None => {
                position.insert(line.id.as_str(), folded.len());
                folded.push(line.clone());
            }
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        let mut attributes = Attributes::new();
        attributes.insert(
            AttributeName::parse("a", "city").unwrap(),
            AttributeValue::String("Paris".into()),
        );
        attributes.insert(AttributeName::parse("a", "age").unwrap(), AttributeValue::Number(40.0));
        NewCustomer::new(CustomerId::parse("id", "c1").unwrap(), attributes, true, false)
            .unwrap()
            .into_customer(Timestamp::from_unix_micros(1))
    }

    #[test]
    fn lines_of_one_id_fold_with_later_fields_winning() {
        let id = CustomerId::parse("id", "x").unwrap();
        let other = CustomerId::parse("id", "y").unwrap();
        let attrs = customer().attributes;
        let batch = [
            CustomerUpsert::new(id.clone(), Some(attrs.clone()), None, Some(true)).unwrap(),
            CustomerUpsert::new(other.clone(), None, None, None).unwrap(),
            CustomerUpsert::new(id.clone(), None, Some(false), None).unwrap(),
        ];
        let folded = fold_upserts(&batch);
        assert_eq!(folded.len(), 2);
        assert_eq!((folded[0].id.clone(), folded[1].id.clone()), (id, other));
        assert_eq!(folded[0].attributes, Some(attrs));
        assert_eq!(
            (folded[0].active, folded[0].profiling_consent),
            (Some(false), Some(true))
        );
    }

    #[test]
    fn a_patch_merges_attributes_and_removes_nulls() {
        let mut c = customer();
        let mut patch = CustomerPatch::default();
        patch
            .attributes
            .insert(AttributeName::parse("a", "city").unwrap(), None);
        patch.attributes.insert(
            AttributeName::parse("a", "tier").unwrap(),
            Some(AttributeValue::String("gold".into())),
        );
        patch.profiling_consent = Some(true);
        patch.apply(&mut c, Timestamp::from_unix_micros(2)).unwrap();
        let names: Vec<_> = c.attributes.keys().map(AttributeName::as_str).collect();
        assert_eq!(names, ["age", "tier"]);
        assert!(c.profiling_consent && c.active);
        assert_eq!(c.updated_at, Timestamp::from_unix_micros(2));
        assert_eq!(c.created_at, Timestamp::from_unix_micros(1));
    }
}
