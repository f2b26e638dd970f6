//! The local-folder backend: the embedded default (`./data`) for the demo and single-host runs.
//!
//! An object is written to a hidden temporary file beside its destination, flushed to disk, then
//! renamed into place. Rename is atomic within a folder, so a reader (or a crash) sees either
//! the old state or the whole new object; together with manifest-last ordering this makes a
//! visible manifest a promise that its files are complete. Keys are already validated
//! ([`ObjectKey`]), so joining them onto the root cannot leave it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::{KeyPrefix, ObjectKey, Storage, StorageError};

/// Objects as files under a root folder.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl LocalStorage {
    /// Uses `root`, creating it if needed.
    pub async fn open(root: &Path) -> Result<Self, StorageError> {
        tokio::fs::create_dir_all(root)
            .await
            .map_err(io_err("create", root))?;
        Ok(LocalStorage {
            root: root.to_path_buf(),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StorageError> {
        let path = self.path_of(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_err("create", &dir))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            key.file_name(),
            uuid::Uuid::new_v4().simple()
        ));
        let write = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&body).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(source) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StorageError::Io {
                op: "write",
                path,
                source,
            });
        }
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let path = self.path_of(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(source) => Err(StorageError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StorageError> {
        let path = self.path_of(key);
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StorageError::Io {
                op: "stat",
                path,
                source,
            }),
        }
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectKey>, StorageError> {
        let root = self.root.clone();
        let start = root.join(prefix.as_str());
        let prefix = prefix.as_str().to_owned();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            walk(&start, &prefix, &mut keys)?;
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| StorageError::Io {
            op: "list",
            path: self.root.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }
}

/// Collects the files under `dir` as keys `{key_prefix}{relative path}`. Entries whose names are
/// not valid key segments (temporary files, stray files put there by hand) are skipped.
fn walk(dir: &Path, key_prefix: &str, out: &mut Vec<ObjectKey>) -> Result<(), StorageError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StorageError::Io {
                op: "list",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if crate::key::check_segment(&name).is_err() {
            continue;
        }
        let file_type = entry.file_type().map_err(io_err("list", dir))?;
        let key = format!("{key_prefix}{name}");
        if file_type.is_dir() {
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else if file_type.is_file() {
            out.push(ObjectKey::parse(&key)?);
        }
    }
    Ok(())
}
