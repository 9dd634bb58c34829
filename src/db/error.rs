//! Errors of store functions.

/// What can go wrong in the store, in terms the HTTP layer can translate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist (or is not visible).
    #[error("not found")]
    NotFound,
    /// The write would break a rule (a category still in use); the
    /// message says which.
    #[error("{0}")]
    Conflict(String),
    /// The slug is another row's; the message says whose.
    #[error("{0}")]
    SlugTaken(String),
    /// The row changed after the version a conditional write names.
    #[error("changed since")]
    Changed,
    /// Input refers to rows that do not exist, or would break the model.
    #[error("invalid input")]
    Invalid(Vec<Invalid>),
    /// No connection could be had in time.
    #[error("database busy: {0}")]
    Busy(String),
    /// A blocking task died before it could answer.
    #[error("internal: {0}")]
    Internal(String),
    /// Anything else the database said.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// One field of an input that the store rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The input field, e.g. `category`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl StoreError {
    /// A rejection of a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Invalid {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Busy(error.to_string())
    }
}

/// Results of store functions.
pub type StoreResult<T> = Result<T, StoreError>;
