//! Wire types of the AgentWrit v2.0.0 HTTP API (spec §4), shared by the
//! client and the embedded broker so both speak exactly the same JSON.
//!
//! Field order is the broker's struct order; decoding follows Go's
//! `encoding/json` closely enough for compatibility: unknown fields are
//! ignored and `null` reads as the zero value.

use serde::{Deserialize, Serialize};

use crate::jwt::null_default;
use crate::jwt::{Claims, DelegRecord};

/// RFC 7807 problem body (spec §1.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub type_: String,
    #[serde(default, deserialize_with = "null_default")]
    pub title: String,
    #[serde(default, deserialize_with = "null_default")]
    pub status: u16,
    #[serde(default, deserialize_with = "null_default")]
    pub detail: String,
    #[serde(default, deserialize_with = "null_default")]
    pub instance: String,
    #[serde(default, deserialize_with = "null_default")]
    pub error_code: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub uptime: i64,
    pub db_connected: bool,
    pub audit_events_count: i64,
    /// Why `status` is not `ok` (chainview's broker, while it cannot write
    /// its audit trail); absent otherwise, as from the real broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub nonce: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisterRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub launch_token: String,
    #[serde(default, deserialize_with = "null_default")]
    pub nonce: String,
    #[serde(default, deserialize_with = "null_default")]
    pub public_key: String,
    #[serde(default, deserialize_with = "null_default")]
    pub signature: String,
    #[serde(default, deserialize_with = "null_default")]
    pub orch_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub task_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub requested_scope: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub agent_id: String,
    pub access_token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValidateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateResponse {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Claims>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Renewal answer: no `token_type` (spec §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponse {
    pub access_token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DelegateRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub delegate_to: String,
    #[serde(default, deserialize_with = "null_default")]
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegateResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub delegation_chain: Vec<DelegRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RevokeRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub level: String,
    #[serde(default, deserialize_with = "null_default")]
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResponse {
    pub revoked: bool,
    pub level: String,
    pub target: String,
    pub count: i64,
}

/// One audit event (spec §10.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub timestamp: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orch_id: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleg_depth: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deleg_chain_hash: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_transferred: i64,
    pub hash: String,
    pub prev_hash: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl AuditEvent {
    /// The event's fields, borrowed.
    pub fn as_ref(&self) -> AuditRef<'_> {
        AuditRef {
            id: &self.id,
            timestamp: &self.timestamp,
            event_type: &self.event_type,
            agent_id: &self.agent_id,
            task_id: &self.task_id,
            orch_id: &self.orch_id,
            detail: &self.detail,
            resource: &self.resource,
            outcome: &self.outcome,
            deleg_depth: self.deleg_depth,
            deleg_chain_hash: &self.deleg_chain_hash,
            bytes_transferred: self.bytes_transferred,
            hash: &self.hash,
            prev_hash: &self.prev_hash,
        }
    }

    /// The 13-field `|`-joined string whose SHA-256 is `hash` (spec §10.3).
    pub fn hash_input(&self) -> String {
        let mut v = Vec::new();
        self.as_ref().feed(|b| v.extend_from_slice(b));
        String::from_utf8_lossy(&v).into_owned()
    }

    /// Recomputes this event's hash from its fields.
    pub fn compute_hash(&self) -> String {
        hex::encode(self.as_ref().digest())
    }
}

/// An audit event's fields borrowed from wherever the event lives (a parsed
/// page, or a saved trail read without copying).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditRef<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub event_type: &'a str,
    pub agent_id: &'a str,
    pub task_id: &'a str,
    pub orch_id: &'a str,
    pub detail: &'a str,
    pub resource: &'a str,
    pub outcome: &'a str,
    pub deleg_depth: i64,
    pub deleg_chain_hash: &'a str,
    pub bytes_transferred: i64,
    pub hash: &'a str,
    pub prev_hash: &'a str,
}

impl AuditRef<'_> {
    /// Feeds the 13 `|`-joined fields of spec §10.3 to `sink`, in order.
    fn feed(&self, mut sink: impl FnMut(&[u8])) {
        // Decimal without allocating (this runs once per event of a trail).
        let (mut d, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
        let depth = d.format(self.deleg_depth);
        let bytes = b.format(self.bytes_transferred);
        for (i, f) in [
            self.prev_hash,
            self.id,
            self.timestamp,
            self.event_type,
            self.agent_id,
            self.task_id,
            self.orch_id,
            self.detail,
            self.resource,
            self.outcome,
            depth,
            self.deleg_chain_hash,
            bytes,
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                sink(b"|");
            }
            sink(f.as_bytes());
        }
    }

    /// SHA-256 of the hashed fields.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        self.feed(|b| h.update(b));
        h.finalize().into()
    }

    /// Whether `hash` is what the fields hash to (lowercase hex, as the broker writes it).
    pub fn hash_matches(&self) -> bool {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(self.digest(), &mut hex).is_ok() && hex == self.hash.as_bytes()
    }
}

/// The first place an audit hash chain breaks (spec §10.3), by the one
/// rule in [`crate::rules::chain`].
pub use crate::rules::chain::{Break as ChainBreak, Fault as ChainFault};

/// Checks a contiguous, unfiltered run of audit events by the rules of
/// [`crate::rules::chain`]: hashes, links, the genesis `prev_hash` (64 zeros
/// at `evt-000001`) and ids that continue one by one.
pub fn verify_audit_chain(events: &[AuditEvent]) -> Result<(), ChainBreak> {
    let mut chain = crate::rules::chain::Chain::new();
    for e in events {
        if let Some(b) = chain.push(&e.id, &e.hash, &e.prev_hash, e.as_ref().hash_matches()) {
            return Err(b.clone());
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
}

/// Filters for `GET /v1/audit/events`; `None` leaves a parameter out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    pub agent_id: Option<String>,
    pub task_id: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl AuditQuery {
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        let strs = [
            ("agent_id", &self.agent_id),
            ("task_id", &self.task_id),
            ("event_type", &self.event_type),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ];
        for (k, val) in strs {
            if let Some(s) = val {
                v.push((k, s.clone()));
            }
        }
        if let Some(l) = self.limit {
            v.push(("limit", l.to_string()));
        }
        if let Some(o) = self.offset {
            v.push(("offset", o.to_string()));
        }
        v
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdminAuthRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub secret: String,
}

/// Admin login answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub token_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LaunchTokenRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub agent_name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub allowed_scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_use: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

impl LaunchTokenRequest {
    /// The request the SDK's `create_agent` sends: single use, 30 s to use it,
    /// label `orch/task`, agent TTL `max_ttl` (default 300).
    pub fn for_agent(orch_id: &str, task_id: &str, scope: &[String], max_ttl: Option<i64>) -> Self {
        LaunchTokenRequest {
            agent_name: format!("{orch_id}/{task_id}"),
            allowed_scope: scope.to_vec(),
            max_ttl: Some(max_ttl.unwrap_or(300)),
            single_use: Some(true),
            ttl: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPolicy {
    pub allowed_scope: Vec<String>,
    pub max_ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTokenResponse {
    pub launch_token: String,
    pub expires_at: String,
    pub policy: LaunchPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateAppRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateAppRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<i64>,
}

/// An app as the broker shows it. Which fields appear depends on the route
/// (spec §4.11): `client_secret` only on creation, `deregistered_at` only on
/// delete, `created_at`/`updated_at` only on reads; `scopes` is `null` on delete.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct App {
    pub app_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub token_ttl: i64,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<App>,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AppAuthRequest {
    #[serde(default, deserialize_with = "null_default")]
    pub client_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub client_secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAuthResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub token_type: String,
    pub scopes: Vec<String>,
}

/// Revocation levels (spec §7.1).
pub use crate::rules::RevokeLevel;

/// Tests: a trail of `n` empty events from the broker's first, with a valid
/// hash chain.
#[cfg(test)]
pub(crate) fn test_trail(n: usize) -> Vec<AuditEvent> {
    let mut prev = crate::rules::chain::GENESIS_PREV.to_string();
    (1..=n)
        .map(|i| {
            let mut e = AuditEvent {
                id: format!("evt-{i:06}"),
                prev_hash: prev.clone(),
                ..AuditEvent::default()
            };
            e.hash = e.compute_hash();
            prev = e.hash.clone();
            e
        })
        .collect()
}

/// A SPIFFE path segment (an `orch_id` or `task_id`): non-empty, not
/// `.`/`..`, only `A-Za-z0-9.-_`. The broker's rule; forms and the scenario
/// parser check the same one.
pub fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// Six random lowercase hex characters, for unique names (apps, agents).
pub fn short_id() -> String {
    let bytes: [u8; 3] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_genesis_vector() {
        let e = AuditEvent {
            id: "evt-000001".into(),
            timestamp: "2026-04-14T20:26:27.2578Z".into(),
            event_type: "admin_auth".into(),
            detail: "admin authenticated as admin".into(),
            outcome: "success".into(),
            prev_hash: "0".repeat(64),
            ..AuditEvent::default()
        };
        assert_eq!(
            e.hash_input(),
            format!(
                "{}|evt-000001|2026-04-14T20:26:27.2578Z|admin_auth||||admin authenticated as admin||success|0||0",
                "0".repeat(64)
            )
        );
        assert_eq!(
            e.compute_hash(),
            "8b3aaaabd3d3cf299b5f184d725add9d4a16a37c3c40cc6d18c35dff08e58eb5"
        );
    }

    #[test]
    fn audit_chain_break_is_located() {
        let mut a = AuditEvent {
            id: "evt-000001".into(),
            prev_hash: "0".repeat(64),
            ..AuditEvent::default()
        };
        a.hash = a.compute_hash();
        let mut b = AuditEvent {
            id: "evt-000002".into(),
            prev_hash: a.hash.clone(),
            ..AuditEvent::default()
        };
        b.hash = b.compute_hash();
        assert_eq!(verify_audit_chain(&[a.clone(), b.clone()]), Ok(()));
        let mut tampered = b.clone();
        tampered.detail = "edited".into();
        assert_eq!(
            verify_audit_chain(&[a.clone(), tampered]),
            Err(ChainBreak {
                index: 1,
                id: "evt-000002".into(),
                fault: ChainFault::Hash
            })
        );
        let mut relinked = b;
        relinked.prev_hash = "1".repeat(64);
        relinked.hash = relinked.compute_hash();
        assert_eq!(
            verify_audit_chain(&[a, relinked]),
            Err(ChainBreak {
                index: 1,
                id: "evt-000002".into(),
                fault: ChainFault::Link
            })
        );
    }

    #[test]
    fn go_style_decoding_tolerates_null_and_unknown_fields() {
        let r: DelegateRequest =
            serde_json::from_str(r#"{"delegate_to":null,"scope":null,"extra":1}"#).unwrap();
        assert_eq!(r, DelegateRequest::default());
        assert!(serde_json::from_str::<DelegateRequest>(r#"{"ttl":"60"}"#).is_err());
        assert!(serde_json::from_str::<DelegateRequest>(r#"{"ttl":60.5}"#).is_err());
    }
}
