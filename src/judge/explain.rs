//! `explain NODE SCOPE`: the checks the broker makes when a token is
//! presented for a scope, in its order — verification, expiry, each
//! revocation check (jti, sub, task, chain root) against the entries the
//! trail shows, then the scope rule — one line each with ✓ / ✗ / ?, ending
//! in allowed, denied or unknown, and why.

use serde::Serialize;

use crate::observe::{Liveness, NodeId, Observed, Status};
use crate::rules::RevokeLevel;
use crate::scope::{self, Verdict};

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub kind: &'static str,
    pub check: &'static str,
    /// `pass`, `fail` or `unknown`.
    pub result: &'static str,
    pub why: String,
}

/// The decision.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kind: &'static str,
    pub node: String,
    pub scope: String,
    /// `allowed`, `denied` or `unknown`.
    pub decision: &'static str,
    pub why: String,
}

fn line(check: &'static str, result: &'static str, why: String) -> Check {
    Check {
        kind: "check",
        check,
        result,
        why,
    }
}

/// The trace for token `id` presented for `requested` as of `at`.
pub fn explain(o: &Observed, id: NodeId, at: usize, requested: &str) -> (Vec<Check>, Decision) {
    let n = &o.nodes[id];
    let j = o.status(id, at);
    let mut checks = Vec::new();
    checks.push(line(
        "signature",
        "pass",
        "issued by the broker (the trail shows its issue; the token itself is not in it)".into(),
    ));
    let expiry = match (j.status, n.ttl) {
        (Status::Expired, _) => line("expiry", "fail", j.why.clone()),
        (_, Some(t)) => line(
            "expiry",
            "pass",
            format!("ttl {t}s, issued at {}", o.events[n.event].timestamp),
        ),
        (_, None) => line(
            "expiry",
            if j.liveness == Liveness::Live {
                "pass"
            } else {
                "unknown"
            },
            "its ttl is not in the trail (a v2.0.0 trail does not carry a delegation's ttl)".into(),
        ),
    };
    checks.push(expiry);
    // The broker's IsRevoked, in its order.
    let subject = o.subject(n);
    let entries: Vec<(usize, RevokeLevel, &str)> =
        o.revocations().filter(|(k, _, _)| *k <= at).collect();
    for level in RevokeLevel::ALL {
        let name = match level {
            RevokeLevel::Token => "revoked: jti",
            RevokeLevel::Agent => "revoked: sub",
            RevokeLevel::Task => "revoked: task",
            RevokeLevel::Chain => "revoked: chain root",
        };
        let ended_own = matches!(j.status, Status::Released | Status::Renewed) && !j.inferred;
        let c = match subject.key(level) {
            // A release, and a renewal's predecessor, are token-level
            // revocations of the token's own jti (spec §7.2, §7.3).
            _ if level == RevokeLevel::Token && ended_own => line(
                name,
                "fail",
                format!("{}: a token-level revocation of its own jti", j.why),
            ),
            None if level == RevokeLevel::Token => line(
                name,
                if entries.iter().any(|(_, l, _)| *l == RevokeLevel::Token) {
                    "unknown"
                } else {
                    "pass"
                },
                "its jti is not in the trail: a token-level entry of a jti the trail never carried may be for it".into(),
            ),
            None => line(name, "pass", format!("no {level} claim: no {level} entry can match")),
            Some(key) => match entries.iter().find(|(_, l, t)| *l == level && *t == key) {
                Some((k, _, _)) => line(
                    name,
                    "fail",
                    format!("an entry for {key} at {}", o.events[*k].id),
                ),
                None => line(name, "pass", format!("no entry for {key}")),
            },
        };
        checks.push(c);
    }
    let scope_check = match scope::explain_one(requested, &n.scope) {
        Verdict::Covered { by } => line("scope", "pass", format!("covered by {by}")),
        Verdict::Denied(d) => line("scope", "fail", d.to_string()),
    };
    let scope_ok = scope_check.result == "pass";
    checks.push(scope_check);
    let failed = checks.iter().find(|c| c.result == "fail");
    let unsure = checks.iter().any(|c| c.result == "unknown") || j.liveness == Liveness::Maybe;
    let (decision, why) = match (failed, unsure) {
        (Some(c), _) => ("denied", format!("{}: {}", c.check, c.why)),
        (None, true) => ("unknown", format!("the trail cannot settle it: {}", j.why)),
        (None, false) if j.liveness == Liveness::Dead => ("denied", j.why.clone()),
        (None, false) => ("allowed", "every check passes".to_string()),
    };
    let decision = if !scope_ok { "denied" } else { decision };
    (
        checks,
        Decision {
            kind: "decision",
            node: format!("n{id}"),
            scope: requested.to_string(),
            decision,
            why,
        },
    )
}
