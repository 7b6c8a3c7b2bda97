//! Output that cannot be written: through the binary, into /dev/full (every
//! write fails with ENOSPC) and into a pipe whose reader is gone (EPIPE).
//! A closed pipe is the reader's choice (`| head`) and stays quiet; any
//! other write error is reported, exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::process::{Command, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chainview")
}

const COMMANDS: &[&[&str]] = &[
    &["--help"],
    &["--version"],
    &["broker", "--help"],
    &["language"],
    &["completions", "bash"],
    &["--script", "assets/scenarios/deploy.chainview"],
    &[
        "--script",
        "assets/scenarios/deploy.chainview",
        "--format",
        "json",
    ],
    &[
        "observe",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
        "--print",
        "text",
    ],
    // The judgment commands, text and JSON.
    &[
        "check",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
    ],
    &[
        "check",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
        "--format",
        "sarif",
    ],
    &[
        "who-can",
        "write:*:*",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
    ],
    &[
        "what-if",
        "revoke",
        "task",
        "task-a",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
        "--format",
        "json",
    ],
    &[
        "diff",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
    ],
    &[
        "explain",
        "n0",
        "read:config:x",
        "--from",
        "tests/fixtures/real-broker-audit/audit.json",
    ],
];

#[test]
fn a_write_error_other_than_a_closed_pipe_is_reported_exit_2() {
    for args in COMMANDS {
        let out = Command::new(bin())
            .args(*args)
            .env_remove("AGENTWRIT_BROKER_URL")
            .stdin(Stdio::null())
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write")
                && err.contains("standard output")
                && err.contains("No space left"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_closed_pipe_stays_quiet() {
    for args in COMMANDS {
        let mut child = Command::new(bin())
            .args(*args)
            .env_remove("AGENTWRIT_BROKER_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before reading anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("cannot write"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(2), "{args:?}: {err}");
    }
}

/// `chainview broker` keeps serving when its banner cannot be written (a
/// closed stdout must not stop it), but says so once when the cause is not
/// a closed pipe.
#[test]
fn the_broker_says_once_that_its_banner_could_not_be_written() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin())
        .args(["broker", "--port", "0"])
        .env("AGENTWRIT_ADMIN_SECRET", "output-errors-admin-secret")
        .stdin(Stdio::null())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("cannot write its export lines") && line.contains("No space left"),
        "{line}"
    );
    // Still running: it stops on SIGTERM, cleanly, having said it once.
    assert!(child.try_wait().unwrap().is_none(), "the broker stopped");
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        !rest.contains("cannot write its export lines"),
        "said once: {rest}"
    );
}
