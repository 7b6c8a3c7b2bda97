//! Reading a saved audit trail: `{"events":[…]}` as the broker returns it,
//! several such pages one after another, a bare array, or JSON lines (one
//! event per line). Events are read straight out of the file's bytes
//! without copying, their hashes checked on every core in batches, and
//! folded one by one, so a trail of a million events never sits in memory
//! twice.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Observed;
use crate::broker::types::AuditRef;

/// The largest trail file read (the whole file is held while it is read).
pub const MAX_FILE: u64 = 4 << 30;
/// Events parsed, hash-checked and handed over together.
const BATCH: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read it: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is larger than observe reads ({MAX_FILE} bytes)")]
    TooLarge { file: String, size: u64 },
    #[error("{file}:{line}:{column}: not an audit trail: {why}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("{file}: no audit events in it")]
    Empty { file: String },
}

/// Reads a trail file into `obs`. `progress(bytes_read, bytes_total)` is
/// called now and then.
pub fn read_file(
    path: &Path,
    obs: &mut Observed,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), LoadError> {
    let file = path.display().to_string();
    let read_err = |source| LoadError::Read {
        file: file.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_FILE {
        return Err(LoadError::TooLarge { file, size });
    }
    let buf = std::fs::read(path).map_err(read_err)?;
    read_bytes(&buf, &file, obs, progress)
}

/// Reads a trail held in memory; `name` is what errors call it. One thread
/// parses and checks hashes, batch by batch; this one folds: on two cores
/// the two halves overlap.
pub fn read_bytes(
    buf: &[u8],
    name: &str,
    obs: &mut Observed,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), LoadError> {
    let before = obs.events.len();
    let base = buf.as_ptr() as usize;
    let parsed = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch<'_>>(4);
        let parser = s.spawn(move || {
            let mut sink = Sink {
                batch: Vec::with_capacity(BATCH),
                tx,
            };
            let mut de = serde_json::Deserializer::from_slice(buf);
            while de.end().is_err() {
                Top { sink: &mut sink }.deserialize(&mut de)?;
            }
            sink.flush();
            Ok::<(), serde_json::Error>(())
        });
        for (events, oks) in rx {
            for (e, ok) in events.iter().zip(oks) {
                obs.fold(&e.as_ref(), Some(ok));
            }
            let at = match events.last().map(|e| &e.id) {
                Some(Cow::Borrowed(id)) => (id.as_ptr() as usize).saturating_sub(base),
                _ => 0,
            };
            progress(at.min(buf.len()), buf.len());
        }
        parser.join()
    });
    let malformed = |e: serde_json::Error| LoadError::Malformed {
        file: name.to_string(),
        line: e.line(),
        column: e.column(),
        why: strip_position(&e.to_string()),
    };
    match parsed {
        Ok(r) => r.map_err(malformed)?,
        Err(_) => {
            return Err(LoadError::Malformed {
                file: name.to_string(),
                line: 0,
                column: 0,
                why: "the reader stopped unexpectedly".into(),
            });
        }
    }
    if obs.events.len() == before {
        return Err(LoadError::Empty {
            file: name.to_string(),
        });
    }
    Ok(())
}

/// serde_json appends " at line L column C"; the error names them already.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Parsed events and whether each one's hash matched.
type Batch<'a> = (Vec<Ev<'a>>, Vec<bool>);

struct Sink<'a> {
    batch: Vec<Ev<'a>>,
    tx: std::sync::mpsc::SyncSender<Batch<'a>>,
}

impl<'a> Sink<'a> {
    fn push(&mut self, e: Ev<'a>) {
        self.batch.push(e);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Checks the batch's hashes and hands it to the folding thread.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let oks: Vec<bool> = batch.iter().map(|e| e.as_ref().hash_matches()).collect();
        // The folding side gone means it stopped early: nothing to do.
        let _ = self.tx.send((batch, oks));
    }
}

/// One event's fields, borrowed from the file where no escape forces a copy.
#[derive(Default)]
struct Ev<'a> {
    id: Cow<'a, str>,
    timestamp: Cow<'a, str>,
    event_type: Cow<'a, str>,
    agent_id: Cow<'a, str>,
    task_id: Cow<'a, str>,
    orch_id: Cow<'a, str>,
    detail: Cow<'a, str>,
    resource: Cow<'a, str>,
    outcome: Cow<'a, str>,
    deleg_depth: i64,
    deleg_chain_hash: Cow<'a, str>,
    bytes_transferred: i64,
    hash: Cow<'a, str>,
    prev_hash: Cow<'a, str>,
    /// Which of id, timestamp, event_type, hash, prev_hash were present.
    seen: u8,
}

impl Ev<'_> {
    fn as_ref(&self) -> AuditRef<'_> {
        AuditRef {
            id: &self.id,
            timestamp: &self.timestamp,
            event_type: &self.event_type,
            agent_id: &self.agent_id,
            task_id: &self.task_id,
            orch_id: &self.orch_id,
            detail: &self.detail,
            resource: &self.resource,
            outcome: &self.outcome,
            deleg_depth: self.deleg_depth,
            deleg_chain_hash: &self.deleg_chain_hash,
            bytes_transferred: self.bytes_transferred,
            hash: &self.hash,
            prev_hash: &self.prev_hash,
        }
    }
}

const REQUIRED: [&str; 5] = ["id", "timestamp", "event_type", "hash", "prev_hash"];

/// Reads one field into the event (unknown fields are skipped).
fn field<'a, A: MapAccess<'a>>(ev: &mut Ev<'a>, key: &str, map: &mut A) -> Result<(), A::Error> {
    let named = |e: A::Error| <A::Error as de::Error>::custom(format!("\"{key}\": {e}"));
    let text = |map: &mut A| map.next_value::<Str<'a>>().map(|s| s.0).map_err(named);
    if let Some(i) = REQUIRED.iter().position(|r| *r == key) {
        ev.seen |= 1 << i;
    }
    match key {
        "id" => ev.id = text(map)?,
        "timestamp" => ev.timestamp = text(map)?,
        "event_type" => ev.event_type = text(map)?,
        "agent_id" => ev.agent_id = text(map)?,
        "task_id" => ev.task_id = text(map)?,
        "orch_id" => ev.orch_id = text(map)?,
        "detail" => ev.detail = text(map)?,
        "resource" => ev.resource = text(map)?,
        "outcome" => ev.outcome = text(map)?,
        "deleg_chain_hash" => ev.deleg_chain_hash = text(map)?,
        "hash" => ev.hash = text(map)?,
        "prev_hash" => ev.prev_hash = text(map)?,
        "deleg_depth" => ev.deleg_depth = map.next_value().map_err(named)?,
        "bytes_transferred" => ev.bytes_transferred = map.next_value().map_err(named)?,
        _ => {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

fn finish<'a, E: de::Error>(ev: Ev<'a>) -> Result<Ev<'a>, E> {
    match REQUIRED
        .iter()
        .enumerate()
        .find(|(i, _)| ev.seen & (1 << i) == 0)
    {
        Some((_, name)) => Err(E::custom(format!(
            "an event without \"{name}\"{}",
            if ev.id.is_empty() {
                String::new()
            } else {
                format!(" ({})", ev.id)
            }
        ))),
        None => Ok(ev),
    }
}

/// A string, borrowed when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'a> de::Deserialize<'a> for Str<'a> {
    fn deserialize<D: de::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'a> Visitor<'a> for V {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'a str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed("")))
            }
        }
        d.deserialize_str(V)
    }
}

/// An event on its own (an element of `events`, or of a bare array).
struct EventSeed;

impl<'a> DeserializeSeed<'a> for EventSeed {
    type Value = Ev<'a>;
    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<Ev<'a>, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'a> Visitor<'a> for EventVisitor {
    type Value = Ev<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an audit event object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Ev<'a>, A::Error> {
        let mut ev = Ev::default();
        while let Some(k) = map.next_key::<Str<'a>>()? {
            field(&mut ev, &k.0, &mut map)?;
        }
        finish(ev)
    }
}

/// A list of events, each folded as it is read.
struct Events<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'a> DeserializeSeed<'a> for Events<'_, 'a> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'a> Visitor<'a> for Events<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of audit events")
    }
    fn visit_seq<S: SeqAccess<'a>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(ev) = seq.next_element_seed(EventSeed)? {
            self.sink.push(ev);
        }
        Ok(())
    }
}

/// A top-level value: a page (`{"events":[…],"total":…}`), an event (a JSON
/// line), or a bare array of events.
struct Top<'s, 'a> {
    sink: &'s mut Sink<'a>,
}

impl<'a> DeserializeSeed<'a> for Top<'_, 'a> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Top<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "{\"events\":[…]} as the broker returns it, an array of events, or one event per line",
        )
    }
    fn visit_seq<S: SeqAccess<'a>>(self, seq: S) -> Result<(), S::Error> {
        Events { sink: self.sink }.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(first) = map.next_key::<Str<'a>>()? else {
            return Ok(());
        };
        let page = ["events", "total", "offset", "limit"].contains(&&*first.0);
        if !page {
            let mut ev = Ev::default();
            field(&mut ev, &first.0, &mut map)?;
            while let Some(k) = map.next_key::<Str<'a>>()? {
                field(&mut ev, &k.0, &mut map)?;
            }
            self.sink.push(finish(ev)?);
            return Ok(());
        }
        let mut key = Some(first);
        while let Some(k) = key {
            if k.0 == "events" {
                map.next_value_seed(Events {
                    sink: &mut *self.sink,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            key = map.next_key::<Str<'a>>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
}
