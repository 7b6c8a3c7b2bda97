use super::*;
use crate::scenario::{Step, StepKind};

fn step(line: usize) -> Step {
    Step {
        line,
        source: "say \"x\"".into(),
        kind: StepKind::Say("x".into()),
    }
}

/// Issue 12 item 11: copying sends the token base64-encoded in OSC 52.
#[test]
fn osc52_carries_the_token() {
    assert_eq!(osc52("ab"), "\x1b]52;c;YWI=\x07");
}

/// Saving never overwrites and keeps the file to its owner.
#[test]
fn saved_tokens_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let a = save_token("hop1", "t.o.k", dir.path()).unwrap();
    let b = save_token("hop1", "t.o.k2", dir.path()).unwrap();
    assert_eq!(a.file_name().unwrap(), "hop1.jwt");
    assert_eq!(b.file_name().unwrap(), "hop1-2.jwt");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "t.o.k\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let odd = save_token("a/b (x)", "t", dir.path()).unwrap();
    assert_eq!(odd.file_name().unwrap(), "a_b__x_.jwt");
}

/// Issue 12 item 12: b and r no longer drop the user's actions unasked.
#[test]
fn back_and_restart_ask_before_dropping_the_users_actions() {
    assert_eq!(drop_warning(&[step(3), step(4)], Action::BackStep), None);
    let ask = drop_warning(&[step(3), step(0), step(0)], Action::Restart).unwrap();
    assert!(ask.contains("drops your 2 actions"), "{ask}");
    assert!(ask.contains("r again to go ahead"), "{ask}");
}
