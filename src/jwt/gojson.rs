//! Byte-exact reproductions of the Go encodings the broker hashes and signs:
//! `encoding/json` string escaping (`<`, `>`, `&`, U+2028, U+2029) and the
//! trimmed `time.RFC3339Nano` timestamp format (spec §1.5, §6.2, §6.4).

use std::io;

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;

/// A serde_json formatter that escapes like Go's `json.Marshal`.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Fast path: nothing Go would escape beyond what serde_json already does.
        if !fragment
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | 0xE2))
        {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises `value` as compact JSON with Go's escaping.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serialising plain data structs into a Vec cannot fail.
    if value.serialize(&mut ser).is_err() {
        out.clear();
    }
    out
}

/// Go's `time.RFC3339Nano` in UTC: fraction with trailing zeros removed, no dot when zero.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// RFC 3339 truncated to whole seconds (`2026-02-15T12:01:00Z`).
pub fn rfc3339_secs(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn escapes_like_go() {
        let v = vec!["a<b>&c\u{2028}d\u{2029}", "plain"];
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"["a\u003cb\u003e\u0026c\u2028d\u2029","plain"]"#
        );
    }

    #[test]
    fn nano_format_trims_trailing_zeros() {
        let t = Utc.with_ymd_and_hms(2026, 4, 14, 20, 26, 27).unwrap();
        assert_eq!(rfc3339_nano(t), "2026-04-14T20:26:27Z");
        let t2 = t + chrono::Duration::nanoseconds(257_800_000);
        assert_eq!(rfc3339_nano(t2), "2026-04-14T20:26:27.2578Z");
        let t3 = t + chrono::Duration::nanoseconds(798_206_090);
        assert_eq!(rfc3339_nano(t3), "2026-04-14T20:26:27.79820609Z");
        assert_eq!(rfc3339_secs(t3), "2026-04-14T20:26:27Z");
    }
}
