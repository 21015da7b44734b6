//! One process per data directory. A second `xietong node` on a live node's directory (an
//! operator's slip, or a supervisor restarting a node that never died) once wrote WAL segments
//! into it before failing on the busy port, and the live node could not start again. The lock
//! is taken before anything else touches the directory, and held for the life of the process.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;

/// The lock file inside the data directory: its advisory lock is the claim, its text the PID
/// of the holder (for the refusal's message only).
pub const LOCK_FILE: &str = "LOCK";

/// Held while this process uses the data directory; the kernel drops the lock when the process
/// ends, however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Claims `data_dir` (made 0700 if new), or refuses at once, naming the holding process.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        // The directory holds the ledger (reporters' identities among it): this user's only,
        // also when it was made before by someone else's tooling.
        fs::set_permissions(data_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("making {} private", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another process".to_owned() } else { format!("process {holder}") };
                anyhow::bail!(
                    "the data directory {} is in use by {holder} (lock {}); one node per data directory",
                    data_dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_with_the_holder_and_the_first_is_released_on_drop() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("node1");
        let first = DataDirLock::acquire(&data).expect("the first claim");
        let refusal = DataDirLock::acquire(&data).expect_err("the second claim is refused");
        assert!(refusal.to_string().contains(&format!("process {}", std::process::id())), "{refusal}");
        let entries: Vec<_> = fs::read_dir(&data).expect("read").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(entries, [LOCK_FILE], "the refused claim wrote nothing else");
        let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&data).expect("dir").permissions());
        assert_eq!(mode & 0o777, 0o700, "the data directory is its user's only");
        drop(first);
        DataDirLock::acquire(&data).expect("claimed again once released");
    }
}
