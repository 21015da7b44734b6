//! The entity directory files of this node (`<data_dir>/directories/<sha256>.csv`), kept out
//! of the Raft log: the ledger records each version's hash, and every file is on a majority of
//! the group's nodes before that record is proposed, so no acknowledged directory version is
//! lost with one node. A node that lacks a file (it was down, or is new) fetches it from a
//! fellow member when it needs it, and checks its hash.
//!
//! **Invariant:** a file under its final name has the SHA-256 of its name; it is written to a
//! temporary file, synced, renamed and the directory synced, so a crash leaves it whole or absent.

use std::io::Write;
use std::path::{Path, PathBuf};

use ledger::campaign::is_hex_sha256;

#[derive(Clone)]
pub struct DirectoryStore {
    dir: PathBuf,
}

impl DirectoryStore {
    pub fn open(data_dir: &Path) -> std::io::Result<DirectoryStore> {
        DirectoryStore::open_at(&data_dir.join("directories"))
    }

    /// The files in `dir` itself (a backup's directory files).
    pub fn open_at(dir: &Path) -> std::io::Result<DirectoryStore> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir)?;
        // Leftovers of writes a crash interrupted.
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(DirectoryStore { dir })
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_hex_sha256(sha256).then(|| self.dir.join(format!("{sha256}.csv")))
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).is_some_and(|p| p.exists())
    }

    pub fn read(&self, sha256: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.path(sha256) else { return Ok(None) };
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `bytes` durably under `sha256`, which must be their hash.
    pub fn write(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(sha256).ok_or_else(|| std::io::Error::other("not a SHA-256"))?;
        if draw::directory::sha256_hex(bytes) != sha256 {
            return Err(std::io::Error::other("the file does not have the SHA-256 it is stored under"));
        }
        if path.exists() {
            return Ok(());
        }
        let temporary = self.dir.join(format!("{sha256}.{}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_kept_under_its_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryStore::open(dir.path()).unwrap();
        let bytes = b"uscc,name,region_code,industry,credit_status,address\n";
        let sha = draw::directory::sha256_hex(bytes);
        assert!(store.write(&"0".repeat(64), bytes).is_err(), "a wrong hash is refused");
        store.write(&sha, bytes).unwrap();
        assert_eq!(store.read(&sha).unwrap().as_deref(), Some(&bytes[..]));
        assert_eq!(store.read(&"1".repeat(64)).unwrap(), None);
        assert_eq!(store.read("../etc/passwd").unwrap(), None, "names are hashes only");
    }
}
