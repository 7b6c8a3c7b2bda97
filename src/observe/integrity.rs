//! What a trail read can be trusted for, in one place, for the printers,
//! the status bar and the exit code.
//!
//! - The hash chain ([`crate::rules::chain`]) checks out: the events read
//!   are *consistent* — an unkeyed chain proves consistency, not
//!   authenticity. From the broker's first event (`evt-000001`) it is
//!   consistent from genesis; a trail starting later is never called whole.
//! - The events read reach the `total` the source gave (a page's or a
//!   dump's): otherwise the tail is cut.
//! - A checkpoint saved by an earlier run ([`super::checkpoint`]) matches:
//!   the one thing that catches a cut tail or a consistent rewrite.
//!
//! A failure of any of these is an integrity failure (exit 1 for
//! `observe --print` and `audit dump`).

use super::Observed;

/// What the source says the trail holds, and how far the events read reach
/// in the broker's numbering (the offset of the first one plus how many).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    pub claimed: u64,
    pub reached: u64,
}

impl Total {
    /// The mismatch in words, if the events read do not reach the total
    /// (or go past it).
    pub fn words(&self) -> Option<String> {
        let (c, r) = (self.claimed, self.reached);
        if r < c {
            Some(format!(
                "the trail is cut: its total says {c} events but the events read reach only {r} (the last {} are missing)",
                c - r
            ))
        } else if r > c {
            Some(format!(
                "the trail's total says {c} events but it holds {r}: its total does not hold"
            ))
        } else {
            None
        }
    }
}

impl Observed {
    /// Whether event `k` comes before the first break of the chain (so what
    /// was built from it rests on a consistent trail).
    pub fn consistent_at(&self, k: usize) -> bool {
        self.first_broken.as_ref().is_none_or(|b| k < b.event)
    }

    /// The chain check over every event read, in words.
    pub fn chain_words(&self) -> String {
        match &self.first_broken {
            Some(b) => b.words(),
            None => crate::rules::chain::consistent_words(
                self.events.len(),
                self.events.first().map(|s| &*s.id),
            ),
        }
    }

    /// A cut tail (or a total that does not hold), in words.
    pub fn cut(&self) -> Option<String> {
        self.total.and_then(|t| t.words())
    }

    /// Every integrity failure of the read, in words: the first break, a
    /// cut tail, a reading that stopped early.
    pub fn failures(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(b) = &self.first_broken {
            v.push(format!("the audit hash chain is {}", b.words()));
        }
        if let Some(c) = self.cut() {
            v.push(c);
        }
        if let Some(s) = &self.stopped {
            v.push(s.clone());
        }
        if let Some(Err(c)) = &self.checkpoint {
            v.push(format!("the trail {c}"));
        }
        v
    }

    /// What the read does not show, though it is no failure: a trail that
    /// does not start at the broker's first event.
    pub fn integrity_notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.from_genesis
            && let Some(first) = self.events.first()
        {
            v.push(format!(
                "the trail starts at {}, not the broker's first event ({}): what came before is not checked",
                first.id,
                crate::rules::chain::GENESIS_ID
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::types::{AuditEvent, ChainFault, verify_audit_chain};

    fn trail(n: usize, genesis_prev: &str) -> Vec<AuditEvent> {
        let mut prev = genesis_prev.to_string();
        (1..=n)
            .map(|i| {
                let mut e = AuditEvent {
                    id: format!("evt-{i:06}"),
                    timestamp: format!("2026-11-26T10:00:{:02}Z", i % 60),
                    event_type: "admin_auth".into(),
                    detail: "admin authenticated as admin".into(),
                    prev_hash: prev.clone(),
                    ..AuditEvent::default()
                };
                e.hash = e.compute_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    fn observed(t: &[AuditEvent]) -> Observed {
        let mut o = Observed::new();
        for e in t {
            o.fold(&e.as_ref(), None);
        }
        o
    }

    #[test]
    fn observe_and_the_audit_view_apply_one_genesis_rule() {
        // An empty prev_hash at the broker's first event: broken for both.
        let t = trail(3, "");
        let o = observed(&t);
        let b = o.first_broken.clone().unwrap();
        assert_eq!((b.id.as_str(), b.what), ("evt-000001", "genesis"));
        let v = verify_audit_chain(&t).unwrap_err();
        assert_eq!(
            (v.id.as_str(), &v.fault),
            ("evt-000001", &ChainFault::Genesis)
        );
        assert_eq!(b.words(), v.words(), "one wording");
        // 64 zeros: intact for both, and said as consistency.
        let t = trail(3, crate::rules::chain::GENESIS_PREV);
        assert_eq!(verify_audit_chain(&t), Ok(()));
        let o = observed(&t);
        assert_eq!(o.first_broken, None);
        assert!(o.chain_words().contains("consistency, not authenticity"));
        assert!(!o.chain_words().contains("verified"));
    }

    #[test]
    fn repeated_and_backwards_ids_are_integrity_failures() {
        let t = trail(4, crate::rules::chain::GENESIS_PREV);
        let mut again = t.clone();
        again.push(t[3].clone());
        let o = observed(&again);
        assert!(
            o.failures()[0].contains("the id repeats"),
            "{:?}",
            o.failures()
        );
        let back = [t.clone(), t[..2].to_vec()].concat();
        let o = observed(&back);
        let f = &o.failures()[0];
        assert!(f.contains("backwards (evt-000001 after evt-000004)"), "{f}");
        assert!(o.consistent_at(3) && !o.consistent_at(4));
    }

    #[test]
    fn a_trail_from_mid_way_is_noted_never_whole() {
        let t = trail(6, crate::rules::chain::GENESIS_PREV);
        let o = observed(&t[2..]);
        assert_eq!(o.first_broken, None);
        assert!(!o.from_genesis);
        let w = o.chain_words();
        assert!(
            w.contains("from evt-000003") && !w.contains("end to end"),
            "{w}"
        );
        assert!(o.integrity_notes()[0].contains("starts at evt-000003"));
        assert!(o.failures().is_empty());
    }

    #[test]
    fn totals_name_a_cut_tail_and_a_total_that_does_not_hold() {
        let t = Total {
            claimed: 136,
            reached: 60,
        };
        let w = t.words().unwrap();
        assert!(
            w.contains("cut") && w.contains("136") && w.contains("76"),
            "{w}"
        );
        assert!(
            Total {
                claimed: 10,
                reached: 12
            }
            .words()
            .unwrap()
            .contains("does not hold")
        );
        assert_eq!(
            Total {
                claimed: 5,
                reached: 5
            }
            .words(),
            None
        );
    }
}
