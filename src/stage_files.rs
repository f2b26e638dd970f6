//! Reading a written stage back: its manifest and the tables it lists, decoded off the async
//! threads. One reader for `inspect`, `export` and the demo's summary, so each sees a stage the
//! same way (the manifest first; only the files it names).

use crate::key::{KeyError, StagePrefix};
use crate::storage::{read_manifest, Manifest, Storage, StorageError};
use crate::tables::{from_parquet, Table, TableError};

/// Why a stage could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StageReadError {
    /// The prefix, or a file name in the manifest, is not a valid key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The manifest or a file could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file is not a table this service reads.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The decoding task failed (a bug: it panicked).
    #[error("decoding task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A table's name from its file name: `df_users.parquet` is `df_users`.
pub fn table_name(file: &str) -> &str {
    file.strip_suffix(".parquet").unwrap_or(file)
}

/// The stage under `prefix`: its manifest and every table it lists, in the manifest's order.
pub async fn read_stage(
    storage: &dyn Storage,
    prefix: &StagePrefix,
) -> Result<(Manifest, Vec<Table>), StageReadError> {
    let manifest = read_manifest(storage, prefix).await?;
    let mut tables = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let body = storage.get(&prefix.key(&file.name)?).await?;
        let name = table_name(&file.name).to_owned();
        tables.push(tokio::task::spawn_blocking(move || from_parquet(&name, &body)).await??);
    }
    Ok((manifest, tables))
}
