//! The broker's rules, in one place: what a revocation entry hits (spec
//! §7.1), the limits of the protocol (depth, TTLs), the audit trail's hash
//! chain (§10.3) and the short name of a SPIFFE id. The embedded broker,
//! the explorer and observe all use these, so they cannot disagree.

pub mod chain;
pub mod limits;
pub mod revoke;
pub mod spiffe;

pub use revoke::{RevokeLevel, Subject, covers};

/// The three answers to "can this token still be used": yes, perhaps (a
/// status the trail cannot settle: unknown, or inferred), no. A guess is
/// never counted as dead or as live; the probe, the counts and the
/// diagrams keep the three apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    Maybe,
    Dead,
}

impl Liveness {
    /// Of a status (live or not, unknown or not) and whether it is a guess.
    pub fn of(live: bool, unknown: bool, guess: bool) -> Liveness {
        match (live, unknown, guess) {
            (true, _, false) => Liveness::Live,
            (_, true, _) | (_, _, true) => Liveness::Maybe,
            _ => Liveness::Dead,
        }
    }

    /// The one spelling of a liveness in JSON and in the judgment
    /// commands: `live`, `maybe` or `dead` (observe's `liveness`, who-can's
    /// `status`).
    pub fn key(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Maybe => "maybe",
            Liveness::Dead => "dead",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Liveness::Live => "permits",
            Liveness::Maybe => "may permit",
            Liveness::Dead => "dead",
        }
    }
}
