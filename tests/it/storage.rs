//! Storage on both backends: the local folder and S3 against a real S3-protocol server
//! (s3s-fs in-process). The same checks run on each.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;

use vk_parser::ids::{JobId, ReportId, ReportType, Stage, VkUserId};
use vk_parser::settings::Settings;
use vk_parser::storage::{
    self, read_manifest, write_stage, Column, KeyPrefix, ObjectKey, StageFile, StageMeta,
    StagePrefix, Storage, StorageError, MANIFEST_FILE,
};

use crate::support::env;
use crate::support::s3_server::{S3Server, ACCESS_KEY, SECRET_KEY};

fn stage_prefix(job: &str) -> StagePrefix {
    let ids: Vec<VkUserId> = [1, 2, 3]
        .iter()
        .map(|&n| VkUserId::new(n).unwrap())
        .collect();
    StagePrefix::new(
        ReportType::Default,
        &ids,
        &JobId::parse(job).unwrap(),
        Stage::One,
    )
}

fn meta() -> StageMeta {
    StageMeta {
        report_id: ReportId::parse("rep-1").unwrap(),
        main_ids: vec![VkUserId::new(1).unwrap()],
        created_at: Utc::now(),
        completeness: Default::default(),
    }
}

fn file(name: &str, body: &'static [u8]) -> StageFile {
    StageFile {
        name: name.into(),
        rows: 2,
        columns: vec![
            Column {
                name: "source".into(),
                dtype: "int64".into(),
            },
            Column {
                name: "target".into(),
                dtype: "int64".into(),
            },
        ],
        body: Bytes::from_static(body),
    }
}

async fn local() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        Settings::load(None, &env(&[("STORAGE_URL", dir.path().to_str().unwrap())])).unwrap();
    let storage = storage::open(&settings.storage).await.unwrap();
    (dir, storage)
}

async fn s3(server: &S3Server, url: &str, secret: &str) -> Arc<dyn Storage> {
    let settings = Settings::load(
        None,
        &env(&[
            ("STORAGE_URL", url),
            ("AWS_ENDPOINT_URL", &server.endpoint),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]),
    )
    .unwrap();
    storage::open(&settings.storage).await.unwrap()
}

/// Put, get, exists, list and not-found, the same on every backend.
async fn round_trip(storage: &dyn Storage) {
    let prefix = stage_prefix("job_rt");
    let key = prefix.key("edges.parquet").unwrap();
    assert!(!storage.exists(&key).await.unwrap());
    assert!(matches!(
        storage.get(&key).await,
        Err(StorageError::NotFound(_))
    ));

    storage
        .put(&key, Bytes::from_static(b"PAR1 data"))
        .await
        .unwrap();
    assert!(storage.exists(&key).await.unwrap());
    assert_eq!(
        storage.get(&key).await.unwrap(),
        Bytes::from_static(b"PAR1 data")
    );
    // Overwrite is whole.
    storage.put(&key, Bytes::from_static(b"v2")).await.unwrap();
    assert_eq!(storage.get(&key).await.unwrap(), Bytes::from_static(b"v2"));

    let other = stage_prefix("job_other").key("users.parquet").unwrap();
    storage.put(&other, Bytes::from_static(b"u")).await.unwrap();
    assert_eq!(
        storage.list(&prefix.prefix()).await.unwrap(),
        vec![key.clone()]
    );
    let all = storage
        .list(&KeyPrefix::parse("DEFAULT/").unwrap())
        .await
        .unwrap();
    assert_eq!(all, vec![other, key]);
    assert!(storage
        .list(&KeyPrefix::parse("HANDSHAKES").unwrap())
        .await
        .unwrap()
        .is_empty());

    // Empty objects are objects.
    let empty = prefix.key("empty.parquet").unwrap();
    storage.put(&empty, Bytes::new()).await.unwrap();
    assert_eq!(storage.get(&empty).await.unwrap(), Bytes::new());
}

/// A stage written through write_stage reads back through its manifest.
async fn stage_round_trip(storage: &dyn Storage) {
    let prefix = stage_prefix("job_stage");
    assert!(matches!(
        read_manifest(storage, &prefix).await,
        Err(StorageError::NotFound(_))
    ));
    let manifest_key = write_stage(
        storage,
        &prefix,
        meta(),
        vec![
            file("df_main_friends.parquet", b"aaaa"),
            file("df_users.parquet", b"bb"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(manifest_key, prefix.key(MANIFEST_FILE).unwrap());
    let manifest = read_manifest(storage, &prefix).await.unwrap();
    assert_eq!(manifest.prefix, prefix.to_string());
    assert_eq!(manifest.stage, 1);
    assert_eq!(manifest.job_id.as_str(), "job_stage");
    let names: Vec<(&str, u64)> = manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.bytes))
        .collect();
    assert_eq!(
        names,
        [("df_main_friends.parquet", 4), ("df_users.parquet", 2)]
    );
    for f in &manifest.files {
        assert!(storage.exists(&prefix.key(&f.name).unwrap()).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn local_round_trip() {
    let (_dir, storage) = local().await;
    round_trip(storage.as_ref()).await;
    stage_round_trip(storage.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_round_trip_against_a_real_s3_server() {
    let server = S3Server::start("reports").await;
    let storage = s3(&server, "s3://reports/vk/out", SECRET_KEY).await;
    round_trip(storage.as_ref()).await;
    stage_round_trip(storage.as_ref()).await;
    // The base prefix from the URL is really applied on the server.
    let on_disk = server
        .root
        .path()
        .join("reports/vk/out/DEFAULT/1_2_3/job_rt_stage1/edges.parquet");
    assert!(on_disk.is_file(), "{}", on_disk.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_lists_past_one_page() {
    // ListObjectsV2 pages at 1000 keys: 1005 objects need two pages.
    let server = S3Server::start("paged").await;
    let storage = s3(&server, "s3://paged", SECRET_KEY).await;
    let prefix = stage_prefix("job_pages");
    let dir = server.root.path().join("paged").join(prefix.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..1005 {
        std::fs::write(dir.join(format!("part-{i:04}.parquet")), b"x").unwrap();
    }
    assert_eq!(storage.list(&prefix.prefix()).await.unwrap().len(), 1005);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_rejects_a_wrong_secret() {
    let server = S3Server::start("reports").await;
    let storage = s3(&server, "s3://reports", "wrong-secret").await;
    let key = stage_prefix("j").key("x.parquet").unwrap();
    let err = storage
        .put(&key, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::S3 { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_needs_credentials() {
    let settings = Settings::load(None, &env(&[("BUCKET_NAME", "reports")])).unwrap();
    let err = storage::open(&settings.storage).await.unwrap_err();
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}

/// Records the order of puts on a real backend, to check manifest-last.
#[derive(Debug)]
struct PutOrder {
    inner: Arc<dyn Storage>,
    puts: Mutex<Vec<String>>,
}

#[async_trait]
impl Storage for PutOrder {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, body).await?;
        self.puts.lock().unwrap().push(key.file_name().to_owned());
        Ok(())
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        self.inner.get(key).await
    }
    async fn exists(&self, key: &ObjectKey) -> Result<bool, StorageError> {
        self.inner.exists(key).await
    }
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectKey>, StorageError> {
        self.inner.list(prefix).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manifest_is_written_last_on_both_backends() {
    let server = S3Server::start("order").await;
    let (_dir, local) = local().await;
    for backend in [local, s3(&server, "s3://order", SECRET_KEY).await] {
        let recorder = PutOrder {
            inner: backend,
            puts: Mutex::new(Vec::new()),
        };
        let files = vec![
            file("a.parquet", b"1"),
            file("b.parquet", b"2"),
            file("c.parquet", b"3"),
        ];
        write_stage(&recorder, &stage_prefix("job_order"), meta(), files)
            .await
            .unwrap();
        let puts = recorder.puts.lock().unwrap().clone();
        assert_eq!(puts, ["a.parquet", "b.parquet", "c.parquet", MANIFEST_FILE]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_file_write_leaves_no_manifest() {
    let (dir, storage) = local().await;
    let prefix = stage_prefix("job_fail");
    // A folder where the second file should go makes its rename fail, as a full disk would.
    std::fs::create_dir_all(
        dir.path()
            .join(prefix.to_string())
            .join("b.parquet/blocker"),
    )
    .unwrap();
    let files = vec![file("a.parquet", b"1"), file("b.parquet", b"2")];
    let err = write_stage(storage.as_ref(), &prefix, meta(), files)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    assert!(!storage
        .exists(&prefix.key(MANIFEST_FILE).unwrap())
        .await
        .unwrap());
    assert!(matches!(
        read_manifest(storage.as_ref(), &prefix).await,
        Err(StorageError::NotFound(_))
    ));
    // No temporary file is left behind or listed.
    let listed = storage.list(&prefix.prefix()).await.unwrap();
    assert_eq!(listed, vec![prefix.key("a.parquet").unwrap()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_file_cannot_pose_as_the_manifest() {
    let (_dir, storage) = local().await;
    let err = write_stage(
        storage.as_ref(),
        &stage_prefix("j"),
        meta(),
        vec![file(MANIFEST_FILE, b"{}")],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StorageError::Manifest { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_that_could_escape_are_rejected() {
    let prefix = stage_prefix("job");
    let long_job = "j".repeat(65);
    for bad in [
        "..",
        "../x",
        "a/b",
        "x\u{7}y",
        "line\nbreak",
        "nul\0",
        ".hidden",
        "%2F..%2F",
        "",
    ] {
        assert!(prefix.key(bad).is_err(), "file name {bad:?}");
    }
    for bad in [
        "../../etc/passwd",
        "/abs/key",
        "a//b",
        "DEFAULT/..",
        "a/./b",
        "tab\tkey",
    ] {
        assert!(ObjectKey::parse(bad).is_err(), "key {bad:?}");
    }
    assert!(JobId::parse(&long_job).is_err(), "over-long id");
    assert!(StagePrefix::parse(&format!("DEFAULT/1/{long_job}_stage1/")).is_err());
    // A stray file with an invalid name in the local folder is not listed as a key.
    let (dir, storage) = local().await;
    let stray = dir.path().join(prefix.to_string());
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("bad name.parquet"), b"x").unwrap();
    assert!(storage.list(&prefix.prefix()).await.unwrap().is_empty());
}
