//! Transport behaviour of the embedded broker (spec §1): request ids, the
//! 1 MiB body limit, security headers, Go `ServeMux` routing (404/405 with
//! `Allow`, HEAD for GET), problem+json and compact JSON bodies.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::State;
use super::handlers;
use super::wire::{Ctx, Reject, Route, unavailable};

pub const BODY_LIMIT: usize = 1 << 20;

pub fn router(state: Arc<State>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

fn text_response(status: StatusCode, text: &'static str) -> Response {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn route(path: &str) -> Option<(Route, &'static [&'static str])> {
    use Route::*;
    let r = match path {
        "/v1/challenge" => (Challenge, &["GET"][..]),
        "/v1/register" => (Register, &["POST"][..]),
        "/v1/token/validate" => (Validate, &["POST"][..]),
        "/v1/token/renew" => (Renew, &["POST"][..]),
        "/v1/token/release" => (Release, &["POST"][..]),
        "/v1/delegate" => (Delegate, &["POST"][..]),
        "/v1/revoke" => (Revoke, &["POST"][..]),
        "/v1/audit/events" => (Audit, &["GET"][..]),
        "/v1/admin/auth" => (AdminAuth, &["POST"][..]),
        "/v1/admin/launch-tokens" => (AdminLaunch, &["POST"][..]),
        "/v1/app/launch-tokens" => (AppLaunch, &["POST"][..]),
        "/v1/admin/apps" => (Apps, &["GET", "POST"][..]),
        "/v1/app/auth" => (AppAuth, &["POST"][..]),
        "/v1/health" => (Health, &["GET"][..]),
        "/v1/metrics" => (Metrics, &["GET"][..]),
        p => {
            let id = p.strip_prefix("/v1/admin/apps/")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            (AppById, &["DELETE", "GET", "PUT"][..])
        }
    };
    Some(r)
}

/// The `Allow` header value Go's ServeMux sends: methods sorted, HEAD beside GET.
fn allow_header(methods: &[&str]) -> String {
    let mut all: Vec<&str> = methods.to_vec();
    if all.contains(&"GET") {
        all.push("HEAD");
    }
    all.sort_unstable();
    all.join(", ")
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| super::random_hex(8))
}

fn set_security_headers(h: &mut HeaderMap, hsts: bool) {
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

/// Reads the whole body (at most 1 MiB, within the read timeout). Err(true):
/// too large; Err(false): it could not be read (or not in time).
async fn read_body(body: Body, limit: std::time::Duration) -> Result<Bytes, bool> {
    match tokio::time::timeout(limit, Limited::new(body, BODY_LIMIT).collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) => Err(e.downcast_ref::<LengthLimitError>().is_some()),
        Err(_) => Err(false),
    }
}

/// Runs a handler; a panic becomes a 500 problem instead of a dropped
/// connection (the last line of defence: handlers are meant not to panic).
fn handle_guarded(state: &State, r: Route, ctx: &Ctx) -> Response {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        handlers::handle(state, r, ctx)
    })) {
        Ok(resp) => resp,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(path = %ctx.path, panic = %what, "handler panicked");
            ctx.problem(Reject::new(500, "internal_error", "internal error"))
        }
    }
}

/// What Go's server answers, before any handler, to a request it cannot
/// take: `HTTP/1.1 400 Bad Request[: why]`, the same words as the body, and
/// the connection closed.
fn go_bad_request(why: Option<&'static str>) -> Response {
    let (reason, body): (&'static [u8], &'static str) = match why {
        Some("missing required Host header") => (
            b"Bad Request: missing required Host header",
            "400 Bad Request: missing required Host header",
        ),
        _ => (b"Bad Request", "400 Bad Request"),
    };
    let mut resp = text_response(StatusCode::BAD_REQUEST, body);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(reason));
    resp
}

/// `%XX` decoded as Go's `url.URL.Path`; `None` for a malformed escape.
fn unescape_path(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_string());
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `path.Clean` for a rooted path, keeping a trailing slash (as
/// `ServeMux`'s `cleanPath`).
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if p.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

/// A path escaped as Go's `url.URL.EscapedPath` does (what `ServeMux`
/// puts in its redirects).
fn escape_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for &c in p.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Go's `ServeMux` redirect to the clean path: 301, and for GET/HEAD the
/// small HTML body `http.Redirect` writes.
fn moved_permanently(method: &Method, location: &str) -> Response {
    let get = method == Method::GET || method == Method::HEAD;
    let mut resp = if get {
        let html = format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            location
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;")
        );
        let mut r = Response::new(Body::from(html));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        Response::new(Body::empty())
    };
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn dispatch(
    AxState(state): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    // Go's server refuses these before any handler (no request id, no
    // security headers): an HTTP/1.1 request without Host, a path with a
    // malformed escape.
    if parts.version == axum::http::Version::HTTP_11
        && !parts.headers.contains_key(header::HOST)
        && parts.uri.authority().is_none()
    {
        return go_bad_request(Some("missing required Host header"));
    }
    let Some(path) = unescape_path(parts.uri.path()) else {
        return go_bad_request(None);
    };
    let rid = request_id(&parts.headers);
    let rid_value = HeaderValue::from_str(&rid).unwrap_or_else(|_| HeaderValue::from_static("-"));
    let clean = clean_path(&path);
    if clean != path {
        let mut location = escape_path(&clean);
        if let Some(q) = parts.uri.query().filter(|q| !q.is_empty()) {
            location.push('?');
            location.push_str(q);
        }
        let mut resp = moved_permanently(&parts.method, &location);
        set_security_headers(resp.headers_mut(), state.cfg.tls.is_some());
        resp.headers_mut().insert("x-request-id", rid_value);
        return resp;
    }
    let mut ctx = Ctx {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers,
        peer,
        body: Bytes::new(),
        request_id: rid.clone(),
    };
    match read_body(body, state.cfg.timeouts.read).await {
        Ok(b) => ctx.body = b,
        Err(too_large) => {
            let mut resp = if too_large {
                ctx.problem(Reject::new(
                    413,
                    "payload_too_large",
                    "request body must not exceed 1 MB",
                ))
            } else {
                let mut r = ctx.problem(Reject::bad_request("failed to read request body"));
                set_security_headers(r.headers_mut(), state.cfg.tls.is_some());
                r
            };
            resp.headers_mut().insert("x-request-id", rid_value);
            return resp;
        }
    }
    let mut resp = match route(&ctx.path) {
        None => text_response(StatusCode::NOT_FOUND, "404 page not found\n"),
        Some((r, methods)) => {
            let m = ctx.method.as_str();
            let effective = if m == "HEAD" { "GET" } else { m };
            if methods.contains(&effective) {
                super::store::begin_request();
                let resp = handle_guarded(&state, r, &ctx);
                // Answered means written: the events this request recorded
                // are committed before it is answered, or it is refused.
                match super::store::request_events() {
                    (_, true) => ctx.problem(unavailable(
                        "the broker cannot write its audit trail (queue full); retry later",
                    )),
                    (0, false) => resp,
                    (seq, false) => match state.store.written(seq).await {
                        Ok(()) => resp,
                        Err(why) => ctx.problem(unavailable(format!(
                            "{why}; the request is refused rather than answered unrecorded"
                        ))),
                    },
                }
            } else {
                let mut resp =
                    text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
                if let Ok(v) = HeaderValue::from_str(&allow_header(methods)) {
                    resp.headers_mut().insert(header::ALLOW, v);
                }
                resp
            }
        }
    };
    set_security_headers(resp.headers_mut(), state.cfg.tls.is_some());
    resp.headers_mut().insert("x-request-id", rid_value);
    tracing::debug!(method = %ctx.method, path = %ctx.path, status = resp.status().as_u16(), request_id = %rid, "embedded broker");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_headers_match_go() {
        assert_eq!(allow_header(&["POST"]), "POST");
        assert_eq!(allow_header(&["GET"]), "GET, HEAD");
        assert_eq!(
            allow_header(&["DELETE", "GET", "PUT"]),
            "DELETE, GET, HEAD, PUT"
        );
    }

    #[test]
    fn paths_are_cleaned_and_unescaped_as_go_does() {
        assert_eq!(clean_path("/v1//health"), "/v1/health");
        assert_eq!(clean_path("/v1/./health"), "/v1/health");
        assert_eq!(clean_path("/v1/admin/../health"), "/v1/health");
        assert_eq!(clean_path("/../v1/health"), "/v1/health");
        assert_eq!(clean_path("/v1/admin/apps/"), "/v1/admin/apps/");
        assert_eq!(clean_path("/v1//admin/apps//"), "/v1/admin/apps/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(unescape_path("/v1/%68ealth").as_deref(), Some("/v1/health"));
        assert_eq!(unescape_path("/v1/%zz"), None);
        assert_eq!(unescape_path("/v1/%6"), None);
        assert_eq!(escape_path("/v1/a b"), "/v1/a%20b");
    }

    #[test]
    fn app_by_id_needs_one_segment() {
        assert!(route("/v1/admin/apps/").is_none());
        assert!(route("/v1/admin/apps/a/b").is_none());
        assert_eq!(route("/v1/admin/apps/x").map(|r| r.0), Some(Route::AppById));
        assert!(route("/").is_none());
    }
}
