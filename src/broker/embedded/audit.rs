//! The embedded broker's audit trail: hash-chained events (spec §10).

use chrono::{DateTime, Utc};

use crate::broker::types::AuditEvent;
use crate::jwt::gojson::rfc3339_nano;

/// What a handler records; the log fills in id, timestamp and hashes.
#[derive(Debug, Default, Clone)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub agent_id: String,
    pub task_id: String,
    pub orch_id: String,
    pub detail: String,
    pub resource: String,
    pub outcome: &'static str,
    pub deleg_depth: i64,
    pub deleg_chain_hash: String,
}

impl NewEvent {
    pub fn new(event_type: &'static str, outcome: &'static str, detail: String) -> Self {
        NewEvent {
            event_type,
            outcome,
            detail,
            ..NewEvent::default()
        }
    }

    pub fn who(mut self, agent_id: &str, task_id: &str, orch_id: &str) -> Self {
        self.agent_id = agent_id.to_string();
        self.task_id = task_id.to_string();
        self.orch_id = orch_id.to_string();
        self
    }
}

const SENSITIVE: [&str; 4] = ["secret", "password", "token_value", "private_key"];

fn has_sensitive(s: &str) -> bool {
    let lower = s.to_lowercase();
    SENSITIVE.iter().any(|w| lower.contains(w))
}

/// Detail sanitisation (spec §10.4).
pub fn sanitize(detail: &str) -> String {
    if !has_sensitive(detail) {
        return detail.to_string();
    }
    for sep in ["=", ": "] {
        if let Some(i) = detail.find(sep) {
            let before = &detail[..i];
            if has_sensitive(before) {
                return format!("{before}{sep}***REDACTED***");
            }
        }
    }
    detail.to_string()
}

/// Filters of `GET /v1/audit/events`, already parsed as the broker parses them.
#[derive(Debug, Default)]
pub struct Filter {
    pub agent_id: Option<String>,
    pub task_id: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// The most bytes of a client-supplied string an audit event keeps: ids,
/// paths and the like.
pub const MAX_FIELD: usize = 256;
/// The most bytes of an event's detail (it quotes client-supplied lists).
pub const MAX_DETAIL: usize = 2048;

/// Cuts `s` to at most `max` bytes at a character boundary, saying how much
/// was cut, so that no request can make the broker keep more than a bounded
/// amount (the real broker keeps whatever it is sent; a listed deviation).
pub fn cap(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let total = s.len();
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!("…[{} bytes cut]", total - cut));
    s
}

/// Event number `seq` following `prev_hash`: id, timestamp, sanitised and
/// capped fields, hash (spec §10.2–10.4).
pub fn build_event(seq: u64, prev_hash: &str, e: NewEvent, now: DateTime<Utc>) -> AuditEvent {
    let mut ev = AuditEvent {
        id: format!("evt-{seq:06}"),
        timestamp: rfc3339_nano(now),
        event_type: e.event_type.to_string(),
        agent_id: cap(e.agent_id, MAX_FIELD),
        task_id: cap(e.task_id, MAX_FIELD),
        orch_id: cap(e.orch_id, MAX_FIELD),
        detail: cap(sanitize(&e.detail), MAX_DETAIL),
        resource: cap(e.resource, MAX_FIELD),
        outcome: e.outcome.to_string(),
        deleg_depth: e.deleg_depth,
        deleg_chain_hash: cap(e.deleg_chain_hash, MAX_FIELD),
        bytes_transferred: 0,
        hash: String::new(),
        prev_hash: prev_hash.to_string(),
    };
    ev.hash = ev.compute_hash();
    ev
}

/// `t` in unix nanoseconds, saturating outside 1677–2262 (where an i64 of
/// nanoseconds ends): a bound far in the future stays after every event, one
/// far in the past before every event, as Go's time comparison has it.
pub fn saturating_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

impl Filter {
    /// Whether an event (recorded at `ts_ns`) passes the filters.
    pub fn matches(&self, e: &AuditEvent, ts_ns: i64) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.agent_id, &e.agent_id)
            && eq(&self.task_id, &e.task_id)
            && eq(&self.event_type, &e.event_type)
            && eq(&self.outcome, &e.outcome)
            && self.since.is_none_or(|s| ts_ns >= saturating_ns(s))
            && self.until.is_none_or(|u| ts_ns <= saturating_ns(u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitisation_follows_the_spec() {
        assert_eq!(
            sanitize("client_id=x reason=wrong_secret"),
            "client_id=x reason=wrong_secret"
        );
        assert_eq!(sanitize("my_secret=abc def"), "my_secret=***REDACTED***");
        assert_eq!(
            sanitize("scope violation: requested [read:data:x password=1:a:b] exceeds"),
            "scope violation: requested [read:data:x password=***REDACTED***"
        );
        assert_eq!(sanitize("Password: hunter2"), "Password: ***REDACTED***");
        assert_eq!(sanitize("plain detail"), "plain detail");
    }

    #[test]
    fn events_chain_from_genesis() {
        let now = Utc::now();
        let a = build_event(
            1,
            &"0".repeat(64),
            NewEvent::new("admin_auth", "success", "a".into()),
            now,
        );
        let b = build_event(
            2,
            &a.hash,
            NewEvent::new("admin_auth", "success", "b".into()),
            now,
        );
        assert_eq!(a.id, "evt-000001");
        assert_eq!(crate::broker::types::verify_audit_chain(&[a, b]), Ok(()));
    }

    #[test]
    fn client_strings_are_capped() {
        let huge = "é".repeat(600_000);
        let ev = build_event(
            1,
            &"0".repeat(64),
            NewEvent::new(
                "app_auth_failed",
                "denied",
                format!("client_id={huge} reason=x"),
            )
            .who(&huge, &huge, &huge),
            Utc::now(),
        );
        assert!(ev.detail.len() < MAX_DETAIL + 40, "{}", ev.detail.len());
        assert!(ev.detail.ends_with("bytes cut]"));
        assert!(ev.agent_id.len() < MAX_FIELD + 40);
        assert_eq!(cap("short".into(), 10), "short");
        assert_eq!(crate::broker::types::verify_audit_chain(&[ev]), Ok(()));
    }
}
