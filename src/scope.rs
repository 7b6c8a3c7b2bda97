//! AgentWrit scopes (`action:resource:identifier`) and the broker's coverage rule.
//!
//! This is the one implementation of the rule (spec §3): the embedded broker,
//! the scope probe and scenario `expect` lines all call it.
//!
//! * A scope is split on its **first two** colons only, so the identifier may
//!   itself contain colons (`read:data:a:b` → identifier `a:b`).
//! * All three parts must be non-empty; anything else is *malformed*.
//! * A granted scope `G` covers a requested scope `R` iff both parse, the
//!   actions and resources are equal, and the identifiers are equal or the
//!   **granted** identifier is `*`. A `*` anywhere else is a literal character.

use std::fmt;

/// A well-formed scope, borrowed from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub identifier: &'a str,
}

/// Why a string is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope '{0}': expected action:resource:identifier (found no colon)")]
    NoColon(String),
    #[error("malformed scope '{0}': expected action:resource:identifier (found only one colon)")]
    OneColon(String),
    #[error("malformed scope '{scope}': the {part} part is empty")]
    EmptyPart { scope: String, part: &'static str },
}

impl<'a> Scope<'a> {
    /// Parses with the broker's grammar (spec §3.1).
    pub fn parse(s: &'a str) -> Result<Self, ScopeError> {
        // Byte search: ':' is ASCII, so these are char boundaries.
        let b = s.as_bytes();
        let first = b
            .iter()
            .position(|c| *c == b':')
            .ok_or_else(|| ScopeError::NoColon(s.to_string()))?;
        let second = b[first + 1..]
            .iter()
            .position(|c| *c == b':')
            .ok_or_else(|| ScopeError::OneColon(s.to_string()))?
            + first
            + 1;
        let (action, resource, identifier) = (&s[..first], &s[first + 1..second], &s[second + 1..]);
        for (part, name) in [
            (action, "action"),
            (resource, "resource"),
            (identifier, "identifier"),
        ] {
            if part.is_empty() {
                return Err(ScopeError::EmptyPart {
                    scope: s.to_string(),
                    part: name,
                });
            }
        }
        Ok(Scope {
            action,
            resource,
            identifier,
        })
    }

    /// Whether this (granted) scope covers `requested`.
    pub fn covers_scope(&self, requested: &Scope<'_>) -> bool {
        self.action == requested.action
            && self.resource == requested.resource
            && (self.identifier == "*" || self.identifier == requested.identifier)
    }
}

impl fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.action, self.resource, self.identifier)
    }
}

/// Checks that a string is a well-formed scope.
pub fn validate(s: &str) -> Result<(), ScopeError> {
    Scope::parse(s).map(|_| ())
}

/// Whether `granted` covers `requested` (both as strings; malformed never covers).
pub fn covers(granted: &str, requested: &str) -> bool {
    match (Scope::parse(granted), Scope::parse(requested)) {
        (Ok(g), Ok(r)) => g.covers_scope(&r),
        _ => false,
    }
}

/// The broker's `ScopeIsSubset(requested, allowed)`: every requested scope is
/// covered by at least one allowed scope. An empty `requested` is a subset.
pub fn is_subset<R: AsRef<str>, A: AsRef<str>>(requested: &[R], allowed: &[A]) -> bool {
    requested
        .iter()
        .all(|r| allowed.iter().any(|a| covers(a.as_ref(), r.as_ref())))
}

/// Why a single requested scope is not covered by any granted scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The requested scope does not parse.
    Malformed(ScopeError),
    /// Nothing was granted at all.
    NothingGranted,
    /// No granted scope has the requested action; `closest` is the first well-formed grant.
    ActionDiffers { closest: String },
    /// A grant has the action but none has the resource.
    ResourceDiffers { closest: String },
    /// A grant has action and resource, but a different identifier that is not `*`.
    IdentifierDiffers { closest: String },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Malformed(e) => write!(f, "{e}"),
            Denial::NothingGranted => write!(f, "no scope is granted"),
            Denial::ActionDiffers { closest } => {
                write!(f, "no grant has this action (closest: {closest})")
            }
            Denial::ResourceDiffers { closest } => {
                write!(
                    f,
                    "no grant has this resource for this action (closest: {closest})"
                )
            }
            Denial::IdentifierDiffers { closest } => write!(
                f,
                "identifier differs and the grant is not '*' (closest: {closest})"
            ),
        }
    }
}

/// The verdict for one requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Covered; `by` is the first granted scope (in grant order) that covers it.
    Covered {
        by: String,
    },
    Denied(Denial),
}

impl Verdict {
    pub fn is_covered(&self) -> bool {
        matches!(self, Verdict::Covered { .. })
    }
}

/// One requested scope with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub requested: String,
    pub verdict: Verdict,
}

/// A verdict that names grants by their index in the granted list: the
/// allocation-free form of [`Verdict`], for callers that explain many tokens
/// at once (the probe) and format only what they show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictIdx {
    Covered(usize),
    NothingGranted,
    ActionDiffers(usize),
    ResourceDiffers(usize),
    IdentifierDiffers(usize),
}

impl VerdictIdx {
    /// The full verdict, with grant strings.
    pub fn resolve<A: AsRef<str>>(self, granted: &[A]) -> Verdict {
        let g = |i: usize| granted[i].as_ref().to_string();
        match self {
            VerdictIdx::Covered(i) => Verdict::Covered { by: g(i) },
            VerdictIdx::NothingGranted => Verdict::Denied(Denial::NothingGranted),
            VerdictIdx::ActionDiffers(i) => {
                Verdict::Denied(Denial::ActionDiffers { closest: g(i) })
            }
            VerdictIdx::ResourceDiffers(i) => {
                Verdict::Denied(Denial::ResourceDiffers { closest: g(i) })
            }
            VerdictIdx::IdentifierDiffers(i) => {
                Verdict::Denied(Denial::IdentifierDiffers { closest: g(i) })
            }
        }
    }
}

/// Explains a parsed requested scope against the granted list, in one pass.
/// The first covering grant wins; otherwise the closest grant is the first
/// with the same action and resource, else the same action, else the same
/// resource, else the first well-formed grant.
pub fn explain_parsed<A: AsRef<str>>(req: &Scope<'_>, granted: &[A]) -> VerdictIdx {
    explain_iter(req, granted.iter().map(|g| Scope::parse(g.as_ref()).ok()))
}

/// [`explain_parsed`] over grants already parsed (`None` for a malformed one).
pub fn explain_iter<'g, I>(req: &Scope<'_>, granted: I) -> VerdictIdx
where
    I: IntoIterator<Item = Option<Scope<'g>>>,
{
    let (mut same_res, mut same_action, mut same_resource_only, mut first) =
        (None, None, None, None);
    for (i, s) in granted.into_iter().enumerate() {
        let Some(s) = s else {
            continue;
        };
        if s.covers_scope(req) {
            return VerdictIdx::Covered(i);
        }
        first.get_or_insert(i);
        if s.action == req.action {
            if s.resource == req.resource {
                same_res.get_or_insert(i);
            }
            same_action.get_or_insert(i);
        } else if s.resource == req.resource {
            same_resource_only.get_or_insert(i);
        }
    }
    match (same_res, same_action, same_resource_only.or(first)) {
        (Some(i), _, _) => VerdictIdx::IdentifierDiffers(i),
        (None, Some(i), _) => VerdictIdx::ResourceDiffers(i),
        (None, None, Some(i)) => VerdictIdx::ActionDiffers(i),
        (None, None, None) => VerdictIdx::NothingGranted,
    }
}

/// Explains one requested scope against the granted list.
pub fn explain_one<A: AsRef<str>>(requested: &str, granted: &[A]) -> Verdict {
    match Scope::parse(requested) {
        Ok(req) => explain_parsed(&req, granted).resolve(granted),
        Err(e) => Verdict::Denied(Denial::Malformed(e)),
    }
}

/// Explains every requested scope against the granted list.
pub fn explain<R: AsRef<str>, A: AsRef<str>>(requested: &[R], granted: &[A]) -> Vec<Explanation> {
    requested
        .iter()
        .map(|r| Explanation {
            requested: r.as_ref().to_string(),
            verdict: explain_one(r.as_ref(), granted),
        })
        .collect()
}

/// What `child` dropped relative to `parent`: the parent's scopes that the
/// child's scopes do not fully cover (a wildcard narrowed to one identifier
/// counts as dropped too, shown as the parent scope).
pub fn dropped<P: AsRef<str>, C: AsRef<str>>(parent: &[P], child: &[C]) -> Vec<String> {
    parent
        .iter()
        .filter(|p| !child.iter().any(|c| covers(c.as_ref(), p.as_ref())))
        .map(|p| p.as_ref().to_string())
        .collect()
}

/// What became of one parent scope in a delegation hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The child holds it whole (or something wider).
    Kept,
    /// The child holds only narrower scopes under it (e.g. `read:config:*` → `read:config:production`).
    Narrowed(Vec<String>),
    /// Nothing of it was passed on.
    Dropped,
}

/// For each parent scope, whether the child kept, narrowed or dropped it.
pub fn attenuation<P: AsRef<str>, C: AsRef<str>>(parent: &[P], child: &[C]) -> Vec<(String, Fate)> {
    parent
        .iter()
        .map(|p| {
            let p = p.as_ref();
            let fate = if child.iter().any(|c| covers(c.as_ref(), p)) {
                Fate::Kept
            } else {
                let under: Vec<String> = child
                    .iter()
                    .filter(|c| covers(p, c.as_ref()))
                    .map(|c| c.as_ref().to_string())
                    .collect();
                if under.is_empty() {
                    Fate::Dropped
                } else {
                    Fate::Narrowed(under)
                }
            };
            (p.to_string(), fate)
        })
        .collect()
}

/// `~read:deploy:*→web-service`: a parent scope and what is left of it under the wildcard.
pub fn narrowing(parent: &str, under: &[String]) -> String {
    let prefix = parent.strip_suffix('*').unwrap_or(parent);
    let parts: Vec<&str> = under
        .iter()
        .map(|u| {
            u.strip_prefix(prefix)
                .filter(|r| !r.is_empty())
                .unwrap_or(u)
        })
        .collect();
    format!("~{parent}→{}", parts.join(","))
}

/// What a hop did to its parent's scope, in words: `−dropped ~narrowed→kept`
/// (empty when it passed everything on).
pub fn hop_words<P: AsRef<str>, C: AsRef<str>>(parent: &[P], child: &[C]) -> String {
    let fates = attenuation(parent, child);
    let dropped = fates
        .iter()
        .filter(|(_, f)| *f == Fate::Dropped)
        .map(|(s, _)| format!("−{s}"));
    let narrowed = fates.iter().filter_map(|(s, f)| match f {
        Fate::Narrowed(under) => Some(narrowing(s, under)),
        _ => None,
    });
    dropped.chain(narrowed).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn narrowing_shows_what_is_left_under_the_wildcard() {
        assert_eq!(
            narrowing("read:deploy:*", &["read:deploy:web-service".into()]),
            "~read:deploy:*→web-service"
        );
        assert_eq!(
            narrowing(
                "read:config:*",
                &["read:config:a".into(), "read:config:b".into()]
            ),
            "~read:config:*→a,b"
        );
        assert_eq!(
            hop_words(&["read:config:*", "write:deploy:*"], &["read:config:prod"]),
            "−write:deploy:* ~read:config:*→prod"
        );
    }

    #[test]
    fn parse_splits_on_first_two_colons() {
        let s = Scope::parse("read:data:a:b").unwrap();
        assert_eq!(
            (s.action, s.resource, s.identifier),
            ("read", "data", "a:b")
        );
    }

    #[test]
    fn malformed_scopes_are_rejected_with_reason() {
        assert_eq!(
            Scope::parse("foo").unwrap_err(),
            ScopeError::NoColon("foo".into())
        );
        assert_eq!(
            Scope::parse("read:data").unwrap_err(),
            ScopeError::OneColon("read:data".into())
        );
        assert_eq!(
            Scope::parse("read::x").unwrap_err().to_string(),
            "malformed scope 'read::x': the resource part is empty"
        );
        assert!(Scope::parse(":a:b").is_err());
        assert!(Scope::parse("a:b:").is_err());
    }

    #[test]
    fn wildcard_only_in_granted_identifier() {
        assert!(covers("read:data:*", "read:data:x"));
        assert!(covers("read:data:*", "read:data:*"));
        assert!(!covers("read:data:x", "read:data:*"));
        assert!(!covers("*:*:*", "read:data:x"));
        assert!(covers("*:*:*", "*:*:x"));
        assert!(!covers("read:*:*", "read:data:x"));
        assert!(!covers("foo", "foo"));
        assert!(!covers("Read:data:x", "read:data:x"));
    }

    #[test]
    fn subset_rules() {
        let empty: [&str; 0] = [];
        assert!(is_subset(&empty, &["read:data:*"]));
        assert!(is_subset(
            &["read:data:x", "write:data:y"],
            &["read:data:*", "write:data:*"]
        ));
        assert!(!is_subset(
            &["write:deploy:web-service"],
            &["read:config:production", "read:deploy:web-service"]
        ));
    }

    #[test]
    fn explain_names_the_reason_and_closest_grant() {
        let granted = ["read:config:production", "read:deploy:web-service"];
        assert_eq!(
            explain_one("read:config:production", &granted),
            Verdict::Covered {
                by: "read:config:production".into()
            }
        );
        assert_eq!(
            explain_one("read:config:staging", &granted),
            Verdict::Denied(Denial::IdentifierDiffers {
                closest: "read:config:production".into()
            })
        );
        assert_eq!(
            explain_one("read:secrets:x", &granted),
            Verdict::Denied(Denial::ResourceDiffers {
                closest: "read:config:production".into()
            })
        );
        assert_eq!(
            explain_one("write:deploy:web-service", &granted),
            Verdict::Denied(Denial::ActionDiffers {
                closest: "read:deploy:web-service".into()
            })
        );
        assert!(matches!(
            explain_one("nonsense", &granted),
            Verdict::Denied(Denial::Malformed(_))
        ));
        let none: [&str; 0] = [];
        assert_eq!(
            explain_one("read:a:b", &none),
            Verdict::Denied(Denial::NothingGranted)
        );
    }

    #[test]
    fn attenuation_tells_kept_narrowed_dropped() {
        let parent = ["read:config:*", "read:deploy:*", "write:deploy:*"];
        let child = ["read:config:production", "write:deploy:*"];
        assert_eq!(
            attenuation(&parent, &child),
            vec![
                (
                    "read:config:*".to_string(),
                    Fate::Narrowed(vec!["read:config:production".into()])
                ),
                ("read:deploy:*".to_string(), Fate::Dropped),
                ("write:deploy:*".to_string(), Fate::Kept),
            ]
        );
    }

    #[test]
    fn dropped_lists_parent_scopes_not_kept() {
        let parent = ["read:config:*", "read:deploy:*", "write:deploy:*"];
        let child = ["read:config:production", "read:deploy:web-service"];
        assert_eq!(
            dropped(&parent, &child),
            vec!["read:config:*", "read:deploy:*", "write:deploy:*"]
        );
        assert_eq!(dropped(&parent, &parent), Vec::<String>::new());
    }

    fn part() -> impl Strategy<Value = String> {
        prop_oneof![Just("*".to_string()), "[a-c]{1,2}", "[a-c*:]{1,3}",]
    }

    fn scope_str() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => (part(), part(), part()).prop_map(|(a, r, i)| format!("{a}:{r}:{i}")),
            1 => "[a-c:]{0,5}",
        ]
    }

    proptest! {
        #[test]
        fn reflexive_for_well_formed(s in scope_str()) {
            if validate(&s).is_ok() {
                prop_assert!(covers(&s, &s));
                prop_assert!(is_subset(&[&s], &[&s]));
            } else {
                prop_assert!(!covers(&s, &s));
            }
        }

        #[test]
        fn transitive(a in scope_str(), b in scope_str(), c in scope_str()) {
            if covers(&a, &b) && covers(&b, &c) {
                prop_assert!(covers(&a, &c));
            }
        }

        #[test]
        fn subset_agrees_with_explain(req in proptest::collection::vec(scope_str(), 0..4),
                                      granted in proptest::collection::vec(scope_str(), 0..4)) {
            let all = explain(&req, &granted).iter().all(|e| e.verdict.is_covered());
            prop_assert_eq!(all, is_subset(&req, &granted));
            for e in explain(&req, &granted) {
                if let Verdict::Covered { by } = &e.verdict {
                    prop_assert!(covers(by, &e.requested));
                }
            }
        }

        #[test]
        fn wildcard_grant_covers_every_identifier(a in "[a-c]{1,2}", r in "[a-c]{1,2}", i in "[a-c*:]{1,4}") {
            let grant = format!("{a}:{r}:*");
            let specific = format!("{a}:{r}:{i}");
            prop_assert!(covers(&grant, &specific));
            // ... but a wildcard request is covered only by a wildcard grant.
            if i != "*" {
                prop_assert!(!covers(&specific, &grant));
            }
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Scope::parse(&s);
            let _ = explain_one(&s, &[s.as_str()]);
        }
    }
}
