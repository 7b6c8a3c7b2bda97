//! The verification cache of the tokens this broker issued.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::jwt::{self, Claims};

/// What the verification cache of issued tokens may hold at most
/// (estimated heap bytes, see [`IssuedCache::entry_bytes`]): 256 MiB, about
/// 200,000 delegated tokens with a one-record chain (~1.3 KB each). Below it every token
/// the broker issued stays cached until it expires.
const ISSUED_CACHE_BYTES: usize = 256 << 20;

/// Tokens this broker issued, by SHA-256 of the compact form, with their
/// claims: verifying them skips the Ed25519 check (revocation is still
/// checked on every use). Every issued token is kept until it expires; past
/// the memory cap the one that expires first goes, one at a time, so the
/// cache never empties itself and long-lived tokens survive a churn of
/// short-lived ones.
#[derive(Debug)]
pub(super) struct IssuedCache {
    pub(super) map: HashMap<[u8; 32], (Arc<Claims>, usize)>,
    /// (expiry, key), soonest expiry on top.
    by_exp: BinaryHeap<Reverse<(i64, [u8; 32])>>,
    /// Estimated bytes held, at most `cap`.
    pub(super) bytes: usize,
    pub(super) cap: usize,
}

impl Default for IssuedCache {
    fn default() -> Self {
        Self::with_cap(ISSUED_CACHE_BYTES)
    }
}

impl IssuedCache {
    pub(super) fn with_cap(cap: usize) -> Self {
        IssuedCache {
            map: HashMap::new(),
            by_exp: BinaryHeap::new(),
            bytes: 0,
            cap,
        }
    }

    /// An entry's estimated footprint: the claims' heap strings (plus a
    /// malloc header each), the claims themselves behind an `Arc`, the map
    /// slot (with the hash table's slack) and the heap entry.
    pub(super) fn entry_bytes(c: &Claims) -> usize {
        const ALLOC: usize = 16;
        let s = |s: &String| s.capacity() + ALLOC;
        let v = |v: &Vec<String>| {
            v.capacity() * std::mem::size_of::<String>() + ALLOC + v.iter().map(s).sum::<usize>()
        };
        let chain: usize = c
            .delegation_chain
            .iter()
            .map(|r| {
                std::mem::size_of::<jwt::DelegRecord>()
                    + s(&r.agent)
                    + v(&r.scope)
                    + s(&r.delegated_at)
                    + s(&r.signature)
            })
            .sum();
        std::mem::size_of::<Claims>()
            + 16
            + ALLOC
            + 2 * (32 + 8 + 8)
            + std::mem::size_of::<Reverse<(i64, [u8; 32])>>() * 2
            + s(&c.iss)
            + s(&c.sub)
            + v(&c.aud)
            + s(&c.jti)
            + s(&c.sid)
            + v(&c.scope)
            + s(&c.task_id)
            + s(&c.orch_id)
            + chain
            + ALLOC
            + s(&c.chain_hash)
    }

    /// Caches an issued token's claims. Expired entries go first, then, while
    /// over the cap, those that expire soonest (the new one included).
    pub(super) fn insert(&mut self, key: [u8; 32], claims: Claims, now: i64) {
        let size = Self::entry_bytes(&claims);
        while let Some(Reverse((exp, k))) = self.by_exp.peek().copied() {
            if exp >= now && self.bytes + size <= self.cap {
                break;
            }
            if exp >= now && claims.exp < exp {
                // Full, and the new token expires before all the others:
                // it is the one that goes (verified in full when used).
                return;
            }
            self.by_exp.pop();
            if let Some((_, old)) = self.map.remove(&k) {
                self.bytes -= old;
            }
        }
        if size > self.cap {
            return;
        }
        let exp = claims.exp;
        match self.map.insert(key, (Arc::new(claims), size)) {
            None => self.by_exp.push(Reverse((exp, key))),
            Some((_, old)) => self.bytes -= old,
        }
        self.bytes += size;
    }

    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Arc<Claims>> {
        self.map.get(key).map(|(c, _)| c.clone())
    }
}
