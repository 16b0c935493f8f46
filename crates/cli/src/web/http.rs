//! Response building: JSON, embedded assets, errors, and the boxed body type
//! every route answers with.

use std::convert::Infallible;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Response, StatusCode};

use super::assets::Asset;
use super::shapes::ApiError;

/// The body of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The error's status and `{"error": {...}}` body.
pub fn error_response(error: &ApiError) -> Response<Body> {
    json(error.status, &error.body())
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
