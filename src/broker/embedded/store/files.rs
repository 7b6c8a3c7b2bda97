//! The data directory's files: private (0700/0600), created exclusively, links refused, one broker at a time.

use super::*;

/// Mode 0700 for the data and scratch directories.
#[cfg(unix)]
pub(super) fn private_dir_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

/// A symbolic link at `path` is refused: the broker's files are created and
/// opened only where they are named.
pub(super) fn refuse_symlink(path: &Path) -> Result<(), StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Symlink {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// The data directory: created 0700 (parents as needed); an existing one
/// must be a real directory, and is made 0700 if it was more open.
pub(super) fn make_private_dir(d: &Path) -> Result<(), StoreError> {
    let dir_err = |detail: String| StoreError::Dir {
        path: d.to_path_buf(),
        detail,
    };
    refuse_symlink(d)?;
    match std::fs::symlink_metadata(d) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(dir_err(
                "it exists and is not a directory (--data names a directory; choose another path)"
                    .into(),
            ));
        }
        Err(_) => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(d).map_err(|e| dir_err(e.to_string()))?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(d).map_err(|e| dir_err(e.to_string()))?;
        if m.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(d, private_dir_permissions())
                .map_err(|e| dir_err(format!("cannot make it private (0700): {e}")))?;
        }
    }
    Ok(())
}

/// Options for a file the broker creates: 0600, never through a link.
pub(super) fn private_open_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    opts
}

/// Takes the data directory's lock file; another broker on it is refused.
pub(super) fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join("broker.lock");
    refuse_symlink(&path)?;
    let f = private_open_options()
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::Dir {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Dir {
            path,
            detail: e.to_string(),
        }),
    }
}

/// Creates `path` (it must not exist: O_EXCL, no link followed), mode 0600,
/// with `bytes`, synced.
pub(super) fn create_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let io = |e: std::io::Error| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return StoreError::Symlink {
                path: path.to_path_buf(),
            };
        }
        StoreError::Dir {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    };
    let mut f = private_open_options()
        .create_new(true)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
