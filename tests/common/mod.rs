//! Test harness: a broker over real loopback HTTP — the embedded one (a fresh
//! instance per test), or an external broker when `AGENTWRIT_CONFORMANCE_URL`
//! and `AGENTWRIT_ADMIN_SECRET` are set.
#![allow(dead_code)]

pub mod clean;
pub mod pki;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chainview::broker::client::{Agent, RawResponse};
use chainview::broker::embedded::{Config, EmbeddedBroker};
use chainview::broker::types::*;
use chainview::broker::{BrokerClient, ClientError};
use ed25519_dalek::{SigningKey, VerifyingKey};
use reqwest::Method;

pub struct Env {
    pub client: BrokerClient,
    pub admin_secret: String,
    pub external: bool,
    pub public_key: Option<VerifyingKey>,
    /// The broker serves TLS (the embedded one, from [`Env::tls`]).
    pub tls: bool,
    /// The embedded broker's clock, which a test may move; `None` for an
    /// external broker (real time only).
    pub clock: Option<chainview::broker::embedded::Clock>,
    broker: Option<EmbeddedBroker>,
    pub pki: Option<pki::Pki>,
    /// The TLS files a client of this broker needs.
    pub tls_options: chainview::broker::tls::ClientTls,
}

/// A key press without modifiers.
pub fn key(c: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE)
}

/// A short random lowercase suffix, so names and task ids never collide on a shared broker.
pub fn uniq() -> String {
    let n: u64 = rand::random();
    format!("t{:012x}", n & 0xffff_ffff_ffff)
}

impl Env {
    /// The embedded broker trusts `X-Forwarded-For` here, as the real broker
    /// always does, so the suite can pick client IPs for the rate limits.
    pub async fn new() -> Env {
        Self::with_config(Config {
            trust_proxy: true,
            ..Config::with_admin_secret("conformance-admin-secret")
        })
        .await
    }

    /// Like [`Env::new`], with this configuration for the embedded broker.
    pub async fn with_config(cfg: Config) -> Env {
        if let (Ok(url), Ok(secret)) = (
            std::env::var("AGENTWRIT_CONFORMANCE_URL"),
            std::env::var("AGENTWRIT_ADMIN_SECRET"),
        ) {
            return Env {
                client: BrokerClient::new(&url).expect("AGENTWRIT_CONFORMANCE_URL is a URL"),
                admin_secret: secret,
                external: true,
                public_key: None,
                tls: false,
                clock: None,
                broker: None,
                pki: None,
                tls_options: Default::default(),
            };
        }
        let clock = cfg.clock.clone();
        let broker = EmbeddedBroker::start(cfg)
            .await
            .expect("embedded broker starts");
        Env {
            client: BrokerClient::new(&broker.url()).expect("url"),
            admin_secret: broker.admin_secret().to_string(),
            external: false,
            public_key: Some(broker.public_key()),
            tls: false,
            clock: Some(clock),
            broker: Some(broker),
            pki: None,
            tls_options: Default::default(),
        }
    }

    /// A broker started elsewhere (e.g. the one an interactive session
    /// started for itself), reached at `url` with its admin secret.
    pub fn reach(url: &str, admin_secret: &str) -> Env {
        Env {
            client: BrokerClient::new(url).expect("a broker URL"),
            admin_secret: admin_secret.to_string(),
            external: true,
            public_key: None,
            tls: false,
            clock: None,
            broker: None,
            pki: None,
            tls_options: Default::default(),
        }
    }

    /// The embedded broker serving TLS with certificates made for this test
    /// (mtls: a client certificate is required), and a client that trusts
    /// its CA (and presents a client certificate). Always embedded: the
    /// external broker of CI speaks plain HTTP.
    pub async fn tls(mtls: bool) -> Env {
        let pki = pki::Pki::new();
        let broker = EmbeddedBroker::start(Config {
            trust_proxy: true,
            tls: Some(chainview::broker::tls::ServerTls {
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                client_ca: mtls.then(|| pki.ca_pem.clone()),
            }),
            ..Config::with_admin_secret("conformance-admin-secret")
        })
        .await
        .expect("embedded broker starts with TLS");
        let opts = chainview::broker::tls::ClientTls {
            ca_files: vec![pki.ca_pem.clone()],
            client_cert: mtls.then(|| pki.client_cert.clone()),
            client_key: mtls.then(|| pki.client_key.clone()),
        };
        let client = BrokerClient::with_tls(
            &broker.url(),
            chainview::broker::client::DEFAULT_TIMEOUT,
            &opts,
        )
        .expect("client");
        Env {
            client,
            admin_secret: broker.admin_secret().to_string(),
            external: false,
            public_key: Some(broker.public_key()),
            tls: true,
            clock: None,
            broker: Some(broker),
            pki: Some(pki),
            tls_options: opts,
        }
    }

    /// Lets `by` pass for the broker: the embedded broker's clock moves at
    /// once; an external broker's time has to be waited out.
    pub async fn pass(&self, by: std::time::Duration) {
        match &self.clock {
            Some(c) => c.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }

    /// Settings as a user would give them for this broker: its URL, an app
    /// of their own (registered here), the admin secret and TLS files.
    pub async fn settings(&self) -> chainview::session::Settings {
        let n: u64 = rand::random();
        let app = self
            .client
            .create_app(
                &self.admin().await,
                &CreateAppRequest {
                    name: format!("actions-{n:016x}"),
                    scopes: vec![
                        "read:config:*".into(),
                        "read:deploy:*".into(),
                        "write:deploy:*".into(),
                    ],
                    token_ttl: None,
                },
            )
            .await
            .expect("app registered");
        chainview::session::Settings {
            broker_url: Some(self.client.base_url().to_string()),
            client_id: Some(app.client_id),
            client_secret: app.client_secret,
            admin_secret: Some(self.admin_secret.clone()),
            timeout: None,
            tls: self.tls_options.clone(),
            audit_cap: Default::default(),
            context: None,
        }
    }

    /// A fresh admin token. Each call uses its own X-Forwarded-For so the
    /// per-IP admin-auth limiter never trips a test that is not about it.
    pub async fn admin(&self) -> String {
        let xff = format!("198.51.100.{}", rand::random::<u8>());
        let raw = self
            .raw(
                Method::POST,
                "/v1/admin/auth",
                &[("x-forwarded-for", &xff)],
                Some(serde_json::json!({ "secret": self.admin_secret })),
            )
            .await;
        assert_eq!(raw.status, 200, "admin auth: {}", raw.text());
        raw.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> RawResponse {
        self.client
            .send_raw(
                method,
                path,
                headers,
                body.map(|b| serde_json::to_vec(&b).unwrap()),
            )
            .await
            .expect("broker reachable")
    }

    pub async fn raw_bytes(&self, method: Method, path: &str, body: Vec<u8>) -> RawResponse {
        self.client
            .send_raw(method, path, &[], Some(body))
            .await
            .expect("broker reachable")
    }

    pub async fn bearer(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> RawResponse {
        let auth = format!("Bearer {token}");
        self.raw(method, path, &[("authorization", &auth)], body)
            .await
    }

    pub async fn launch(&self, body: serde_json::Value) -> String {
        let admin = self.admin().await;
        let r = self
            .bearer(Method::POST, "/v1/admin/launch-tokens", &admin, Some(body))
            .await;
        assert_eq!(r.status, 201, "launch token: {}", r.text());
        r.json().unwrap()["launch_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The default launch token of §16: allowed_scope read:data:* and write:data:*.
    pub async fn default_launch(&self) -> String {
        self.launch(
            serde_json::json!({"agent_name":"conf","allowed_scope":["read:data:*","write:data:*"]}),
        )
        .await
    }

    /// Registers an agent with a fresh key from the given launch token.
    pub async fn register(
        &self,
        launch_token: &str,
        orch: &str,
        task: &str,
        scope: &[&str],
    ) -> Result<RegisterResponse, ClientError> {
        let key = SigningKey::from_bytes(&rand::random());
        let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        self.client
            .register_with_key(launch_token, &key, orch, task, &scope)
            .await
    }

    /// "AG": an agent with `scope` from a default launch token, unique task id.
    pub async fn agent(&self, scope: &[&str]) -> RegisterResponse {
        let lt = self.default_launch().await;
        self.register(&lt, "orch-1", &uniq(), scope)
            .await
            .expect("registration succeeds")
    }

    /// An agent created through the client's `create_agent` with an admin token.
    pub async fn create_agent(&self, orch: &str, task: &str, scope: &[&str]) -> Agent {
        let admin = self.admin().await;
        let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        self.client
            .create_agent(&admin, orch, task, &scope, None)
            .await
            .expect("create_agent")
    }

    pub async fn valid(&self, token: &str) -> bool {
        self.client.validate(token).await.expect("validate").valid
    }

    pub async fn delegate(
        &self,
        bearer: &str,
        to: &str,
        scope: &[&str],
        ttl: Option<i64>,
    ) -> Result<DelegateResponse, ClientError> {
        self.client
            .delegate(
                bearer,
                &DelegateRequest {
                    delegate_to: to.to_string(),
                    scope: scope.iter().map(|s| s.to_string()).collect(),
                    ttl,
                },
            )
            .await
    }

    /// A new app with a unique name; returns (app, app token).
    pub async fn app(&self, scopes: &[&str]) -> (App, String) {
        let admin = self.admin().await;
        let app = self
            .client
            .create_app(
                &admin,
                &CreateAppRequest {
                    name: format!("app-{}", uniq()),
                    scopes: scopes.iter().map(|s| s.to_string()).collect(),
                    token_ttl: None,
                },
            )
            .await
            .expect("create app");
        let tok = self
            .client
            .app_auth(&app.client_id, app.client_secret.as_deref().unwrap())
            .await
            .expect("app auth")
            .access_token;
        (app, tok)
    }
}

/// Asserts a problem+json answer (spec §1.6) with exact status, code and detail.
pub fn assert_problem(r: &RawResponse, status: u16, code: &str, detail: &str, path: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "content type"
    );
    let p = r.json().expect("problem body is JSON");
    assert_eq!(p["type"], format!("urn:agentwrit:error:{code}"));
    assert_eq!(p["error_code"], code);
    assert_eq!(p["status"], status);
    assert_eq!(p["detail"], detail);
    assert_eq!(p["instance"], path);
    assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(p["request_id"].as_str(), r.header("x-request-id"));
    assert!(p.get("hint").is_none());
}

/// Asserts a typed client error carrying the broker's refusal.
pub fn assert_refused<T: std::fmt::Debug>(
    res: Result<T, ClientError>,
    status: u16,
    code: &str,
    detail: &str,
) {
    match res {
        Err(ClientError::Broker(b)) => {
            assert_eq!(
                (b.status, b.error_code.as_str(), b.detail.as_str()),
                (status, code, detail)
            );
            assert_eq!(b.request_id.len(), 16, "generated request id");
        }
        other => panic!("expected {status} {code} '{detail}', got {other:?}"),
    }
}

/// The JSON payload of a compact JWT.
pub fn payload(token: &str) -> serde_json::Value {
    let p = token.split('.').nth(1).expect("3 parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
}

pub fn header_json(token: &str) -> String {
    let p = token.split('.').next().expect("part");
    String::from_utf8(URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("utf8")
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Filters for transcripts: ports, instance ids, timings, request ids, tokens, paths.
pub fn transcript_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (
            r"(spiffe://agentwrit\.local/agent/[^/\s]+/[^/\s]+/)[0-9a-f]{16}",
            "$1[INSTANCE]",
        ),
        (r"· \d+ ms", "· [MS] ms"),
        (r#""ms":[0-9.]+"#, r#""ms":"[MS]""#),
        (r#""request_id":"[0-9a-f]{16}""#, r#""request_id":"[ID]""#),
        (r"eyJ[A-Za-z0-9_-]{9}…", "[TOKEN]…"),
        (r"assets/scenarios/", "[SCENARIOS]/"),
        (r"/\S*\[SCENARIOS\]", "[SCENARIOS]"),
    ]
}

/// Filters for rendered screens: ports, ids, times, TTLs, latencies.
pub fn screen_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (
            r"app app-chainview-[0-9a-f]{0,6}(-[0-9a-f]{0,6})?…?",
            "app [APP]",
        ),
        (r"/[0-9a-f]{4}…", "/[INST]…"),
        (
            r"(spiffe://[a-z.]+/agent/[^/\s]+/[^/\s]+/)[0-9a-f]*…?",
            "${1}[INSTANCE]",
        ),
        (r"⏱\d+:\d\d", "⏱[TTL]"),
        (r"expires in \d+:\d\d", "expires in [TTL]"),
        (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z", "[TIMESTAMP]"),
        // Times shown in the local zone (observe::when): whatever TZ says.
        (
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([A-Z]{2,5}|[+-]\d\d(\d\d)?)\b",
            "[TIMESTAMP]",
        ),
        (
            r"\b\d\d:\d\d:\d\d ([A-Z]{2,5}|[+-]\d\d(\d\d)?)\b",
            "[HH:MM:SS] [TZ]",
        ),
        (r"\b\d\d:\d\d:\d\d\b", "[HH:MM:SS]"),
        (r"\s*\d+\.\dms", " [MS]"),
        (r"kid [A-Za-z0-9_-]{12}…", "kid [KID]…"),
        (r"jti [0-9a-f]{8}…", "jti [JTI]…"),
        (r"chain_hash [0-9a-f]{12}…", "chain_hash [HASH]…"),
    ]
}
