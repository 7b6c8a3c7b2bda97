//! End to end in a real terminal: `chainview demo` runs in a pseudo-terminal
//! (portable-pty), its output goes through a vt100 parser, and the test reads
//! the screen the way a user would: step to hop 2, type a scope in the probe,
//! create a delegation through the form, quit with `q`, and check the
//! terminal was restored (alternate screen left, cursor shown, mouse and
//! bracketed paste released).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const BIN: &str = env!("CARGO_BIN_EXE_chainview");
const ROWS: u16 = 30;
const COLS: u16 = 110;
/// Generous: CI machines are slow and a step talks to a broker.
const WAIT: Duration = Duration::from_secs(30);

struct Term {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    /// Kept open while the child uses the terminal.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Term {
    fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
        self.writer.flush().unwrap();
    }

    fn keys(&mut self, text: &str) {
        for b in text.bytes() {
            self.send(&[b]);
            // One key at a time, as typed: each is its own event.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            if start.elapsed() > WAIT {
                panic!("timed out waiting for {text:?}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Term {
    /// Starts chainview with `args` in a pseudo-terminal.
    fn spawn(
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Term, Box<dyn portable_pty::Child + Send + Sync>) {
        let pty = native_pty_system();
        let pair = pty
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(BIN);
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        for v in [
            "AGENTWRIT_BROKER_URL",
            "AGENTWRIT_CLIENT_ID",
            "AGENTWRIT_CLIENT_SECRET",
            "AGENTWRIT_ADMIN_SECRET",
            "CHAINVIEW_REVALIDATE",
        ] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd).expect("chainview starts");
        drop(pair.slave);
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(size(ROWS), size(COLS), 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader = pair.master.try_clone_reader().unwrap();
        {
            let (parser, raw) = (parser.clone(), raw.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    parser.lock().unwrap().process(&buf[..n]);
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let t = Term {
            parser,
            raw,
            writer: pair.master.take_writer().unwrap(),
            _master: pair.master,
        };
        (t, child)
    }

    /// Presses q and checks chainview exits 0 with the terminal restored.
    fn quit_and_check_restored(&mut self, child: &mut Box<dyn portable_pty::Child + Send + Sync>) {
        self.keys("q");
        self.exits_restored(child, 0);
    }

    /// Waits for chainview to exit with `code` and checks the terminal was restored.
    fn exits_restored(
        &mut self,
        child: &mut Box<dyn portable_pty::Child + Send + Sync>,
        code: u32,
    ) {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > WAIT {
                let _ = child.kill();
                panic!("chainview did not exit after q:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.exit_code(), code, "exit status {status:?}");
        // Let the reader drain what was written last.
        std::thread::sleep(Duration::from_millis(200));
        let screen = self.parser.lock().unwrap().screen().clone();
        assert!(!screen.alternate_screen(), "still on the alternate screen");
        assert!(!screen.hide_cursor(), "the cursor is still hidden");
        let raw = self.raw.lock().unwrap();
        let out = String::from_utf8_lossy(&raw);
        let last = |seq: &str| out.rfind(seq);
        for (on, off) in [
            ("\x1b[?1049h", "\x1b[?1049l"), // alternate screen
            ("\x1b[?1000h", "\x1b[?1000l"), // mouse
            ("\x1b[?2004h", "\x1b[?2004l"), // bracketed paste
        ] {
            assert!(last(on).is_some(), "{on:?} never sent");
            assert!(last(off) > last(on), "{off:?} not sent after {on:?}");
        }
    }
}

#[test]
fn demo_in_a_real_terminal() {
    let (mut t, mut child) = Term::spawn(&["demo"], &[]);
    // The first screen: the deploy scenario loaded, the app set up.
    t.wait_for("CI/CD deployment runner");
    t.wait_for("step 2/43");
    assert!(t.parser.lock().unwrap().screen().alternate_screen());

    // Step to hop 2, one `n` at a time, each step's position on screen.
    for step in 3..=12 {
        t.keys("n");
        t.wait_for(&format!("step {step}/43"));
    }
    let s = t.wait_for("REFUSED 403 scope_violation");
    assert!(s.contains("deployer (hop2)"), "{s}");

    // The probe: type a scope, see which tokens permit it.
    t.keys("/write:deploy:web-service");
    let s = t.wait_for("permits");
    assert!(s.contains("orchestrator"), "{s}");
    t.send(b"\x1b"); // Esc leaves the input.
    std::thread::sleep(Duration::from_millis(100));

    // A delegation through the form: hop1 → deployer, a scope hop1 holds.
    t.keys("k"); // from the refused hop2 up to hop1
    t.keys("d");
    t.wait_for("Delegate");
    let s = t.wait_for("from hop1 (held by analyst, depth 1)");
    assert!(
        s.contains("read:config:production,read:deploy:web-service"),
        "{s}"
    );
    t.send(b"\x1b[Z"); // Shift-Tab to the `to` field
    for _ in 0..4 {
        if t.screen().contains("◂ deployer ▸") {
            break;
        }
        t.send(b"\x1b[C"); // →
        std::thread::sleep(Duration::from_millis(50));
    }
    t.wait_for("◂ deployer ▸");
    t.keys("\t");
    t.send(b"\x1b[F"); // End
    for _ in 0..60 {
        t.send(b"\x7f"); // Backspace
    }
    t.keys("read:config:production");
    t.wait_for("✓ read:config:production held (granted by read:config:production)");
    t.keys("\r");
    let s = t.wait_for("✓ d1 issued to deployer (depth 2)");
    assert!(s.contains("deployer (d1)"), "{s}");

    // Quit, and the terminal is restored.
    t.quit_and_check_restored(&mut child);
}

/// The live check in a real terminal, on a broker reached by URL: another
/// client revokes the analyst's task, and chainview shows the analyst's
/// token dead without any key being pressed.
#[test]
fn live_check_shows_a_revocation_made_elsewhere() {
    use chainview::broker::BrokerClient;
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    use chainview::broker::types::RevokeLevel;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let app = broker
        .register_app(
            "pty-live",
            &["read:config:*", "read:deploy:*", "write:deploy:*"].map(String::from),
        )
        .unwrap();
    let url = broker.url();
    let secret = app.client_secret.clone().unwrap();
    let (mut t, mut child) = Term::spawn(
        &["demo", "--broker", &url],
        &[
            ("AGENTWRIT_CLIENT_ID", &app.client_id),
            ("AGENTWRIT_CLIENT_SECRET", &secret),
            ("AGENTWRIT_ADMIN_SECRET", broker.admin_secret()),
            ("CHAINVIEW_REVALIDATE", "1"),
        ],
    );
    t.wait_for("step 2/43");
    for step in 3..=6 {
        t.keys("n");
        t.wait_for(&format!("step {step}/43"));
    }
    t.wait_for("✓ analyst valid");
    // Another client of the same broker revokes the analyst's task.
    rt.block_on(async {
        let c = BrokerClient::new(&url).unwrap();
        let admin = c
            .admin_auth(broker.admin_secret())
            .await
            .unwrap()
            .access_token;
        c.revoke(&admin, RevokeLevel::Task, "review-v2.4.1")
            .await
            .unwrap();
    });
    // No key pressed: the live check finds it.
    let s = t.wait_for("analyst invalid");
    assert!(s.contains("✓ orchestrator valid"), "{s}");
    t.quit_and_check_restored(&mut child);
    rt.block_on(broker.shutdown());
}

/// SIGTERM, SIGHUP and SIGINT sent from outside (not Ctrl-C typed) end the
/// session like q: terminal restored, exit 143, 129, 130.
#[cfg(unix)]
#[test]
fn signals_restore_the_terminal() {
    for (sig, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ] {
        let (mut t, mut child) = Term::spawn(&["demo"], &[]);
        t.wait_for("step 2/43");
        let pid = child.process_id().expect("pid") as libc::pid_t;
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        t.exits_restored(&mut child, code);
    }
}

/// A `wait 30s` step never freezes the screen: during it, help opens, the
/// probe takes typing, the TTL countdown ticks, and Esc cancels the wait.
#[test]
fn keys_work_while_a_wait_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wait.chainview");
    std::fs::write(
        &script,
        "title \"Waiting\"\n\
         agent orchestrator orch=o task=t scope=read:config:*,write:deploy:*\n\
         wait 30s\n\
         say \"after the wait\"\n",
    )
    .unwrap();
    let (mut t, mut child) = Term::spawn(&["demo", script.to_str().unwrap()], &[]);
    t.wait_for("step 1/4");
    t.keys("n");
    t.wait_for("✓ orchestrator");
    t.keys("n");
    t.wait_for("⧗ wait 30s (Esc cancels)");
    let started = Instant::now();

    // The TTL countdown keeps ticking (the detail shows the selected token).
    let ttl = |s: &str| {
        s.split("expires in ")
            .nth(1)
            .map(|rest| rest.chars().take(4).collect::<String>())
    };
    let first = ttl(&t.wait_for("expires in ")).expect("a countdown");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = ttl(&t.screen());
        if now.as_deref().is_some_and(|n| n != first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the TTL did not tick:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Help opens and closes.
    t.keys("?");
    t.wait_for("Help — keys");
    t.keys("x");
    // The probe takes typing.
    t.keys("/write:deploy:x");
    let s = t.wait_for("scope › write:deploy:x");
    assert!(s.contains("permits"), "{s}");
    t.send(b"\x1b"); // leaves the probe input
    std::thread::sleep(Duration::from_millis(100));
    assert!(t.screen().contains("⧗ wait 30s"), "{}", t.screen());
    t.send(b"\x1b"); // cancels the wait
    t.wait_for("cancelled: wait 30s");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the wait ran out instead"
    );
    t.keys("n");
    t.wait_for("» after the wait");
    t.quit_and_check_restored(&mut child);
}

/// Issue 12 item 11: `y` puts the selected token on the clipboard through
/// OSC 52 (the whole token, base64), and says so.
#[test]
fn y_copies_the_selected_token_with_osc52() {
    let (mut t, mut child) = Term::spawn(&["demo"], &[]);
    t.wait_for("step 2/43");
    t.keys("nn");
    t.wait_for("✓ orchestrator");
    t.wait_for("step 4/43");
    t.keys("y");
    t.wait_for("copied orchestrator's token");
    let raw = String::from_utf8_lossy(&t.raw.lock().unwrap()).into_owned();
    let start = raw.find("\x1b]52;c;").expect("an OSC 52 sequence");
    let rest = &raw[start + 7..];
    let end = rest.find('\x07').expect("terminated");
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(&rest[..end])
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert!(token.starts_with("eyJ"), "{token}");
    t.quit_and_check_restored(&mut child);
}

/// `chainview observe` in a real terminal: chains another client makes on
/// the broker appear without a key pressed; the timeline steps back and
/// follows the head again; q restores the terminal.
#[test]
fn observe_shows_chains_appear_live() {
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let url = broker.url();
    let admin = broker.admin_secret().to_string();
    let (mut t, mut child) = Term::spawn(
        &["observe", "--broker", &url, "--interval", "0.3"],
        &[("AGENTWRIT_ADMIN_SECRET", &admin)],
    );
    t.wait_for("No agents in the trail yet");
    // Another client: the deploy scenario, headless, against the same broker.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/scenarios/deploy.chainview"
    );
    let out = std::process::Command::new(BIN)
        .args(["--script", script])
        .env("AGENTWRIT_BROKER_URL", &url)
        .env("AGENTWRIT_ADMIN_SECRET", &admin)
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // No key pressed: the chain and the refusal show up.
    let s = t.wait_for("delegation_attenuation_violation");
    assert!(s.contains("review-v2.4.1/"), "{s}");
    assert!(s.contains("· live"), "{s}");
    // Step back one event, then follow the head again.
    t.keys("b");
    t.wait_for("stepped back");
    t.keys("G");
    t.wait_for("· live");
    t.quit_and_check_restored(&mut child);
    rt.block_on(broker.shutdown());
}

/// Issue 26: the merged view in a real terminal against a broker reached
/// by URL: `O`, `n`×4, `b` — the merged view stays on and shows the other
/// client's tokens and the earlier run's, and the explorer's own tokens
/// stay valid (before, it showed none of them, and a trail status could
/// land on one of the session's own fresh tokens).
#[test]
fn merged_view_survives_b_in_a_real_terminal() {
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let app = broker
        .register_app(
            "pty-merged",
            &["read:config:*", "read:deploy:*", "write:deploy:*"].map(String::from),
        )
        .unwrap();
    let url = broker.url();
    let admin = broker.admin_secret().to_string();
    // Another client: an agent that released its token.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.chainview");
    std::fs::write(
        &other,
        "app ceiling=read:data:*\nagent gone orch=other task=gone scope=read:data:*\nrelease gone\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["--script", other.to_str().unwrap()])
        .env("AGENTWRIT_BROKER_URL", &url)
        .env("AGENTWRIT_ADMIN_SECRET", &admin)
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let secret = app.client_secret.clone().unwrap();
    let (mut t, mut child) = Term::spawn(
        &["demo", "--broker", &url],
        &[
            ("AGENTWRIT_CLIENT_ID", &app.client_id),
            ("AGENTWRIT_CLIENT_SECRET", &secret),
            ("AGENTWRIT_ADMIN_SECRET", &admin),
        ],
    );
    t.wait_for("step 2/43");
    t.keys("O");
    t.wait_for("· gone/");
    for step in 3..=6 {
        t.keys("n");
        t.wait_for(&format!("step {step}/43"));
    }
    t.wait_for("✓ deployer valid");
    t.keys("b");
    t.wait_for("replayed to step 5");
    // The earlier run's orchestrator, now another run's token, and the
    // other client's: shown again without a key pressed.
    let s = t.wait_for("· release-v2.4.1/");
    assert!(s.contains("· gone/"), "{s}");
    assert!(s.contains("✓ orchestrator ⏱"), "{s}");
    assert!(s.contains("✓ analyst ⏱"), "{s}");
    t.quit_and_check_restored(&mut child);
    rt.block_on(broker.shutdown());
}
