//! One time syntax for `--at`/`--to` and observe's `t`, and times shown in
//! the local zone with its name (or UTC with `--utc`), over the trail
//! recorded from the real broker (2026-11-26 15:20:03–15:21:15 UTC, which
//! is 2026-11-27 00:20–00:21 in Tokyo).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chainview::observe::when::{self, Moment};
use chainview::observe::{Observed, load};
use jiff::tz::TimeZone;

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

fn trail() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-broker-audit/audit.json")
        .to_string_lossy()
        .into_owned()
}

fn observed() -> Observed {
    let mut o = Observed::new();
    load::read_file(std::path::Path::new(&trail()), &mut o, &mut |_, _| {}).unwrap();
    o
}

fn tokyo() -> TimeZone {
    TimeZone::get("Asia/Tokyo").unwrap()
}

fn id(o: &Observed, k: usize) -> &str {
    &o.events[k].id
}

/// The last event at or before `ms`, found by hand.
fn last_before(o: &Observed, ms: i64) -> usize {
    o.events.iter().rposition(|e| e.ms <= ms).unwrap()
}

fn ms(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[test]
fn an_event_id_or_its_number_alone() {
    let o = observed();
    for tz in [TimeZone::UTC, tokyo()] {
        for s in ["evt-000016", "16", "evt-16", " 16 "] {
            let k = when::resolve_in(&o, s, "--at", &tz).unwrap();
            assert_eq!(id(&o, k), "evt-000016", "{s}");
        }
    }
    let e = when::resolve_in(&o, "999", "--at", &TimeZone::UTC).unwrap_err();
    assert_eq!(
        e,
        "--at 999: no such event in the trail (evt-000001 … evt-000136)"
    );
}

#[test]
fn a_time_of_day_is_on_the_trails_day_in_the_zone_shown() {
    let o = observed();
    let want = last_before(&o, ms("2026-11-26T15:20:40Z"));
    assert_eq!(
        when::resolve_in(&o, "15:20:40", "t", &TimeZone::UTC).unwrap(),
        want
    );
    // The same instant, typed as a Tokyo clock shows it (the next day there).
    assert_eq!(
        when::resolve_in(&o, "00:20:40", "t", &tokyo()).unwrap(),
        want
    );
    // HH:MM, and fractions of a second.
    assert_eq!(
        when::resolve_in(&o, "15:21", "t", &TimeZone::UTC).unwrap(),
        last_before(&o, ms("2026-11-26T15:21:00Z"))
    );
    assert_eq!(
        when::resolve_in(&o, "15:20:25.012", "t", &TimeZone::UTC).unwrap(),
        last_before(&o, ms("2026-11-26T15:20:25.012Z"))
    );
    // 00:10 in Tokyo is 15:10 UTC, before the trail; 15:20:40 in Tokyo is
    // after it (06:20:40 UTC the next day): its last event.
    let e = when::resolve_in(&o, "00:10", "t", &tokyo()).unwrap_err();
    assert!(
        e.starts_with("t 00:10: before the trail's first event (evt-000001 at 2026-11-27 00:"),
        "{e}"
    );
    assert_eq!(
        when::resolve_in(&o, "15:20:40", "t", &tokyo()).unwrap(),
        o.events.len() - 1
    );
    assert!(e.ends_with(" JST)"), "{e}");
    // After the last event: the last event.
    assert_eq!(
        when::resolve_in(&o, "23:59", "t", &TimeZone::UTC).unwrap(),
        o.events.len() - 1
    );
}

#[test]
fn a_date_time_without_a_zone_is_local_with_one_it_is_that_instant() {
    let o = observed();
    let want = last_before(&o, ms("2026-11-26T15:20:40Z"));
    let utc = TimeZone::UTC;
    for (s, tz) in [
        ("2026-11-26 15:20:40", &utc),
        ("2026-11-26T15:20:40", &utc),
        ("2026-11-27 00:20:40", &tokyo()),
        ("2026-11-26T15:20:40Z", &tokyo()),
        ("2026-11-27T00:20:40+09:00", &utc),
        ("2026-11-26T16:20:40+01:00", &utc),
        ("2026-11-27T00:20:40[Asia/Tokyo]", &utc),
    ] {
        assert_eq!(when::resolve_in(&o, s, "--at", tz).unwrap(), want, "{s}");
    }
    // A zone-less date-time read in UTC is 9 hours away from Tokyo's.
    assert!(when::resolve_in(&o, "2026-11-26 15:20:40", "--at", &tokyo()).is_err());
    assert!(matches!(
        when::parse("2026-11-26", &utc),
        Ok(Moment::Instant(_))
    ));
}

#[test]
fn errors_name_the_key_or_flag_used() {
    let o = observed();
    for flag in ["--at", "--to", "t"] {
        let e = when::resolve_in(&o, "noon", flag, &TimeZone::UTC).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "{flag} noon: expected an event id (evt-000123 or 123), a time of day"
            )),
            "{e}"
        );
    }
    assert!(when::resolve_in(&o, "25:00", "t", &TimeZone::UTC).is_err());
}

#[test]
fn times_are_shown_with_the_zone() {
    let t = ms("2026-11-26T15:20:49.5Z");
    assert_eq!(when::clock_in(t, &TimeZone::UTC), "15:20:49 UTC");
    assert_eq!(when::clock_in(t, &tokyo()), "00:20:49 JST");
    let paris = TimeZone::get("Europe/Paris").unwrap();
    assert_eq!(when::clock_in(t, &paris), "16:20:49 CET");
    assert_eq!(when::stamp_in(t, &tokyo()), "2026-11-27 00:20:49 JST");
}

fn run(tz: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("TZ", tz)
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_ADMIN_SECRET")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn text_output_follows_tz_and_utc_json_stays_utc() {
    let f = trail();
    let text = ["observe", "--from", &f, "--print", "text", "--at", "16"];
    let (code, out, err) = run("Asia/Tokyo", &text);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("as of evt-000016 · 2026-11-27 00:20:25 JST · "),
        "{out}"
    );
    let (_, out, _) = run("UTC", &text);
    assert!(
        out.starts_with("as of evt-000016 · 2026-11-26 15:20:25 UTC · "),
        "{out}"
    );
    let mut utc = text.to_vec();
    utc.push("--utc");
    let (_, out, _) = run("Asia/Tokyo", &utc);
    assert!(
        out.starts_with("as of evt-000016 · 2026-11-26 15:20:25 UTC · "),
        "{out}"
    );
    // JSON is a schema: RFC 3339 UTC whatever TZ says.
    let (_, out, _) = run(
        "Asia/Tokyo",
        &["observe", "--from", &f, "--print", "json", "--at", "16"],
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .contains("\"as_of_time\":\"2026-11-26T15:20:25.015997533Z\""),
        "{out}"
    );
}

#[test]
fn every_command_takes_the_same_at_forms_in_the_zone_shown() {
    let f = trail();
    // 00:20:40 is a Tokyo time of the trail; in UTC it is before it.
    for at in ["evt-000048", "48", "00:20:40", "2026-11-27 00:20:40"] {
        let (code, out, err) = run(
            "Asia/Tokyo",
            &["observe", "--from", &f, "--print", "text", "--at", at],
        );
        assert_eq!(code, 0, "{at}: {err}");
        assert!(out.starts_with("as of evt-000048 · "), "{at}: {out}");
    }
    let (code, _, err) = run(
        "UTC",
        &[
            "observe", "--from", &f, "--print", "text", "--at", "00:20:40",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--at 00:20:40: before the trail's first event"),
        "{err}"
    );
    for args in [
        vec!["check", "--from", &f, "--fail-on", "never"],
        vec!["who-can", "read:data:*", "--from", &f],
        vec!["what-if", "revoke", "agent", "n6", "--from", &f],
        vec!["diff", "--from", &f, "--to", "00:20:40"],
        vec!["explain", "n6", "read:data:x", "--from", &f],
    ] {
        let mut args = args.clone();
        args.extend(["--at", "00:20:35"]);
        let (code, out, err) = run("Asia/Tokyo", &args);
        assert!(code == 0 || code == 1, "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
        if args[0] == "diff" {
            assert!(out.contains(" (2026-11-27 00:20:"), "{out}");
            assert!(
                out.contains(" JST) to evt-000048 (2026-11-27 00:20:33 JST):"),
                "{out}"
            );
        }
        let bad: Vec<&str> = args
            .iter()
            .map(|a| if *a == "00:20:35" { "noon" } else { a })
            .collect();
        let (code, _, err) = run("Asia/Tokyo", &bad);
        assert_eq!(code, 2, "{bad:?}");
        assert!(err.contains("--at noon: expected an event id"), "{err}");
    }
    let (code, _, err) = run("UTC", &["diff", "--from", &f, "--to", "noon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--to noon: expected"), "{err}");
}

#[test]
fn the_status_bar_clock_and_the_detail_times_are_in_the_zone_shown() {
    let o = observed();
    // The one process-wide switch `--utc` sets.
    when::show_utc(true);
    assert_eq!(o.events[15].clock(), "15:20:25 UTC");
    assert_eq!(
        when::stamp_text("2026-11-26T15:20:25.010021479Z"),
        "2026-11-26 15:20:25 UTC"
    );
    assert_eq!(when::stamp_secs(0), "1970-01-01 00:00:00 UTC");
    // Not a time: said as it is.
    assert_eq!(when::stamp_text("yesterday"), "yesterday");
}
