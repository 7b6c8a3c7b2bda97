//! Text from outside (files, tokens, the broker) on its way to a terminal:
//! control characters are shown, never sent live. One function, applied at
//! every text sink (transcripts, frames, stderr messages); JSON output is
//! escaped by serde and needs nothing.
//!
//! `\n` and `\t` pass through (transcripts are multi-line); every other C0
//! control, DEL and the C1 controls become visible: ESC `\e`, BEL `\a`,
//! CR `\r`, other C0 `^X` (caret notation), DEL `^?`, C1 `\u{9b}`.

use std::borrow::Cow;
use std::fmt::Write as _;

fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `s` with each control character (but `\n`, `\t`) replaced by `show`.
fn escape(s: &str, show: impl Fn(char, &mut String)) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            show(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with its control characters made visible.
pub fn visible(s: &str) -> Cow<'_, str> {
    escape(s, |c, out| match c {
        '\u{1b}' => out.push_str("\\e"),
        '\u{7}' => out.push_str("\\a"),
        '\r' => out.push_str("\\r"),
        '\u{7f}' => out.push_str("^?"),
        c if (c as u32) < 0x20 => {
            out.push('^');
            out.push(char::from(b'@' + c as u8));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    })
}

/// For JSON text: serde escapes C0 controls but leaves DEL and the C1
/// controls raw; they can only stand inside strings, where `\u009b` is
/// the JSON spelling of the same character.
pub fn visible_json(s: &str) -> Cow<'_, str> {
    escape(s, |c, out| {
        let _ = write!(out, "\\u{:04x}", c as u32);
    })
}

/// Whether `buf` surely holds no character [`needs_escape`] (a C1 control
/// is U+0080–U+009F, UTF-8 `C2 80`–`C2 9F`: any `C2` sends the text the slow
/// way; so does any other C0 control but `\n` and `\t`).
fn clean(buf: &[u8]) -> bool {
    // A block at a time, without a branch per byte (so it vectorizes).
    buf.chunks(256).all(|c| {
        !c.iter().fold(false, |bad, &b| {
            bad | ((b < 0x20) & (b != b'\n') & (b != b'\t')) | (b == 0x7f) | (b == 0xc2)
        })
    })
}

/// A writer that makes control characters visible in whatever passes
/// through it (`json`: in JSON's own escape). Each `write` must be whole
/// UTF-8 (as `write!` produces); invalid bytes are shown as U+FFFD.
pub struct Visible<W> {
    inner: W,
    json: bool,
}

impl<W> Visible<W> {
    pub fn text(inner: W) -> Self {
        Visible { inner, json: false }
    }

    pub fn json(inner: W) -> Self {
        Visible { inner, json: true }
    }
}

impl<W: std::io::Write> std::io::Write for Visible<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // In bulk: text that holds no control character (nor a byte that
        // could start one) goes through untouched.
        if clean(buf) && std::str::from_utf8(buf).is_ok() {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        let shown = if self.json {
            visible_json(&text)
        } else {
            visible(&text)
        };
        self.inner.write_all(shown.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn controls_become_visible() {
        assert_eq!(visible("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(visible("a\u{1b}]0;PWNED\u{7}b"), "a\\e]0;PWNED\\ab");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(visible("\u{0}\u{8}\u{7f}\r"), "^@^H^?\\r");
        assert!(matches!(visible("no controls"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_writer_applies_it() {
        let mut w = Visible::text(Vec::new());
        let hostile = "x\u{1b}[2Jy";
        writeln!(w, "title {hostile}").unwrap();
        assert_eq!(String::from_utf8(w.inner).unwrap(), "title x\\e[2Jy\n");
        let mut j = Visible::json(Vec::new());
        let line = serde_json::json!({"say": "a\u{9b}b\u{7f}"}).to_string();
        write!(j, "{line}").unwrap();
        let out = String::from_utf8(j.inner).unwrap();
        assert_eq!(out, r#"{"say":"a\u009bb\u007f"}"#);
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["say"], "a\u{9b}b\u{7f}");
    }

    proptest::proptest! {
        #[test]
        fn nothing_live_survives(s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}a-z]{0,40}") {
            let v = visible(&s);
            proptest::prop_assert!(!v.chars().any(needs_escape));
        }

        #[test]
        fn the_bulk_path_writes_what_the_filter_would(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            s in "\\PC*|[\\x00-\\x1f\\x7f-\\u{a0}a-z\\n\\t]{0,40}",
        ) {
            for b in [bytes.as_slice(), s.as_bytes()] {
                let lossy = String::from_utf8_lossy(b);
                let mut t = Visible::text(Vec::new());
                t.write_all(b).unwrap();
                proptest::prop_assert_eq!(String::from_utf8(t.inner).unwrap(), visible(&lossy));
                let mut j = Visible::json(Vec::new());
                j.write_all(b).unwrap();
                proptest::prop_assert_eq!(String::from_utf8(j.inner).unwrap(), visible_json(&lossy));
            }
        }
    }
}
