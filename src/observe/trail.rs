//! What one audit event says, read from its fields and its `detail` (spec
//! §10.1). The broker writes lists with Go's `%v` (`[a b c]`); a detail can
//! be cut short by the broker's sanitisation (§10.4), so every parser here
//! takes what is there and never fails.

use crate::broker::types::{AuditRef, RevokeLevel};

/// The denials the reconstruction shows (event types whose outcome is `denied`).
pub const DENIALS: &[&str] = &[
    "delegation_attenuation_violation",
    "scope_violation",
    "registration_policy_violation",
    "scope_ceiling_exceeded",
    "token_auth_failed",
    "token_revoked_access",
    "token_renewal_failed",
    "launch_token_denied",
    "admin_auth_failed",
    "app_auth_failed",
];

/// An event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact<'a> {
    AgentRegistered {
        agent: &'a str,
        scope: Vec<&'a str>,
        app: Option<&'a str>,
    },
    TokenIssued {
        agent: &'a str,
        jti: Option<&'a str>,
        ttl: Option<i64>,
    },
    Delegated {
        from: &'a str,
        to: &'a str,
        scope: Vec<&'a str>,
        depth: i64,
    },
    Renewed {
        agent: &'a str,
        new_jti: Option<&'a str>,
    },
    Released {
        agent: &'a str,
        jti: Option<&'a str>,
    },
    Revoked {
        level: RevokeLevel,
        target: &'a str,
    },
    AppRegistered {
        name: &'a str,
        scopes: Vec<&'a str>,
    },
    AppAuthenticated {
        app_id: &'a str,
    },
    Denied(Denied<'a>),
    /// Anything else (admin logins, launch tokens, app updates, new types).
    Other,
}

/// A refused attempt, as far as the event tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Denied<'a> {
    /// The agent (or `app:…`, `admin`) that tried, when known.
    pub by: Option<&'a str>,
    /// Whom a delegation was for.
    pub target: Option<&'a str>,
    /// The scope asked for.
    pub requested: Vec<&'a str>,
    /// What the caller held or was allowed (`allowed=`, `actual=`, `ceiling=`).
    pub allowed: Vec<&'a str>,
    /// The route, for route-level refusals.
    pub path: Option<&'a str>,
    /// The broker's reason, when it gives one apart from the lists.
    pub reason: Option<&'a str>,
}

/// Reads an event's type and detail.
pub fn read<'a>(e: &AuditRef<'a>) -> Fact<'a> {
    let d = e.detail;
    let some = |s: &'a str| (!s.is_empty()).then_some(s);
    match e.event_type {
        "agent_registered" => Fact::AgentRegistered {
            agent: e.agent_id,
            scope: d
                .split_once("scope ")
                .map(|(_, r)| go_list(r))
                .unwrap_or_default(),
            app: value(d, "app_id"),
        },
        "token_issued" => Fact::TokenIssued {
            agent: e.agent_id,
            jti: value(d, "jti").map(|j| j.trim_end_matches(',')),
            ttl: value(d, "ttl").and_then(|t| t.trim_end_matches(',').parse().ok()),
        },
        "delegation_created" => {
            let (from, to) = d
                .strip_prefix("delegation from ")
                .and_then(|r| r.split_once(" to "))
                .map(|(f, r)| (f, r.split(' ').next().unwrap_or("")))
                .unwrap_or(("", e.agent_id));
            Fact::Delegated {
                from,
                to: some(to).unwrap_or(e.agent_id),
                scope: value(d, "scope").map(go_list).unwrap_or_default(),
                depth: e.deleg_depth,
            }
        }
        "token_renewed" => Fact::Renewed {
            agent: e.agent_id,
            new_jti: value(d, "new_jti"),
        },
        "token_released" => Fact::Released {
            agent: e.agent_id,
            jti: value(d, "jti"),
        },
        "token_revoked" => match value(d, "level").and_then(RevokeLevel::parse) {
            Some(level) => Fact::Revoked {
                level,
                target: d
                    .split_once("target=")
                    .map(|(_, t)| t)
                    .unwrap_or(e.agent_id),
            },
            None => Fact::Other,
        },
        "app_registered" => Fact::AppRegistered {
            name: value(d, "app").unwrap_or(""),
            scopes: value(d, "scopes").map(go_list).unwrap_or_default(),
        },
        "app_authenticated" => match value(d, "app_id") {
            Some(app_id) => Fact::AppAuthenticated { app_id },
            None => Fact::Other,
        },
        t if DENIALS.contains(&t) || e.outcome == "denied" => Fact::Denied(denied(e)),
        _ => Fact::Other,
    }
}

fn denied<'a>(e: &AuditRef<'a>) -> Denied<'a> {
    let d = e.detail;
    let some = |s: &'a str| (!s.is_empty()).then_some(s);
    let mut out = Denied {
        by: some(e.agent_id),
        path: some(e.resource),
        ..Denied::default()
    };
    match e.event_type {
        "delegation_attenuation_violation" => {
            for part in d.split(" | ") {
                match part.split_once('=') {
                    Some(("delegator", v)) => out.by = some(v),
                    Some(("target", v)) => out.target = some(v),
                    Some(("requested", v)) => out.requested = go_list(v),
                    Some(("allowed", v)) => out.allowed = go_list(v),
                    _ => {}
                }
            }
        }
        "scope_violation" => {
            for part in d.split(" | ") {
                match part.split_once('=') {
                    Some(("required", v)) => out.requested = vec![v],
                    Some(("actual", v)) => {
                        out.allowed = v.split(',').filter(|s| !s.is_empty()).collect()
                    }
                    Some(("path", v)) => out.path = some(v),
                    _ => {}
                }
            }
        }
        "registration_policy_violation" => {
            let rest = d.split_once("requested ").map(|(_, r)| r).unwrap_or("");
            let (req, allowed) = rest.split_once(" exceeds allowed ").unwrap_or((rest, ""));
            out.requested = go_list(req);
            out.allowed = go_list(allowed);
        }
        "scope_ceiling_exceeded" => {
            out.requested = value(d, "requested").map(go_list).unwrap_or_default();
            out.allowed = value(d, "ceiling").map(go_list).unwrap_or_default();
        }
        "launch_token_denied" => {
            out.by = value(d, "by").or(out.by);
            out.target = value(d, "agent");
            out.reason = d.split_once("reason=").map(|(_, r)| r);
        }
        _ => {
            let (reason, path) = d.split_once(" | path=").unwrap_or((d, ""));
            out.reason = some(reason);
            out.path = out.path.or(some(path));
        }
    }
    out
}

/// `key=value` in a detail: the value runs to the next space, or — when it
/// starts with `[` — to the matching `]` (a Go `%v` list).
pub fn value<'a>(detail: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = detail[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0 || matches!(detail.as_bytes()[at - 1], b' ' | b',' | b'|');
        let rest = &detail[at + key.len()..];
        if before_ok && let Some(v) = rest.strip_prefix('=') {
            let end = if v.starts_with('[') {
                v.find(']').map(|e| e + 1).unwrap_or(v.len())
            } else {
                v.find(' ').unwrap_or(v.len())
            };
            return Some(&v[..end]);
        }
        from = at + key.len();
    }
    None
}

/// A Go `%v` list (`[a b c]`) as its items; a list cut short (no `]`) gives
/// what is there.
pub fn go_list(s: &str) -> Vec<&str> {
    let s = s.trim_start();
    let Some(inner) = s.strip_prefix('[') else {
        return Vec::new();
    };
    let inner = inner.split(']').next().unwrap_or("");
    inner.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(event_type: &'a str, agent: &'a str, detail: &'a str) -> AuditRef<'a> {
        AuditRef {
            event_type,
            agent_id: agent,
            detail,
            ..AuditRef::default()
        }
    }

    #[test]
    fn go_lists_and_values() {
        assert_eq!(go_list("[a b c]"), vec!["a", "b", "c"]);
        assert_eq!(go_list("[]"), Vec::<&str>::new());
        assert_eq!(
            go_list("[read:data:x password=***REDACTED***"),
            vec!["read:data:x", "password=***REDACTED***"]
        );
        let d = "delegation from A to B scope=[read:x:y write:x:y] depth=2";
        assert_eq!(value(d, "scope"), Some("[read:x:y write:x:y]"));
        assert_eq!(value(d, "depth"), Some("2"));
        assert_eq!(
            value("Token issued, jti=abc, ttl=300 app_id=app-x", "jti"),
            Some("abc,")
        );
        assert_eq!(value("token renewed for agent=a new_jti=j", "jti"), None);
    }

    #[test]
    fn every_kind_of_detail_is_read() {
        let f = read(&raw(
            "token_issued",
            "A",
            "Token issued, jti=abc, ttl=100000 app_id=app-x",
        ));
        assert_eq!(
            f,
            Fact::TokenIssued {
                agent: "A",
                jti: Some("abc"),
                ttl: Some(100000)
            }
        );
        let f = read(&raw(
            "delegation_created",
            "B",
            "delegation from A to B scope=[r:a:b w:a:b] depth=1",
        ));
        assert_eq!(
            f,
            Fact::Delegated {
                from: "A",
                to: "B",
                scope: vec!["r:a:b", "w:a:b"],
                depth: 0
            }
        );
        let f = read(&raw(
            "token_revoked",
            "t",
            "revoked at level=task target=task a",
        ));
        assert_eq!(
            f,
            Fact::Revoked {
                level: RevokeLevel::Task,
                target: "task a"
            }
        );
        let f = read(&raw(
            "delegation_attenuation_violation",
            "B",
            "delegation_attenuation_violation | delegator=B | target=C | requested=[w:d:x] | allowed=[r:d:x r:e:y]",
        ));
        let Fact::Denied(d) = f else { panic!("{f:?}") };
        assert_eq!((d.by, d.target), (Some("B"), Some("C")));
        assert_eq!(
            (d.requested, d.allowed),
            (vec!["w:d:x"], vec!["r:d:x", "r:e:y"])
        );
        let f = read(&raw(
            "scope_violation",
            "A",
            "scope_violation | required=admin:revoke:* | actual=read:a:b,write:a:b | path=/v1/revoke",
        ));
        let Fact::Denied(d) = f else { panic!("{f:?}") };
        assert_eq!(
            (d.requested, d.allowed, d.path),
            (
                vec!["admin:revoke:*"],
                vec!["read:a:b", "write:a:b"],
                Some("/v1/revoke")
            )
        );
        let f = read(&raw(
            "registration_policy_violation",
            "",
            "scope violation: requested [read:data:x password=***REDACTED***",
        ));
        let Fact::Denied(d) = f else { panic!("{f:?}") };
        assert_eq!(d.requested, vec!["read:data:x", "password=***REDACTED***"]);
        let f = read(&raw(
            "token_auth_failed",
            "",
            "token verification failed: token has been revoked | path=/v1/delegate",
        ));
        let Fact::Denied(d) = f else { panic!("{f:?}") };
        assert_eq!(
            (d.reason, d.path),
            (
                Some("token verification failed: token has been revoked"),
                Some("/v1/delegate")
            )
        );
        assert_eq!(
            read(&raw("admin_auth", "", "admin authenticated as admin")),
            Fact::Other
        );
    }
}
