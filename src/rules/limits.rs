//! The protocol's limits and defaults (spec §2.4, §4.6, §6.1), as the v2.0.0
//! broker applies them with its default configuration.

/// No delegation chain is longer (spec §6.1): a delegation from a token at
/// this depth is refused.
pub const MAX_DEPTH: usize = 5;
/// `AA_MAX_TTL`'s default: no token lives longer (spec §2.4).
pub const MAX_TTL: i64 = 86_400;
/// A delegation's ttl when none is asked for (spec §4.6).
pub const DEFAULT_DELEGATION_TTL: i64 = 60;
/// A registration token's ttl when the launch token names none (spec §2.4).
pub const DEFAULT_TOKEN_TTL: i64 = 300;
