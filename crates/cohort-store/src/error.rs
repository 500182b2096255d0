//! Errors a store reports. Each kind maps to one HTTP status at the edge.

use cohort_core::Invalid;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed entity does not exist.
    #[error("{entity} {id} does not exist")]
    NotFound { entity: &'static str, id: String },
    /// A unique key is already taken, or the change breaks a rule of stored data.
    #[error("{detail}")]
    Conflict { field: String, detail: String },
    /// A field refers to an entity that does not exist.
    #[error("{detail}")]
    DanglingReference { field: String, detail: String },
    /// The entity is still used by others and cannot be deleted.
    #[error("{detail}")]
    InUse { detail: String },
    /// A domain rule refused the change once stored data was known.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The database failed; the cause is logged, never shown to clients.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub fn conflict(field: &str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn dangling(field: &str, detail: impl Into<String>) -> Self {
        Self::DanglingReference {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }
}
