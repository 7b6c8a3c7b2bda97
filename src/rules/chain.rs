//! The audit trail's hash chain (spec §10.3): one incremental check, one
//! genesis rule, one wording, used by observe and the explorer's audit view.
//!
//! The rules, checked event by event in the order read:
//!
//! - each event's `hash` is the SHA-256 of its fields (the caller says
//!   whether it matched: hashing is done where the event lives);
//! - the broker's first event ever (`evt-000001`) has a `prev_hash` of
//!   exactly 64 zeros (§10.2) — an empty or shorter one is broken;
//! - every later event's `prev_hash` is the previous event's `hash`;
//! - ids are `evt-` and a counter, and each is the previous one plus one
//!   (the counter continues after a restart): a repeat, a step back or a
//!   skip is named.
//!
//! What passing proves: the chain is *consistent* — nothing in it was
//! changed, dropped or reordered without recomputing every later hash. An
//! unkeyed hash chain proves consistency, not authenticity: whoever can
//! rewrite the trail can recompute it. A checkpoint (a hash seen earlier at
//! a known id) is what catches a consistent rewrite and a cut tail.

use std::fmt;

/// The `prev_hash` of the broker's first event.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The id of the broker's first event.
pub const GENESIS_ID: &str = "evt-000001";

/// What an unkeyed chain that checks out proves, said once.
pub const CONSISTENT_NOT_AUTHENTIC: &str =
    "an unkeyed hash chain proves consistency, not authenticity";

/// The counter of a broker event id (`evt-000123` → 123).
pub fn id_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("evt-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How the chain breaks at an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Its `hash` does not match its contents.
    Hash,
    /// Its `prev_hash` is not the previous event's hash.
    Link,
    /// It is the broker's first event and its `prev_hash` is not 64 zeros.
    Genesis,
    /// Its id is the previous event's again.
    Repeated,
    /// Its id is lower than the previous event's (`prev`).
    Backwards { prev: String },
    /// Its id skips ids after the previous event's (`prev`).
    Skips { prev: String },
    /// Its id is not `evt-` and a number.
    BadId,
}

/// The first place the chain breaks: the event's index in what was read,
/// its id and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub index: usize,
    pub id: String,
    pub fault: Fault,
}

impl Break {
    /// `hash`, `link`, `genesis` or `order`: the kind in one word (JSON).
    pub fn what(&self) -> &'static str {
        match self.fault {
            Fault::Hash => "hash",
            Fault::Link => "link",
            Fault::Genesis => "genesis",
            Fault::Repeated | Fault::Backwards { .. } | Fault::Skips { .. } | Fault::BadId => {
                "order"
            }
        }
    }

    /// Whether the ids themselves are out of order (repeat, back, skip).
    pub fn is_order(&self) -> bool {
        self.what() == "order"
    }

    /// `BROKEN at evt-…: why`.
    pub fn words(&self) -> String {
        let id = &self.id;
        match &self.fault {
            Fault::Hash => format!("BROKEN at {id}: its hash does not match its contents"),
            Fault::Link => {
                format!("BROKEN at {id}: its prev_hash is not the previous event's hash")
            }
            Fault::Genesis => format!(
                "BROKEN at {id}: the broker's first event must have a prev_hash of 64 zeros"
            ),
            Fault::Repeated => format!("BROKEN at {id}: the id repeats (the same event again)"),
            Fault::Backwards { prev } => {
                format!("BROKEN at {id}: the ids go backwards ({id} after {prev})")
            }
            Fault::Skips { prev } => {
                format!("BROKEN at {id}: the ids do not continue ({id} after {prev})")
            }
            Fault::BadId => format!("BROKEN at {id}: not a broker event id (evt-<number>)"),
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words())
    }
}

/// The check, fed one event at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    count: usize,
    first_id: Option<String>,
    last_id: Option<String>,
    last_num: Option<u64>,
    last_hash: Option<String>,
    broken: Option<Break>,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Checks the next event (`hash_ok`: whether its hash matched its
    /// contents). Returns the break when this event is the first one.
    pub fn push(&mut self, id: &str, hash: &str, prev_hash: &str, hash_ok: bool) -> Option<&Break> {
        let index = self.count;
        self.count += 1;
        let num = id_number(id);
        if self.first_id.is_none() {
            self.first_id = Some(id.to_string());
        }
        let fault = if self.broken.is_some() {
            None
        } else if num.is_none() {
            Some(Fault::BadId)
        } else if let (Some(prev), Some(n), Some(p)) = (&self.last_id, num, self.last_num) {
            if n == p {
                Some(Fault::Repeated)
            } else if n < p {
                Some(Fault::Backwards { prev: prev.clone() })
            } else if n != p + 1 {
                Some(Fault::Skips { prev: prev.clone() })
            } else if !hash_ok {
                Some(Fault::Hash)
            } else if self.last_hash.as_deref() != Some(prev_hash) {
                Some(Fault::Link)
            } else {
                None
            }
        } else if !hash_ok {
            Some(Fault::Hash)
        } else if num == Some(1) && prev_hash != GENESIS_PREV {
            Some(Fault::Genesis)
        } else {
            None
        };
        // Reused buffers: this runs once per event of a trail of millions.
        set(&mut self.last_id, id);
        self.last_num = num;
        set(&mut self.last_hash, hash);
        if let Some(fault) = fault {
            self.broken = Some(Break {
                index,
                id: id.to_string(),
                fault,
            });
            return self.broken.as_ref();
        }
        None
    }

    /// The first break, if any.
    pub fn broken(&self) -> Option<&Break> {
        self.broken.as_ref()
    }

    /// Events checked.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The id of the last event checked.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The hash of the last event checked.
    pub fn last_hash(&self) -> Option<&str> {
        self.last_hash.as_deref()
    }

    /// The counter of the last event checked.
    pub fn last_number(&self) -> Option<u64> {
        self.last_num
    }

    /// Whether what was read starts at the broker's first event.
    pub fn from_genesis(&self) -> bool {
        self.first_id.as_deref() == Some(GENESIS_ID)
    }

    /// The check in words: consistent (from genesis or from where the
    /// trail starts), or where it first breaks.
    pub fn words(&self) -> String {
        match &self.broken {
            Some(b) => b.words(),
            None => consistent_words(self.count, self.first_id.as_deref()),
        }
    }
}

/// `slot = Some(text)`, reusing the string already there.
fn set(slot: &mut Option<String>, text: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(text);
        }
        None => *slot = Some(text.to_string()),
    }
}

/// "consistent over N events …" for a run of `count` events starting at
/// `first` that checked out.
pub fn consistent_words(count: usize, first: Option<&str>) -> String {
    let s = if count == 1 { "" } else { "s" };
    match first {
        None => "no events to check".to_string(),
        Some(GENESIS_ID) => format!(
            "consistent over {count} event{s} from the broker's first ({GENESIS_ID}) — {CONSISTENT_NOT_AUTHENTIC}"
        ),
        Some(first) => format!(
            "consistent over {count} event{s} from {first} — the trail does not start at the broker's first event ({GENESIS_ID}); {CONSISTENT_NOT_AUTHENTIC}"
        ),
    }
}

/// The same, short enough for a status bar (after "hash chain ").
pub fn consistent_short(count: usize, first: Option<&str>) -> String {
    match first {
        None => "no events to check".to_string(),
        Some(GENESIS_ID) => {
            format!("consistent over {count} events from genesis (consistency, not authenticity)")
        }
        Some(first) => format!(
            "consistent over {count} events from {first} only: not from the broker's first event"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake hash per event: the rules do not hash, the caller does.
    fn h(n: u64) -> String {
        format!("{n:064x}")
    }

    fn run(events: &[(&str, String, String, bool)]) -> Chain {
        let mut c = Chain::new();
        for (id, hash, prev, ok) in events {
            c.push(id, hash, prev, *ok);
        }
        c
    }

    fn good(n: u64) -> (String, String, String, bool) {
        let prev = if n == 1 {
            GENESIS_PREV.to_string()
        } else {
            h(n - 1)
        };
        (format!("evt-{n:06}"), h(n), prev, true)
    }

    fn check(events: Vec<(String, String, String, bool)>) -> Chain {
        let v: Vec<(&str, String, String, bool)> = events
            .iter()
            .map(|(i, a, b, c)| (i.as_str(), a.clone(), b.clone(), *c))
            .collect();
        run(&v)
    }

    #[test]
    fn an_intact_trail_from_genesis_is_consistent_and_says_what_that_proves() {
        let c = check((1..=5).map(good).collect());
        assert_eq!(c.broken(), None);
        assert!(c.from_genesis());
        let w = c.words();
        assert!(
            w.starts_with("consistent over 5 events from the broker's first"),
            "{w}"
        );
        assert!(w.contains("consistency, not authenticity"), "{w}");
        assert!(!w.contains("verified"), "{w}");
    }

    #[test]
    fn genesis_needs_exactly_64_zeros() {
        for prev in ["", "0", &"0".repeat(63), &"1".repeat(64)] {
            let mut first = good(1);
            first.2 = prev.to_string();
            let c = check(vec![first]);
            let b = c.broken().unwrap();
            assert_eq!(
                (b.id.as_str(), &b.fault),
                ("evt-000001", &Fault::Genesis),
                "{prev:?}"
            );
            assert!(b.words().contains("64 zeros"));
        }
    }

    #[test]
    fn a_trail_starting_later_is_consistent_but_never_end_to_end() {
        let c = check((40..=42).map(good).collect());
        assert_eq!(c.broken(), None);
        assert!(!c.from_genesis());
        let w = c.words();
        assert!(
            w.contains("from evt-000040 — the trail does not start at the broker's first event"),
            "{w}"
        );
        assert!(!w.contains("end to end") && !w.contains("verified"), "{w}");
    }

    #[test]
    fn hash_and_link_breaks_are_named_first_only() {
        let mut t: Vec<_> = (1..=4).map(good).collect();
        t[1].3 = false;
        t[3].3 = false;
        let c = check(t);
        let b = c.broken().unwrap();
        assert_eq!(
            (b.index, b.id.as_str(), &b.fault),
            (1, "evt-000002", &Fault::Hash)
        );
        let mut t: Vec<_> = (1..=3).map(good).collect();
        t[2].2 = h(99);
        let b = check(t).broken().cloned().unwrap();
        assert_eq!((b.id.as_str(), b.what()), ("evt-000003", "link"));
    }

    #[test]
    fn repeated_backwards_skipped_and_bad_ids_are_named() {
        let mut t: Vec<_> = (1..=3).map(good).collect();
        t.push(good(3));
        let b = check(t).broken().cloned().unwrap();
        assert_eq!((b.index, &b.fault), (3, &Fault::Repeated));
        assert!(b.words().contains("repeats"), "{}", b.words());

        let mut t: Vec<_> = (1..=3).map(good).collect();
        t.push(good(2));
        let b = check(t).broken().cloned().unwrap();
        assert_eq!(
            b.fault,
            Fault::Backwards {
                prev: "evt-000003".into()
            }
        );
        assert!(
            b.words()
                .contains("backwards (evt-000002 after evt-000003)")
        );

        let mut t: Vec<_> = (1..=3).map(good).collect();
        let mut far = good(9);
        far.2 = h(3);
        t.push(far);
        let b = check(t).broken().cloned().unwrap();
        assert_eq!(b.what(), "order");
        assert!(
            b.words()
                .contains("do not continue (evt-000009 after evt-000003)")
        );

        let c = check(vec![("x".into(), h(1), GENESIS_PREV.into(), true)]);
        assert_eq!(c.broken().unwrap().fault, Fault::BadId);
    }

    #[test]
    fn ids_are_read_as_the_broker_writes_them() {
        assert_eq!(id_number("evt-000001"), Some(1));
        assert_eq!(id_number("evt-1234567"), Some(1_234_567));
        assert_eq!(id_number("evt-"), None);
        assert_eq!(id_number("evt-12a"), None);
        assert_eq!(id_number("evt--1"), None);
        assert_eq!(id_number("EVT-000001"), None);
    }
}
