//! Reading a saved audit trail: `{"events":[…]}` as the broker returns it,
//! several such pages one after another, a bare array, or JSON lines (one
//! event per line) — streamed, so memory stays bounded whatever the size.
//!
//! One thread reads the file a block at a time, finds where each event
//! starts and ends (a small structural scan: strings, escapes, depth), parses
//! the events of a block straight out of its bytes without copying them, and
//! checks their hashes; the calling thread folds them. On two cores the two
//! halves overlap. A block and the events borrowed from it travel together
//! (`self_cell`), so nothing is held longer than it is needed.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::Observed;
use crate::broker::types::AuditRef;

/// Bytes read at a time.
const BLOCK: usize = 4 << 20;
/// The largest single event accepted (the broker's own bodies stop at 1 MiB).
pub const MAX_EVENT: usize = 16 << 20;
/// Blocks in flight between the reading and the folding thread.
const IN_FLIGHT: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read it: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
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
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let size = f.metadata().map_err(read_err)?.len();
    read_stream(
        &mut f,
        usize::try_from(size).unwrap_or(usize::MAX),
        &file,
        obs,
        progress,
    )
}

/// Reads a trail held in memory; `name` is what errors call it.
pub fn read_bytes(
    buf: &[u8],
    name: &str,
    obs: &mut Observed,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), LoadError> {
    let mut r = buf;
    read_stream(&mut r, buf.len(), name, obs, progress)
}

self_cell::self_cell!(
    /// A block of whole events and the events parsed out of it (borrowed).
    struct Block {
        owner: Vec<u8>,
        #[covariant]
        dependent: Parsed,
    }
);

/// Events parsed from a block, each with whether its hash matched.
type Parsed<'a> = Vec<(Ev<'a>, bool)>;

/// Where an event is: byte range (in the file) and line/column of its start.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    line: usize,
    col: usize,
}

/// What went wrong where (line and column in the file).
struct Bad {
    line: usize,
    col: usize,
    why: String,
}

fn read_stream(
    r: &mut (dyn Read + Send),
    total: usize,
    name: &str,
    obs: &mut Observed,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), LoadError> {
    let before = obs.events.len();
    let malformed = |b: Bad| LoadError::Malformed {
        file: name.to_string(),
        line: b.line,
        column: b.col,
        why: b.why,
    };
    let result = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Block, usize)>(IN_FLIGHT);
        // Small inputs need no 4 MiB blocks.
        let block = BLOCK.min(total.saturating_add(1).max(64 << 10));
        let reader = s.spawn(move || read_blocks(r, tx, block));
        for (block, end) in rx {
            for (e, ok) in block.borrow_dependent() {
                obs.fold(&e.as_ref(), Some(*ok));
            }
            progress(end.min(total), total);
        }
        reader.join()
    });
    match result {
        Ok(Ok(claim)) => {
            if let Some(c) = claim {
                obs.total = Some(super::integrity::Total {
                    claimed: c.total,
                    reached: c.reached,
                });
            }
        }
        Ok(Err(Failure::Io(source))) => {
            return Err(LoadError::Read {
                file: name.to_string(),
                source,
            });
        }
        Ok(Err(Failure::Bad(b))) => return Err(malformed(b)),
        Err(_) => {
            return Err(malformed(Bad {
                line: 0,
                col: 0,
                why: "the reader stopped unexpectedly".into(),
            }));
        }
    }
    if obs.events.len() == before {
        return Err(LoadError::Empty {
            file: name.to_string(),
        });
    }
    Ok(())
}

enum Failure {
    Io(std::io::Error),
    Bad(Bad),
}

/// The reading thread: blocks in, whole events found, parsed, hash-checked, sent.
fn read_blocks(
    r: &mut (dyn Read + Send),
    tx: std::sync::mpsc::SyncSender<(Block, usize)>,
    block: usize,
) -> Result<Option<Claim>, Failure> {
    let mut sc = Scanner::default();
    // `buf` holds the file from byte `base` on.
    let mut buf: Vec<u8> = Vec::with_capacity(block * 2);
    let mut base = 0usize;
    let mut eof = false;
    let mut claim = None;
    while !eof {
        // Fill a whole block (a pipe hands out little at a time).
        let have = buf.len();
        buf.resize(have + block, 0);
        let mut got = 0;
        while got < block {
            match r.read(&mut buf[have + got..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        buf.truncate(have + got);
        let spans = sc.scan(&buf, base).map_err(Failure::Bad)?;
        // The cap is on each event, exactly (not on what a block held).
        if let Some(big) = spans.iter().find(|sp| sp.end - sp.start > MAX_EVENT) {
            return Err(Failure::Bad(Bad {
                line: big.line,
                col: big.col,
                why: format!(
                    "an event of {} bytes, larger than {} MiB",
                    big.end - big.start,
                    MAX_EVENT >> 20
                ),
            }));
        }
        if eof {
            claim = sc.finish().map_err(Failure::Bad)?;
        }
        if let (Some(first), Some(last)) = (spans.first(), spans.last()) {
            let bytes = buf[first.start - base..last.end - base].to_vec();
            let offset = first.start;
            let end = last.end;
            let block = Block::try_new(bytes, |bytes| parse_block(bytes, offset, &spans))
                .map_err(Failure::Bad)?;
            if tx.send((block, end)).is_err() {
                // The folding side stopped: nothing more to do.
                return Ok(None);
            }
        }
        let keep = sc.keep_from();
        buf.drain(..keep - base);
        base = keep;
        if buf.len() > MAX_EVENT {
            return Err(Failure::Bad(Bad {
                line: sc.line,
                col: 1,
                why: format!("an event larger than {} MiB", MAX_EVENT >> 20),
            }));
        }
    }
    Ok(claim)
}

/// Parses the events of a block (`offset`: the block's first byte in the file).
fn parse_block<'a>(bytes: &'a [u8], offset: usize, spans: &[Span]) -> Result<Parsed<'a>, Bad> {
    let mut out = Vec::with_capacity(spans.len());
    for sp in spans {
        let text = &bytes[sp.start - offset..sp.end - offset];
        let mut de = serde_json::Deserializer::from_slice(text);
        let ev = EventSeed.deserialize(&mut de).map_err(|e| Bad {
            line: sp.line + e.line().saturating_sub(1),
            col: if e.line() <= 1 {
                sp.col + e.column().saturating_sub(1)
            } else {
                e.column()
            },
            why: strip_position(&e.to_string()),
        })?;
        let ok = ev.as_ref().hash_matches();
        out.push((ev, ok));
    }
    Ok(out)
}

/// Finds where each event starts and ends in a stream of JSON text: objects
/// in a page's `events` array, in a bare top-level array, or at the top
/// level themselves (JSON lines; pages concatenated). It also checks the
/// JSON grammar outside strings as it goes — no elisions (`[,{…}]`, `,,`),
/// no trailing commas, a comma between values, `:` after each key, valid
/// literals — and one `events` (and `total`, `offset`) key per page, and
/// reads each page's `total` and `offset` (see [`Claim`]).
#[derive(Debug, Default)]
struct Scanner {
    /// The next byte to look at (in the file).
    pos: usize,
    depth: usize,
    in_str: bool,
    esc: bool,
    str_start: usize,
    /// The string being read is a key of an object.
    str_key: bool,
    /// The last key closed one level into a top-level object.
    last_key: Key,
    /// Keys already seen in the top-level object (bits of [`Key`]).
    keys_seen: u8,
    line: usize,
    line_start: usize,
    /// The top-level value being read: where it starts, whether it is an
    /// object, and whether it turned out to be a page (an `events` array).
    top: Option<(usize, bool, bool)>,
    /// Line and column where the top-level value starts.
    top_at: (usize, usize),
    in_events: bool,
    /// The event being read: where it starts, its line and column, and the
    /// depth it closes back to.
    elem: Option<(Span, usize)>,
    /// The grammar state of each open object or array.
    stack: Vec<Expect>,
    /// A literal (number, true, false, null) being read, and where it began.
    scalar: Option<(Vec<u8>, usize, usize)>,
    /// The page being read: its `total`, its `offset`, its events so far.
    page: (Option<u64>, Option<u64>, usize),
    /// Events found in earlier top-level values.
    before: usize,
    /// The last page's claim.
    claim: Option<Claim>,
}

/// What a page says about the trail: the broker's `total`, and how far the
/// events read reach in its numbering (the page's `offset`, or the events
/// before it in the file, plus its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub total: u64,
    pub reached: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Key {
    #[default]
    Other,
    Events,
    Total,
    Offset,
}

impl Key {
    fn bit(self) -> u8 {
        match self {
            Key::Other => 0,
            Key::Events => 1,
            Key::Total => 2,
            Key::Offset => 4,
        }
    }
}

/// What may come next inside an object or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After `:`: a value.
    Member,
    /// After `[`: a value or `]`.
    ItemOrEnd,
    /// After `,` in an array: a value.
    Item,
    /// After a value in an object.
    ObjNext,
    /// After a value in an array.
    ArrNext,
}

/// Deeper than this is no audit trail.
const MAX_DEPTH: usize = 512;
/// No literal in a trail is longer.
const MAX_LITERAL: usize = 64;

impl Scanner {
    fn bad(&self, p: usize, why: impl Into<String>) -> Bad {
        Bad {
            line: self.line + 1,
            col: p - self.line_start + 1,
            why: why.into(),
        }
    }

    /// Whether an event object may start here (else only whitespace, commas
    /// and closing brackets may).
    fn in_event_list(&self) -> bool {
        match self.top {
            Some((_, false, _)) => self.depth == 1,
            Some((_, true, true)) => self.in_events && self.depth == 2,
            _ => false,
        }
    }

    /// Whether a value may start here (top level: always; values there are
    /// separated by whitespace), and takes its place.
    fn value(&mut self, p: usize) -> Result<(), Bad> {
        let Some(top) = self.stack.last_mut() else {
            return Ok(());
        };
        *top = match *top {
            Expect::Member => Expect::ObjNext,
            Expect::ItemOrEnd | Expect::Item => Expect::ArrNext,
            Expect::ObjNext | Expect::ArrNext => {
                return Err(self.bad(p, "a value without a comma before it"));
            }
            Expect::KeyOrEnd | Expect::Key => {
                return Err(self.bad(p, "expected a key (a string in double quotes)"));
            }
            Expect::Colon => return Err(self.bad(p, "expected ':' after the key")),
        };
        Ok(())
    }

    /// The literal just ended: it must be a JSON number or true/false/null.
    fn end_scalar(&mut self) -> Result<(), Bad> {
        let Some((text, line, col)) = self.scalar.take() else {
            return Ok(());
        };
        let bad = |why: String| Bad { line, col, why };
        let t = std::str::from_utf8(&text).unwrap_or("");
        if !matches!(t, "true" | "false" | "null") && !is_number(t) {
            return Err(bad(format!(
                "'{}' is not a JSON value",
                String::from_utf8_lossy(&text).escape_debug()
            )));
        }
        // A page's total and offset, one level into a top-level object.
        if self.depth == 1 && matches!(self.top, Some((_, true, _))) {
            let n = t.parse::<i64>().ok();
            match self.last_key {
                Key::Total => match n {
                    Some(n) if n >= 0 => self.page.0 = Some(n as u64),
                    _ => return Err(bad(format!("\"total\" is {t}, not a count of events"))),
                },
                // The broker echoes a negative offset as given; it reads it as 0.
                Key::Offset => match n {
                    Some(n) => self.page.1 = Some(n.max(0) as u64),
                    None => return Err(bad(format!("\"offset\" is {t}, not a whole number"))),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Scans `buf` (the file from `base` on) from where it stopped; returns
    /// the events now complete.
    fn scan(&mut self, buf: &[u8], base: usize) -> Result<Vec<Span>, Bad> {
        let mut out = Vec::new();
        let end = base + buf.len();
        while self.pos < end {
            if self.in_str && !self.esc {
                // Most of a trail is inside strings: jump to the next quote
                // or backslash (JSON strings hold no raw newlines).
                match memchr::memchr2(b'"', b'\\', &buf[self.pos - base..]) {
                    Some(i) => self.pos += i,
                    None => {
                        self.pos = end;
                        break;
                    }
                }
            }
            let p = self.pos;
            let c = buf[p - base];
            self.pos += 1;
            if c == b'\n' {
                self.line += 1;
                self.line_start = p + 1;
            }
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if c == b'\\' {
                    self.esc = true;
                } else if c == b'"' {
                    self.in_str = false;
                    if self.str_key {
                        if let Some(top) = self.stack.last_mut() {
                            *top = Expect::Colon;
                        }
                        if self.depth == 1 && matches!(self.top, Some((_, true, _))) {
                            self.last_key = match &buf[self.str_start - base..p - base] {
                                b"events" => Key::Events,
                                b"total" => Key::Total,
                                b"offset" => Key::Offset,
                                _ => Key::Other,
                            };
                            let bit = self.last_key.bit();
                            if self.keys_seen & bit != 0 {
                                let name = &buf[self.str_start - base..p - base];
                                return Err(Bad {
                                    line: self.line + 1,
                                    col: self.str_start - self.line_start,
                                    why: format!(
                                        "a second \"{}\" key in the same page (which one would count?)",
                                        String::from_utf8_lossy(name)
                                    ),
                                });
                            }
                            self.keys_seen |= bit;
                        }
                    }
                }
                continue;
            }
            if self.scalar.is_some() {
                match c {
                    b' ' | b'\t' | b'\r' | b'\n' | b',' | b'}' | b']' | b':' | b'"' | b'{'
                    | b'[' => self.end_scalar()?,
                    _ => {
                        if let Some((text, line, col)) = self.scalar.as_mut() {
                            if text.len() >= MAX_LITERAL {
                                return Err(Bad {
                                    line: *line,
                                    col: *col,
                                    why: "a literal longer than any JSON number".into(),
                                });
                            }
                            text.push(c);
                        }
                        continue;
                    }
                }
            }
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                0xEF if p == 0 => {
                    return Err(self.bad(
                        p,
                        "the file starts with a UTF-8 byte-order mark; remove it (JSON has none: e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE)",
                    ));
                }
                b'{' | b'[' => {
                    if self.depth == 0 {
                        self.top = Some((p, c == b'{', false));
                        self.top_at = (self.line + 1, p - self.line_start + 1);
                        self.in_events = false;
                        self.keys_seen = 0;
                        self.last_key = Key::Other;
                        self.page = (None, None, 0);
                    } else if self.elem.is_none() && self.in_event_list() {
                        if c != b'{' {
                            return Err(self.bad(p, "expected an audit event object"));
                        }
                        let span = Span {
                            start: p,
                            end: p,
                            line: self.line + 1,
                            col: p - self.line_start + 1,
                        };
                        self.elem = Some((span, self.depth));
                    }
                    self.value(p)?;
                    if c == b'['
                        && self.depth == 1
                        && self.elem.is_none()
                        && self.last_key == Key::Events
                        && let Some((s, true, _)) = self.top
                    {
                        self.top = Some((s, true, true));
                        self.in_events = true;
                    }
                    if self.depth >= MAX_DEPTH {
                        return Err(self.bad(p, "nested deeper than any audit trail"));
                    }
                    self.depth += 1;
                    self.stack.push(if c == b'{' {
                        Expect::KeyOrEnd
                    } else {
                        Expect::ItemOrEnd
                    });
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err(self.bad(p, format!("unexpected '{}'", c as char)));
                    }
                    match (c, self.stack.last()) {
                        (b'}', Some(Expect::KeyOrEnd | Expect::ObjNext))
                        | (b']', Some(Expect::ItemOrEnd | Expect::ArrNext)) => {}
                        (b'}', Some(Expect::Key)) | (b']', Some(Expect::Item)) => {
                            return Err(
                                self.bad(p, format!("a trailing comma before '{}'", c as char))
                            );
                        }
                        (b'}', Some(Expect::Colon | Expect::Member)) => {
                            return Err(self.bad(p, "a key without a value"));
                        }
                        _ => {
                            return Err(self.bad(
                                p,
                                format!("'{}' does not close what is open here", c as char),
                            ));
                        }
                    }
                    self.stack.pop();
                    self.depth -= 1;
                    if let Some((mut span, d)) = self.elem
                        && self.depth == d
                    {
                        span.end = p + 1;
                        out.push(span);
                        self.page.2 += 1;
                        self.elem = None;
                    }
                    if c == b']' && self.depth == 1 {
                        self.in_events = false;
                    }
                    if self.depth == 0 {
                        match self.top {
                            Some((start, true, false)) => {
                                // A top-level object that was not a page: one event.
                                out.push(Span {
                                    start,
                                    end: p + 1,
                                    line: self.top_at.0,
                                    col: self.top_at.1,
                                });
                                self.before += 1;
                            }
                            Some((_, true, true)) => {
                                let (total, offset, n) = self.page;
                                if let Some(total) = total {
                                    let from = offset.unwrap_or(self.before as u64);
                                    self.claim = Some(Claim {
                                        total,
                                        reached: from + n as u64,
                                    });
                                }
                                self.before += n;
                            }
                            _ => self.before += self.page.2,
                        }
                        self.page = (None, None, 0);
                        self.top = None;
                    }
                }
                b',' => match self.stack.last_mut() {
                    Some(e @ Expect::ObjNext) => *e = Expect::Key,
                    Some(e @ Expect::ArrNext) => *e = Expect::Item,
                    Some(Expect::ItemOrEnd | Expect::Item) => {
                        return Err(
                            self.bad(p, "an empty element (a comma with no value before it)")
                        );
                    }
                    Some(_) => return Err(self.bad(p, "unexpected ','")),
                    None => {
                        return Err(self.bad(
                            p,
                            "expected {\"events\":[…]} as the broker returns it, an array of events, or one event per line",
                        ));
                    }
                },
                b':' => match self.stack.last_mut() {
                    Some(e @ Expect::Colon) => *e = Expect::Member,
                    _ => return Err(self.bad(p, "unexpected ':'")),
                },
                b'"' => {
                    if self.depth == 0 || (self.elem.is_none() && self.in_event_list()) {
                        return Err(self.bad(p, "expected an audit event object"));
                    }
                    self.str_key =
                        matches!(self.stack.last(), Some(Expect::KeyOrEnd | Expect::Key));
                    if !self.str_key {
                        self.value(p)?;
                    }
                    self.in_str = true;
                    self.str_start = p + 1;
                }
                _ if self.depth == 0 => {
                    return Err(self.bad(
                        p,
                        "expected {\"events\":[…]} as the broker returns it, an array of events, or one event per line",
                    ));
                }
                _ if self.elem.is_none() && self.in_event_list() => {
                    return Err(self.bad(p, "expected an audit event object"));
                }
                _ => {
                    self.value(p)?;
                    self.scalar = Some((vec![c], self.line + 1, p - self.line_start + 1));
                }
            }
        }
        Ok(out)
    }

    /// At the end of the input: nothing may be left open. Returns the last
    /// page's claim about the trail.
    fn finish(&mut self) -> Result<Option<Claim>, Bad> {
        if self.depth > 0 || self.in_str {
            return Err(self.bad(self.pos, "the file ends inside an event (cut short?)"));
        }
        self.end_scalar()?;
        Ok(self.claim)
    }

    /// The first byte still needed: the start of the event (or top-level
    /// object that may be one) being read.
    fn keep_from(&self) -> usize {
        let from = match (self.elem, self.top) {
            (Some((span, _)), _) => span.start,
            (None, Some((start, true, false))) => start,
            _ => self.pos,
        };
        // A key being read is compared whole when it ends.
        if self.in_str {
            from.min(self.str_start)
        } else {
            from
        }
    }
}

/// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// serde_json appends " at line L column C"; the error names them already.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
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

#[cfg(test)]
mod tests;
