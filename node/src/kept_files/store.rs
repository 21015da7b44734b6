//! The kept files of one shelf on this node (`<data_dir>/<shelf>/<sha256>.<suffix>`).
//!
//! **Invariant:** a file under its final name has the SHA-256 of its name; it is written to a
//! temporary file, synced, renamed and the directory synced, so a crash leaves it whole or absent.

use std::io::Write;
use std::path::{Path, PathBuf};

use ledger::campaign::is_hex_sha256;

use super::Shelf;

/// Numbers the writes of this process (`ContentStore::write`'s temporary files).
static NEXT_WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Clone)]
pub struct ContentStore {
    dir: PathBuf,
    suffix: &'static str,
}

impl ContentStore {
    pub fn open(data_dir: &Path, shelf: Shelf) -> std::io::Result<ContentStore> {
        ContentStore::open_at(&data_dir.join(shelf.folder()), shelf)
    }

    /// The files in `dir` itself (a backup's kept files).
    pub fn open_at(dir: &Path, shelf: Shelf) -> std::io::Result<ContentStore> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir)?;
        // Leftovers of writes a crash interrupted.
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(ContentStore { dir, suffix: shelf.suffix() })
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_hex_sha256(sha256).then(|| self.dir.join(format!("{sha256}.{}", self.suffix)))
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

    /// The size of a kept file and its first `first` bytes (what its type is judged by).
    pub fn head(&self, sha256: &str, first: usize) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        use std::io::Read;
        let Some(path) = self.path(sha256) else { return Ok(None) };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        let mut start = Vec::with_capacity(first);
        file.take(first as u64).read_to_end(&mut start)?;
        Ok(Some((size, start)))
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
        // A name of this write's own: two writers of one file (an upload and a fetch of it)
        // must not write into one temporary file, or one could rename the other's half-written
        // bytes into place.
        let writer = NEXT_WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = self.dir.join(format!("{sha256}.{}.{writer}.tmp", std::process::id()));
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temporary)?;
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
        let store = ContentStore::open(dir.path(), Shelf::Directories).unwrap();
        let bytes = b"uscc,name,region_code,industry,credit_status,address\n";
        let sha = draw::directory::sha256_hex(bytes);
        assert!(store.write(&"0".repeat(64), bytes).is_err(), "a wrong hash is refused");
        store.write(&sha, bytes).unwrap();
        assert_eq!(store.read(&sha).unwrap().as_deref(), Some(&bytes[..]));
        assert_eq!(store.read(&"1".repeat(64)).unwrap(), None);
        assert_eq!(store.read("../etc/passwd").unwrap(), None, "names are hashes only");
        let photos = ContentStore::open(dir.path(), Shelf::Attachments).unwrap();
        assert!(!photos.contains(&sha), "each shelf is its own folder");
    }
}
