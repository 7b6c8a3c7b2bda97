//! The broker's rules, in one place: what a revocation entry hits (spec
//! §7.1), the limits of the protocol (depth, TTLs), the audit trail's hash
//! chain (§10.3) and the short name of a SPIFFE id. The embedded broker,
//! the explorer and observe all use these, so they cannot disagree.

pub mod chain;
pub mod limits;
pub mod revoke;
pub mod spiffe;

pub use revoke::{RevokeLevel, Subject, covers};
