//! The state model's tests.

mod main_tests {
    use super::super::*;
    use crate::broker::types::{DelegateResponse, RevokeResponse, ValidateResponse};
    use crate::worker::Outcome;
    use ed25519_dalek::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn token(sub: &str, scope: &[&str], chain: Vec<jwt::DelegRecord>, exp: i64) -> String {
        let k = key();
        let claims = Claims {
            sub: sub.into(),
            exp,
            iat: exp - 60,
            nbf: exp - 60,
            jti: format!("jti-{sub}-{}", chain.len()),
            scope: scope.iter().map(|s| s.to_string()).collect(),
            task_id: "task".into(),
            orch_id: "orch".into(),
            chain_hash: if chain.is_empty() {
                String::new()
            } else {
                jwt::chain_hash(&chain)
            },
            delegation_chain: chain,
            ..Claims::default()
        };
        jwt::sign(&claims, &k, &jwt::kid(&k.verifying_key()))
    }

    fn ev(outcome: Outcome) -> Event {
        Event {
            request: 1,
            calls: vec![],
            outcome,
        }
    }

    fn agent(app: &mut App, name: &str, scope: &[&str]) -> TokenId {
        let scope: Vec<String> = scope.iter().map(|s| s.to_string()).collect();
        let (a, t) = app.begin_agent(name, "orch", "task", &scope, None);
        let sub = format!("spiffe://agentwrit.local/agent/orch/task/{name}");
        let raw = token(
            &sub,
            &scope.iter().map(String::as_str).collect::<Vec<_>>(),
            vec![],
            unix_now() + 300,
        );
        app.apply(
            &ev(Outcome::AgentCreated {
                agent: a,
                token: t,
                result: Ok(crate::broker::client::Agent {
                    agent_id: sub,
                    access_token: raw,
                    expires_in: 300,
                    scope,
                    task_id: "task".into(),
                    orch_id: "orch".into(),
                    key: key(),
                }),
            }),
            unix_now(),
        );
        t
    }

    #[test]
    fn registration_then_delegation_builds_a_chain() {
        let mut app = App::new("http://x", true, Some(key().verifying_key()));
        let orch = agent(
            &mut app,
            "orchestrator",
            &["read:config:*", "write:deploy:*"],
        );
        agent(&mut app, "analyst", &["read:config:*"]);
        let hop1 =
            app.begin_delegation(orch, 1, &["read:config:production".into()], "hop1", Some(3));
        assert_eq!(app.status(hop1, unix_now()), TokenStatus::Pending);
        let rec = jwt::DelegRecord {
            agent: "spiffe://agentwrit.local/agent/orch/task/orchestrator".into(),
            scope: vec!["read:config:*".into(), "write:deploy:*".into()],
            delegated_at: "2026-01-01T00:00:00Z".into(),
            signature: String::new(),
        };
        let raw = token(
            "spiffe://agentwrit.local/agent/orch/task/analyst",
            &["read:config:production"],
            vec![rec.clone()],
            unix_now() + 60,
        );
        app.apply(
            &ev(Outcome::Delegated {
                token: hop1,
                result: Ok(DelegateResponse {
                    access_token: raw,
                    expires_in: 60,
                    delegation_chain: vec![rec],
                }),
            }),
            unix_now(),
        );
        let t = app.token("hop1").unwrap();
        assert_eq!(t.status_at(unix_now()), TokenStatus::Valid);
        assert_eq!(t.depth(), 1);
        assert!(t.verification.as_ref().unwrap().signature);
        let chain = app.chain(hop1);
        assert_eq!(
            chain.iter().map(|h| h.who.as_str()).collect::<Vec<_>>(),
            ["orchestrator", "analyst"]
        );
        assert_eq!(
            chain[1].attenuation,
            vec![
                (
                    "read:config:*".into(),
                    scope::Fate::Narrowed(vec!["read:config:production".into()])
                ),
                ("write:deploy:*".into(), scope::Fate::Dropped)
            ]
        );
    }

    #[test]
    fn refused_delegation_is_kept_with_the_brokers_words_and_permits_nothing() {
        let mut app = App::new("http://x", true, None);
        let orch = agent(&mut app, "orchestrator", &["read:config:*"]);
        agent(&mut app, "deployer", &["write:deploy:*"]);
        let hop = app.begin_delegation(orch, 1, &["write:deploy:x".into()], "hop2", None);
        let refusal = BrokerError {
            status: 403,
            error_code: "scope_violation".into(),
            detail: "delegated scope exceeds delegator scope".into(),
            request_id: "r".into(),
        };
        app.apply(
            &ev(Outcome::Delegated {
                token: hop,
                result: Err(ClientError::Broker(refusal.clone())),
            }),
            unix_now(),
        );
        assert_eq!(app.status(hop, unix_now()), TokenStatus::Refused(refusal));
        let rows = app.probe("write:deploy:x", unix_now());
        let row = rows.iter().find(|r| r.token == hop).unwrap();
        assert!(matches!(
            row.verdict,
            ProbeVerdict::Dead(TokenStatus::Refused(_))
        ));
        let orch_row = rows.iter().find(|r| r.token == orch).unwrap();
        assert!(matches!(
            orch_row.verdict,
            ProbeVerdict::Denies(scope::Denial::ActionDiffers { .. })
        ));
        // The chain it would have had.
        assert_eq!(app.chain(hop).len(), 2);
    }

    #[test]
    fn revocation_follows_the_brokers_rule_and_applies_to_future_tokens() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        let b = agent(&mut app, "b", &["read:data:*"]);
        let sub_a = app.agents[0].agent_id.clone().unwrap();
        app.apply(
            &ev(Outcome::Revoked {
                level: RevokeLevel::Agent,
                target: sub_a.clone(),
                result: Ok(RevokeResponse {
                    revoked: true,
                    level: "agent".into(),
                    target: sub_a.clone(),
                    count: 1,
                }),
            }),
            unix_now(),
        );
        assert!(matches!(
            app.status(a, unix_now()),
            TokenStatus::Revoked {
                level: RevokeLevel::Agent,
                ..
            }
        ));
        assert_eq!(app.status(b, unix_now()), TokenStatus::Valid);
        // A token issued to A later is born revoked.
        let later = app.begin_delegation(b, 0, &["read:data:x".into()], "to-a", None);
        let raw = token(&sub_a, &["read:data:x"], vec![], unix_now() + 60);
        app.apply(
            &ev(Outcome::Delegated {
                token: later,
                result: Ok(DelegateResponse {
                    access_token: raw,
                    expires_in: 60,
                    delegation_chain: vec![],
                }),
            }),
            unix_now(),
        );
        assert!(matches!(
            app.status(later, unix_now()),
            TokenStatus::Revoked { .. }
        ));
    }

    #[test]
    fn validation_and_expiry() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        assert_eq!(
            app.tokens[a].status_at(unix_now() + 10_000),
            TokenStatus::Expired
        );
        app.apply(
            &ev(Outcome::Validated {
                token: a,
                result: Ok(ValidateResponse {
                    valid: false,
                    claims: None,
                    error: Some("token is invalid or expired".into()),
                }),
            }),
            unix_now(),
        );
        assert_eq!(app.status(a, unix_now()), TokenStatus::Invalid);
        assert_eq!(
            app.tokens[a].validated.as_ref().map(|v| v.valid),
            Some(false)
        );
    }

    #[test]
    fn renewal_moves_the_label() {
        let mut app = App::new("http://x", true, None);
        let a = agent(&mut app, "a", &["read:data:*"]);
        let new = app.begin_renewal(a, None, None);
        assert_eq!(app.labels["a"], new);
        let raw = token("spiffe://x/a", &["read:data:*"], vec![], unix_now() + 300);
        app.apply(
            &ev(Outcome::Renewed {
                old: a,
                new,
                result: Ok(crate::broker::types::RenewResponse {
                    access_token: raw,
                    expires_in: 300,
                }),
            }),
            unix_now(),
        );
        assert_eq!(app.status(a, unix_now()), TokenStatus::RenewedAway);
        assert_eq!(app.status(new, unix_now()), TokenStatus::Valid);
        assert_eq!(app.tokens[a].label.as_deref(), Some("a (before renewal)"));
    }

    fn read(ids: std::ops::RangeInclusive<usize>, total: i64, stopped: Option<&str>) -> AuditRead {
        let events: Vec<AuditEvent> = crate::broker::types::test_trail(*ids.end())
            .into_iter()
            .skip(*ids.start() - 1)
            .collect();
        AuditRead {
            events,
            total,
            first: *ids.start() - 1,
            stopped: stopped.map(str::to_string),
        }
    }

    #[test]
    fn an_audit_trail_says_which_part_of_the_broker_s_it_is() {
        let whole = AuditTrail::new(read(1..=5, 5, None), 0);
        assert!(whole.whole());
        assert_eq!(whole.cut_words(), None);
        let (ok, w) = whole.chain_words();
        assert!(
            ok && w.starts_with("consistent over 5 events from the broker's first"),
            "{w}"
        );
        let newest = AuditTrail::new(read(96..=100, 100, None), 0);
        assert_eq!(
            newest.cut_words().as_deref(),
            Some("the newest 5 of 100 events")
        );
        let (ok, w) = newest.chain_words();
        assert!(
            ok && w.contains("from evt-000096 — the trail does not start"),
            "{w}"
        );
        let first = AuditTrail::new(read(1..=5, 100, Some("stopped at the cap")), 0);
        assert_eq!(
            first.cut_words().as_deref(),
            Some("the first 5 of 100 events (stopped at the cap)")
        );
        let mut genesis = read(1..=2, 2, None);
        genesis.events[0].prev_hash.clear();
        genesis.events[0].hash = genesis.events[0].compute_hash();
        let (ok, w) = AuditTrail::new(genesis, 0).chain_words();
        assert!(!ok && w.contains("64 zeros"), "{w}");
    }
}

mod liveness_tests {
    use super::super::*;

    /// The cheap liveness the chain pane counts agrees with the status
    /// the views show, at every moment of a token whose ttl is known or not.
    #[test]
    fn liveness_at_agrees_with_status_at() {
        let mut app = App::new("http://127.0.0.1:1", false, None);
        let holder = app.outside_agent("spiffe://agentwrit.local/agent/o/t/x");
        let statuses = [
            TokenStatus::Valid,
            TokenStatus::LikelyValid("young".into()),
            TokenStatus::Unknown("cannot tell".into()),
            TokenStatus::Released,
        ];
        for status in statuses {
            for exp in [1_300, EXP_UNKNOWN] {
                let id = app.add_known(Known {
                    holder,
                    kind: TokenKind::Registration,
                    label: "t".into(),
                    claims: Some(Claims {
                        iat: 1_000,
                        exp,
                        ..Claims::default()
                    }),
                    requested: Vec::new(),
                    status: status.clone(),
                    notes: Vec::new(),
                    foreign: false,
                });
                let t = &app.tokens[id];
                for now in [1_000, 1_059, 1_061, 1_301, 1_000 + 86_401] {
                    assert_eq!(
                        t.liveness_at(now),
                        t.status_at(now).liveness(),
                        "{status:?} exp {exp} at {now}"
                    );
                }
            }
        }
        // Unknown is never dead within AA_MAX_TTL; likely valid turns unknown after 60 s.
        let unknown = app.tokens.iter().find(|t| {
            matches!(t.status, TokenStatus::LikelyValid(_)) && t.exp() == Some(EXP_UNKNOWN)
        });
        let t = unknown.unwrap();
        assert!(matches!(t.status_at(1_061), TokenStatus::Unknown(_)));
        assert_eq!(t.liveness_at(1_000 + 86_000), Liveness::Maybe);
    }
}
