//! What a revocation entry hits (spec §7.1, the broker's `IsRevoked`): a
//! token's jti, its subject, its task and the first agent of its delegation
//! chain — nothing else. Revocation never cascades: an entry for a delegator
//! leaves the tokens it delegated alive.

/// A revocation level (case-sensitive on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevokeLevel {
    Token,
    Agent,
    Task,
    Chain,
}

impl RevokeLevel {
    pub const ALL: [RevokeLevel; 4] = [Self::Token, Self::Agent, Self::Task, Self::Chain];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Agent => "agent",
            Self::Task => "task",
            Self::Chain => "chain",
        }
    }

    /// Case-sensitive, as the broker parses it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl std::fmt::Display for RevokeLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four claims a revocation entry can match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The token's jti (empty when not known).
    pub jti: &'a str,
    /// `sub`: a SPIFFE id, `admin` or `app:<id>`.
    pub sub: &'a str,
    /// `task_id` (empty: none).
    pub task: &'a str,
    /// `delegation_chain[0].agent` (none for an undelegated token).
    pub chain_root: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// The claim an entry at `level` is compared with, if the token has one.
    pub fn key(&self, level: RevokeLevel) -> Option<&'a str> {
        match level {
            RevokeLevel::Token => Some(self.jti).filter(|j| !j.is_empty()),
            RevokeLevel::Agent => Some(self.sub),
            RevokeLevel::Task => Some(self.task).filter(|t| !t.is_empty()),
            RevokeLevel::Chain => self.chain_root,
        }
    }
}

/// Whether an entry `(level, target)` covers a token (spec §7.1).
pub fn covers(level: RevokeLevel, target: &str, s: &Subject<'_>) -> bool {
    s.key(level) == Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_levels_match_only_their_claim() {
        let root = Subject {
            jti: "j1",
            sub: "A",
            task: "t",
            chain_root: None,
        };
        let hop = Subject {
            jti: "j2",
            sub: "B",
            task: "t",
            chain_root: Some("A"),
        };
        assert!(covers(RevokeLevel::Token, "j1", &root));
        assert!(!covers(RevokeLevel::Token, "j1", &hop));
        // Agent level: the delegator's entry leaves what it delegated alive.
        assert!(covers(RevokeLevel::Agent, "A", &root));
        assert!(!covers(RevokeLevel::Agent, "A", &hop));
        // Chain level: the root's entry hits the hops, not the root's own token.
        assert!(!covers(RevokeLevel::Chain, "A", &root));
        assert!(covers(RevokeLevel::Chain, "A", &hop));
        assert!(!covers(RevokeLevel::Chain, "B", &hop));
        assert!(covers(RevokeLevel::Task, "t", &hop));
        let no_task = Subject { task: "", ..root };
        assert!(!covers(RevokeLevel::Task, "", &no_task));
        let no_jti = Subject { jti: "", ..root };
        assert!(!covers(RevokeLevel::Token, "", &no_jti));
    }
}
