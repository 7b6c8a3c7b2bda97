//! Async client for every route of the AgentWrit v2.0.0 API (spec §1.2).
//!
//! Problem+json answers become a typed [`BrokerError`]; transport failures
//! (refused connection, timeout, TLS) are their own [`ClientError`] variants
//! naming the URL. Delegation takes *any* held token as Bearer, so multi-hop
//! chains need no raw HTTP.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tls::{self, ClientTls, TlsFailure};
use super::types::*;
use crate::jwt;

/// Default request timeout, as the official SDK uses.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A problem+json refusal from the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error_code}: {detail}")]
pub struct BrokerError {
    pub status: u16,
    pub error_code: String,
    pub detail: String,
    pub request_id: String,
}

/// Everything that can go wrong talking to a broker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("broker refused: {0}")]
    Broker(BrokerError),
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no answer from {url} within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("TLS with {url}: {reason}")]
    Tls {
        url: String,
        kind: TlsFailure,
        reason: String,
    },
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("transport error talking to {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("{url} answered HTTP {status} with a body that is not an AgentWrit problem: {snippet}")]
    Unexpected {
        url: String,
        status: u16,
        snippet: String,
    },
    #[error("{url} answered HTTP {status} but the body is not the expected {expected}: {reason}")]
    Decode {
        url: String,
        status: u16,
        expected: &'static str,
        reason: String,
    },
    #[error(
        "{url}: the broker answered {status} to {location} — AgentWrit never redirects; check the URL (nothing was re-sent)"
    )]
    Redirect {
        url: String,
        status: u16,
        location: String,
    },
    #[error("invalid broker URL '{0}': expected http://host:port or https://host:port")]
    InvalidUrl(String),
    #[error("{0}")]
    InvalidInput(String),
}

impl ClientError {
    /// The broker's refusal, if this is one.
    pub fn broker(&self) -> Option<&BrokerError> {
        match self {
            ClientError::Broker(b) => Some(b),
            _ => None,
        }
    }

    /// True for failures to reach the broker at all (connect, timeout, TLS, transport).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Timeout { .. }
                | ClientError::Tls { .. }
                | ClientError::Transport { .. }
        )
    }
}

/// One HTTP exchange as the client saw it: the real method, path (without
/// its query), status and time taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// `None` when no answer came (transport failure).
    pub status: Option<u16>,
    pub latency: Duration,
    /// The broker's refusal (`code detail`) or the transport failure.
    pub error: Option<String>,
}

tokio::task_local! {
    static EXCHANGES: std::cell::RefCell<Vec<Exchange>>;
}

/// Runs `fut` and returns, beside its output, every exchange the client made
/// for it (in this task), in order: what the event log shows.
pub async fn recording<F: std::future::Future>(fut: F) -> (F::Output, Vec<Exchange>) {
    EXCHANGES
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let out = fut.await;
            let seen = EXCHANGES.with(|e| e.take());
            (out, seen)
        })
        .await
}

fn note(ex: Exchange) {
    tracing::debug!(
        method = %ex.method,
        path = %ex.path,
        status = ?ex.status,
        latency_ms = ex.latency.as_secs_f64() * 1e3,
        error = ex.error.as_deref(),
        "broker call"
    );
    // Outside `recording`, nobody asked: nothing to keep.
    let _ = EXCHANGES.try_with(|e| e.borrow_mut().push(ex));
}

/// The largest answer the client reads (a full audit page of 1,000 events
/// from the embedded broker is well under 3 MiB).
pub const MAX_RESPONSE: usize = 16 << 20;

/// A raw HTTP answer, for callers that need headers or exact bodies.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn problem(&self) -> Option<Problem> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A registered agent: its SPIFFE id, token, and the key it registered with.
#[derive(Clone)]
pub struct Agent {
    pub agent_id: String,
    pub access_token: String,
    pub expires_in: i64,
    /// The requested scope, kept client-side as the SDK does.
    pub scope: Vec<String>,
    pub task_id: String,
    pub orch_id: String,
    pub key: SigningKey,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("agent_id", &self.agent_id)
            .field("access_token", &jwt::redact(&self.access_token))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("task_id", &self.task_id)
            .field("orch_id", &self.orch_id)
            .finish_non_exhaustive()
    }
}

/// The async broker client. Cheap to clone.
#[derive(Clone)]
pub struct BrokerClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    /// Whether a client certificate is offered (to tell "none given" from
    /// "refused" when an mtls handshake fails).
    client_cert: bool,
}

impl fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The innermost cause of a transport error, for the TLS explanation.
fn tls_cause(e: &reqwest::Error) -> String {
    let mut last = e.to_string();
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        return "(empty body)".into();
    }
    let cut: String = s.chars().take(120).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Why an answer's body is not the JSON expected, in words that point at
/// the cause: an empty body, a compressed one, a raw control character in a
/// string, and where (line, column from 1, byte offset).
fn json_failure(raw: &RawResponse, e: &serde_json::Error) -> String {
    if raw.body.is_empty() {
        return "the body is empty".into();
    }
    if let Some(enc) = raw
        .header("content-encoding")
        .filter(|c| !c.eq_ignore_ascii_case("identity"))
    {
        return format!(
            "the body is compressed (Content-Encoding: {}), which chainview neither asks for nor decodes; a proxy between chainview and the broker may be compressing it",
            snippet(enc.as_bytes())
        );
    }
    // serde_json counts columns from 1, and reports an error at a newline
    // as column 0 of the next line: point at the byte itself.
    let (line, column) = (e.line(), e.column());
    let line_start = raw
        .body
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let offset = if column == 0 {
        line_start.saturating_sub(1)
    } else {
        line_start + column - 1
    };
    let (line, column) = if column == 0 && line > 1 {
        let prev = raw.body[..offset]
            .rsplit(|b| *b == b'\n')
            .next()
            .map_or(0, <[u8]>::len);
        (line - 1, prev + 1)
    } else {
        (line, column)
    };
    let text = e.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    let what = match raw.body.get(offset) {
        Some(c) if c.is_ascii_control() && what.contains("control character") => format!(
            "a raw control character (U+{:04X}) inside a JSON string; JSON needs it escaped",
            c
        ),
        _ => what.to_string(),
    };
    format!("{what} at line {line}, column {column} (byte {offset})")
}

impl BrokerClient {
    /// A client with the default 10 s timeout.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, ClientError> {
        Self::with_tls(base_url, timeout, &ClientTls::default())
    }

    /// A client that trusts the bundled web roots, the system store and the
    /// given CA files, and presents the given client certificate (mtls).
    /// The files are read (and checked) even for an `http://` URL, so a typo
    /// in them never goes unnoticed.
    pub fn with_tls(
        base_url: &str,
        timeout: Duration,
        opts: &ClientTls,
    ) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        let parsed =
            reqwest::Url::parse(&base).map_err(|_| ClientError::InvalidUrl(base.clone()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ClientError::InvalidUrl(base));
        }
        // No redirects: the AgentWrit API never sends one, and following it
        // would re-post the admin or app secret (in the body) to wherever it
        // points, https to http included.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("chainview/", env!("CARGO_PKG_VERSION")));
        let custom =
            !opts.ca_files.is_empty() || opts.client_cert.is_some() || opts.client_key.is_some();
        if parsed.scheme() == "https" || custom {
            let cfg = tls::client_config(opts).map_err(|e| ClientError::TlsSetup(e.to_string()))?;
            builder = builder.use_preconfigured_tls(cfg);
        }
        let http = builder.build().map_err(|e| ClientError::Transport {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        Ok(BrokerClient {
            http,
            base,
            timeout,
            client_cert: opts.presents_certificate(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> ClientError {
        let url = url.to_string();
        if e.is_timeout() {
            return ClientError::Timeout {
                url,
                after: self.timeout,
            };
        }
        if let Some(kind) = tls::classify(e, self.client_cert) {
            let host = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let raw = tls_cause(e);
            let reason = kind.explain(&host, &raw);
            // The broker, not the route: TLS is about the whole server.
            let url = self.base.clone();
            return ClientError::Tls { url, kind, reason };
        }
        let mut chain = Vec::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            chain.push(s.to_string());
            src = s.source();
        }
        let reason = chain.last().cloned().unwrap_or_else(|| e.to_string());
        let all = chain.join(": ").to_lowercase();
        if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
            ClientError::Tls {
                url,
                kind: TlsFailure::Other,
                reason,
            }
        } else if e.is_connect() {
            ClientError::Connect { url, reason }
        } else {
            ClientError::Transport { url, reason }
        }
    }

    /// Sends a request and returns the raw answer, whatever its status
    /// (at most [`MAX_RESPONSE`] bytes of it).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let start = std::time::Instant::now();
        let shown = (
            method.as_str().to_string(),
            path.split('?').next().unwrap_or(path).to_string(),
        );
        let r = self.exchange(method, path, headers, body).await;
        let (status, error) = match &r {
            Ok(raw) if raw.status >= 400 => (
                Some(raw.status),
                Some(match raw.problem() {
                    Some(p) if !p.error_code.is_empty() => format!("{} {}", p.error_code, p.detail),
                    _ => format!("HTTP {}: {}", raw.status, snippet(&raw.body)),
                }),
            ),
            Ok(raw) => (Some(raw.status), None),
            Err(e) => (None, Some(e.to_string())),
        };
        note(Exchange {
            method: shown.0,
            path: shown.1,
            status,
            latency: start.elapsed(),
            error,
        });
        r
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse, ClientError> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::InvalidInput(format!("invalid header name '{k}'")))?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                ClientError::InvalidInput(format!("invalid value for header '{k}'"))
            })?;
            req = req.header(name, value);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        // Read at most MAX_RESPONSE bytes: a broker (hostile, or a real one
        // whose audit trail holds huge planted details) cannot make the
        // client hold more than that for one answer.
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(&url, &e))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(ClientError::Decode {
                    url,
                    status,
                    expected: "answer of at most 16 MiB",
                    reason: "the broker sent more; chainview stopped reading".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Turns a non-2xx answer into the right error.
    fn error_for(&self, path: &str, raw: &RawResponse) -> ClientError {
        let url = self.url(path);
        if (300..400).contains(&raw.status) {
            return ClientError::Redirect {
                url,
                status: raw.status,
                location: raw
                    .header("location")
                    .map(|l| snippet(l.as_bytes()))
                    .unwrap_or_else(|| "(no Location)".into()),
            };
        }
        if raw.status == 400 && raw.text().contains(tls::GO_PLAIN_HTTP_TO_TLS) {
            let host = reqwest::Url::parse(&url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            let kind = TlsFailure::TlsOnly;
            let reason = kind.explain(&host, "");
            let url = self.base.clone();
            return ClientError::Tls { url, kind, reason };
        }
        let is_problem = raw
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json"));
        match raw.problem() {
            Some(p) if is_problem || !p.error_code.is_empty() => ClientError::Broker(BrokerError {
                status: raw.status,
                error_code: p.error_code,
                detail: p.detail,
                request_id: p.request_id,
            }),
            _ => ClientError::Unexpected {
                url,
                status: raw.status,
                snippet: snippet(&raw.body),
            },
        }
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&B>,
        expected: &'static str,
    ) -> Result<T, ClientError> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let raw = self.send_raw(method, path, &headers, bytes).await?;
        if !(200..300).contains(&raw.status) {
            return Err(self.error_for(path, &raw));
        }
        serde_json::from_slice(&raw.body).map_err(|e| ClientError::Decode {
            url: self.url(path),
            status: raw.status,
            expected,
            reason: json_failure(&raw, &e),
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        expected: &'static str,
    ) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, bearer, None, expected)
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &B,
        expected: &'static str,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, bearer, Some(body), expected)
            .await
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health", None, "health status").await
    }

    /// Prometheus text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let raw = self.send_raw(Method::GET, "/v1/metrics", &[], None).await?;
        if raw.status != 200 {
            return Err(self.error_for("/v1/metrics", &raw));
        }
        Ok(raw.text())
    }

    pub async fn challenge(&self) -> Result<Challenge, ClientError> {
        self.get("/v1/challenge", None, "challenge").await
    }

    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        self.post("/v1/register", None, req, "registration result")
            .await
    }

    /// Challenge + sign the hex-decoded nonce + register, with the given key.
    pub async fn register_with_key(
        &self,
        launch_token: &str,
        key: &SigningKey,
        orch_id: &str,
        task_id: &str,
        scope: &[String],
    ) -> Result<RegisterResponse, ClientError> {
        let ch = self.challenge().await?;
        let req = self.registration(launch_token, key, &ch, orch_id, task_id, scope)?;
        self.register(&req).await
    }

    /// The registration body for a challenge: the key signs the
    /// **hex-decoded** nonce (spec §5.1), both encoded as padded base64.
    pub fn registration(
        &self,
        launch_token: &str,
        key: &SigningKey,
        challenge: &Challenge,
        orch_id: &str,
        task_id: &str,
        scope: &[String],
    ) -> Result<RegisterRequest, ClientError> {
        let nonce = hex::decode(&challenge.nonce).map_err(|_| ClientError::Decode {
            url: self.url("/v1/challenge"),
            status: 200,
            expected: "hex nonce",
            reason: format!("nonce '{}' is not hex", challenge.nonce),
        })?;
        Ok(RegisterRequest {
            launch_token: launch_token.to_string(),
            nonce: challenge.nonce.clone(),
            public_key: STANDARD.encode(key.verifying_key().to_bytes()),
            signature: STANDARD.encode(key.sign(&nonce).to_bytes()),
            orch_id: orch_id.to_string(),
            task_id: task_id.to_string(),
            requested_scope: scope.to_vec(),
        })
    }

    pub async fn app_auth(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<AppAuthResponse, ClientError> {
        let req = AppAuthRequest {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
        };
        self.post("/v1/app/auth", None, &req, "app token").await
    }

    pub async fn admin_auth(&self, secret: &str) -> Result<TokenResponse, ClientError> {
        let req = AdminAuthRequest {
            secret: secret.to_string(),
        };
        self.post("/v1/admin/auth", None, &req, "admin token").await
    }

    pub async fn admin_launch_token(
        &self,
        admin_token: &str,
        req: &LaunchTokenRequest,
    ) -> Result<LaunchTokenResponse, ClientError> {
        self.post(
            "/v1/admin/launch-tokens",
            Some(admin_token),
            req,
            "launch token",
        )
        .await
    }

    pub async fn app_launch_token(
        &self,
        app_token: &str,
        req: &LaunchTokenRequest,
    ) -> Result<LaunchTokenResponse, ClientError> {
        self.post(
            "/v1/app/launch-tokens",
            Some(app_token),
            req,
            "launch token",
        )
        .await
    }

    pub async fn create_app(
        &self,
        admin_token: &str,
        req: &CreateAppRequest,
    ) -> Result<App, ClientError> {
        self.post("/v1/admin/apps", Some(admin_token), req, "app")
            .await
    }

    pub async fn list_apps(&self, admin_token: &str) -> Result<AppList, ClientError> {
        self.get("/v1/admin/apps", Some(admin_token), "app list")
            .await
    }

    pub async fn get_app(&self, admin_token: &str, app_id: &str) -> Result<App, ClientError> {
        self.get(&app_path(app_id)?, Some(admin_token), "app").await
    }

    pub async fn update_app(
        &self,
        admin_token: &str,
        app_id: &str,
        req: &UpdateAppRequest,
    ) -> Result<App, ClientError> {
        self.call(
            Method::PUT,
            &app_path(app_id)?,
            Some(admin_token),
            Some(req),
            "app",
        )
        .await
    }

    pub async fn delete_app(&self, admin_token: &str, app_id: &str) -> Result<App, ClientError> {
        self.call::<(), App>(
            Method::DELETE,
            &app_path(app_id)?,
            Some(admin_token),
            None,
            "app",
        )
        .await
    }

    /// Delegates with `bearer` — a registration token or a delegated token (multi-hop).
    pub async fn delegate(
        &self,
        bearer: &str,
        req: &DelegateRequest,
    ) -> Result<DelegateResponse, ClientError> {
        self.post("/v1/delegate", Some(bearer), req, "delegation result")
            .await
    }

    pub async fn validate(&self, token: &str) -> Result<ValidateResponse, ClientError> {
        let req = ValidateRequest {
            token: token.to_string(),
        };
        self.post("/v1/token/validate", None, &req, "validation result")
            .await
    }

    pub async fn renew(&self, bearer: &str) -> Result<RenewResponse, ClientError> {
        self.call::<(), RenewResponse>(
            Method::POST,
            "/v1/token/renew",
            Some(bearer),
            None,
            "renewal result",
        )
        .await
    }

    pub async fn release(&self, bearer: &str) -> Result<(), ClientError> {
        let auth = format!("Bearer {bearer}");
        let raw = self
            .send_raw(
                Method::POST,
                "/v1/token/release",
                &[("authorization", &auth)],
                None,
            )
            .await?;
        if (200..300).contains(&raw.status) {
            Ok(())
        } else {
            Err(self.error_for("/v1/token/release", &raw))
        }
    }

    pub async fn revoke(
        &self,
        admin_token: &str,
        level: RevokeLevel,
        target: &str,
    ) -> Result<RevokeResponse, ClientError> {
        let req = RevokeRequest {
            level: level.as_str().to_string(),
            target: target.to_string(),
        };
        self.post("/v1/revoke", Some(admin_token), &req, "revocation result")
            .await
    }

    pub async fn audit_events(
        &self,
        admin_token: &str,
        query: &AuditQuery,
    ) -> Result<AuditPage, ClientError> {
        let qs: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.pairs())
            .finish();
        let path = if qs.is_empty() {
            "/v1/audit/events".to_string()
        } else {
            format!("/v1/audit/events?{qs}")
        };
        self.get(&path, Some(admin_token), "audit page").await
    }

    /// Launch token + challenge + register, as the SDK's `create_agent`.
    /// `bearer` is an app token (app route) or any other token holding
    /// `admin:launch-tokens:*` (admin route). `orch_id`/`task_id` are checked
    /// locally first so a bad name does not burn a launch token.
    pub async fn create_agent(
        &self,
        bearer: &str,
        orch_id: &str,
        task_id: &str,
        scope: &[String],
        max_ttl: Option<i64>,
    ) -> Result<Agent, ClientError> {
        for (what, v) in [("orch_id", orch_id), ("task_id", task_id)] {
            if !super::types::valid_segment(v) {
                return Err(ClientError::InvalidInput(format!(
                    "{what} '{v}' is not a valid SPIFFE path segment (use letters, digits, '.', '-', '_')"
                )));
            }
        }
        if scope.is_empty() {
            return Err(ClientError::InvalidInput(
                "an agent needs at least one scope".into(),
            ));
        }
        let req = LaunchTokenRequest::for_agent(orch_id, task_id, scope, max_ttl);
        let is_app = jwt::decode(bearer).is_ok_and(|d| d.claims.sub.starts_with("app:"));
        let lt = if is_app {
            self.app_launch_token(bearer, &req).await?
        } else {
            self.admin_launch_token(bearer, &req).await?
        };
        let key = SigningKey::from_bytes(&rand::random());
        let reg = self
            .register_with_key(&lt.launch_token, &key, orch_id, task_id, scope)
            .await?;
        Ok(Agent {
            agent_id: reg.agent_id,
            access_token: reg.access_token,
            expires_in: reg.expires_in,
            scope: scope.to_vec(),
            task_id: task_id.to_string(),
            orch_id: orch_id.to_string(),
            key,
        })
    }
}

fn app_path(app_id: &str) -> Result<String, ClientError> {
    if app_id.is_empty() || app_id.contains('/') || app_id.contains('?') {
        return Err(ClientError::InvalidInput(format!(
            "invalid app id '{app_id}'"
        )));
    }
    Ok(format!("/v1/admin/apps/{app_id}"))
}
