//! What the embedded broker keeps (spec §11): the signing key in a PEM file,
//! and apps, revocations and the audit trail in SQLite.
//!
//! With a data directory (`chainview broker --data DIR`) all of it survives a
//! restart, as with the real broker. Without one, the same SQLite store lives
//! in a private temporary directory removed when the broker stops, so memory
//! stays flat however long the broker runs: the audit trail is on disk, not
//! in RAM, in both modes.
//!
//! Answered means written (group commit): the handler computes the event
//! (id, hash chain) under a short lock and queues it; a writer thread commits
//! whatever is queued in one transaction (one sync) as soon as its previous
//! commit ends, and the request is answered only once its events are
//! committed ([`Store::written`]). Concurrent requests share a commit, so
//! durability costs latency, not throughput. Queries see committed rows (SQL,
//! with filters and paging) plus the queued ones.
//!
//! When the writer cannot write (a full disk, an I/O error) the store is
//! *failing*: health says why, the requests waiting for their events are
//! refused (503) instead of answered, the writer retries in small batches so
//! freed space is used, and [`Store::close`] says how many events were never
//! written.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rusqlite::{Connection, OptionalExtension, params};

use super::audit::{Filter, NewEvent, build_event};
use crate::broker::types::{AuditEvent, AuditPage, RevokeLevel};

mod files;
use files::*;

mod writer;
use writer::*;

mod load;
use load::*;

/// The SQLite file inside the data directory.
pub const DB_FILE: &str = "broker.db";
/// The Ed25519 signing key (PKCS#8 PEM, mode 0600) inside the data directory.
pub const KEY_FILE: &str = "signing.key";

/// The most events one transaction carries.
const MAX_BATCH: usize = 20_000;
/// While writes fail, the writer retries this many events at a time, so a
/// little freed space is enough to make progress (a big failing batch would
/// regrow the WAL it could not fit).
const RETRY_BATCH: usize = 64;
/// Past this many queued events a request waits (up to a second) for the
/// writer to catch up: back-pressure instead of unbounded memory, healthy or
/// not.
const MAX_QUEUE: usize = 50_000;
/// While writes fail, an event past this many queued ones is refused (its
/// request answered 503) instead of queued.
const MAX_QUEUE_FAILING: usize = 10_000;

/// Schema migrations, in order; the database's `user_version` is how many
/// have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE apps (
    app_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    token_ttl INTEGER NOT NULL,
    active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE TABLE revocations (
    level TEXT NOT NULL,
    target TEXT NOT NULL,
    -- for a released or renewed token: its expiry (unix seconds); after it
    -- the token cannot verify anyway and the row may go. NULL: forever.
    exp INTEGER,
    PRIMARY KEY (level, target)
) WITHOUT ROWID;
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    orch_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    resource TEXT NOT NULL,
    outcome TEXT NOT NULL,
    deleg_depth INTEGER NOT NULL,
    deleg_chain_hash TEXT NOT NULL,
    bytes_transferred INTEGER NOT NULL,
    hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL
);
CREATE INDEX audit_event_type ON audit(event_type);
CREATE INDEX audit_agent_id ON audit(agent_id);
CREATE INDEX audit_task_id ON audit(task_id);
CREATE INDEX audit_outcome ON audit(outcome);
CREATE INDEX audit_ts ON audit(ts_ns);
"#,
    r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"#,
];

/// Why the data directory cannot be used. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot use this data directory: {detail}")]
    Dir { path: PathBuf, detail: String },
    #[error(
        "{path}: not a usable SQLite database ({detail}); move it away or choose another --data directory"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path}: database schema version {found} is newer than this chainview understands ({known}); use a newer chainview"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: not an Ed25519 private key in PKCS#8 PEM form ({detail})")]
    Key { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error(
        "{path}: this data directory is in use by another chainview broker; stop it first or choose another --data directory"
    )]
    InUse { path: PathBuf },
    #[error("{path}: {detail}")]
    Full { path: PathBuf, detail: String },
    #[error(
        "{path}: this data directory is damaged: {detail}; restore the missing or damaged file from a backup, or start over on purpose with --reset (which deletes the key, apps, revocations and audit trail)"
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{path}: is a symbolic link; refusing to follow it (use the real path, or remove the link)"
    )]
    Symlink { path: PathBuf },
}

impl StoreError {
    /// A write refused for want of space (the disk or the database is full).
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full { .. })
    }
}

/// Why an audited request cannot be answered: its event is not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit trail cannot be written: {0}")]
pub struct NotWritten(pub String);

thread_local! {
    /// What the request being handled on this thread recorded: the highest
    /// sequence number, and whether an event was refused. Handlers run
    /// synchronously on one thread, between [`begin_request`] and
    /// [`request_events`].
    static RECORDED: std::cell::Cell<(u64, bool)> = const { std::cell::Cell::new((0, false)) };
}

/// Starts counting the events the request about to be handled records.
pub fn begin_request() {
    RECORDED.set((0, false));
}

/// The events the request handled since [`begin_request`] recorded: the
/// last sequence number (0: none) and whether one was refused.
pub fn request_events() -> (u64, bool) {
    RECORDED.get()
}

/// An app as stored (the secret only as its SHA-256).
#[derive(Debug, Clone)]
pub struct StoredApp {
    pub app_id: String,
    pub name: String,
    pub client_id: String,
    pub secret_hash: [u8; 32],
    pub scopes: Vec<String>,
    pub token_ttl: i64,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
    pub seq: u64,
}

/// What a store holds when it opens.
pub struct Loaded {
    pub key: SigningKey,
    pub apps: Vec<StoredApp>,
    /// (level, target, expiry of a released/renewed token).
    pub revocations: Vec<Revocation>,
    /// Audit events already in the trail (restored from the directory).
    pub events: u64,
    /// The admin secret this directory was last run with: (salt, SHA-256 of
    /// salt and secret); `None` for a new directory.
    pub admin_secret: Option<([u8; 16], [u8; 32])>,
}

/// How to open a data directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenOptions {
    /// Delete what the directory holds (key, database) and start over.
    pub reset: bool,
    /// Commits not synced to disk (`--power-loss-may-lose-events`).
    pub power_loss_may_lose_events: bool,
}

struct Queued {
    seq: u64,
    ts_ns: i64,
    event: Arc<AuditEvent>,
}

struct AuditState {
    /// Sequence number of the last event recorded (committed or queued).
    last_seq: u64,
    last_hash: String,
    /// Recorded, not yet committed, in order.
    queue: VecDeque<Queued>,
    /// Every event with `seq <= committed` is in the database.
    committed: u64,
    stop: bool,
    /// Why the last write failed; `None` while writes succeed.
    failing: Option<String>,
    /// Requests waiting for their events, by the last sequence number each
    /// needs committed: each is told once, when it is (or when writes fail),
    /// so a commit wakes only the requests it concerns.
    waiters: std::collections::BTreeMap<u64, Vec<Waiter>>,
}

type Waiter = tokio::sync::oneshot::Sender<Result<(), NotWritten>>;

struct Shared {
    state: Mutex<AuditState>,
    /// Wakes the writer when the queue stops being empty (or on stop).
    wake: Condvar,
    /// Signalled after each commit.
    done: Condvar,
    /// Signalled at stop (for the checkpointer, which must not wake at
    /// every commit).
    stopping: Condvar,
    db_path: PathBuf,
    /// Told once when writes start failing, and when they recover.
    console: Option<Console>,
}

/// Where the broker says what an operator must know (a full disk): the
/// terminal of `chainview broker`; nowhere in the explorer, whose terminal
/// is the TUI.
#[derive(Clone)]
pub struct Console(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Console")
    }
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The store: one connection for queries and the rare synchronous writes
/// (apps, revocations), one owned by the audit writer thread.
pub struct Store {
    db_path: PathBuf,
    persistent: bool,
    conn: Mutex<Connection>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    /// Held (locked) for the store's life, released after the connections
    /// close: one broker per data directory.
    _lock: Option<std::fs::File>,
    /// Kept last: the temporary directory goes once everything is closed.
    _temp: Option<tempfile::TempDir>,
}

fn sql_err(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    let detail = e.to_string();
    match e.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        Some(CannotOpen | ReadOnly | PermissionDenied) => StoreError::Dir {
            path: path.to_path_buf(),
            detail,
        },
        Some(DiskFull) => StoreError::Full {
            path: path.to_path_buf(),
            detail: "the disk is full (SQLite: database or disk is full)".into(),
        },
        _ => StoreError::Io {
            path: path.to_path_buf(),
            detail,
        },
    }
}

/// How each commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// `synchronous=FULL`: each commit is synced (fsync) before it returns —
    /// an answered event survives a crash of the broker and of the machine.
    Full,
    /// `synchronous=NORMAL`: a commit is in the OS before it returns (it
    /// survives kill -9), synced only at checkpoints — a power loss or a
    /// kernel crash can lose the last answered events. Opt-in.
    PowerLossMayLoseEvents,
    /// No sync at all: the scratch store without `--data`, removed at stop
    /// and of no use after any crash.
    Off,
}

/// A connection in WAL mode (readers never wait for the writer). Nobody
/// checkpoints on commit: the checkpointer thread does it off the writer's
/// path (a checkpoint inside a commit made that request wait for it).
fn open_conn(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| sql_err(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| sql_err(path, e))?;
    let _mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| sql_err(path, e))?;
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::PowerLossMayLoseEvents => "NORMAL",
        SyncMode::Off => "OFF",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=4194304; \
         PRAGMA wal_autocheckpoint=0;"
    ))
    .map_err(|e| sql_err(path, e))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql_err(path, e))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction().map_err(|e| sql_err(path, e))?;
        tx.execute_batch(sql).map_err(|e| sql_err(path, e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| sql_err(path, e))?;
        tx.commit().map_err(|e| sql_err(path, e))?;
    }
    Ok(())
}

/// Loads the signing key from `path`, or writes a new one there (mode 0600).
fn load_or_create_key(path: &Path, seed: Option<[u8; 32]>) -> Result<SigningKey, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.trim().is_empty() => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: "signing.key is empty".into(),
        }),
        Ok(pem) => SigningKey::from_pkcs8_pem(&pem).map_err(|e| StoreError::Key {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::from_bytes(&seed.unwrap_or_else(rand::random));
            let pem = key
                .to_pkcs8_pem(Default::default())
                .map_err(|e| StoreError::Key {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                })?;
            create_private(path, pem.as_bytes())?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(StoreError::Key {
            path: path.to_path_buf(),
            detail: "not text".into(),
        }),
        Err(e) => Err(StoreError::Key {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, or in a private
    /// temporary directory when `dir` is `None`. `seed` fixes a new signing
    /// key (tests); an existing key file always wins.
    pub fn open(
        dir: Option<&Path>,
        seed: Option<[u8; 32]>,
        console: Option<Console>,
        opts: OpenOptions,
    ) -> Result<(Store, Loaded), StoreError> {
        let (dir_path, temp) = match dir {
            Some(d) => {
                make_private_dir(d)?;
                (d.to_path_buf(), None)
            }
            None => {
                let mut b = tempfile::Builder::new();
                b.prefix("chainview-broker-");
                #[cfg(unix)]
                b.permissions(private_dir_permissions());
                let t = b.tempdir().map_err(|e| StoreError::Dir {
                    path: std::env::temp_dir(),
                    detail: e.to_string(),
                })?;
                guard(&SCRATCH).push(t.path().to_path_buf());
                (t.path().to_path_buf(), Some(t))
            }
        };
        let db_path = dir_path.join(DB_FILE);
        let key_path = dir_path.join(KEY_FILE);
        let lock = match temp {
            Some(_) => None,
            None => Some(lock_dir(&dir_path)?),
        };
        for name in [DB_FILE, "broker.db-wal", "broker.db-shm", KEY_FILE] {
            refuse_symlink(&dir_path.join(name))?;
        }
        if temp.is_none() && opts.reset {
            for name in [DB_FILE, "broker.db-wal", "broker.db-shm", KEY_FILE] {
                let p = dir_path.join(name);
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(StoreError::Dir {
                            path: p,
                            detail: format!("cannot remove it for --reset: {e}"),
                        });
                    }
                }
            }
        }
        let key_existed = temp.is_none() && key_path.exists();
        // A key file that is there must be a key, whatever else is wrong.
        let existing_key = if key_existed {
            Some(load_or_create_key(&key_path, None)?)
        } else {
            None
        };
        match std::fs::metadata(&db_path) {
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::Damaged {
                    path: db_path,
                    detail: "broker.db is empty (0 bytes)".into(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if key_existed {
                    return Err(StoreError::Damaged {
                        path: dir_path,
                        detail: "signing.key is there but broker.db (apps, revocations, audit trail) is missing".into(),
                    });
                }
                // New: created private (0600) and only here (O_EXCL, no link
                // followed); SQLite gives its -wal and -shm the same mode.
                create_private(&db_path, b"")?;
            }
            Err(e) => {
                return Err(StoreError::Dir {
                    path: db_path,
                    detail: e.to_string(),
                });
            }
        }
        let sync = match (temp.is_some(), opts.power_loss_may_lose_events) {
            (true, _) => SyncMode::Off,
            (false, false) => SyncMode::Full,
            (false, true) => SyncMode::PowerLossMayLoseEvents,
        };
        let mut conn = open_conn(&db_path, sync)?;
        migrate(&mut conn, &db_path)?;
        let apps = load_apps(&conn).map_err(|e| sql_err(&db_path, e))?;
        let revocations = load_revocations(&conn).map_err(|e| sql_err(&db_path, e))?;
        let (last_seq, last_hash) = check_trail(&conn, &db_path)?;
        if temp.is_none() && !key_existed && (last_seq > 0 || !apps.is_empty()) {
            return Err(StoreError::Damaged {
                path: dir_path,
                detail: format!(
                    "broker.db holds {last_seq} audit events and {} apps but signing.key is missing (tokens issued before could not be verified)",
                    apps.len()
                ),
            });
        }
        let key = match (temp.is_some(), existing_key) {
            (true, _) => SigningKey::from_bytes(&seed.unwrap_or_else(rand::random)),
            (false, Some(k)) => k,
            (false, None) => load_or_create_key(&key_path, seed)?,
        };
        let admin_secret = load_admin_secret(&conn).map_err(|e| sql_err(&db_path, e))?;
        let writer_conn = open_conn(&db_path, sync)?;
        let checkpoint_conn = open_conn(&db_path, sync)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(AuditState {
                last_seq,
                last_hash,
                queue: VecDeque::new(),
                committed: last_seq,
                stop: false,
                failing: None,
                waiters: std::collections::BTreeMap::new(),
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            stopping: Condvar::new(),
            db_path: db_path.clone(),
            console,
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || writer_loop(writer_conn, &shared))
                .map_err(|e| StoreError::Io {
                    path: db_path.clone(),
                    detail: format!("cannot start the audit writer: {e}"),
                })?
        };
        let checkpointer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("audit-checkpoint".into())
                .spawn(move || checkpoint_loop(checkpoint_conn, &shared))
                .map_err(|e| StoreError::Io {
                    path: db_path.clone(),
                    detail: format!("cannot start the checkpointer: {e}"),
                })?
        };
        let store = Store {
            checkpointer: Mutex::new(Some(checkpointer)),
            _lock: lock,
            db_path,
            persistent: temp.is_none(),
            conn: Mutex::new(conn),
            shared,
            writer: Mutex::new(Some(writer)),
            _temp: temp,
        };
        Ok((
            store,
            Loaded {
                key,
                apps,
                revocations,
                events: last_seq,
                admin_secret,
            },
        ))
    }

    /// Remembers (a salted hash of) the admin secret, so that a restart with
    /// another one can say so.
    pub fn save_admin_secret(&self, salt: &[u8; 16], hash: &[u8; 32]) -> Result<(), StoreError> {
        let mut v = salt.to_vec();
        v.extend_from_slice(hash);
        guard(&self.conn)
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('admin_secret', ?1)",
                params![v],
            )
            .map(|_| ())
            .map_err(|e| sql_err(&self.db_path, e))
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// Records an audit event: id and hash chain now, the write by the writer
    /// thread. The request that recorded it must not be answered before
    /// [`Store::written`] says so. While writes fail and many events wait
    /// already, the event is refused (not queued): its request is answered
    /// 503.
    pub fn record(&self, e: NewEvent, now: DateTime<Utc>) {
        let mut st = guard(&self.shared.state);
        if st.queue.len() > MAX_QUEUE {
            // Back-pressure, healthy or not: wait for the writer to catch up.
            st = match self
                .shared
                .done
                .wait_timeout_while(st, Duration::from_secs(1), |st| {
                    st.queue.len() > MAX_QUEUE / 2
                }) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        let full = if st.failing.is_some() {
            MAX_QUEUE_FAILING
        } else {
            MAX_QUEUE
        };
        if st.queue.len() >= full {
            RECORDED.with(|r| r.set((r.get().0, true)));
            return;
        }
        let seq = st.last_seq + 1;
        let ev = build_event(seq, &st.last_hash, e, now);
        st.last_seq = seq;
        st.last_hash.clone_from(&ev.hash);
        let was_empty = st.queue.is_empty();
        st.queue.push_back(Queued {
            seq,
            ts_ns: now.timestamp_nanos_opt().unwrap_or(i64::MAX),
            event: Arc::new(ev),
        });
        if was_empty {
            self.shared.wake.notify_one();
        }
        drop(st);
        RECORDED.with(|r| r.set((seq, r.get().1)));
    }

    /// Waits until event `seq` is committed; an error (why) when writes fail.
    pub async fn written(&self, seq: u64) -> Result<(), NotWritten> {
        let rx = {
            let mut st = guard(&self.shared.state);
            if st.committed >= seq {
                return Ok(());
            }
            if let Some(why) = &st.failing {
                return Err(NotWritten(why.clone()));
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            st.waiters.entry(seq).or_default().push(tx);
            rx
        };
        rx.await
            .unwrap_or_else(|_| Err(NotWritten("the audit writer stopped".into())))
    }

    /// Why audit writes fail, while they do.
    pub fn failing(&self) -> Option<String> {
        guard(&self.shared.state).failing.clone()
    }

    /// How many audit events exist (committed or queued).
    pub fn audit_count(&self) -> u64 {
        guard(&self.shared.state).last_seq
    }

    /// True while the database answers and the last audit batch was written.
    pub fn healthy(&self) -> bool {
        let writer_ok = guard(&self.shared.state).failing.is_none();
        writer_ok
            && guard(&self.conn)
                .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .is_ok()
    }

    /// Waits until every event recorded so far is committed (or `limit` passes).
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut st = guard(&self.shared.state);
        let target = st.last_seq;
        while st.committed < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.shared.done.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// `GET /v1/audit/events`: committed rows from SQL, then the queued ones.
    pub fn query(&self, f: &Filter) -> AuditPage {
        let matches = |q: &Queued| f.matches(&q.event, q.ts_ns);
        let (committed, queued): (u64, Vec<Arc<AuditEvent>>) = {
            let st = guard(&self.shared.state);
            (
                st.committed,
                st.queue
                    .iter()
                    .filter(|q| matches(q))
                    .map(|q| q.event.clone())
                    .collect(),
            )
        };
        let skip = f.offset.max(0);
        let take = f.limit.clamp(0, 1000);
        let (sql_total, mut events) = match self.sql_page(f, committed, skip, take) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "audit query failed");
                (0, Vec::new())
            }
        };
        let still = (take as usize).saturating_sub(events.len());
        let skip_queued = (skip - sql_total.min(skip)) as usize;
        events.extend(
            queued
                .iter()
                .skip(skip_queued)
                .take(still)
                .map(|e| AuditEvent::clone(e)),
        );
        AuditPage {
            events,
            total: sql_total + queued.len() as i64,
            offset: f.offset,
            limit: f.limit,
        }
    }

    fn sql_page(
        &self,
        f: &Filter,
        committed: u64,
        skip: i64,
        take: i64,
    ) -> rusqlite::Result<(i64, Vec<AuditEvent>)> {
        let mut cond = String::from("seq <= ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![(committed as i64).into()];
        let mut add = |col: &str, op: &str, v: rusqlite::types::Value| {
            args.push(v);
            cond.push_str(&format!(" AND {col} {op} ?{}", args.len()));
        };
        for (col, v) in [
            ("agent_id", &f.agent_id),
            ("task_id", &f.task_id),
            ("event_type", &f.event_type),
            ("outcome", &f.outcome),
        ] {
            if let Some(v) = v {
                add(col, "=", v.clone().into());
            }
        }
        if let Some(s) = f.since {
            add("ts_ns", ">=", super::audit::saturating_ns(s).into());
        }
        if let Some(u) = f.until {
            add("ts_ns", "<=", super::audit::saturating_ns(u).into());
        }
        let conn = guard(&self.conn);
        let total: i64 = if args.len() == 1 {
            // Unfiltered: ids are contiguous, every committed event is there.
            committed as i64
        } else {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM audit WHERE {cond}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?
        };
        let n = args.len();
        let unfiltered = n == 1;
        args.push(take.into());
        args.push(skip.into());
        // Unfiltered, ids are contiguous from 1: skipping `skip` events is
        // `seq > skip`, an index seek, so paging a trail of millions stays
        // linear. Filtered pages use OFFSET.
        let page = if unfiltered {
            format!("AND seq > ?{} ORDER BY seq LIMIT ?{}", n + 2, n + 1)
        } else {
            format!("ORDER BY seq LIMIT ?{} OFFSET ?{}", n + 1, n + 2)
        };
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit WHERE {cond} {page}");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_event)?;
        let events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((total, events))
    }

    /// Saves (inserts or replaces) an app.
    pub fn put_app(&self, a: &StoredApp) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&a.scopes).unwrap_or_else(|_| "[]".into());
        guard(&self.conn)
            .execute(
                "INSERT OR REPLACE INTO apps (app_id, name, client_id, secret_hash, scopes, \
                 token_ttl, active, created_at, updated_at, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    a.app_id,
                    a.name,
                    a.client_id,
                    &a.secret_hash[..],
                    scopes,
                    a.token_ttl,
                    a.active,
                    a.created_at,
                    a.updated_at,
                    a.seq as i64
                ],
            )
            .map(|_| ())
            .map_err(|e| sql_err(&self.db_path, e))
    }

    /// Saves a revocation; `exp`: the expiry of a released/renewed token.
    pub fn put_revocation(
        &self,
        level: RevokeLevel,
        target: &str,
        exp: Option<i64>,
    ) -> Result<(), StoreError> {
        guard(&self.conn)
            .execute(
                "INSERT OR IGNORE INTO revocations (level, target, exp) VALUES (?1, ?2, ?3)",
                params![level.as_str(), target, exp],
            )
            .map(|_| ())
            .map_err(|e| sql_err(&self.db_path, e))
    }

    /// Commits what is queued and stops the writer. Returns how many
    /// recorded events could not be written (0 when all are on disk).
    pub fn close(&self) -> u64 {
        {
            let mut st = guard(&self.shared.state);
            st.stop = true;
        }
        self.shared.wake.notify_all();
        self.shared.stopping.notify_all();
        if let Some(h) = guard(&self.writer).take() {
            let _ = h.join();
        }
        if let Some(h) = guard(&self.checkpointer).take() {
            let _ = h.join();
        }
        guard(&self.shared.state).queue.len() as u64
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close();
        if let Some(t) = &self._temp {
            guard(&SCRATCH).retain(|p| p != t.path());
        }
    }
}

/// The scratch directories of the stores open in this process, for
/// [`remove_scratch_dirs`].
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the scratch directory of every store open in this process: for
/// a process about to exit on a signal without stopping its brokers (their
/// directories would otherwise stay behind in the temporary folder).
pub fn remove_scratch_dirs() {
    for p in guard(&SCRATCH).drain(..) {
        let _ = std::fs::remove_dir_all(p);
    }
}
