use super::*;

fn key(i: usize) -> [u8; 32] {
    sha256(&i.to_string())
}

fn claims_expiring(exp: i64) -> Claims {
    Claims {
        sub: "spiffe://agentwrit.local/agent/o/t/0011223344556677".into(),
        jti: format!("{exp:032x}"),
        exp,
        ..Claims::default()
    }
}

#[test]
fn the_issued_cache_is_bounded_and_evicts_the_soonest_expiry_first() {
    let now = 1_000_000;
    let one = IssuedCache::entry_bytes(&claims_expiring(now + 1));
    let mut c = IssuedCache::with_cap(100 * one);
    // A long-lived token first, then a churn of short-lived ones, their
    // expiries out of order.
    c.insert(key(0), claims_expiring(now + 3600), now);
    for i in 1..=300 {
        let exp = now + 60 + ((i * 37) % 300) as i64;
        c.insert(key(i), claims_expiring(exp), now);
        assert!(c.bytes <= c.cap, "over the cap at {i}: {}", c.bytes);
    }
    assert_eq!(c.map.len(), 100);
    // The long-lived token stayed (FIFO eviction pushed it out first).
    assert!(c.get(&key(0)).is_some());
    // What is left are exactly the latest expiries (a new token that
    // expires before all the cached ones is the one left out).
    let mut kept: Vec<i64> = c.map.values().map(|(cl, _)| cl.exp).collect();
    kept.sort_unstable();
    let mut all: Vec<i64> = (1..=300)
        .map(|i| now + 60 + ((i * 37) % 300) as i64)
        .chain([now + 3600])
        .collect();
    all.sort_unstable();
    assert_eq!(kept, all[all.len() - 100..]);
}

#[test]
fn the_issued_cache_drops_expired_tokens_before_live_ones() {
    let now = 1_000_000;
    let one = IssuedCache::entry_bytes(&claims_expiring(now + 1));
    let mut c = IssuedCache::with_cap(10 * one);
    for i in 0..5 {
        c.insert(key(i), claims_expiring(now + 10 + i as i64), now);
    }
    // Time passes: the first five expire; new tokens push only them out.
    let later = now + 100;
    for i in 5..10 {
        c.insert(key(i), claims_expiring(later + 60), later);
    }
    assert!((0..5).all(|i| c.get(&key(i)).is_none()));
    assert!((5..10).all(|i| c.get(&key(i)).is_some()));
    assert_eq!(c.map.len(), 5);
    assert_eq!(c.bytes, 5 * one);
}

#[test]
fn every_issued_token_stays_cached_below_the_cap() {
    let s = State::new(Config::default()).expect("state");
    let first = s.issue(claims_expiring(0), 3600).0;
    for _ in 0..20_000 {
        s.issue(claims_expiring(0), 60);
    }
    // The old cache (8,192 entries, oldest first) pushed the first token out here.
    assert_eq!(read(&s.issued).map.len(), 20_001);
    assert!(read(&s.issued).get(&sha256(&first)).is_some());
    assert!(s.verify(&first).is_ok());
}

#[test]
fn expired_token_revocations_are_purged_others_kept() {
    let mut r = Revocations::default();
    let now = 1_000_000;
    for i in 0..5000 {
        r.insert(
            RevokeLevel::Token,
            &format!("old{i}"),
            Some(now - 3600),
            now,
        );
    }
    r.insert(RevokeLevel::Token, "forever", None, now);
    r.insert(RevokeLevel::Task, "t", None, now);
    // The next insert past the threshold purges the long-expired ones.
    for i in 0..5000 {
        r.insert(RevokeLevel::Token, &format!("new{i}"), Some(now + 300), now);
    }
    assert!(r.tokens.len() <= 5001 + 1, "{}", r.tokens.len());
    assert!(r.has(RevokeLevel::Token, "forever"));
    assert!(r.has(RevokeLevel::Token, "new1"));
    assert!(r.has(RevokeLevel::Task, "t"));
    assert!(!r.has(RevokeLevel::Token, "old1"));
}

#[test]
fn nonces_are_recognised_without_being_stored() {
    let s = State::new(Config::default()).expect("state");
    let now = Utc::now();
    let n = s.new_nonce(now);
    assert_eq!(n.len(), 64);
    let created = s.nonce_created(&n).expect("issued here");
    assert_eq!(created.timestamp_nanos_opt(), now.timestamp_nanos_opt());
    let mut forged = n.clone();
    forged.replace_range(40..42, if &n[40..42] == "00" { "01" } else { "00" });
    assert!(s.nonce_created(&forged).is_none());
    assert!(s.nonce_created(&"ab".repeat(32)).is_none());
    assert!(lock(&s.nonces).is_empty());
}

#[test]
fn a_delegated_tokens_cache_entry_is_about_1_3_kb() {
    // The figure the docs give for the 256 MiB bound (~200,000 tokens).
    let agent = "spiffe://agentwrit.local/agent/orch-1/task-1/0011223344556677";
    let c = Claims {
        iss: "agentwrit".into(),
        sub: agent.replace("0011", "8899"),
        exp: 1_700_000_060,
        nbf: 1_700_000_000,
        iat: 1_700_000_000,
        jti: "00112233445566778899aabbccddeeff".into(),
        scope: vec!["read:data:x".into()],
        task_id: "task-1".into(),
        orch_id: "orch-1".into(),
        delegation_chain: vec![jwt::DelegRecord {
            agent: agent.into(),
            scope: vec!["read:data:*".into(), "write:data:*".into()],
            delegated_at: "2026-12-04T23:00:00.123456789Z".into(),
            signature: "ab".repeat(64),
        }],
        chain_hash: "cd".repeat(32),
        ..Claims::default()
    };
    let b = IssuedCache::entry_bytes(&c);
    assert!((1_100..1_500).contains(&b), "{b} bytes");
}
