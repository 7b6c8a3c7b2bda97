//! What a request and an answer are to the embedded broker's handlers: the
//! request context, the route it matched, a refusal and how it becomes
//! problem+json, compact JSON bodies. The transport (http.rs) builds these
//! and the handlers (handlers.rs) answer with them; neither imports the
//! other's internals, so the two do not form a circle.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use crate::broker::types::Problem;
use crate::jwt::gojson;

/// A refusal: becomes a problem+json response.
#[derive(Debug, Clone)]
pub struct Reject {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    pub retry_after: Option<u32>,
}

impl Reject {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Reject {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", detail)
    }
    pub(super) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }
    pub(super) fn malformed() -> Self {
        Self::bad_request("malformed JSON body")
    }
    pub(super) fn rate_limited(retry_after: u32) -> Self {
        Reject {
            retry_after: Some(retry_after),
            ..Self::new(429, "rate_limited", "rate limit exceeded, try again later")
        }
    }
}

/// 503: the broker cannot keep what this request would change or record.
pub fn unavailable(detail: impl Into<String>) -> Reject {
    Reject {
        retry_after: Some(5),
        ..Reject::new(503, "service_unavailable", detail)
    }
}

/// Everything a handler may need from the request.
pub struct Ctx {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    pub body: Bytes,
    pub request_id: String,
}

impl Ctx {
    /// The client's IP for rate limits: the peer's, or — only when the
    /// broker is told it sits behind a proxy — the first element of
    /// `X-Forwarded-For` (untrimmed, as the real broker takes it always).
    pub fn client_ip(&self, trust_proxy: bool) -> String {
        let forwarded = self
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .filter(|_| trust_proxy);
        match forwarded {
            Some(v) => v.split(',').next().unwrap_or_default().to_string(),
            None => self.peer.ip().to_string(),
        }
    }

    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
    }

    /// A problem response for this request.
    pub fn problem(&self, r: Reject) -> Response {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Problem {
            type_: format!("urn:agentwrit:error:{}", r.code),
            title: reason(status),
            status: r.status,
            detail: r.detail,
            instance: self.path.clone(),
            error_code: r.code.to_string(),
            request_id: self.request_id.clone(),
        };
        let mut resp = json_response(status, &body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(ra) = r.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(ra));
        }
        resp
    }
}

/// The HTTP reason phrase the Go broker puts in `title`.
fn reason(status: StatusCode) -> String {
    match status.as_u16() {
        413 => "Request Entity Too Large".into(),
        s => status
            .canonical_reason()
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {s}")),
    }
}

/// Compact Go-style JSON followed by `\n`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut bytes = gojson::to_vec(body);
    bytes.push(b'\n');
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Routes of spec §1.2 with their methods (GET implies HEAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Challenge,
    Register,
    Validate,
    Renew,
    Release,
    Delegate,
    Revoke,
    Audit,
    AdminAuth,
    AdminLaunch,
    AppLaunch,
    Apps,
    AppById,
    AppAuth,
    Health,
    Metrics,
}
