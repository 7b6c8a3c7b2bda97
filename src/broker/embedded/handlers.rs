//! Endpoint handlers of the embedded broker, with the checks in the real
//! broker's order and its exact status codes, error codes and details (spec §4).

use std::time::Instant;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::de::DeserializeOwned;

use super::audit::{Filter, NewEvent};
use super::wire::{Ctx, Reject, Route, json_response, unavailable};
use super::{AppRecord, LaunchToken, Nonce, State, lock, random_hex, read, sha256};
use crate::broker::types::*;
use crate::jwt::gojson::{rfc3339_nano, rfc3339_secs};
use crate::jwt::{self, Claims, DelegRecord};
use crate::scope;

mod apps;
pub use apps::create_app;
use apps::*;

const ADMIN_SCOPES: [&str; 3] = ["admin:launch-tokens:*", "admin:revoke:*", "admin:audit:*"];
const APP_SCOPES: [&str; 3] = ["app:launch-tokens:*", "app:agents:*", "app:audit:read"];
const NONCE_TTL_SECS: i64 = 30;

type Outcome = Result<Response, Reject>;

/// Go's `%v` of a string slice: `[a b c]`.
fn golist<S: AsRef<str>>(v: &[S]) -> String {
    let parts: Vec<&str> = v.iter().map(AsRef::as_ref).collect();
    format!("[{}]", parts.join(" "))
}

/// Go's streaming decoder: the first JSON value only, trailing bytes ignored.
fn decode_first<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reject> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<T>()
        .next()
        .and_then(Result::ok)
        .ok_or_else(Reject::malformed)
}

fn ok<T: serde::Serialize>(body: &T) -> Outcome {
    Ok(json_response(StatusCode::OK, body))
}

/// The database refused a write the answer depends on: 503 naming the cause
/// when the disk is full (it passes once space is freed), else 500.
fn store_failed(e: super::StoreError) -> Reject {
    tracing::error!(error = %e, "broker store write failed");
    if e.is_full() {
        return unavailable("the broker's disk is full; nothing was changed");
    }
    Reject::new(500, "internal_error", "internal error")
}

pub fn handle(s: &State, route: Route, ctx: &Ctx) -> Response {
    let out = match route {
        Route::Challenge => challenge(s),
        Route::Register => register(s, ctx),
        Route::Validate => validate(s, ctx),
        Route::Renew => renew(s, ctx),
        Route::Release => release(s, ctx),
        Route::Delegate => delegate(s, ctx),
        Route::Revoke => revoke(s, ctx),
        Route::Audit => audit_events(s, ctx),
        Route::AdminAuth => admin_auth(s, ctx),
        Route::AdminLaunch => launch_token(s, ctx, "admin:launch-tokens:*"),
        Route::AppLaunch => launch_token(s, ctx, "app:launch-tokens:*"),
        Route::Apps if ctx.method == "POST" => post_app(s, ctx),
        Route::Apps => list_apps(s, ctx),
        Route::AppById => app_by_id(s, ctx),
        Route::AppAuth => app_auth(s, ctx),
        Route::Health => health(s),
        Route::Metrics => Ok(metrics(s)),
    };
    out.unwrap_or_else(|r| ctx.problem(r))
}

/// Bearer middleware (spec §1.7), with its audit events.
fn bearer(s: &State, ctx: &Ctx, required: Option<&str>) -> Result<std::sync::Arc<Claims>, Reject> {
    let fail = |detail: &str, audit: String| {
        s.audit(NewEvent {
            resource: ctx.path.clone(),
            ..NewEvent::new(
                "token_auth_failed",
                "denied",
                format!("{audit} | path={}", ctx.path),
            )
        });
        Reject::unauthorized(detail)
    };
    let header = match ctx.authorization() {
        Some(h) if !h.is_empty() => h,
        _ => {
            let d = "missing authorization header";
            return Err(fail(d, d.into()));
        }
    };
    let Some(token) = header.strip_prefix("Bearer ") else {
        let d = "invalid authorization scheme";
        return Err(fail(d, d.into()));
    };
    let claims = s.verify(token).map_err(|why| {
        fail(
            "token verification failed",
            format!("token verification failed: {why}"),
        )
    })?;
    if let Some(req) = required
        && !scope::is_subset(&[req], &claims.scope)
    {
        s.audit(NewEvent {
            resource: ctx.path.clone(),
            ..NewEvent::new(
                "scope_violation",
                "denied",
                format!(
                    "scope_violation | required={req} | actual={} | path={}",
                    claims.scope.join(","),
                    ctx.path
                ),
            )
            .who(&claims.sub, &claims.task_id, &claims.orch_id)
        });
        return Err(Reject::new(
            403,
            "insufficient_scope",
            format!("token lacks required scope: {req}"),
        ));
    }
    Ok(claims)
}

fn challenge(s: &State) -> Outcome {
    ok(&Challenge {
        nonce: s.new_nonce(s.now()),
        expires_in: NONCE_TTL_SECS,
    })
}

fn register(s: &State, ctx: &Ctx) -> Outcome {
    let req: RegisterRequest = decode_first(&ctx.body)?;
    if [
        &req.launch_token,
        &req.nonce,
        &req.public_key,
        &req.signature,
        &req.orch_id,
        &req.task_id,
    ]
    .iter()
    .any(|f| f.is_empty())
    {
        return Err(Reject::bad_request("missing required field"));
    }
    if req.requested_scope.is_empty() {
        return Err(Reject::bad_request(
            "missing required field: requested_scope",
        ));
    }
    let now = s.now();
    let lt = usable_launch_token(s, &req.launch_token, now)?;
    if !scope::is_subset(&req.requested_scope, &lt.allowed_scope) {
        s.audit(
            NewEvent::new(
                "registration_policy_violation",
                "denied",
                format!(
                    "scope violation: requested {} exceeds allowed {}",
                    golist(&req.requested_scope),
                    golist(&lt.allowed_scope)
                ),
            )
            .who("", &req.task_id, &req.orch_id),
        );
        count(&s.metrics, |m| &mut m.registrations, "denied");
        return Err(Reject::new(
            403,
            "scope_violation",
            "requested scope exceeds allowed scope",
        ));
    }
    consume_nonce(s, &req.nonce, now)?;
    verify_nonce_signature(&req)?;
    if lt.single_use {
        let mut launch = lock(&s.launch);
        match launch.get_mut(&req.launch_token) {
            Some(l) if !l.consumed => l.consumed = true,
            _ => {
                return Err(Reject::unauthorized(
                    "consume launch token: launch token already consumed",
                ));
            }
        }
    }
    if !valid_segment(&req.orch_id) || !valid_segment(&req.task_id) {
        count(&s.metrics, |m| &mut m.registrations, "failed");
        return Err(Reject::new(500, "internal_error", "registration failed"));
    }
    let agent_id = format!(
        "spiffe://{}/agent/{}/{}/{}",
        s.cfg.trust_domain,
        req.orch_id,
        req.task_id,
        random_hex(8)
    );
    let (token, ttl, claims) = s.issue(
        Claims {
            sub: agent_id.clone(),
            scope: req.requested_scope.clone(),
            task_id: req.task_id.clone(),
            orch_id: req.orch_id.clone(),
            ..Claims::default()
        },
        lt.max_ttl,
    );
    s.register_agent(&agent_id);
    count(&s.metrics, |m| &mut m.registrations, "success");
    audit_registration(s, &req, &lt, &agent_id, &claims.jti);
    ok(&RegisterResponse {
        agent_id,
        access_token: token,
        expires_in: ttl,
    })
}

/// The launch token a registration presents: known, not expired, not consumed.
fn usable_launch_token(s: &State, token: &str, now: DateTime<Utc>) -> Result<LaunchToken, Reject> {
    let launch = lock(&s.launch);
    let Some(lt) = launch.get(token) else {
        return Err(Reject::unauthorized("launch token: launch token not found"));
    };
    if now > lt.expires_at {
        return Err(Reject::unauthorized("launch token: launch token expired"));
    }
    if lt.consumed {
        return Err(Reject::unauthorized(
            "launch token: launch token already consumed",
        ));
    }
    Ok(lt.clone())
}

/// A registration's nonce: issued here, fresh, and used once.
fn consume_nonce(s: &State, nonce: &str, now: DateTime<Utc>) -> Result<(), Reject> {
    let not_found = || Reject::unauthorized("nonce: nonce not found or expired");
    let created = s.nonce_created(nonce).ok_or_else(not_found)?;
    let mut nonces = lock(&s.nonces);
    if nonces.contains_key(nonce) {
        return Err(Reject::unauthorized("nonce: nonce already consumed"));
    }
    if now - created > Duration::seconds(NONCE_TTL_SECS) {
        return Err(not_found());
    }
    super::purge(&mut nonces, |n: &Nonce| {
        now - n.created > Duration::seconds(NONCE_TTL_SECS + 60)
    });
    nonces.insert(nonce.to_string(), Nonce { created });
    Ok(())
}

/// The nonce signed with the key being registered (spec §5).
fn verify_nonce_signature(req: &RegisterRequest) -> Result<(), Reject> {
    let key_bytes = STANDARD
        .decode(&req.public_key)
        .map_err(|_| Reject::unauthorized("invalid Ed25519 public key: base64 decode failed"))?;
    let key_arr: [u8; 32] = key_bytes
        .try_into()
        .map_err(|_| Reject::unauthorized("invalid Ed25519 public key: wrong key size"))?;
    let sig_bytes = STANDARD.decode(&req.signature).map_err(|_| {
        Reject::unauthorized("nonce signature verification failed: base64 decode failed")
    })?;
    let message = hex::decode(&req.nonce).unwrap_or_else(|_| req.nonce.as_bytes().to_vec());
    let verified = match (
        VerifyingKey::from_bytes(&key_arr),
        <[u8; 64]>::try_from(sig_bytes.as_slice()),
    ) {
        (Ok(k), Ok(sig)) => k.verify(&message, &Signature::from_bytes(&sig)).is_ok(),
        _ => false,
    };
    if !verified {
        return Err(Reject::unauthorized("nonce signature verification failed"));
    }
    Ok(())
}

/// `agent_registered` and `token_issued`, as the real broker writes them.
fn audit_registration(
    s: &State,
    req: &RegisterRequest,
    lt: &LaunchToken,
    agent_id: &str,
    jti: &str,
) {
    let app_suffix = lt
        .app_id
        .as_ref()
        .map(|a| format!(" app_id={a}"))
        .unwrap_or_default();
    s.audit(
        NewEvent::new(
            "agent_registered",
            "success",
            format!(
                "Agent registered with scope {}{app_suffix}",
                golist(&req.requested_scope)
            ),
        )
        .who(agent_id, &req.task_id, &req.orch_id),
    );
    s.audit(
        NewEvent::new(
            "token_issued",
            "success",
            format!("Token issued, jti={}, ttl={}{app_suffix}", jti, lt.max_ttl),
        )
        .who(agent_id, &req.task_id, &req.orch_id),
    );
}

fn count<F>(m: &std::sync::Mutex<super::Metrics>, field: F, label: &'static str)
where
    F: FnOnce(&mut super::Metrics) -> &mut std::collections::HashMap<&'static str, u64>,
{
    *field(&mut lock(m)).entry(label).or_default() += 1;
}

fn validate(s: &State, ctx: &Ctx) -> Outcome {
    let req: ValidateRequest = decode_first(&ctx.body)?;
    if req.token.is_empty() {
        return Err(Reject::bad_request("token field is required"));
    }
    let resp = match s.verify(&req.token) {
        Ok(claims) => ValidateResponse {
            valid: true,
            claims: Some(Claims::clone(&claims)),
            error: None,
        },
        Err(_) => ValidateResponse {
            valid: false,
            claims: None,
            error: Some("token is invalid or expired".into()),
        },
    };
    ok(&resp)
}

fn renew(s: &State, ctx: &Ctx) -> Outcome {
    let claims = bearer(s, ctx, None)?;
    // Revoke the predecessor first; losing a race to another renewal fails here.
    let first = s
        .revoke(RevokeLevel::Token, &claims.jti, Some(claims.exp))
        .map_err(store_failed)?;
    if !first {
        s.audit(
            NewEvent::new(
                "token_renewal_failed",
                "denied",
                format!(
                    "token renewal failed for agent={}: token has been revoked",
                    claims.sub
                ),
            )
            .who(&claims.sub, &claims.task_id, &claims.orch_id),
        );
        return Err(Reject::unauthorized("token renewal failed"));
    }
    count(&s.metrics, |m| &mut m.revocations, "token");
    let ttl = claims.exp - claims.iat;
    let (token, ttl, new) = s.issue(Claims::clone(&claims), ttl);
    s.audit(
        NewEvent::new(
            "token_renewed",
            "success",
            format!("token renewed for agent={} new_jti={}", new.sub, new.jti),
        )
        .who(&claims.sub, &claims.task_id, &claims.orch_id),
    );
    ok(&RenewResponse {
        access_token: token,
        expires_in: ttl,
    })
}

fn release(s: &State, ctx: &Ctx) -> Outcome {
    let claims = bearer(s, ctx, None)?;
    s.revoke(RevokeLevel::Token, &claims.jti, Some(claims.exp))
        .map_err(store_failed)?;
    count(&s.metrics, |m| &mut m.revocations, "release");
    s.audit(
        NewEvent::new(
            "token_released",
            "success",
            format!("token released | jti={}", claims.jti),
        )
        .who(&claims.sub, &claims.task_id, &claims.orch_id),
    );
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

fn delegate(s: &State, ctx: &Ctx) -> Outcome {
    let from = bearer(s, ctx, None)?;
    let req: DelegateRequest = decode_first(&ctx.body)?;
    for (empty, field) in [
        (req.delegate_to.is_empty(), "delegate_to"),
        (req.scope.is_empty(), "scope"),
    ] {
        if empty {
            // The real broker answers 500 here (spec §15 #2); the docs say 400.
            return Err(if s.cfg.strict_500s {
                Reject::new(500, "internal_error", "delegation failed")
            } else {
                Reject::bad_request(format!("missing required field: {field}"))
            });
        }
    }
    let depth = from.delegation_chain.len();
    if depth >= crate::rules::limits::MAX_DEPTH {
        return Err(Reject::new(
            403,
            "scope_violation",
            "delegation depth limit exceeded",
        ));
    }
    if !scope::is_subset(&req.scope, &from.scope) {
        s.audit(NewEvent {
            deleg_depth: depth as i64,
            ..NewEvent::new(
                "delegation_attenuation_violation",
                "denied",
                format!(
                    "delegation_attenuation_violation | delegator={} | target={} | requested={} | allowed={}",
                    from.sub,
                    req.delegate_to,
                    golist(&req.scope),
                    golist(&from.scope)
                ),
            )
            .who(&from.sub, &from.task_id, &from.orch_id)
        });
        return Err(Reject::new(
            403,
            "scope_violation",
            "delegated scope exceeds delegator scope",
        ));
    }
    if !s.is_agent(&req.delegate_to) {
        return Err(Reject::new(404, "not_found", "delegate agent not found"));
    }
    let mut record = DelegRecord {
        agent: from.sub.clone(),
        scope: from.scope.clone(),
        delegated_at: rfc3339_nano(s.now()),
        signature: String::new(),
    };
    record.signature = jwt::sign_record(&record, &s.key);
    let mut chain = from.delegation_chain.clone();
    chain.push(record);
    let chain_hash = jwt::chain_hash(&chain);
    let ttl = req.ttl.filter(|t| *t > 0).unwrap_or(60);
    let (token, ttl, _) = s.issue(
        Claims {
            sub: req.delegate_to.clone(),
            aud: from.aud.clone(),
            scope: req.scope.clone(),
            task_id: from.task_id.clone(),
            orch_id: from.orch_id.clone(),
            delegation_chain: chain.clone(),
            chain_hash: chain_hash.clone(),
            ..Claims::default()
        },
        ttl,
    );
    s.audit(NewEvent {
        deleg_depth: chain.len() as i64,
        deleg_chain_hash: chain_hash,
        ..NewEvent::new(
            "delegation_created",
            "success",
            format!(
                "delegation from {} to {} scope={} depth={}",
                from.sub,
                req.delegate_to,
                golist(&req.scope),
                chain.len()
            ),
        )
        .who(&req.delegate_to, &from.task_id, &from.orch_id)
    });
    ok(&DelegateResponse {
        access_token: token,
        expires_in: ttl,
        delegation_chain: chain,
    })
}

fn revoke(s: &State, ctx: &Ctx) -> Outcome {
    bearer(s, ctx, Some("admin:revoke:*"))?;
    let req: RevokeRequest = decode_first(&ctx.body)?;
    if req.level.is_empty() || req.target.is_empty() {
        return Err(Reject::bad_request("level and target are required"));
    }
    let Some(level) = RevokeLevel::parse(&req.level) else {
        return Err(Reject::bad_request(format!(
            "invalid revocation level: {}",
            req.level
        )));
    };
    s.revoke(level, &req.target, None).map_err(store_failed)?;
    count(&s.metrics, |m| &mut m.revocations, level.as_str());
    s.audit(NewEvent {
        agent_id: req.target.clone(),
        ..NewEvent::new(
            "token_revoked",
            "success",
            format!("revoked at level={} target={}", req.level, req.target),
        )
    });
    ok(&RevokeResponse {
        revoked: true,
        level: req.level,
        target: req.target,
        count: 1,
    })
}

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn audit_events(s: &State, ctx: &Ctx) -> Outcome {
    bearer(s, ctx, Some("admin:audit:*"))?;
    let mut f = Filter {
        limit: 100,
        ..Filter::default()
    };
    for (k, v) in url_pairs(&ctx.query) {
        let set = |v: String| (!v.is_empty()).then_some(v);
        match k.as_str() {
            "agent_id" => f.agent_id = set(v),
            "task_id" => f.task_id = set(v),
            "event_type" => f.event_type = set(v),
            "outcome" => f.outcome = set(v),
            "since" => f.since = parse_time(&v),
            "until" => f.until = parse_time(&v),
            "limit" => f.limit = v.parse().ok().filter(|l: &i64| *l > 0).unwrap_or(100),
            "offset" => f.offset = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let page = s.store.query(&f);
    ok(&page)
}

/// Query pairs, first value of each key wins (as Go's `Query().Get`).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| seen.insert(k.to_string()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn admin_auth(s: &State, ctx: &Ctx) -> Outcome {
    if !lock(&s.admin_limiter).allow(&ctx.client_ip(s.cfg.trust_proxy), Instant::now()) {
        return Err(Reject::rate_limited(1));
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(&ctx.body).ok();
    if let Some(serde_json::Value::Object(o)) = &value {
        let nonempty = |k: &str| {
            o.get(k)
                .and_then(|v| v.as_str())
                .is_some_and(|v| !v.is_empty())
        };
        if nonempty("client_id") || nonempty("client_secret") {
            return Err(Reject::bad_request(
                r#"Admin auth format changed. Use {"secret": "..."} instead of client_id/client_secret"#,
            ));
        }
    }
    let req: AdminAuthRequest = value
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(Reject::malformed)?;
    if req.secret.is_empty() {
        return Err(Reject::bad_request("secret is required"));
    }
    if !s.admin_secret_ok(&req.secret) {
        count(&s.metrics, |m| &mut m.admin_auth, "failure");
        s.audit(NewEvent::new(
            "admin_auth_failed",
            "denied",
            "failed admin authentication attempt".into(),
        ));
        return Err(Reject::unauthorized("invalid credentials"));
    }
    let (token, ttl, _) = s.issue(
        Claims {
            sub: "admin".into(),
            scope: ADMIN_SCOPES.iter().map(|x| x.to_string()).collect(),
            ..Claims::default()
        },
        s.cfg.admin_token_ttl,
    );
    count(&s.metrics, |m| &mut m.admin_auth, "success");
    s.audit(NewEvent::new(
        "admin_auth",
        "success",
        "admin authenticated as admin".into(),
    ));
    ok(&TokenResponse {
        access_token: token,
        expires_in: ttl,
        token_type: "Bearer".into(),
    })
}

/// Always 200, as the real broker's; `degraded` with the reason while the
/// audit trail cannot be written (the real broker has no such state: it
/// answers and loses the event).
fn health(s: &State) -> Outcome {
    let reason = s
        .store
        .failing()
        .map(|why| format!("audit trail cannot be written: {why}"));
    ok(&Health {
        status: if reason.is_some() { "degraded" } else { "ok" }.into(),
        version: "2.0.0".into(),
        uptime: s.started.elapsed().as_secs() as i64,
        db_connected: s.store.healthy(),
        audit_events_count: s.store.audit_count() as i64,
        reason,
    })
}

fn metrics(s: &State) -> Response {
    use std::fmt::Write;
    let m = lock(&s.metrics);
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE agentwrit_tokens_issued_total counter");
    let _ = writeln!(out, "agentwrit_tokens_issued_total {}", m.tokens_issued);
    let groups = [
        ("agentwrit_tokens_revoked_total", "level", &m.revocations),
        ("agentwrit_registrations_total", "status", &m.registrations),
        ("agentwrit_admin_auth_total", "status", &m.admin_auth),
    ];
    for (name, label, map) in groups {
        let _ = writeln!(out, "# TYPE {name} counter");
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort();
        for (k, v) in entries {
            let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
        }
    }
    let _ = writeln!(out, "# TYPE agentwrit_launch_tokens_created_total counter");
    let _ = writeln!(
        out,
        "agentwrit_launch_tokens_created_total {}",
        m.launch_tokens
    );
    drop(m);
    let _ = writeln!(out, "# TYPE agentwrit_active_agents gauge");
    let _ = writeln!(out, "agentwrit_active_agents {}", read(&s.agents).len());
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
        ),
    );
    resp
}

#[cfg(test)]
mod tests;
