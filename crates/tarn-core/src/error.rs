//! The one error shape that leaves tarn: `{"error_code", "message"}` with the
//! HTTP status the official clients map to their exception classes.

use std::fmt;

/// Error codes as `databricks-sdk` and `mlflow` know them. The status each
/// maps to is the one those clients expect; a user's mistake never maps to a
/// 5xx or 429, which clients retry for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    MalformedRequest,
    InvalidState,
    ResourceDoesNotExist,
    /// Unity Catalog's 404s for a missing container (registered models
    /// answer these, as Databricks does).
    CatalogDoesNotExist,
    SchemaDoesNotExist,
    ResourceAlreadyExists,
    /// HTTP 400: a count limit (a secret scope's 1000 secrets).
    ResourceLimitExceeded,
    /// HTTP 409: the resource is busy (a pipeline's update already runs).
    ResourceConflict,
    Aborted,
    Unauthenticated,
    PermissionDenied,
    NotImplemented,
    EndpointNotFound,
    InternalError,
    TemporarilyUnavailable,
    /// The Files API's 404 (`/api/2.0/fs/*` answers NOT_FOUND, not
    /// RESOURCE_DOES_NOT_EXIST).
    NotFound,
    /// The Files API's 409.
    AlreadyExists,
    /// Workspace delete of a non-empty directory without `recursive`.
    DirectoryNotEmpty,
    /// DBFS: a non-empty directory deleted without `recursive`, and similar.
    IoError,
    MaxBlockSizeExceeded,
    MaxReadSizeExceeded,
    MaxNotebookSizeExceeded,
    /// HTTP 412: an `If-Unmodified-Since` that no longer holds.
    PreconditionFailed,
    /// HTTP 416: a `Range` that starts past the end of the file.
    RangeNotSatisfiable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::MalformedRequest => "MALFORMED_REQUEST",
            Self::InvalidState => "INVALID_STATE",
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::CatalogDoesNotExist => "CATALOG_DOES_NOT_EXIST",
            Self::SchemaDoesNotExist => "SCHEMA_DOES_NOT_EXIST",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::ResourceLimitExceeded => "RESOURCE_LIMIT_EXCEEDED",
            Self::ResourceConflict => "RESOURCE_CONFLICT",
            Self::Aborted => "ABORTED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::InternalError => "INTERNAL_ERROR",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::DirectoryNotEmpty => "DIRECTORY_NOT_EMPTY",
            Self::IoError => "IO_ERROR",
            Self::MaxBlockSizeExceeded => "MAX_BLOCK_SIZE_EXCEEDED",
            Self::MaxReadSizeExceeded => "MAX_READ_SIZE_EXCEEDED",
            Self::MaxNotebookSizeExceeded => "MAX_NOTEBOOK_SIZE_EXCEEDED",
            Self::PreconditionFailed => "FAILED_PRECONDITION",
            Self::RangeNotSatisfiable => "REQUESTED_RANGE_NOT_SATISFIABLE",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidParameterValue
            | Self::MalformedRequest
            | Self::InvalidState
            | Self::ResourceLimitExceeded
            | Self::DirectoryNotEmpty
            | Self::IoError
            | Self::MaxBlockSizeExceeded
            | Self::MaxReadSizeExceeded
            | Self::MaxNotebookSizeExceeded => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::ResourceDoesNotExist
            | Self::CatalogDoesNotExist
            | Self::SchemaDoesNotExist
            | Self::EndpointNotFound
            | Self::NotFound => 404,
            Self::ResourceAlreadyExists | Self::ResourceConflict | Self::Aborted | Self::AlreadyExists => 409,
            Self::PreconditionFailed => 412,
            Self::RangeNotSatisfiable => 416,
            Self::InternalError => 500,
            Self::NotImplemented => 501,
            Self::TemporarilyUnavailable => 503,
        }
    }
}

/// An error on its way to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// A machine-readable reason, sent as a `google.rpc.ErrorInfo` detail
    /// (the Files API's `FILES_API_DIRECTORY_IS_NOT_EMPTY`, which clients
    /// test for).
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), reason: None }
    }
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedRequest, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotImplemented, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
    pub fn status(&self) -> u16 {
        self.code.http_status()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_mistakes_never_map_to_retryable_statuses() {
        for code in [
            ErrorCode::InvalidParameterValue,
            ErrorCode::MalformedRequest,
            ErrorCode::InvalidState,
            ErrorCode::ResourceDoesNotExist,
            ErrorCode::ResourceAlreadyExists,
            ErrorCode::Unauthenticated,
            ErrorCode::EndpointNotFound,
            ErrorCode::NotFound,
            ErrorCode::AlreadyExists,
            ErrorCode::DirectoryNotEmpty,
            ErrorCode::IoError,
            ErrorCode::MaxBlockSizeExceeded,
            ErrorCode::MaxReadSizeExceeded,
            ErrorCode::MaxNotebookSizeExceeded,
            ErrorCode::PreconditionFailed,
            ErrorCode::RangeNotSatisfiable,
        ] {
            let status = code.http_status();
            assert!((400..500).contains(&status) && status != 429, "{code:?} -> {status}");
        }
        assert_eq!(ErrorCode::NotImplemented.http_status(), 501);
    }
}
