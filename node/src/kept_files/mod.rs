//! Files kept beside the log, by content hash, on a majority of the group's members: the
//! programme's entity directory versions and the attachments of on-site records (photos,
//! signatures, documents). The ledger names each file by its SHA-256; the bytes never enter the
//! Raft log, and every file is on a majority of the members before the entry that names it is
//! proposed, so no acknowledged file is lost with one node. A node that lacks a file (it was
//! down, or is new) fetches it from a fellow member when it is asked for it, and checks its hash.

pub mod object_shelf;
pub mod replication;
pub mod store;
pub mod transfer;

pub use object_shelf::ObjectShelf;
pub use store::ContentStore;

/// A kind of kept file: its own folder of the data directory, peer route and size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shelf {
    /// Entity directory versions (`programme`).
    Directories,
    /// Photos, signatures and documents of on-site records (`crate::attachments`).
    Attachments,
}

impl Shelf {
    /// The folder of the data directory, and the last segment of the peer route.
    pub fn folder(self) -> &'static str {
        match self {
            Shelf::Directories => "directories",
            Shelf::Attachments => "attachments",
        }
    }

    /// The file name's ending (the hash is the rest of the name).
    fn suffix(self) -> &'static str {
        match self {
            Shelf::Directories => "csv",
            Shelf::Attachments => "bin",
        }
    }

    /// The largest file of this kind a member takes.
    pub fn bytes_max(self) -> usize {
        match self {
            Shelf::Directories => crate::programme::DIRECTORY_BYTES_MAX,
            Shelf::Attachments => crate::attachments::ATTACHMENT_BYTES_MAX,
        }
    }

    /// What a file of this kind is called in messages.
    pub fn what(self) -> &'static str {
        match self {
            Shelf::Directories => "entity directory",
            Shelf::Attachments => "attachment",
        }
    }
}

/// The node's kept files, one store per shelf.
#[derive(Clone)]
pub struct KeptFiles {
    pub directories: ContentStore,
    pub attachments: ContentStore,
    /// Attachments in the object store every member shares (`[attachment_store]`): when set,
    /// attachments go there and not to `attachments` (`crate::attachments`).
    pub attachment_objects: Option<ObjectShelf>,
}

impl KeptFiles {
    pub fn open(
        data_dir: &std::path::Path,
        objects: Option<&config::AttachmentStoreConfig>,
    ) -> anyhow::Result<KeptFiles> {
        let attachment_objects = objects.map(ObjectShelf::open).transpose()?;
        if let Some(shelf) = &attachment_objects {
            tracing::info!(store = shelf.describe(), "attachments are kept in an object store");
        }
        Ok(KeptFiles {
            directories: ContentStore::open(data_dir, Shelf::Directories)?,
            attachments: ContentStore::open(data_dir, Shelf::Attachments)?,
            attachment_objects,
        })
    }

    pub fn shelf(&self, shelf: Shelf) -> &ContentStore {
        match shelf {
            Shelf::Directories => &self.directories,
            Shelf::Attachments => &self.attachments,
        }
    }
}
