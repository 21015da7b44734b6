//! `ApiError`: the one place HTTP statuses are chosen. Every error body is
//! `{"error":{"code":"...","message":"..."}}`; the code is part of the contract, the message not.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger::Rejection;
use serde::{Deserialize, Serialize};

#[derive(Debug)]
pub enum ApiError {
    /// Malformed or invalid input: 400.
    Invalid {
        code: &'static str,
        message: String,
    },
    /// No or unknown bearer token: 401.
    Unauthorized(String),
    /// Authenticated but not allowed: 403.
    Forbidden(String),
    NotFound(String),
    /// The request conflicts with the task's current state or version: 409.
    Conflict {
        code: &'static str,
        message: String,
    },
    /// The task moved past the version an `If-Match` named: 412.
    PreconditionFailed(String),
    /// Body over the size limit: 413.
    TooLarge(String),
    /// A body of a type the route does not take (judged by its content): 415.
    UnsupportedMediaType(String),
    /// Unknown route: 404 with code `no_route`.
    NoRoute,
    /// The route exists but not for this method: 405.
    MethodNotAllowed(String),
    /// No leader is known (election under way) or queues are full: 503 with Retry-After.
    Unavailable {
        code: &'static str,
        message: String,
    },
    /// The write may or may not have committed (the leader changed under it): 503; retry with
    /// the same Idempotency-Key to learn the outcome.
    OutcomeUnknown(String),
    /// Over a rate limit: 429 with Retry-After (whole seconds, at least 1).
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    Timeout(String),
    Internal(String),
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::Invalid { code: "invalid_request", message: message.into() }
    }

    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::Invalid { code: "invalid_field", message: format!("{field}: {message}") }
    }

    /// The code and message as they appear inside a larger answer (one item of a batch).
    pub fn detail(&self) -> ErrorDetail {
        let (_, code, message) = self.parts();
        ErrorDetail { code: code.to_owned(), message: message.to_owned() }
    }

    /// The error code and message, for channels other than an HTTP response (WebSocket).
    pub fn code_and_message(&self) -> (&str, &str) {
        let (_, code, message) = self.parts();
        (code, message)
    }

    fn parts(&self) -> (StatusCode, &str, &str) {
        match self {
            ApiError::Invalid { code, message } => (StatusCode::BAD_REQUEST, code, message),
            ApiError::Unauthorized(message) => (StatusCode::UNAUTHORIZED, "unauthorized", message),
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, "forbidden", message),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message),
            ApiError::PreconditionFailed(message) => (StatusCode::PRECONDITION_FAILED, "precondition_failed", message),
            ApiError::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message),
            ApiError::UnsupportedMediaType(message) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
            }
            ApiError::NoRoute => (StatusCode::NOT_FOUND, "no_route", "no such route"),
            ApiError::MethodNotAllowed(message) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message),
            ApiError::Unavailable { code, message } => (StatusCode::SERVICE_UNAVAILABLE, code, message),
            ApiError::OutcomeUnknown(message) => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown", message),
            ApiError::RateLimited { message, .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", message),
            ApiError::Timeout(message) => (StatusCode::GATEWAY_TIMEOUT, "timeout", message),
            ApiError::Internal(message) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

/// A proposal that produced no ledger result: what the client learns and may do.
impl From<crate::batcher::ProposeError> for ApiError {
    fn from(error: crate::batcher::ProposeError) -> ApiError {
        use crate::batcher::ProposeError;
        match error {
            ProposeError::NotLeader => ApiError::Unavailable {
                code: "no_leader",
                message: "leadership moved; nothing was written, retry shortly".into(),
            },
            ProposeError::Overloaded => ApiError::Unavailable {
                code: "overloaded",
                message: "the proposal queue is full; nothing was written, retry shortly".into(),
            },
            ProposeError::Failed(message) => ApiError::OutcomeUnknown(format!(
                "the write may or may not have been committed ({message}); a retry with the same Idempotency-Key (or the same signal) writes it at most once"
            )),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        let message = rejection.to_string();
        match rejection {
            Rejection::TaskNotFound(_) | Rejection::NoSuch(_) => ApiError::NotFound(message),
            Rejection::IllegalTransition { .. } => ApiError::Conflict { code: "illegal_transition", message },
            Rejection::VersionConflict { .. } => ApiError::Conflict { code: "version_conflict", message },
            Rejection::Forbidden(_) => ApiError::Forbidden(message),
            Rejection::Invalid { .. } => ApiError::Invalid { code: "invalid_field", message },
            Rejection::IdempotencyKeyReused => ApiError::Conflict { code: "idempotency_key_reused", message },
            Rejection::LimitReached(_) => ApiError::Conflict { code: "limit_reached", message },
            Rejection::NothingToRecord(_) => ApiError::Conflict { code: "nothing_to_record", message },
            Rejection::Conflict { code, .. } => ApiError::Conflict { code: code.as_str(), message },
            Rejection::NotYet(_) => ApiError::Conflict { code: "not_yet", message },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.to_owned() } };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::RateLimited { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        response
    }
}
