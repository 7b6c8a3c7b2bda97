//! An in-process AgentWrit broker, wire-compatible with v2.0.0 (spec §1–§11).
//!
//! It is a real HTTP server on loopback (axum), not a mock: clients talk to
//! it over TCP exactly as to a remote broker. What the real broker keeps in
//! SQLite and a PEM file (spec §11) is kept by [`store`]: in a data
//! directory that survives restarts (`Config::data_dir`), or in a private
//! temporary one. Deliberate deviations from the Go broker are listed in the
//! README ("Embedded broker").

mod audit;
mod handlers;
mod http;
mod issued;
mod ratelimit;
mod serve;
pub mod store;
mod wire;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::broker::types::valid_segment;
pub use audit::{MAX_DETAIL, MAX_FIELD, sanitize};
pub use store::{Console, StoreError, remove_scratch_dirs};

use crate::broker::tls::{self, ServerTls, TlsFileError};
use crate::broker::types::{App, RevokeLevel};
use crate::jwt::{self, Claims};
use issued::IssuedCache;

/// The broker's clock: the system's, shifted by what a test has advanced it
/// (so a test of a 30 s expiry need not wait 30 s). Cheap to clone; clones
/// share the shift.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    shift_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// The broker's idea of now.
    pub fn now(&self) -> DateTime<Utc> {
        let shift = self.shift_ms.load(std::sync::atomic::Ordering::Relaxed);
        Utc::now() + chrono::Duration::milliseconds(shift)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: StdDuration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.shift_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Broker settings; the defaults are the real broker's (spec §12).
#[derive(Debug, Clone)]
pub struct Config {
    pub trust_domain: String,
    pub issuer: String,
    pub max_ttl: i64,
    pub default_ttl: i64,
    pub admin_token_ttl: i64,
    pub app_token_ttl: i64,
    pub admin_secret: String,
    /// Fixed signing-key seed (tests); random when `None`.
    pub signing_seed: Option<[u8; 32]>,
    /// Reproduce the real broker's 500 answers to client errors (spec §15 #2
    /// and #8) instead of the documented 4xx. Off by default.
    pub strict_500s: bool,
    /// Keep the signing key, apps, revocations and the audit trail here
    /// across restarts; `None`: a private temporary directory, removed at stop.
    pub data_dir: Option<PathBuf>,
    /// Take the client IP for rate limits from `X-Forwarded-For` (only
    /// behind a proxy that sets it). Off: the TCP peer address.
    pub trust_proxy: bool,
    /// Connections served at once; past it the longest-idle one is closed to
    /// make room, and a new one is refused only when none is idle.
    pub max_connections: usize,
    /// Server timeouts (spec §1.1: 5 s, 15 s, 30 s, 120 s).
    pub timeouts: Timeouts,
    /// Serve TLS (mtls with a client CA) instead of plain HTTP, and send HSTS.
    pub tls: Option<ServerTls>,
    /// The clock tokens, nonces and audit times are judged by.
    pub clock: Clock,
    /// Where to say what the operator must know at once (the audit trail
    /// cannot be written); `None`: only the log.
    pub console: Option<Console>,
    /// Start over on `data_dir`: delete its key, apps, revocations and
    /// audit trail first (`chainview broker --reset`).
    pub reset: bool,
    /// With `data_dir`: commits are not synced to disk (SQLite
    /// `synchronous=NORMAL`): an answered event survives kill -9 but maybe
    /// not a power loss or a kernel crash. Off: each commit is synced.
    pub power_loss_may_lose_events: bool,
}

/// The real broker's server timeouts (spec §1.1).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its headers.
    pub read_header: StdDuration,
    /// From the first byte of a request to the end of its body.
    pub read: StdDuration,
    /// For a response write that makes no progress.
    pub write: StdDuration,
    /// A kept-alive connection with no request.
    pub idle: StdDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read_header: StdDuration::from_secs(5),
            read: StdDuration::from_secs(15),
            write: StdDuration::from_secs(30),
            idle: StdDuration::from_secs(120),
        }
    }
}

impl Config {
    pub fn with_admin_secret(secret: impl Into<String>) -> Self {
        Config {
            admin_secret: secret.into(),
            ..Config::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trust_domain: "agentwrit.local".into(),
            issuer: String::new(),
            max_ttl: crate::rules::limits::MAX_TTL,
            default_ttl: 300,
            admin_token_ttl: 300,
            app_token_ttl: 1800,
            admin_secret: random_hex(24),
            signing_seed: None,
            strict_500s: false,
            data_dir: None,
            trust_proxy: false,
            max_connections: 1024,
            timeouts: Timeouts::default(),
            tls: None,
            clock: Clock::default(),
            console: None,
            reset: false,
            power_loss_may_lose_events: false,
        }
    }
}

pub use crate::broker::types::short_id;

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    hex::encode(bytes)
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

#[derive(Debug, Clone)]
struct LaunchToken {
    allowed_scope: Vec<String>,
    max_ttl: i64,
    single_use: bool,
    expires_at: DateTime<Utc>,
    consumed: bool,
    app_id: Option<String>,
}

/// A nonce that registration consumed (kept for the "already consumed"
/// answer; issued but unused nonces are not stored at all).
#[derive(Debug, Clone)]
struct Nonce {
    created: DateTime<Utc>,
}

type AppRecord = store::StoredApp;

impl AppRecord {
    fn view(&self) -> App {
        App {
            app_id: self.app_id.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            client_secret: None,
            scopes: Some(self.scopes.clone()),
            token_ttl: self.token_ttl,
            status: if self.active { "active" } else { "inactive" }.into(),
            created_at: Some(self.created_at.clone()),
            updated_at: Some(self.updated_at.clone()),
            deregistered_at: None,
        }
    }
}

/// Revocations (spec §7.1). Token-level entries made by release and renew
/// carry the token's expiry and are purged some time after it (the token
/// can no longer verify); the others are kept for good, like the real broker.
#[derive(Debug, Default)]
struct Revocations {
    /// Token-level (by 16 bytes of the jti's SHA-256) → expiry.
    tokens: HashMap<[u8; 16], i64>,
    next_purge: usize,
    sets: HashMap<RevokeLevel, HashSet<String>>,
}

impl Revocations {
    /// Adds a revocation; `exp` bounds how long a token-level one is needed.
    /// False when it was there already.
    fn insert(&mut self, level: RevokeLevel, target: &str, exp: Option<i64>, now: i64) -> bool {
        if level != RevokeLevel::Token {
            return self
                .sets
                .entry(level)
                .or_default()
                .insert(target.to_string());
        }
        if self.tokens.len() >= self.next_purge.max(4096) {
            self.tokens.retain(|_, exp| *exp >= now - 60);
            self.next_purge = self.tokens.len() + self.tokens.len() / 4;
        }
        let exp = exp.unwrap_or(i64::MAX);
        match self.tokens.get_mut(&short_key(target)) {
            Some(e) => {
                *e = (*e).max(exp);
                false
            }
            None => {
                self.tokens.insert(short_key(target), exp);
                true
            }
        }
    }

    fn has(&self, level: RevokeLevel, target: &str) -> bool {
        if level == RevokeLevel::Token {
            return self.tokens.contains_key(&short_key(target));
        }
        self.sets.get(&level).is_some_and(|s| s.contains(target))
    }

    /// Spec §7.1.
    fn revoked(&self, c: &Claims) -> bool {
        let s = c.subject();
        RevokeLevel::ALL
            .into_iter()
            .any(|l| s.key(l).is_some_and(|k| self.has(l, k)))
    }
}

/// An id as kept in the sets that only grow or live long (agents for
/// `delegate_to` look-ups, revoked jtis): 16 bytes of its SHA-256, whatever
/// its length, so each entry stays small.
pub(crate) fn short_key(id: &str) -> [u8; 16] {
    let h = sha256(id);
    let mut k = [0u8; 16];
    k.copy_from_slice(&h[..16]);
    k
}

#[derive(Debug, Default)]
struct Metrics {
    tokens_issued: u64,
    revocations: HashMap<&'static str, u64>,
    registrations: HashMap<&'static str, u64>,
    admin_auth: HashMap<&'static str, u64>,
    launch_tokens: u64,
}

/// What a data directory held when the broker started on it.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Audit events in the trail.
    pub events: u64,
    pub apps: usize,
    /// Revocations still in force.
    pub revocations: usize,
    /// The directory was last run with another admin secret: admin clients
    /// holding that one now get 401.
    pub admin_secret_changed: bool,
    save_secret: Option<([u8; 16], [u8; 32])>,
}

/// The broker's shared state.
pub(crate) struct State {
    /// `None` without a data directory.
    restored: Option<Restored>,
    cfg: Config,
    key: SigningKey,
    kid: String,
    admin_secret_hash: [u8; 32],
    started: Instant,
    /// Consumed nonces only: issued ones carry their creation time and a MAC
    /// under `nonce_key`, so a challenge flood costs no memory.
    nonces: Mutex<Purgeable<Nonce>>,
    nonce_key: [u8; 32],
    launch: Mutex<Purgeable<LaunchToken>>,
    agents: RwLock<HashSet<[u8; 16]>>,
    apps: Mutex<Vec<AppRecord>>,
    revoked: RwLock<Revocations>,
    issued: RwLock<IssuedCache>,
    store: store::Store,
    admin_limiter: Mutex<ratelimit::Limiter>,
    app_limiter: Mutex<ratelimit::Limiter>,
    metrics: Mutex<Metrics>,
    app_seq: std::sync::atomic::AtomicU64,
}

/// Drops stale entries (nonces, launch tokens) once the map has grown by a quarter
/// since the last purge, so memory stays bounded under sustained load and
/// the cost is amortized O(1) per insert. An entry is dropped at least a
/// minute after it stopped being usable, so replays within that minute still
/// get the precise answer ("already consumed", "expired").
pub(crate) fn purge<V>(map: &mut Purgeable<V>, stale: impl Fn(&V) -> bool) {
    if map.entries.len() >= map.next_purge {
        map.entries.retain(|_, v| !stale(v));
        map.next_purge = (map.entries.len() + map.entries.len() / 4).max(4096);
    }
}

/// A map of short-lived entries with an amortized purge threshold.
#[derive(Debug)]
pub(crate) struct Purgeable<V> {
    entries: HashMap<String, V>,
    next_purge: usize,
}

impl<V> Default for Purgeable<V> {
    fn default() -> Self {
        Purgeable {
            entries: HashMap::new(),
            next_purge: 4096,
        }
    }
}

impl<V> std::ops::Deref for Purgeable<V> {
    type Target = HashMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.entries
    }
}

impl<V> std::ops::DerefMut for Purgeable<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.entries
    }
}

/// Locks a mutex, recovering the data if a previous holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Why a token failed verification (for audit details only; the wire never says).
#[derive(Debug)]
enum Invalid {
    Format(jwt::JwtError),
    Header,
    Signature,
    Claims(&'static str),
    Expired,
    NotYetValid,
    Issuer,
    Revoked,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Format(e) => write!(f, "{e}"),
            Invalid::Header => f.write_str("unsupported header"),
            Invalid::Signature => f.write_str("signature invalid"),
            Invalid::Claims(c) => write!(f, "invalid claims: {c}"),
            Invalid::Expired => f.write_str("token expired"),
            Invalid::NotYetValid => f.write_str("token not yet valid"),
            Invalid::Issuer => f.write_str("issuer mismatch"),
            Invalid::Revoked => f.write_str("token has been revoked"),
        }
    }
}

impl State {
    fn new(cfg: Config) -> Result<Self, StoreError> {
        let (store, loaded) = store::Store::open(
            cfg.data_dir.as_deref(),
            cfg.signing_seed,
            cfg.console.clone(),
            store::OpenOptions {
                reset: cfg.reset,
                power_loss_may_lose_events: cfg.power_loss_may_lose_events,
            },
        )?;
        let key = loaded.key;
        let kid = jwt::kid(&key.verifying_key());
        let now = cfg.clock.now().timestamp();
        let mut revoked = Revocations::default();
        for (level, target, exp) in loaded.revocations {
            revoked.insert(level, &target, exp, now);
        }
        let next_app = loaded.apps.iter().map(|a| a.seq + 1).max().unwrap_or(0);
        let restored = store.persistent().then(|| {
            let salted = |salt: &[u8; 16]| -> [u8; 32] {
                let mut h = Sha256::new();
                h.update(salt);
                h.update(cfg.admin_secret.as_bytes());
                h.finalize().into()
            };
            let before = loaded.admin_secret;
            let same = before.is_some_and(|(salt, hash)| bool::from(salted(&salt).ct_eq(&hash)));
            Restored {
                events: loaded.events,
                apps: loaded.apps.len(),
                revocations: revoked.sets.values().map(HashSet::len).sum::<usize>()
                    + revoked.tokens.len(),
                admin_secret_changed: before.is_some() && !same,
                save_secret: (!same).then(|| {
                    let salt: [u8; 16] = rand::random();
                    (salt, salted(&salt))
                }),
            }
        });
        if let Some((salt, hash)) = restored.as_ref().and_then(|r| r.save_secret) {
            store.save_admin_secret(&salt, &hash)?;
        }
        Ok(State {
            restored,
            admin_secret_hash: sha256(&cfg.admin_secret),
            cfg,
            key,
            kid,
            started: Instant::now(),
            nonces: Mutex::default(),
            nonce_key: rand::random(),
            launch: Mutex::default(),
            agents: RwLock::default(),
            apps: Mutex::new(loaded.apps),
            revoked: RwLock::new(revoked),
            issued: RwLock::default(),
            store,
            admin_limiter: Mutex::new(ratelimit::Limiter::new(5.0, 10)),
            app_limiter: Mutex::new(ratelimit::Limiter::new(10.0 / 60.0, 3)),
            metrics: Mutex::default(),
            app_seq: std::sync::atomic::AtomicU64::new(next_app),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.cfg.clock.now()
    }

    fn audit(&self, e: audit::NewEvent) {
        self.store.record(e, self.now());
    }

    /// Records a revocation in memory and in the store. False when it was
    /// there already; an error when the store refused it.
    fn revoke(
        &self,
        level: RevokeLevel,
        target: &str,
        exp: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = self.now().timestamp();
        let first = write(&self.revoked).insert(level, target, exp, now);
        if first {
            self.store.put_revocation(level, target, exp)?;
        }
        Ok(first)
    }

    fn register_agent(&self, spiffe: &str) {
        write(&self.agents).insert(short_key(spiffe));
    }

    fn is_agent(&self, spiffe: &str) -> bool {
        read(&self.agents).contains(&short_key(spiffe))
    }

    /// HMAC-SHA256 of the nonce's body under `nonce_key`, cut to 8 bytes.
    fn nonce_mac(&self, body: &[u8]) -> [u8; 8] {
        use hmac::{KeyInit, Mac};
        let mut mac = [0u8; 8];
        // A 32-byte key is always a valid HMAC key; the fallback never runs.
        if let Ok(mut h) = hmac::Hmac::<Sha256>::new_from_slice(&self.nonce_key) {
            h.update(body);
            mac.copy_from_slice(&h.finalize().into_bytes()[..8]);
        }
        mac
    }

    /// A new challenge nonce: 16 random bytes, the creation time (unix
    /// nanoseconds) and a MAC, as 64 lowercase hex characters.
    fn new_nonce(&self, now: DateTime<Utc>) -> String {
        let mut n = [0u8; 32];
        n[..16].copy_from_slice(&rand::random::<[u8; 16]>());
        n[16..24].copy_from_slice(&now.timestamp_nanos_opt().unwrap_or(0).to_be_bytes());
        let mac = self.nonce_mac(&n[..24]);
        n[24..].copy_from_slice(&mac);
        hex::encode(n)
    }

    /// When this broker issued `nonce`; `None` if it never did.
    fn nonce_created(&self, nonce: &str) -> Option<DateTime<Utc>> {
        let n: [u8; 32] = hex::decode(nonce).ok()?.try_into().ok()?;
        let mac = self.nonce_mac(&n[..24]);
        if !bool::from(mac.ct_eq(&n[24..])) {
            return None;
        }
        let nanos = i64::from_be_bytes(n[16..24].try_into().ok()?);
        Some(DateTime::from_timestamp_nanos(nanos))
    }

    fn admin_secret_ok(&self, secret: &str) -> bool {
        bool::from(sha256(secret).ct_eq(&self.admin_secret_hash))
    }

    /// Clamps a TTL as the issuer does (spec §2.3).
    fn clamp_ttl(&self, ttl: i64) -> i64 {
        let ttl = if ttl <= 0 { self.cfg.default_ttl } else { ttl };
        if self.cfg.max_ttl > 0 && ttl > self.cfg.max_ttl {
            self.cfg.max_ttl
        } else {
            ttl
        }
    }

    /// Issues a signed token; fills iss, exp, nbf, iat, jti. Returns (token, ttl, claims).
    fn issue(&self, mut claims: Claims, ttl: i64) -> (String, i64, Claims) {
        let ttl = self.clamp_ttl(ttl);
        let now = self.now().timestamp();
        claims.iss = self.cfg.issuer.clone();
        claims.iat = now;
        claims.nbf = now;
        claims.exp = now.saturating_add(ttl);
        claims.jti = random_hex(16);
        let token = jwt::sign(&claims, &self.key, &self.kid);
        lock(&self.metrics).tokens_issued += 1;
        write(&self.issued).insert(sha256(&token), claims.clone(), now);
        (token, ttl, claims)
    }

    /// The verification algorithm of spec §2.5, revocation included.
    fn verify(&self, token: &str) -> Result<Arc<Claims>, Invalid> {
        let cached = read(&self.issued).get(&sha256(token));
        let c = match cached {
            // Byte-identical to a token this broker signed: header and
            // signature are known good, the claims are the ones it signed.
            Some(c) => c,
            None => {
                let d = jwt::decode(token).map_err(Invalid::Format)?;
                if d.header.alg != "EdDSA" || d.header.kid.as_deref().is_some_and(|k| k != self.kid)
                {
                    return Err(Invalid::Header);
                }
                if !d.signature_ok(&self.key.verifying_key()) {
                    return Err(Invalid::Signature);
                }
                Arc::new(d.claims)
            }
        };
        if c.sub.is_empty() {
            return Err(Invalid::Claims("sub"));
        }
        if c.jti.is_empty() {
            return Err(Invalid::Claims("jti"));
        }
        if c.exp <= 0 {
            return Err(Invalid::Claims("exp"));
        }
        let now = self.now().timestamp();
        if now > c.exp {
            return Err(Invalid::Expired);
        }
        if c.nbf != 0 && now < c.nbf {
            return Err(Invalid::NotYetValid);
        }
        if !self.cfg.issuer.is_empty() && c.iss != self.cfg.issuer {
            return Err(Invalid::Issuer);
        }
        if read(&self.revoked).revoked(&c) {
            return Err(Invalid::Revoked);
        }
        Ok(c)
    }

    /// Registers an app directly (used by `chainview broker --app` and start-up).
    fn create_app(
        &self,
        name: &str,
        scopes: &[String],
        token_ttl: Option<i64>,
    ) -> Result<App, wire::Reject> {
        handlers::create_app(self, name, scopes, token_ttl)
    }
}

/// The broker's HTTP service without a listener, for fuzzing and in-process
/// property tests. Requests must carry an `axum::extract::ConnectInfo<SocketAddr>`
/// extension, as `axum::serve` adds for real connections.
#[doc(hidden)]
pub fn service(cfg: Config) -> Result<axum::Router, StartError> {
    Ok(http::router(Arc::new(State::new(cfg)?)))
}

/// A running embedded broker. Dropping the handle does not stop it; call
/// [`EmbeddedBroker::shutdown`].
pub struct EmbeddedBroker {
    state: Arc<State>,
    addr: SocketAddr,
    /// The host its URL names.
    host: String,
    certificate_fits: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The host for the broker's URL: the bound address when the certificate
/// holds it, else `localhost` when it holds that; and whether it fits.
fn url_host(leaf: &rustls_pki_types::CertificateDer<'_>, addr: SocketAddr) -> (String, bool) {
    let ip = addr.ip().to_string();
    if tls::certificate_names(leaf, &ip) {
        (ip, true)
    } else if tls::certificate_names(leaf, "localhost") {
        ("localhost".into(), true)
    } else {
        (ip, false)
    }
}

/// Errors starting the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot register app '{name}': {detail}")]
    App { name: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Tls(#[from] TlsFileError),
}

/// What `EmbeddedBroker::ensure_app` found or made.
#[derive(Debug)]
pub enum EnsuredApp {
    /// Registered now: the one time its secret is known.
    Created(App),
    /// Kept from an earlier run (data directory): only a hash of its secret
    /// is stored. `ceiling_differs`: the stored ceiling is not the one asked.
    Existing { app: App, ceiling_differs: bool },
}

impl EmbeddedBroker {
    /// Starts on `127.0.0.1` with an OS-chosen port.
    pub async fn start(cfg: Config) -> Result<Self, StartError> {
        Self::start_on("127.0.0.1:0", cfg).await
    }

    /// Starts on the given address (e.g. `127.0.0.1:8080`).
    pub async fn start_on(bind: &str, cfg: Config) -> Result<Self, StartError> {
        // Certificate files first: a bad one is reported before the port is taken.
        let tls = cfg.tls.as_ref().map(tls::server_config).transpose()?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: bind.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: bind.to_string(),
            source,
        })?;
        let (timeouts, max_conns) = (cfg.timeouts, cfg.max_connections);
        let state = Arc::new(State::new(cfg)?);
        let router = http::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let (acceptor, host, certificate_fits) = match tls {
            Some(loaded) => {
                let (host, fits) = url_host(&loaded.leaf, addr);
                (
                    Some(tokio_rustls::TlsAcceptor::from(loaded.config)),
                    host,
                    fits,
                )
            }
            None => (None, addr.ip().to_string(), true),
        };
        let listen = serve::Listen {
            listener,
            router,
            timeouts,
            max_connections: max_conns,
            tls: acceptor,
        };
        let task = tokio::spawn(serve::serve(listen, rx));
        Ok(EmbeddedBroker {
            state,
            addr,
            host,
            certificate_fits,
            stop: Some(tx),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://HOST:PORT` when serving TLS
    /// (HOST: the bound address if the certificate holds it, else
    /// `localhost` if it holds that).
    pub fn url(&self) -> String {
        let scheme = if self.state.cfg.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.addr.port())
    }

    /// Whether the TLS certificate is valid for the host in [`Self::url`]
    /// (always true for plain HTTP).
    pub fn certificate_fits_url(&self) -> bool {
        self.certificate_fits
    }

    pub fn admin_secret(&self) -> &str {
        &self.state.cfg.admin_secret
    }

    /// The broker's public key: with it chainview can verify signatures offline.
    pub fn public_key(&self) -> VerifyingKey {
        self.state.key.verifying_key()
    }

    /// Registers an app (as the admin would) and returns it with its one-time `client_secret`.
    pub fn register_app(&self, name: &str, scopes: &[String]) -> Result<App, StartError> {
        self.state
            .create_app(name, scopes, None)
            .map_err(|r| StartError::App {
                name: name.to_string(),
                detail: r.detail,
            })
    }

    /// Registers the app `name` unless the data directory already has it.
    pub fn ensure_app(&self, name: &str, scopes: &[String]) -> Result<EnsuredApp, StartError> {
        let existing = lock(&self.state.apps)
            .iter()
            .find(|a| a.name == name)
            .cloned();
        match existing {
            Some(rec) => Ok(EnsuredApp::Existing {
                ceiling_differs: rec.scopes != scopes,
                app: rec.view(),
            }),
            None => self.register_app(name, scopes).map(EnsuredApp::Created),
        }
    }

    /// The SQLite file behind the broker, and whether it outlives the broker.
    pub fn database(&self) -> (&std::path::Path, bool) {
        (self.state.store.db_path(), self.state.store.persistent())
    }

    /// Waits until every audit event recorded so far is on disk.
    pub async fn flush(&self) -> bool {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.store.flush(StdDuration::from_secs(10)))
            .await
            .unwrap_or(false)
    }

    /// Stops accepting connections, waits for the server task to end, and
    /// writes what the audit writer still holds. Returns how many audit
    /// events could not be written (0: the trail is whole on disk).
    pub async fn shutdown(mut self) -> u64 {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.store.close())
            .await
            .unwrap_or(0)
    }

    /// What the data directory held at start; `None` without one.
    pub fn restored(&self) -> Option<&Restored> {
        self.state.restored.as_ref()
    }

    /// Why the audit trail cannot be written, while it cannot.
    pub fn audit_failing(&self) -> Option<String> {
        self.state.store.failing()
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests;
