//! The embedded broker's audit trail: hash-chained events (spec §10).

use chrono::{DateTime, Utc};

use crate::broker::types::{AuditEvent, AuditPage};
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

#[derive(Debug, Default)]
pub struct AuditLog {
    events: Vec<AuditEvent>,
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

impl AuditLog {
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub fn record(&mut self, e: NewEvent, now: DateTime<Utc>) {
        let prev_hash = self
            .events
            .last()
            .map(|p| p.hash.clone())
            .unwrap_or_else(|| "0".repeat(64));
        let mut ev = AuditEvent {
            id: format!("evt-{:06}", self.events.len() + 1),
            timestamp: rfc3339_nano(now),
            event_type: e.event_type.to_string(),
            agent_id: e.agent_id,
            task_id: e.task_id,
            orch_id: e.orch_id,
            detail: sanitize(&e.detail),
            resource: e.resource,
            outcome: e.outcome.to_string(),
            deleg_depth: e.deleg_depth,
            deleg_chain_hash: e.deleg_chain_hash,
            bytes_transferred: 0,
            hash: String::new(),
            prev_hash,
        };
        ev.hash = ev.compute_hash();
        self.events.push(ev);
    }

    pub fn query(&self, f: &Filter) -> AuditPage {
        let skip = f.offset.max(0) as usize;
        let take = f.limit.min(1000) as usize;
        let unfiltered = f.agent_id.is_none()
            && f.task_id.is_none()
            && f.event_type.is_none()
            && f.outcome.is_none()
            && f.since.is_none()
            && f.until.is_none();
        if unfiltered {
            // Pages of the whole log are slices: paging through millions of
            // events stays linear.
            let end = skip.saturating_add(take).min(self.events.len());
            return AuditPage {
                events: self
                    .events
                    .get(skip..end)
                    .map(<[_]>::to_vec)
                    .unwrap_or_default(),
                total: self.events.len() as i64,
                offset: f.offset,
                limit: f.limit,
            };
        }
        let matches = |e: &&AuditEvent| {
            let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
            let ts = DateTime::parse_from_rfc3339(&e.timestamp)
                .map(|t| t.with_timezone(&Utc))
                .ok();
            eq(&f.agent_id, &e.agent_id)
                && eq(&f.task_id, &e.task_id)
                && eq(&f.event_type, &e.event_type)
                && eq(&f.outcome, &e.outcome)
                && f.since.is_none_or(|s| ts.is_some_and(|t| t >= s))
                && f.until.is_none_or(|u| ts.is_some_and(|t| t <= u))
        };
        let all: Vec<&AuditEvent> = self.events.iter().filter(matches).collect();
        AuditPage {
            events: all
                .iter()
                .skip(skip)
                .take(take)
                .map(|e| (*e).clone())
                .collect(),
            total: all.len() as i64,
            offset: f.offset,
            limit: f.limit,
        }
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
        let mut log = AuditLog::default();
        let now = Utc::now();
        log.record(NewEvent::new("admin_auth", "success", "a".into()), now);
        log.record(NewEvent::new("admin_auth", "success", "b".into()), now);
        let page = log.query(&Filter {
            limit: 100,
            ..Filter::default()
        });
        assert_eq!(page.total, 2);
        assert_eq!(page.events[0].id, "evt-000001");
        assert_eq!(
            crate::broker::types::verify_audit_chain(&page.events),
            Ok(())
        );
    }
}
