//! One time syntax — for `--at`/`--to` (observe, check, who-can, what-if,
//! diff, explain) and observe's `t` key — and times shown in the local zone
//! with its name (`15:20:49 CET`), or in UTC with `--utc`.
//!
//! The forms, tried in this order:
//! - an event id: `evt-000123`, or its number alone, `123`;
//! - a time of day, `HH:MM` or `HH:MM:SS[.frac]`, on the trail's day (the
//!   first day of the trail on which that time falls within it);
//! - a date-time with a zone: RFC 3339 (`2026-11-26T15:20:49Z`,
//!   `…+09:00`) or an IANA zone in brackets (`2026-11-26T15:20:49[Asia/Tokyo]`);
//! - a date-time without one (`2026-11-26 15:20:49`, `2026-11-26T15:20`), or a
//!   date alone (its midnight), read in the zone times are shown in: local
//!   (`TZ`, else the system's), or UTC with `--utc`.
//!
//! A time names the last event at or before it. Zones come from `jiff`
//! (the system's tz database, `TZ` respected, abbreviations like `CET`).

use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::Observed;

/// Times are shown (and zone-less times read) in UTC, not the local zone.
static UTC: AtomicBool = AtomicBool::new(false);

/// `--utc`: show times in UTC from now on.
pub fn show_utc(on: bool) {
    UTC.store(on, Ordering::Relaxed);
}

/// The zone times are shown in: UTC with `--utc`, else the local one
/// (`TZ`, else the system's; UTC when neither can be read).
pub fn zone() -> TimeZone {
    if UTC.load(Ordering::Relaxed) {
        TimeZone::UTC
    } else {
        TimeZone::try_system().unwrap_or(TimeZone::UTC)
    }
}

/// What a `--at` or `t` names, before it is looked for in a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// An event's number (`evt-000123` → 123).
    Event(u64),
    /// A time of day on the trail's day.
    TimeOfDay(Time),
    /// An instant.
    Instant(Timestamp),
}

/// The forms, for an error.
pub const FORMS: &str = "expected an event id (evt-000123 or 123), a time of day (15:20 or 15:20:49, on the trail's day), a date-time (2026-11-26 15:20:49, local) or RFC 3339 (2026-11-26T15:20:49Z)";

/// Reads `s` in one of the forms; zone-less date-times in `tz`.
pub fn parse(s: &str, tz: &TimeZone) -> Result<Moment, String> {
    let s = s.trim();
    if let Some(n) = s
        .strip_prefix("evt-")
        .or(Some(s))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return n
            .parse::<u64>()
            .map(Moment::Event)
            .map_err(|_| format!("'{s}' is not an event number"));
    }
    if s.contains(':')
        && !s.contains(['-', 'T', 't', ' '])
        && let Ok(t) = s.parse::<Time>()
    {
        return Ok(Moment::TimeOfDay(t));
    }
    if s.contains('[') {
        return s
            .parse::<jiff::ZonedDateTime>()
            .map(|z| Moment::Instant(z.timestamp()))
            .map_err(|e| format!("{FORMS}: {e}"));
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(Moment::Instant(t));
    }
    let civil = s
        .parse::<DateTime>()
        .or_else(|_| s.parse::<Date>().map(|d| d.at(0, 0, 0, 0)));
    match civil {
        Ok(dt) => dt
            .to_zoned_datetime(tz.clone())
            .map(|z| Moment::Instant(z.timestamp()))
            .map_err(|e| e.to_string()),
        Err(_) => Err(FORMS.to_string()),
    }
}

/// The number of an event id (`evt-000123` → 123).
fn number(id: &str) -> Option<u64> {
    id.strip_prefix("evt-")?.parse().ok()
}

/// The event index `s` names in `o` (`flag` names where it was typed, for
/// the error: `--at`, `--to`, `t`), zone-less forms read in `tz`.
pub fn resolve_in(o: &Observed, s: &str, flag: &str, tz: &TimeZone) -> Result<usize, String> {
    let err = |why: String| format!("{flag} {}: {why}", crate::text::visible(s));
    let (Some(first), Some(last)) = (o.events.first(), o.events.last()) else {
        return Err(err("the trail has no events".into()));
    };
    let span = || format!("{} … {}", first.id, last.id);
    let ms = match parse(s, tz).map_err(err)? {
        Moment::Event(n) => {
            return o
                .events
                .iter()
                .position(|e| number(&e.id) == Some(n))
                .ok_or_else(|| err(format!("no such event in the trail ({})", span())));
        }
        Moment::Instant(t) => t.as_millisecond(),
        Moment::TimeOfDay(t) => on_trail_day(first.ms, last.ms, t, tz),
    };
    o.events.iter().rposition(|e| e.ms <= ms).ok_or_else(|| {
        err(format!(
            "before the trail's first event ({} at {})",
            first.id,
            stamp_in(first.ms, tz)
        ))
    })
}

/// The instant of `t` on the first day (in `tz`) of the trail on which it
/// falls between the first and the last event; else on the first day.
fn on_trail_day(first: i64, last: i64, t: Time, tz: &TimeZone) -> i64 {
    let day = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned_datetime(tz.clone())
            .date()
    };
    let at = |d: Date| {
        d.to_datetime(t)
            .to_zoned_datetime(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(i64::MIN)
    };
    let (from, to) = (day(first), day(last));
    let mut d = from;
    loop {
        let ms = at(d);
        if (first..=last).contains(&ms) {
            return ms;
        }
        match d.tomorrow() {
            Ok(n) if d < to => d = n,
            _ => return at(from),
        }
    }
}

/// [`resolve_in`], in the zone times are shown in.
pub fn resolve(o: &Observed, s: &str, flag: &str) -> Result<usize, String> {
    resolve_in(o, s, flag, &zone())
}

fn format(ms: i64, tz: &TimeZone, fmt: &str) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned_datetime(tz.clone()).strftime(fmt).to_string(),
        Err(_) => ms.to_string(),
    }
}

/// `15:20:49 CET`: the time of day with the zone's abbreviation.
pub fn clock_in(ms: i64, tz: &TimeZone) -> String {
    format(ms, tz, "%H:%M:%S %Z")
}

/// `2026-11-26 15:20:49 CET`.
pub fn stamp_in(ms: i64, tz: &TimeZone) -> String {
    format(ms, tz, "%Y-%m-%d %H:%M:%S %Z")
}

/// [`clock_in`] the zone times are shown in.
pub fn clock(ms: i64) -> String {
    clock_in(ms, &zone())
}

/// [`stamp_in`] the zone times are shown in.
pub fn stamp(ms: i64) -> String {
    stamp_in(ms, &zone())
}

/// [`stamp`] of an RFC 3339 time (as a token's claims carry it); the text
/// itself when it is not one.
pub fn stamp_text(rfc3339: &str) -> String {
    match rfc3339.parse::<Timestamp>() {
        Ok(t) => stamp(t.as_millisecond()),
        Err(_) => rfc3339.to_string(),
    }
}

/// [`stamp`] of Unix seconds.
pub fn stamp_secs(secs: i64) -> String {
    stamp(secs.saturating_mul(1000))
}
