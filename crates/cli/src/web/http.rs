//! Response building: JSON, embedded assets, errors, and the boxed body type
//! every route answers with (a forwarded answer streams through as it is).

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Response, StatusCode};
use runjournal::wire::ErrorBody;

use super::assets::Asset;

/// A failed request's answer (boxed: the error body is large).
pub type Failure = Box<ErrorBody>;

/// A failure with a transport code.
pub fn transport(code: &str, message: impl Into<String>) -> Failure {
    Box::new(ErrorBody::transport(code, message))
}

/// The body of every response.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    // Serializing plain data with string keys cannot fail.
    let text = serde_json::to_string(value).unwrap_or_else(|error| unreachable!("answer serializes: {error}"));
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The error's status and `{"error": {...}}` body.
pub fn error_response(error: &ErrorBody) -> Response<Body> {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, error)
}

/// An embedded asset.
pub fn asset(asset: &Asset) -> Response<Body> {
    let mut response = Response::new(full(asset.body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}
