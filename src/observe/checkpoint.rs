//! `--checkpoint FILE`: how far a trail was seen, and its hash there.
//!
//! An unkeyed hash chain proves only that a trail is consistent: whoever
//! can rewrite it can recompute every hash, and a trail cut after any event
//! is still consistent. A checkpoint is what an earlier run saw — the last
//! event's id and hash. A later run *matches the checkpoint* when its trail
//! reaches that id with the same hash there; a shorter trail (truncated)
//! or another hash at that id (rewritten, even with a recomputed chain) is
//! an integrity failure. When a run passes, the checkpoint advances to what
//! it saw.
//!
//! The file is JSON (`{"checkpoint":1,"id":"evt-…","hash":"…","saved_at":"…"}`),
//! written atomically (a temporary file beside it, then renamed) and
//! readable by its owner only (0600).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::chain::id_number;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The format's version (1).
    pub checkpoint: u32,
    /// The last event seen.
    pub id: String,
    /// Its hash.
    pub hash: String,
    /// When it was saved (RFC 3339, UTC).
    #[serde(default)]
    pub saved_at: String,
}

impl Checkpoint {
    pub fn new(id: &str, hash: &str) -> Checkpoint {
        Checkpoint {
            checkpoint: 1,
            id: id.to_string(),
            hash: hash.to_string(),
            saved_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {file}: cannot read it: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("checkpoint {file}: not a chainview checkpoint: {why}")]
    Malformed { file: String, why: String },
    #[error("checkpoint {file}: cannot write it: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
}

/// The checkpoint in `path`; `None` when there is none yet (first run).
pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let file = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Read { file, source }),
    };
    if text.len() > 64 << 10 {
        return Err(CheckpointError::Malformed {
            file,
            why: "larger than any checkpoint".into(),
        });
    }
    let cp: Checkpoint = serde_json::from_slice(&text).map_err(|e| CheckpointError::Malformed {
        file: file.clone(),
        why: e.to_string(),
    })?;
    if cp.checkpoint != 1 {
        return Err(CheckpointError::Malformed {
            file,
            why: format!("version {} (this chainview reads version 1)", cp.checkpoint),
        });
    }
    if id_number(&cp.id).is_none() {
        return Err(CheckpointError::Malformed {
            file,
            why: format!("\"id\" is not an audit event id: {:?}", cp.id),
        });
    }
    Ok(Some(cp))
}

/// Writes `cp` to `path` atomically, readable by its owner only.
pub fn save(path: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    use std::io::Write;
    let file = path.display().to_string();
    let werr = |source| CheckpointError::Write {
        file: file.clone(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut body = serde_json::to_vec_pretty(cp).map_err(|e| werr(std::io::Error::other(e)))?;
    body.push(b'\n');
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(&body)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(())
}

/// A trail read against a checkpoint: its first and last event ids and
/// the hash it has at the checkpoint's id (if it holds that id). `Ok`:
/// "matches checkpoint …"; `Err`: the failure, in words.
pub fn judge(
    cp: &Checkpoint,
    file: &str,
    first: Option<&str>,
    last: Option<&str>,
    seen: Option<&str>,
) -> Result<String, String> {
    match seen {
        Some(h) if h == cp.hash => {
            return Ok(format!("matches checkpoint {file} (at {})", cp.id));
        }
        Some(h) => {
            return Err(format!(
                "does not match checkpoint {file}: its hash at {} is {}…, the checkpoint's is {}… — the trail was rewritten since (a recomputed chain is still consistent; the checkpoint is what tells)",
                cp.id,
                h.get(..12).unwrap_or(h),
                cp.hash.get(..12).unwrap_or(&cp.hash)
            ));
        }
        None => {}
    }
    let want = id_number(&cp.id).unwrap_or(0);
    let (Some(first), Some(last)) = (first, last) else {
        return Err(format!(
            "does not match checkpoint {file}: the trail has no events, the checkpoint saw up to {}",
            cp.id
        ));
    };
    if id_number(last).is_some_and(|n| n < want) {
        return Err(format!(
            "does not match checkpoint {file}: the trail ends at {last}, before the checkpoint's {} — it is shorter than when the checkpoint was saved (truncated?)",
            cp.id
        ));
    }
    if id_number(first).is_some_and(|n| n > want) {
        return Err(format!(
            "cannot be checked against checkpoint {file}: the trail starts at {first}, after the checkpoint's {}",
            cp.id
        ));
    }
    Err(format!(
        "does not match checkpoint {file}: the trail does not hold {}",
        cp.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_atomically_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp.json");
        assert_eq!(load(&p).unwrap(), None);
        let cp = Checkpoint::new("evt-000136", &"a".repeat(64));
        save(&p, &cp).unwrap();
        assert_eq!(load(&p).unwrap(), Some(cp.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Saved again over the old one; no temporary file left behind.
        save(&p, &Checkpoint::new("evt-000137", &"b".repeat(64))).unwrap();
        assert_eq!(load(&p).unwrap().unwrap().id, "evt-000137");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_bad_checkpoint_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp.json");
        std::fs::write(&p, "{\"id\":1}").unwrap();
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("not a chainview checkpoint")
        );
        std::fs::write(&p, r#"{"checkpoint":1,"id":"x","hash":"h"}"#).unwrap();
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("not an audit event id")
        );
    }

    #[test]
    fn judged_by_the_hash_at_its_id() {
        let cp = Checkpoint::new("evt-000010", &"a".repeat(64));
        let j = |first, last, seen| judge(&cp, "c", Some(first), Some(last), seen);
        let a = "a".repeat(64);
        assert!(
            j("evt-000001", "evt-000020", Some(a.as_str()))
                .unwrap()
                .starts_with("matches checkpoint c")
        );
        let b = "b".repeat(64);
        let e = j("evt-000001", "evt-000020", Some(b.as_str())).unwrap_err();
        assert!(e.contains("rewritten"), "{e}");
        let e = j("evt-000001", "evt-000004", None).unwrap_err();
        assert!(e.contains("shorter") && e.contains("evt-000004"), "{e}");
        let e = j("evt-000011", "evt-000020", None).unwrap_err();
        assert!(e.contains("starts at evt-000011"), "{e}");
    }
}
