//! End to end in a real terminal: `chainview demo` runs in a pseudo-terminal
//! (portable-pty), its output goes through a vt100 parser, and the test reads
//! the screen the way a user would: step to hop 2, type a scope in the probe,
//! create a delegation through the form, quit with `q`, and check the
//! terminal was restored (alternate screen left, cursor shown, mouse and
//! bracketed paste released).

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

#[test]
fn demo_in_a_real_terminal() {
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
    cmd.arg("demo");
    cmd.env("TERM", "xterm-256color");
    cmd.env("NO_COLOR", "1");
    for v in [
        "AGENTWRIT_BROKER_URL",
        "AGENTWRIT_CLIENT_ID",
        "AGENTWRIT_CLIENT_SECRET",
        "AGENTWRIT_ADMIN_SECRET",
    ] {
        cmd.env_remove(v);
    }
    let mut child = pair.slave.spawn_command(cmd).expect("chainview starts");
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
    let mut t = Term {
        parser,
        raw,
        writer: pair.master.take_writer().unwrap(),
    };

    // The first screen: the deploy scenario loaded, the app set up.
    t.wait_for("CI/CD deployment runner");
    t.wait_for("step 2/40");
    assert!(t.parser.lock().unwrap().screen().alternate_screen());

    // Step to hop 2, one `n` at a time, each step's position on screen.
    for step in 3..=12 {
        t.keys("n");
        t.wait_for(&format!("step {step}/40"));
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
    t.keys("q");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("chainview did not exit after q:\n{}", t.screen());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    // Let the reader drain what was written last.
    std::thread::sleep(Duration::from_millis(200));
    let screen = t.parser.lock().unwrap().screen().clone();
    assert!(!screen.alternate_screen(), "still on the alternate screen");
    assert!(!screen.hide_cursor(), "the cursor is still hidden");
    let raw = t.raw.lock().unwrap();
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
