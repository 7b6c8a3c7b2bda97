//! One validator per rule, shared by the scenario parser and the explorer's
//! forms, with the same words: whatever a form accepts, an exported scenario
//! parses back.

use crate::broker::types::valid_segment;
use crate::scope;

/// A label or an agent name: a SPIFFE path segment (the broker derives task
/// ids and SPIFFE ids from agent names).
pub fn name(text: &str) -> Result<(), String> {
    if valid_segment(text) {
        return Ok(());
    }
    Err(if text.is_empty() {
        "a name is needed: use letters, digits, '.', '-' and '_'".to_string()
    } else {
        format!("invalid name '{text}': use letters, digits, '.', '-' and '_' (not '.' or '..')")
    })
}

/// An `orch`/`task` id (`key` as the user wrote it).
pub fn segment(key: &str, value: &str) -> Result<(), String> {
    if valid_segment(value) {
        return Ok(());
    }
    Err(format!(
        "{key} '{value}' is not a SPIFFE path segment: use letters, digits, '.', '-' and '_' (not '.' or '..')"
    ))
}

/// A TTL in seconds: a positive whole number.
pub fn ttl(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "ttl must be a positive whole number of seconds, got '{text}'"
        )),
    }
}

/// One scope of a list.
pub fn scope_entry(text: &str) -> Result<(), String> {
    scope::validate(text).map_err(|e| e.to_string())
}

/// What an empty scope list is told.
pub const NO_SCOPES: &str =
    "expected a comma-separated list of scopes, like read:config:production";

/// A comma-separated scope list (spaces around entries allowed, as typed in
/// a form); every entry must parse. A bad entry is named (the parser points
/// at its column instead).
pub fn scope_list(text: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(NO_SCOPES.into());
    }
    for s in &list {
        scope_entry(s).map_err(|e| format!("{s}: {e}"))?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_alone_are_not_names() {
        assert!(name("hop1.a").is_ok());
        for bad in [".", "..", "", "a/b", "a b"] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ttl_and_scopes() {
        assert_eq!(ttl("30"), Ok(30));
        assert!(ttl("0").unwrap_err().contains("got '0'"));
        assert_eq!(
            scope_list(" read:a:b , write:c:* "),
            Ok(vec!["read:a:b".to_string(), "write:c:*".to_string()])
        );
        assert_eq!(scope_list(" , "), Err(NO_SCOPES.to_string()));
        assert!(scope_list("read:a").is_err());
    }
}
