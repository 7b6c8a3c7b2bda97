use super::*;
use crate::broker::types::AuditEvent;

fn event(n: usize, prev: &str) -> AuditEvent {
    let mut e = AuditEvent {
        id: format!("evt-{n:06}"),
        timestamp: format!("2026-11-26T10:00:{:02}Z", n % 60),
        event_type: "admin_auth".into(),
        detail: "admin \"authenticated\" as admin".into(),
        prev_hash: prev.to_string(),
        ..AuditEvent::default()
    };
    e.hash = e.compute_hash();
    e
}

fn trail(n: usize) -> Vec<AuditEvent> {
    let mut prev = "0".repeat(64);
    (1..=n)
        .map(|i| {
            let e = event(i, &prev);
            prev = e.hash.clone();
            e
        })
        .collect()
}

fn load(text: &str) -> Result<Observed, LoadError> {
    let mut o = Observed::new();
    read_bytes(text.as_bytes(), "t.json", &mut o, &mut |_, _| {})?;
    Ok(o)
}

/// Issue 23: the 16 MiB cap is on each event, exactly — one of
/// 16 MiB + 1 MiB used to pass when it ended inside a block.
#[test]
fn an_event_over_the_cap_is_refused_whatever_the_blocks() {
    let mut big = event(1, &"0".repeat(64));
    big.detail = "x".repeat(MAX_EVENT + (1 << 20));
    big.hash = big.compute_hash();
    let text = serde_json::to_string(&vec![big]).unwrap();
    let mut o = Observed::new();
    let err = read_bytes(text.as_bytes(), "t.json", &mut o, &mut |_, _| {})
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("larger than 16 MiB"), "{err}");
    // Just under the cap: read.
    let mut fits = event(1, &"0".repeat(64));
    fits.detail = "x".repeat(MAX_EVENT - 4096);
    fits.hash = fits.compute_hash();
    let text = serde_json::to_string(&vec![fits]).unwrap();
    assert_eq!(load(&text).unwrap().events.len(), 1);
}

#[test]
fn pages_arrays_and_lines_read_the_same() {
    let t = trail(5);
    let page = |es: &[AuditEvent]| {
        serde_json::json!({"events": es, "total": 5, "offset": 0, "limit": 100}).to_string()
    };
    let forms = [
        page(&t),
        format!("{}\n{}", page(&t[..2]), page(&t[2..])),
        serde_json::to_string(&t).unwrap(),
        t.iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
    ];
    for f in forms {
        let o = load(&f).unwrap();
        assert_eq!(o.events.len(), 5, "{f}");
        assert_eq!(o.first_broken, None, "{f}");
        assert!(o.from_genesis);
    }
}

/// A reader that hands out a few bytes at a time: every event crosses
/// block boundaries somewhere.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(self.0.len()).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn events_are_found_whatever_their_text_holds_and_wherever_blocks_end() {
    let mut t = trail(6);
    t[1].detail = "braces } ] { [ and \"quotes\" and \\ and events".into();
    t[2].detail = "\"events\":[{\"id\":1}]".into();
    t[3].detail = "line\nbreak, tab\t, unicode é ✓".into();
    let mut prev = "0".repeat(64);
    for e in &mut t {
        e.prev_hash = prev.clone();
        e.hash = e.compute_hash();
        prev = e.hash.clone();
    }
    let page = serde_json::json!({"total": 6, "meta": {"x": [{"id": "not an event"}]}, "events": t, "limit": 100});
    let text = page.to_string();
    for step in [1, 3, 7, 64, 100_000] {
        let mut o = Observed::new();
        let mut r = Trickle(text.as_bytes(), step);
        read_stream(&mut r, text.len(), "t.json", &mut o, &mut |_, _| {}).unwrap();
        assert_eq!(o.events.len(), 6, "step {step}");
        assert_eq!(o.first_broken, None, "step {step}");
    }
}

#[test]
fn a_change_anywhere_shows_as_a_broken_chain_not_a_lost_event() {
    // Cut short at every byte: never a panic, and either an error or
    // (cut between events) fewer events with the chain intact.
    let text = serde_json::to_string(&trail(3)).unwrap();
    for cut in 0..text.len() {
        let mut o = Observed::new();
        let r = read_bytes(&text.as_bytes()[..cut], "t.json", &mut o, &mut |_, _| {});
        assert!(r.is_err() || o.first_broken.is_none(), "cut {cut}");
    }
}

#[test]
fn a_changed_detail_breaks_the_chain_there() {
    let mut t = trail(4);
    t[2].detail = "admin authenticated as mallory".into();
    let o = load(&serde_json::to_string(&t).unwrap()).unwrap();
    let b = o.first_broken.unwrap();
    assert_eq!((b.id.as_str(), b.what), ("evt-000003", "hash"));
}

#[test]
fn malformed_input_is_named_with_its_place() {
    let e = load("{\"events\": [ {\"id\": 3} ]}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("t.json:1:"), "{e}");
    assert!(e.contains("\"id\""), "{e}");
    let e = load("{\"events\": [ {\"id\": \"evt-000001\", \"timestamp\": \"x\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.json:1:"), "{e}");
    let e = load("hello").unwrap_err().to_string();
    assert!(e.contains("not an audit trail"), "{e}");
    let e = load("{\"events\": []}").unwrap_err().to_string();
    assert_eq!(e, "t.json: no audit events in it");
    let mut t = trail(1);
    t[0].prev_hash.clear();
    let mut v = serde_json::to_value(&t[0]).unwrap();
    v.as_object_mut().unwrap().remove("prev_hash");
    let e = load(&v.to_string()).unwrap_err().to_string();
    assert!(e.contains("without \"prev_hash\" (evt-000001)"), "{e}");
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn elisions_and_trailing_commas_are_errors_with_their_place() {
    let one = serde_json::to_string(&trail(1)[0]).unwrap();
    let cases = [
        (format!("[,{one}]"), "1:2:", "an empty element"),
        (format!("[{one},,]"), "t.json:1:", "an empty element"),
        (
            format!("[{one},]"),
            "t.json:1:",
            "a trailing comma before ']'",
        ),
        (
            format!("{{\"events\":[{one},]}}"),
            "t.json:1:",
            "a trailing comma before ']'",
        ),
        (
            format!("{{\"events\":[{one}],}}"),
            "t.json:1:",
            "a trailing comma before '}'",
        ),
        (
            format!("{{\"events\":[{one}] \"total\":1}}"),
            "t.json:1:",
            "without a comma",
        ),
        (
            format!("{{\"events\":[{one} {one}]}}"),
            "t.json:1:",
            "without a comma",
        ),
        (
            format!("{{\"events\" [{one}]}}"),
            "t.json:1:",
            "expected ':'",
        ),
        (
            format!("{{\"events\":[{one}],\"total\":tru}}"),
            "t.json:1:",
            "not a JSON value",
        ),
        (
            format!("{{\"events\":[{one}],\"total\":-3}}"),
            "t.json:1:",
            "not a count",
        ),
    ];
    for (text, place, why) in cases {
        let e = err(&text);
        assert!(e.contains(place) && e.contains(why), "{text}\n→ {e}");
    }
    // The elision's place: line 3, column 2.
    let e = err(&format!("{{\"events\":[\n{one},\n ,{one}]}}"));
    assert!(e.starts_with("t.json:3:2:"), "{e}");
}

#[test]
fn a_second_events_or_total_key_is_an_error() {
    let t = trail(2);
    let a = serde_json::to_string(&t[..1]).unwrap();
    let b = serde_json::to_string(&t[1..]).unwrap();
    let e = err(&format!("{{\"events\":{a},\n \"events\":{b}}}"));
    assert!(e.starts_with("t.json:2:"), "{e}");
    assert!(e.contains("a second \"events\" key"), "{e}");
    let e = err(&format!("{{\"total\":1,\"events\":{a},\"total\":2}}"));
    assert!(e.contains("a second \"total\" key"), "{e}");
    // A key named events deeper down is no page's.
    let o = load(&format!("{{\"meta\":{{\"events\":1}},\"events\":{a}}}")).unwrap();
    assert_eq!(o.events.len(), 1);
}

#[test]
fn a_byte_order_mark_is_named() {
    let text = format!("\u{feff}{}", serde_json::to_string(&trail(1)).unwrap());
    for step in [1, 2, 100_000] {
        let mut o = Observed::new();
        let mut r = Trickle(text.as_bytes(), step);
        let e = read_stream(&mut r, text.len(), "t.json", &mut o, &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.json:1:1:"), "{e}");
        assert!(
            e.contains("the file starts with a UTF-8 byte-order mark; remove it"),
            "{e}"
        );
    }
}

#[test]
fn strict_reading_still_takes_what_the_broker_and_dump_write() {
    let t = trail(3);
    let pretty = serde_json::to_string_pretty(
        &serde_json::json!({"events": t, "total": 3, "offset": 0, "limit": 100, "x": [1, -2.5e3, true, null, {}, []]}),
    )
    .unwrap();
    let o = load(&pretty).unwrap();
    assert_eq!(o.events.len(), 3);
    assert_eq!(o.cut(), None);
    assert!(
        load("{\"events\":[]} {\"events\":[]}")
            .unwrap_err()
            .to_string()
            .contains("no audit events")
    );
    assert!(is_number("0") && is_number("-12.5E+3") && !is_number("01") && !is_number("1."));
}

#[test]
fn a_cut_tail_is_told_by_the_total() {
    let t = trail(5);
    let page = |es: &[AuditEvent], total: u64, offset: Option<u64>| {
        let mut v = serde_json::json!({"events": es, "total": total});
        if let Some(o) = offset {
            v["offset"] = o.into();
        }
        v.to_string()
    };
    // The dump's own total says 5; it holds 3.
    let o = load(&page(&t[..3], 5, None)).unwrap();
    assert_eq!(o.first_broken, None, "the chain alone cannot tell");
    let cut = o.cut().unwrap();
    assert!(
        cut.contains("cut") && cut.contains("the last 2 are missing"),
        "{cut}"
    );
    assert_eq!(o.failures(), vec![cut]);
    // Pages one after another: the last page's offset and total.
    let o = load(&format!(
        "{}\n{}",
        page(&t[..2], 5, Some(0)),
        page(&t[2..], 5, Some(2))
    ))
    .unwrap();
    assert_eq!(o.cut(), None);
    let o = load(&format!(
        "{}\n{}",
        page(&t[..2], 5, None),
        page(&t[2..4], 5, None)
    ))
    .unwrap();
    assert!(o.cut().unwrap().contains("reach only 4"));
    // More than the total says.
    let o = load(&page(&t, 4, None)).unwrap();
    assert!(o.cut().unwrap().contains("does not hold"));
    // No total: nothing claimed.
    let o = load(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(o.total, None);
}
