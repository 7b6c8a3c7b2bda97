//! Launch tokens and app management (spec §4.10–§4.12).

use super::*;

pub(super) fn launch_token(s: &State, ctx: &Ctx, route_scope: &str) -> Outcome {
    let caller = bearer(s, ctx, Some(route_scope))?;
    let req: LaunchTokenRequest = decode_first(&ctx.body)?;
    let app_id = caller.sub.strip_prefix("app:").map(str::to_string);
    if let Some(id) = &app_id {
        let ceiling = lock(&s.apps)
            .iter()
            .find(|a| &a.app_id == id)
            .map(|a| a.scopes.clone());
        let Some(ceiling) = ceiling else {
            return Err(Reject::new(403, "forbidden", "app not found"));
        };
        if !scope::is_subset(&req.allowed_scope, &ceiling) {
            s.audit(
                NewEvent::new(
                    "scope_ceiling_exceeded",
                    "denied",
                    format!(
                        "app={id} requested={} ceiling={}",
                        golist(&req.allowed_scope),
                        golist(&ceiling)
                    ),
                )
                .who(&caller.sub, "", ""),
            );
            return Err(Reject::new(
                403,
                "forbidden",
                format!(
                    "requested scopes exceed app ceiling; allowed: {}",
                    golist(&ceiling)
                ),
            ));
        }
    }
    let deny = |msg: &str| {
        s.audit(
            NewEvent::new(
                "launch_token_denied",
                "denied",
                format!(
                    "launch token denied for agent={} by={} reason={msg}",
                    req.agent_name, caller.sub
                ),
            )
            .who(&caller.sub, "", ""),
        );
        Reject::bad_request(msg)
    };
    if req.agent_name.is_empty() {
        return Err(deny("agent_name is required"));
    }
    if req.allowed_scope.is_empty() {
        return Err(deny("allowed_scope must not be empty"));
    }
    let max_ttl = req.max_ttl.filter(|t| *t > 0).unwrap_or(300);
    let ttl = req.ttl.filter(|t| *t > 0).unwrap_or(30);
    let now = s.now();
    let expires_at = go_add_seconds(now, ttl);
    let token = random_hex(32);
    let mut launch = lock(&s.launch);
    super::super::purge(&mut launch, |l: &LaunchToken| {
        now - l.expires_at > Duration::seconds(60)
    });
    launch.insert(
        token.clone(),
        LaunchToken {
            allowed_scope: req.allowed_scope.clone(),
            max_ttl,
            single_use: req.single_use.unwrap_or(true),
            expires_at,
            consumed: false,
            app_id: app_id.clone(),
        },
    );
    lock(&s.metrics).launch_tokens += 1;
    let app_suffix = app_id.map(|a| format!(" app_id={a}")).unwrap_or_default();
    s.audit(NewEvent::new(
        "launch_token_issued",
        "success",
        format!(
            "launch token issued for agent={} scope={} max_ttl={max_ttl} created_by={}{app_suffix}",
            req.agent_name,
            golist(&req.allowed_scope),
            caller.sub
        ),
    ));
    Ok(json_response(
        StatusCode::CREATED,
        &LaunchTokenResponse {
            launch_token: token,
            expires_at: rfc3339_secs(expires_at),
            policy: LaunchPolicy {
                allowed_scope: req.allowed_scope,
                max_ttl,
            },
        },
    ))
}

/// `t.Add(time.Duration(secs) * time.Second)` as the Go broker computes it:
/// the nanosecond count wraps around on overflow (Go does not check it), so a
/// huge `ttl` gives an expiry somewhere within ±292 years, never a panic.
pub(super) fn go_add_seconds(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let nanos = secs.wrapping_mul(1_000_000_000);
    t.checked_add_signed(Duration::nanoseconds(nanos))
        .unwrap_or(t)
}

pub(super) fn ttl_error(n: i64) -> Reject {
    Reject::new(
        400,
        "invalid_ttl",
        format!("invalid token TTL: must be between 60 and 86400 seconds, got {n}"),
    )
}

pub(super) fn valid_app_name(n: &str) -> bool {
    // ^[a-z][a-z0-9](?:-?[a-z0-9]+)*$ , at most 64 characters.
    let b = n.as_bytes();
    if b.len() < 2 || b.len() > 64 || !b[0].is_ascii_lowercase() {
        return false;
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !ok_char(b[1]) || b[b.len() - 1] == b'-' {
        return false;
    }
    b.iter().all(|c| ok_char(*c) || *c == b'-') && !n.contains("--")
}

pub(super) fn client_id_prefix(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() == 1 {
        name.chars().take(2).collect()
    } else {
        parts
            .iter()
            .filter_map(|p| p.chars().next())
            .take(3)
            .collect()
    }
}

pub(super) fn check_scopes(scopes: &[String]) -> Result<(), Reject> {
    if scopes.iter().any(|x| scope::validate(x).is_err()) {
        return Err(Reject::bad_request(
            "invalid scope format: use action:resource:identifier",
        ));
    }
    Ok(())
}

/// App registration (spec §4.11), shared by the route and start-up registration.
pub fn create_app(
    s: &State,
    name: &str,
    scopes: &[String],
    token_ttl: Option<i64>,
) -> Result<App, Reject> {
    if name.is_empty() {
        return Err(Reject::bad_request("name is required"));
    }
    if scopes.is_empty() {
        return Err(Reject::bad_request("scopes must not be empty"));
    }
    if let Some(t) = token_ttl
        && t <= 0
    {
        return Err(ttl_error(t));
    }
    if !valid_app_name(name) {
        return Err(Reject::bad_request(
            "invalid app name: must be lowercase letters, digits, and hyphens",
        ));
    }
    check_scopes(scopes)?;
    if let Some(t) = token_ttl
        && !(60..=86400).contains(&t)
    {
        return Err(ttl_error(t));
    }
    let token_ttl = token_ttl.unwrap_or(s.cfg.app_token_ttl);
    let secret = random_hex(32);
    let now = rfc3339_secs(s.now());
    let rec = AppRecord {
        app_id: format!("app-{name}-{}", random_hex(3)),
        name: name.to_string(),
        client_id: format!("{}-{}", client_id_prefix(name), random_hex(6)),
        secret_hash: sha256(&secret),
        scopes: scopes.to_vec(),
        token_ttl,
        active: true,
        created_at: now.clone(),
        updated_at: now,
        seq: s.app_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    };
    {
        let mut apps = lock(&s.apps);
        if apps
            .iter()
            .any(|a| a.name == rec.name || a.client_id == rec.client_id)
        {
            // The real broker answers 500 here (spec §15 #8); the docs say 409.
            return Err(if s.cfg.strict_500s {
                Reject::new(500, "internal_error", "failed to register app")
            } else {
                Reject::new(409, "conflict", "an app with this name already exists")
            });
        }
        s.store.put_app(&rec).map_err(store_failed)?;
        apps.push(rec.clone());
    }
    s.audit(NewEvent::new(
        "app_registered",
        "success",
        format!(
            "app={name} client_id={} scopes={} token_ttl={token_ttl}",
            rec.client_id,
            golist(scopes)
        ),
    ));
    Ok(App {
        app_id: rec.app_id,
        name: String::new(),
        client_id: rec.client_id,
        client_secret: Some(secret),
        scopes: Some(rec.scopes),
        token_ttl,
        status: String::new(),
        created_at: None,
        updated_at: None,
        deregistered_at: None,
    })
}

pub(super) fn post_app(s: &State, ctx: &Ctx) -> Outcome {
    bearer(s, ctx, Some("admin:launch-tokens:*"))?;
    let req: CreateAppRequest = decode_first(&ctx.body)?;
    let app = create_app(s, &req.name, &req.scopes, req.token_ttl)?;
    Ok(json_response(StatusCode::CREATED, &app))
}

pub(super) fn list_apps(s: &State, ctx: &Ctx) -> Outcome {
    bearer(s, ctx, Some("admin:launch-tokens:*"))?;
    let mut apps: Vec<AppRecord> = lock(&s.apps).clone();
    apps.sort_by(|a, b| (&b.created_at, b.seq).cmp(&(&a.created_at, a.seq)));
    let views: Vec<App> = apps.iter().map(AppRecord::view).collect();
    ok(&AppList {
        total: views.len() as i64,
        apps: views,
    })
}

pub(super) fn app_by_id(s: &State, ctx: &Ctx) -> Outcome {
    let caller = bearer(s, ctx, Some("admin:launch-tokens:*"))?;
    let id = ctx.path.trim_start_matches("/v1/admin/apps/").to_string();
    let not_found = || Reject::new(404, "not_found", "app not found");
    let find = |apps: &Vec<AppRecord>| apps.iter().position(|a| a.app_id == id);
    match ctx.method.as_str() {
        "PUT" => {
            let req: UpdateAppRequest = decode_first(&ctx.body)?;
            let scopes = req.scopes.filter(|v| !v.is_empty());
            if scopes.is_none() && req.token_ttl.is_none() {
                return Err(Reject::bad_request(
                    "at least one of scopes or token_ttl must be provided",
                ));
            }
            if let Some(sc) = &scopes {
                check_scopes(sc)?;
                let mut apps = lock(&s.apps);
                let i = find(&apps).ok_or_else(not_found)?;
                let mut rec = apps[i].clone();
                rec.scopes = sc.clone();
                rec.updated_at = rfc3339_secs(s.now());
                s.store.put_app(&rec).map_err(store_failed)?;
                apps[i] = rec;
                drop(apps);
                s.audit(NewEvent::new(
                    "app_updated",
                    "success",
                    format!(
                        "app_id={id} scopes={} updated_by={}",
                        golist(sc),
                        caller.sub
                    ),
                ));
            }
            if let Some(t) = req.token_ttl {
                if !(60..=86400).contains(&t) {
                    return Err(ttl_error(t));
                }
                let mut apps = lock(&s.apps);
                let i = find(&apps).ok_or_else(not_found)?;
                let old = apps[i].token_ttl;
                let mut rec = apps[i].clone();
                rec.token_ttl = t;
                rec.updated_at = rfc3339_secs(s.now());
                s.store.put_app(&rec).map_err(store_failed)?;
                apps[i] = rec;
                drop(apps);
                s.audit(NewEvent::new(
                    "app_updated",
                    "success",
                    format!("app_id={id} token_ttl={old}->{t} updated_by={}", caller.sub),
                ));
            }
            let apps = lock(&s.apps);
            let i = find(&apps).ok_or_else(not_found)?;
            ok(&apps[i].view())
        }
        "DELETE" => {
            let mut apps = lock(&s.apps);
            let i = find(&apps).ok_or_else(not_found)?;
            let mut rec = apps[i].clone();
            rec.active = false;
            s.store.put_app(&rec).map_err(store_failed)?;
            apps[i] = rec;
            let name = apps[i].name.clone();
            drop(apps);
            s.audit(NewEvent::new(
                "app_deregistered",
                "success",
                format!("app_id={id} name={name} deregistered_by={}", caller.sub),
            ));
            ok(&App {
                app_id: id,
                status: "inactive".into(),
                deregistered_at: Some(rfc3339_secs(s.now())),
                ..App::default()
            })
        }
        _ => {
            let apps = lock(&s.apps);
            let i = find(&apps).ok_or_else(not_found)?;
            ok(&apps[i].view())
        }
    }
}

pub(super) fn app_auth(s: &State, ctx: &Ctx) -> Outcome {
    // The real broker keys this limiter by client_id alone, so anyone can
    // lock an app out with three requests naming it; here the bucket is per
    // client_id *and* client IP (same answers for one client; a deviation).
    let ip = ctx.client_ip(s.cfg.trust_proxy);
    let key = serde_json::from_slice::<serde_json::Value>(&ctx.body)
        .ok()
        .and_then(|v| {
            v.get("client_id")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .filter(|c| !c.is_empty())
        .map(|c| format!("{c}\u{0}{ip}"))
        .unwrap_or(ip);
    if !lock(&s.app_limiter).allow(&key, Instant::now()) {
        return Err(Reject::rate_limited(60));
    }
    let req: AppAuthRequest = decode_first(&ctx.body)?;
    if req.client_id.is_empty() || req.client_secret.is_empty() {
        return Err(Reject::bad_request(
            "client_id and client_secret are required",
        ));
    }
    let found = lock(&s.apps)
        .iter()
        .find(|a| a.client_id == req.client_id)
        .cloned();
    let reason = match &found {
        None => Some("unknown_client_id"),
        Some(a) if !a.active => Some("app_inactive"),
        Some(a) => {
            let ok: bool =
                subtle::ConstantTimeEq::ct_eq(&sha256(&req.client_secret)[..], &a.secret_hash[..])
                    .into();
            (!ok).then_some("wrong_secret")
        }
    };
    let app = match (reason, found) {
        (None, Some(app)) => app,
        (reason, _) => {
            s.audit(NewEvent::new(
                "app_auth_failed",
                "denied",
                format!(
                    "client_id={} reason={}",
                    req.client_id,
                    reason.unwrap_or("unknown_client_id")
                ),
            ));
            return Err(Reject::unauthorized("Authentication failed"));
        }
    };
    let (token, ttl, _) = s.issue(
        Claims {
            sub: format!("app:{}", app.app_id),
            scope: APP_SCOPES.iter().map(|x| x.to_string()).collect(),
            ..Claims::default()
        },
        app.token_ttl,
    );
    s.audit(NewEvent::new(
        "app_authenticated",
        "success",
        format!("client_id={} app_id={}", app.client_id, app.app_id),
    ));
    ok(&AppAuthResponse {
        access_token: token,
        expires_in: ttl,
        token_type: "Bearer".into(),
        scopes: APP_SCOPES.iter().map(|x| x.to_string()).collect(),
    })
}
