//! The kept files of one shelf on this node (`<data_dir>/<shelf>/<sha256>.<suffix>`).
//!
//! **Invariant:** a file under its final name has the SHA-256 of its name; it is written to a
//! temporary file, synced, renamed and the directory synced, so a crash leaves it whole or absent.

use std::io::Write;
use std::path::{Path, PathBuf};

use ledger::campaign::is_hex_sha256;
use sha2::{Digest, Sha256};

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

    /// A kept file read in place: the pages are the file's, not a copy, so a directory of
    /// gigabytes costs no memory of its own.
    pub fn map(&self, sha256: &str) -> std::io::Result<Option<MappedFile>> {
        let Some(path) = self.path(sha256) else { return Ok(None) };
        match std::fs::File::open(path) {
            Ok(file) => MappedFile::of(&file).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A kept file opened for reading (to stream it out).
    pub fn open_file(&self, sha256: &str) -> std::io::Result<Option<(std::fs::File, u64)>> {
        let Some(path) = self.path(sha256) else { return Ok(None) };
        match std::fs::File::open(path) {
            Ok(file) => {
                let size = file.metadata()?.len();
                Ok(Some((file, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A file to write a kept file into as it arrives, hashed on the way
    /// (`Staging::keep` puts it under its hash).
    pub fn staging(&self) -> std::io::Result<Staging> {
        let writer = NEXT_WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.join(format!("staging.{}.{writer}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        Ok(Staging { store: self.clone(), path, file, hasher: Sha256::new(), bytes: 0 })
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

/// A file being received: written and hashed as it arrives; removed unless kept.
pub struct Staging {
    store: ContentStore,
    path: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl Staging {
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The SHA-256 of what was written so far.
    pub fn sha256(&self) -> String {
        ledger::campaign::hex(&self.hasher.clone().finalize())
    }

    /// What was written, read in place (to check it before it is kept).
    pub fn map(&self) -> std::io::Result<MappedFile> {
        MappedFile::of(&self.file)
    }

    /// Keeps the file under its hash, durably (synced, renamed, the folder synced); `expected`:
    /// the hash it must have. Answers the hash.
    pub fn keep(self, expected: Option<&str>) -> std::io::Result<String> {
        let sha256 = self.sha256();
        if expected.is_some_and(|expected| expected != sha256) {
            return Err(std::io::Error::other("the file does not have the SHA-256 it is stored under"));
        }
        let path = self.store.path(&sha256).expect("a SHA-256 in hex");
        self.file.sync_all()?;
        if path.exists() {
            return Ok(sha256);
        }
        std::fs::rename(&self.path, &path)?;
        std::fs::File::open(&self.store.dir)?.sync_all()?;
        Ok(sha256)
    }
}

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Staging::write(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Kept: renamed away already. Not kept: its bytes are no file of the shelf.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A kept file read in place, as bytes.
pub struct MappedFile(Option<memmap2::Mmap>);

impl MappedFile {
    /// Maps `file` for reading.
    #[allow(unsafe_code)]
    fn of(file: &std::fs::File) -> std::io::Result<MappedFile> {
        if file.metadata()?.len() == 0 {
            return Ok(MappedFile(None));
        }
        // SAFETY: a mapped file must not change while mapped. Kept files never do: each is
        // written whole under a temporary name, synced and renamed into place, and never opened
        // for writing again (a second write of the same hash finds it and keeps the first); a
        // staging file is mapped only after its last write, by its own writer. Nothing in this
        // process truncates or rewrites them, and the data directory is this process's alone
        // (`data_dir_lock`).
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(MappedFile(Some(map)))
    }
}

impl std::ops::Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
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
        assert_eq!(&*store.map(&sha).unwrap().unwrap(), &bytes[..]);
    }

    #[test]
    fn a_staged_file_is_kept_under_its_hash_or_left_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path(), Shelf::Directories).unwrap();
        let mut staging = store.staging().unwrap();
        staging.write(b"uscc,name,").unwrap();
        staging.write(b"region_code\n").unwrap();
        assert_eq!(&*staging.map().unwrap(), b"uscc,name,region_code\n");
        let sha = staging.sha256();
        assert_eq!(sha, draw::directory::sha256_hex(b"uscc,name,region_code\n"));
        assert_eq!(staging.keep(Some(&sha)).unwrap(), sha);
        assert!(store.contains(&sha));
        let mut wrong = store.staging().unwrap();
        wrong.write(b"other bytes").unwrap();
        assert!(wrong.keep(Some(&sha)).is_err(), "a file under another hash is refused");
        let mut dropped = store.staging().unwrap();
        dropped.write(b"never kept").unwrap();
        drop(dropped);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("directories")).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only the kept file: {left:?}");
    }
}
