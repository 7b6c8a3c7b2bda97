//! The broker worker: the one place that does broker I/O.
//!
//! It owns the [`BrokerClient`] and the session secrets (app credentials,
//! admin secret, the app and admin tokens they yield), runs [`Command`]s
//! concurrently, and sends an [`Event`] back for each, with a record of every
//! HTTP call it made (method, path, status, latency) for the event log.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};

use crate::broker::client::Agent;
use crate::broker::types::*;
use crate::broker::{BrokerClient, ClientError};

/// How many `validate` calls one live check keeps in flight.
const LIVE_CONCURRENCY: usize = 8;

/// Audit pages are fetched this many events at a time (the broker's maximum).
pub const AUDIT_PAGE: i64 = 1000;

pub use crate::protocol::{AppInfo, AuditRead, Call, Command, Event, Outcome, ReadCap, Secret};
use crate::rules::chain::Chain;

/// How the worker reaches and authenticates to the broker.
#[derive(Clone)]
pub struct WorkerConfig {
    pub client: BrokerClient,
    pub admin_secret: Option<Secret>,
    /// Client id and secret of an existing app (external brokers).
    pub app_credentials: Option<(String, Secret)>,
    /// How much one reading of the audit trail may take.
    pub audit_cap: ReadCap,
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("client", &self.client)
            .field("admin_secret", &self.admin_secret.is_some())
            .field(
                "app_credentials",
                &self.app_credentials.as_ref().map(|(id, _)| id),
            )
            .field("audit_cap", &self.audit_cap)
            .finish()
    }
}

/// The handle the app holds: send commands, receive events.
#[derive(Debug)]
pub struct WorkerHandle {
    tx: mpsc::UnboundedSender<(u64, Command)>,
    pub events: mpsc::UnboundedReceiver<Event>,
    next: u64,
}

impl WorkerHandle {
    /// Queues a command; returns its request id.
    pub fn send(&mut self, cmd: Command) -> u64 {
        self.next += 1;
        // A closed worker shows up as no event arriving; the caller reports it.
        let _ = self.tx.send((self.next, cmd));
        self.next
    }
}

struct Session {
    app_token: Option<(String, Instant)>,
    admin_token: Option<(String, Instant)>,
}

struct Worker {
    cfg: WorkerConfig,
    session: Mutex<Session>,
    out: mpsc::UnboundedSender<Event>,
}

/// Starts the worker task on the current tokio runtime.
pub fn spawn(cfg: WorkerConfig) -> WorkerHandle {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Command)>();
    let (out, events) = mpsc::unbounded_channel();
    let worker = Arc::new(Worker {
        cfg,
        session: Mutex::new(Session {
            app_token: None,
            admin_token: None,
        }),
        out,
    });
    tokio::spawn(async move {
        while let Some((id, cmd)) = rx.recv().await {
            let w = worker.clone();
            tokio::spawn(async move {
                let mut calls = Vec::new();
                let outcome = w.run(cmd, &mut calls).await;
                let _ = w.out.send(Event {
                    request: id,
                    calls,
                    outcome,
                });
            });
        }
    });
    WorkerHandle {
        tx,
        events,
        next: 0,
    }
}

/// Awaits client calls, recording every HTTP exchange they made (the real
/// method, path and status) for the event log.
async fn timed<T, F>(calls: &mut Vec<Call>, fut: F) -> Result<T, ClientError>
where
    F: Future<Output = Result<T, ClientError>>,
{
    let (r, seen) = crate::broker::client::recording(fut).await;
    calls.extend(seen);
    r
}

/// Tokens are refreshed when less than a tenth of their lifetime (at least 5 s) is left.
/// The broker refused the bearer token (401) of an admin call.
fn refused_token<T>(r: &Result<T, ClientError>) -> bool {
    matches!(r, Err(ClientError::Broker(b)) if b.status == 401)
}

fn fresh(tok: &Option<(String, Instant)>) -> Option<String> {
    tok.as_ref()
        .filter(|(_, until)| Instant::now() < *until)
        .map(|(t, _)| t.clone())
}

fn until(expires_in: i64) -> Instant {
    let secs = expires_in.max(0) as u64;
    let margin = (secs / 10).max(5).min(secs);
    Instant::now() + Duration::from_secs(secs - margin)
}

impl Worker {
    fn client(&self) -> &BrokerClient {
        &self.cfg.client
    }

    async fn admin_token(&self, calls: &mut Vec<Call>) -> Result<String, ClientError> {
        if let Some(t) = fresh(&self.session.lock().await.admin_token) {
            return Ok(t);
        }
        let Some(secret) = &self.cfg.admin_secret else {
            return Err(ClientError::InvalidInput(
                "this needs the broker's admin secret: set AGENTWRIT_ADMIN_SECRET".into(),
            ));
        };
        let r = timed(calls, self.client().admin_auth(&secret.0),
        )
        .await
        .map_err(|e| match e {
            ClientError::Broker(b) if b.status == 401 => ClientError::InvalidInput(format!(
                "admin login refused ({} {}): AGENTWRIT_ADMIN_SECRET does not match this broker",
                b.status, b.error_code
            )),
            other => other,
        })?;
        self.session.lock().await.admin_token = Some((r.access_token.clone(), until(r.expires_in)));
        Ok(r.access_token)
    }

    /// Forgets the cached admin token after the broker refused it (401: it
    /// restarted with another key, the token was revoked): the next call
    /// logs in again. True when there was one to forget.
    async fn drop_admin_token(&self) -> bool {
        self.session.lock().await.admin_token.take().is_some()
    }

    async fn app_token(&self, calls: &mut Vec<Call>) -> Result<String, ClientError> {
        if let Some(t) = fresh(&self.session.lock().await.app_token) {
            return Ok(t);
        }
        let Some((id, secret)) = &self.cfg.app_credentials else {
            return Err(ClientError::InvalidInput(
                "no app session: the scenario needs an `app` step first, or AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET".into(),
            ));
        };
        let r = timed(calls, self.client().app_auth(id, &secret.0)).await?;
        self.session.lock().await.app_token = Some((r.access_token.clone(), until(r.expires_in)));
        Ok(r.access_token)
    }

    async fn setup_app(
        &self,
        name: &str,
        ceiling: &[String],
        calls: &mut Vec<Call>,
    ) -> Result<AppInfo, ClientError> {
        if let Some((id, _)) = &self.cfg.app_credentials {
            self.app_token(calls).await?;
            // The app's real ceiling, when the admin secret lets us read it
            // (so the `app` step can warn when it does not cover the
            // scenario's). Not being able to read it is not an error.
            let found = match self.cfg.admin_secret {
                Some(_) => match self.admin_token(calls).await {
                    Ok(admin) => timed(calls, self.client().list_apps(&admin))
                        .await
                        .ok()
                        .and_then(|l| l.apps.into_iter().find(|a| &a.client_id == id)),
                    Err(_) => None,
                },
                None => None,
            };
            return Ok(AppInfo {
                app_id: found.as_ref().map(|a| a.app_id.clone()),
                client_id: id.clone(),
                ceiling: found.and_then(|a| a.scopes),
            });
        }
        let admin = self.admin_token(calls).await?;
        let req = CreateAppRequest {
            name: name.to_string(),
            scopes: ceiling.to_vec(),
            token_ttl: None,
        };
        let app = timed(calls, self.client().create_app(&admin, &req)).await?;
        let secret = app.client_secret.clone().unwrap_or_default();
        let r = timed(calls, self.client().app_auth(&app.client_id, &secret)).await?;
        self.session.lock().await.app_token = Some((r.access_token, until(r.expires_in)));
        Ok(AppInfo {
            app_id: Some(app.app_id),
            client_id: app.client_id,
            ceiling: Some(ceiling.to_vec()),
        })
    }

    async fn create_agent(
        &self,
        orch: &str,
        task: &str,
        scope: &[String],
        ttl: Option<i64>,
        calls: &mut Vec<Call>,
    ) -> Result<Agent, ClientError> {
        let app = self.app_token(calls).await?;
        timed(
            calls,
            self.client().create_agent(&app, orch, task, scope, ttl),
        )
        .await
    }

    async fn run(&self, cmd: Command, calls: &mut Vec<Call>) -> Outcome {
        let c = self.client();
        match cmd {
            Command::Health => Outcome::Health(timed(calls, c.health()).await),
            Command::SetupApp { name, ceiling } => {
                Outcome::AppReady(self.setup_app(&name, &ceiling, calls).await)
            }
            Command::CreateAgent {
                agent,
                token,
                orch,
                task,
                scope,
                ttl,
            } => Outcome::AgentCreated {
                agent,
                token,
                result: self.create_agent(&orch, &task, &scope, ttl, calls).await,
            },
            Command::Delegate {
                token,
                bearer,
                to,
                scope,
                ttl,
            } => {
                let req = DelegateRequest {
                    delegate_to: to,
                    scope,
                    ttl,
                };
                Outcome::Delegated {
                    token,
                    result: timed(calls, c.delegate(&bearer.0, &req)).await,
                }
            }
            Command::Validate { token, raw } => Outcome::Validated {
                token,
                result: timed(calls, c.validate(&raw.0)).await,
            },
            Command::Renew { old, new, raw } => Outcome::Renewed {
                old,
                new,
                result: timed(calls, c.renew(&raw.0)).await,
            },
            Command::Release { token, raw } => Outcome::Released {
                token,
                result: timed(calls, c.release(&raw.0)).await,
            },
            Command::Revoke { level, target } => {
                let mut result = self.revoke_once(calls, level, &target).await;
                if refused_token(&result) && self.drop_admin_token().await {
                    result = self.revoke_once(calls, level, &target).await;
                }
                Outcome::Revoked {
                    level,
                    target,
                    result,
                }
            }
            Command::Audit => {
                let mut result = self.audit(calls).await;
                if refused_token(&result) && self.drop_admin_token().await {
                    result = self.audit(calls).await;
                }
                Outcome::Audit(result)
            }
            Command::AuditSince { offset, pages } => {
                let mut result = self.audit_since(calls, offset, pages).await;
                if refused_token(&result) && self.drop_admin_token().await {
                    result = self.audit_since(calls, offset, pages).await;
                }
                Outcome::AuditSince { offset, result }
            }
            Command::Revalidate(tokens) => {
                use futures::StreamExt;
                let checks = futures::stream::iter(tokens).map(|(token, raw)| async move {
                    let mut one = Vec::new();
                    let r = timed(&mut one, c.validate(&raw.0)).await;
                    (token, one.pop(), r)
                });
                // A bounded number at a time: a live check must not flood the broker.
                let answers: Vec<_> = checks.buffer_unordered(LIVE_CONCURRENCY).collect().await;
                Outcome::Revalidated(
                    answers
                        .into_iter()
                        .filter_map(|(t, call, r)| call.map(|c| (t, c, r)))
                        .collect(),
                )
            }
        }
    }

    async fn revoke_once(
        &self,
        calls: &mut Vec<Call>,
        level: RevokeLevel,
        target: &str,
    ) -> Result<RevokeResponse, ClientError> {
        let admin = self.admin_token(calls).await?;
        timed(calls, self.client().revoke(&admin, level, target)).await
    }

    /// Pages from `offset` on: the broker says how many it returned (at most
    /// 1000 whatever `limit` echoes), so the next offset counts what came.
    async fn audit_since(
        &self,
        calls: &mut Vec<Call>,
        offset: usize,
        pages: usize,
    ) -> Result<(Vec<AuditEvent>, i64), ClientError> {
        let admin = self.admin_token(calls).await?;
        let mut events: Vec<AuditEvent> = Vec::new();
        let mut total = 0;
        for _ in 0..pages.max(1) {
            let q = AuditQuery {
                limit: Some(AUDIT_PAGE),
                offset: Some((offset + events.len()) as i64),
                ..AuditQuery::default()
            };
            let page = timed(calls, self.client().audit_events(&admin, &q)).await?;
            total = page.total;
            let got = page.events.len();
            // A page that does not continue the one before (the same events
            // again, ids going back) ends this batch: the reader names it
            // when it asks again.
            let continues = match (events.last(), page.events.first()) {
                (Some(last), Some(first)) => {
                    let n = |id: &str| crate::rules::chain::id_number(id);
                    n(&last.id)
                        .zip(n(&first.id))
                        .is_some_and(|(a, b)| b == a + 1)
                }
                _ => true,
            };
            if !continues {
                break;
            }
            events.extend(page.events);
            if got == 0 || (offset + events.len()) as i64 >= total {
                break;
            }
        }
        Ok((events, total))
    }

    /// The audit trail for the explorer's view and `audit` step: the whole
    /// trail when it fits the cap, else the newest events that do (said so).
    async fn audit(&self, calls: &mut Vec<Call>) -> Result<AuditRead, ClientError> {
        let admin = self.admin_token(calls).await?;
        let cap = self.cfg.audit_cap;
        let page = |offset: usize| AuditQuery {
            limit: Some(AUDIT_PAGE),
            offset: Some(offset as i64),
            ..AuditQuery::default()
        };
        let c = self.client();
        let head = timed(calls, c.audit_events(&admin, &page(0))).await?;
        let total = usize::try_from(head.total).unwrap_or(0);
        let start = total.saturating_sub(cap.events);
        let mut paging = Paging::new(cap, start);
        let mut events = Vec::new();
        if start == 0 {
            events.extend(
                paging
                    .take(head.events, head.total)
                    .into_iter()
                    .map(|(e, _)| e),
            );
        }
        let mut asked = 1;
        while (start > 0 && asked == 1) || paging.more() {
            if asked >= Paging::max_pages(cap) {
                paging.give_up(asked);
                break;
            }
            asked += 1;
            let p = timed(calls, c.audit_events(&admin, &page(paging.next()))).await?;
            events.extend(paging.take(p.events, p.total).into_iter().map(|(e, _)| e));
        }
        Ok(AuditRead {
            events,
            total: paging.total(),
            first: start,
            stopped: paging.stopped().map(str::to_string),
        })
    }
}

/// One reading of the audit trail, page by page, checked as it comes: the
/// chain's rules ([`crate::rules::chain`]: ids that continue one by one,
/// hashes, links), the broker's `total`, and the cap. It stops — and says
/// why — at the first event that breaks the rules, when the broker's pages
/// do not add up to its `total`, or at the cap. The explorer's audit view,
/// `observe` (live and `--print`) and `audit dump` all read through it, so
/// a broker that keeps sending pages cannot keep any of them reading.
#[derive(Debug, Clone)]
pub struct Paging {
    cap: ReadCap,
    chain: Chain,
    /// Events taken, and their weight.
    read: usize,
    bytes: usize,
    /// The trail's position of the first event read.
    first: usize,
    total: i64,
    stop: Option<String>,
}

impl Default for Paging {
    /// A reading from the trail's start, within the default cap.
    fn default() -> Paging {
        Paging::new(ReadCap::DEFAULT, 0)
    }
}

impl Paging {
    /// A reading from position `first` of the trail on.
    pub fn new(cap: ReadCap, first: usize) -> Paging {
        Paging {
            cap,
            chain: Chain::new(),
            read: 0,
            bytes: 0,
            first,
            total: 0,
            stop: None,
        }
    }

    /// The most requests one reading makes: a broker sends full pages, so
    /// this is far more than an honest trail within the cap needs.
    pub fn max_pages(cap: ReadCap) -> usize {
        cap.events / 100 + 10
    }

    /// Takes a page: its events up to the first that breaks the rules
    /// (that one included, so the reader sees the break) and within the
    /// cap, each with whether its hash matched.
    pub fn take(&mut self, events: Vec<AuditEvent>, total: i64) -> Vec<(AuditEvent, bool)> {
        self.total = total;
        if self.stop.is_some() {
            return Vec::new();
        }
        if events.is_empty() {
            if (self.next() as i64) < total {
                self.stop = Some(format!(
                    "the broker says its trail holds {total} events but sends none after the first {}: its total does not hold",
                    self.next()
                ));
            }
            return Vec::new();
        }
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if self.read >= self.cap.events || self.bytes >= self.cap.bytes {
                self.stop = Some(self.cap_words());
                break;
            }
            let ok = e.as_ref().hash_matches();
            self.bytes += ReadCap::weight(&e);
            self.read += 1;
            let broke = self
                .chain
                .push(&e.id, &e.hash, &e.prev_hash, ok)
                .map(|b| b.words());
            out.push((e, ok));
            if let Some(b) = broke {
                self.stop = Some(format!("stopped reading: the audit hash chain is {b}"));
                break;
            }
        }
        if self.stop.is_none()
            && (self.read >= self.cap.events || self.bytes >= self.cap.bytes)
            && (self.next() as i64) < total
        {
            self.stop = Some(self.cap_words());
        }
        out
    }

    fn cap_words(&self) -> String {
        format!(
            "stopped reading at the cap of {} events ({} MiB) with {} read: the broker says it holds {}",
            self.cap.events,
            self.cap.bytes >> 20,
            self.read,
            self.total
        )
    }

    /// Stops after `asked` requests that did not reach the end.
    pub fn give_up(&mut self, asked: usize) {
        if self.stop.is_none() {
            self.stop = Some(format!(
                "stopped reading after {asked} requests with {} events read: the broker's pages do not reach its total of {}",
                self.read, self.total
            ));
        }
    }

    /// Why the reading stopped before the end of the trail.
    pub fn stopped(&self) -> Option<&str> {
        self.stop.as_deref()
    }

    /// Whether there is more to read (the broker's total not reached, and no stop).
    pub fn more(&self) -> bool {
        self.stop.is_none() && (self.next() as i64) < self.total
    }

    /// The trail's position of the next event to ask for.
    pub fn next(&self) -> usize {
        self.first + self.read
    }

    /// The broker's `total` on the last page.
    pub fn total(&self) -> i64 {
        self.total
    }

    /// The chain check over what was read.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn cap(&self) -> ReadCap {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEvent> {
        crate::broker::types::test_trail(n)
    }

    #[test]
    fn paging_reads_an_honest_trail_to_its_total() {
        let t = chain(25);
        let mut p = Paging::new(ReadCap::DEFAULT, 0);
        assert_eq!(p.take(t[..10].to_vec(), 25).len(), 10);
        assert!(p.more());
        assert_eq!(p.next(), 10);
        assert_eq!(p.take(t[10..].to_vec(), 25).len(), 15);
        assert!(!p.more());
        assert_eq!(p.stopped(), None);
        // A quiet broker: empty pages at the total are no lie.
        assert!(p.take(Vec::new(), 25).is_empty());
        assert_eq!(p.stopped(), None);
    }

    #[test]
    fn paging_stops_at_a_total_that_does_not_hold() {
        let mut p = Paging::new(ReadCap::DEFAULT, 0);
        p.take(chain(5), 9);
        assert!(p.take(Vec::new(), 9).is_empty());
        let why = p.stopped().unwrap();
        assert!(
            why.contains("holds 9 events but sends none after the first 5"),
            "{why}"
        );
        assert!(!p.more());
    }

    #[test]
    fn paging_stops_at_the_first_break_keeping_that_event() {
        let t = chain(6);
        let mut p = Paging::new(ReadCap::DEFAULT, 0);
        p.take(t[..3].to_vec(), 100);
        // The same events again: kept up to the first repeat, then nothing.
        let got = p.take(t[2..].to_vec(), 100);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.id, "evt-000003");
        assert!(p.stopped().unwrap().contains("the id repeats"));
        assert!(p.take(t[3..].to_vec(), 100).is_empty());
        assert!(!p.more());
    }

    #[test]
    fn paging_stops_at_the_cap() {
        let t = chain(30);
        let mut p = Paging::new(ReadCap::events(12), 0);
        let got =
            p.take(t[..10].to_vec(), 1_000_000).len() + p.take(t[10..20].to_vec(), 1_000_000).len();
        assert_eq!(got, 12);
        let why = p.stopped().unwrap();
        assert!(why.contains("at the cap of 12 events"), "{why}");
        assert!(why.contains("the broker says it holds 1000000"), "{why}");
        // Exactly the cap, and the trail ends there: no stop.
        let mut p = Paging::new(ReadCap::events(10), 0);
        p.take(t[..10].to_vec(), 10);
        assert_eq!(p.stopped(), None);
        assert!(Paging::max_pages(ReadCap::DEFAULT) >= ReadCap::DEFAULT.events / 1000);
    }
}
