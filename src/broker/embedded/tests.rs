use super::*;

fn key(i: usize) -> [u8; 32] {
    sha256(&i.to_string())
}

#[test]
fn the_issued_cache_evicts_its_oldest_entries_one_by_one() {
    let mut c = IssuedCache::default();
    for i in 0..ISSUED_CACHE_MAX + 10 {
        c.insert(key(i), Claims::default());
    }
    // Full: the ten oldest went, nothing else did (it used to empty
    // itself here, so every token issued before had to be re-verified).
    assert_eq!(c.map.len(), ISSUED_CACHE_MAX);
    assert!((0..10).all(|i| c.get(&key(i)).is_none()));
    assert!((10..ISSUED_CACHE_MAX + 10).all(|i| c.get(&key(i)).is_some()));
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
