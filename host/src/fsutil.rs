//! File-system helpers shared by commands: atomic writes, and reads with a size cap.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces (or creates) `path` with `bytes` atomically: the bytes go to a temporary file in the
/// same directory, which is flushed to disk and renamed over `path`, so a reader sees the old
/// content or the new one, never a mix, and a crash leaves no half-written file.
///
/// `mode` sets the permissions (Unix); the temporary file is created with them, so a secret is
/// never readable by others, not even for an instant. `None` keeps those of the file being
/// replaced, or gives a new file the default permissions (0666 less the umask).
///
/// # Errors
/// When the temporary file cannot be created, written or renamed; the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let temp = dir.join(format!(
        ".{}.kstep-{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let existing = std::fs::metadata(path).ok().map(|m| m.permissions());
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode.unwrap_or(0o666));
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Some(mode) = mode {
                // The umask may have narrowed the mode at creation; make it exact.
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            } else if let Some(permissions) = existing {
                file.set_permissions(permissions)?;
            }
        }
        #[cfg(not(unix))]
        let _ = (mode, existing);
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    // Make the rename itself durable; not every file system allows syncing a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `dir` and its missing parents, mode 0700 on Unix (they are about to hold a
/// credential), unless it exists already. A GitLab job's `$CI_PROJECT_DIR/.kube` does not.
///
/// # Errors
/// The directory cannot be created.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Why [`read_capped`] returned nothing.
#[derive(Debug, thiserror::Error)]
pub enum CappedReadError {
    /// The input could not be opened or read (a directory is refused as one).
    #[error("{0}")]
    Io(std::io::Error),
    /// The input is larger than the limit; a regular file was not read at all.
    #[error("{size} bytes or more, over the limit of {limit}")]
    TooBig {
        /// Its size (or a lower bound: the bytes read before giving up).
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// Reads `path` (`-`: standard input, when `stdin_dash`) without ever holding more than
/// `limit` + 1 bytes: a regular file whose metadata says it is larger is refused before any
/// read, and any other stream (stdin, a FIFO, a file that grows) is cut off one byte past the
/// limit, which tells it was too big.
///
/// # Errors
/// [`CappedReadError`].
pub fn read_capped(path: &Path, stdin_dash: bool, limit: u64) -> Result<Vec<u8>, CappedReadError> {
    let mut bytes = Vec::new();
    if stdin_dash && path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(CappedReadError::Io)?;
    } else {
        let file = std::fs::File::open(path).map_err(CappedReadError::Io)?;
        let metadata = file.metadata().map_err(CappedReadError::Io)?;
        if metadata.is_dir() {
            return Err(CappedReadError::Io(std::io::Error::other("is a directory")));
        }
        if metadata.len() > limit {
            return Err(CappedReadError::TooBig {
                size: metadata.len(),
                limit,
            });
        }
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(CappedReadError::Io)?;
    }
    if bytes.len() as u64 > limit {
        return Err(CappedReadError::TooBig {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn replaces_creates_and_keeps_mode() {
        let dir = std::env::temp_dir().join(format!("kstep-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.env");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"A=1\n", Some(0o600)).unwrap();
        write_atomic(&path, b"A=2\n", None).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"A=2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_up_to_the_cap_and_refuses_more() {
        let dir = std::env::temp_dir().join(format!("kstep-fsutil-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, "12345").unwrap();
        assert_eq!(read_capped(&path, false, 5).unwrap(), b"12345");
        assert!(matches!(
            read_capped(&path, false, 4),
            Err(CappedReadError::TooBig { size: 5, limit: 4 })
        ));
        // A FIFO has no size: it is cut off one byte past the cap.
        let fifo = dir.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let _ = std::fs::write(&fifo, vec![b'x'; 1 << 16]);
            })
        };
        assert!(matches!(
            read_capped(&fifo, false, 100),
            Err(CappedReadError::TooBig { size: 101, .. })
        ));
        drop(writer);
        assert!(matches!(
            read_capped(&dir, false, 100),
            Err(CappedReadError::Io(e)) if e.to_string() == "is a directory"
        ));
        // `-` is a file name unless the caller reads stdin for it.
        assert!(matches!(
            read_capped(Path::new("-"), false, 100),
            Err(CappedReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
