//! The whole app in-process, as the report tests and the bad-input catalogue run it: a private
//! redis-server, local storage in a temp folder (or the S3 server), the simulator over HTTP;
//! and the report's two stages driven through it (publishing and waiting go through
//! [`Streams`], the one implementation of both).

use std::path::PathBuf;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::tables::{from_parquet, Table};
use vk_sim::SimHandle;

use crate::support::backend::{report_created, stage2_created, Streams};
use crate::support::logs;
use crate::support::redis_server::RedisServer;
use crate::support::s3_server::{S3Server, ACCESS_KEY, SECRET_KEY};
use crate::support::sim;

/// The app on a private Redis and a temp folder (or an S3 server), talking to `sim`.
pub struct Service {
    pub redis: RedisServer,
    /// Where the stage files land on disk: the temp folder, or the S3 server's bucket folder.
    pub files: PathBuf,
    pub _data: tempfile::TempDir,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl Service {
    pub async fn start(sim: &SimHandle, extra: &[(&str, &str)]) -> Service {
        let data = tempfile::tempdir().unwrap();
        let files = data.path().to_path_buf();
        let storage = [("STORAGE_URL", files.to_str().unwrap().to_owned())];
        Service::start_with(sim, data, files, &storage, extra).await
    }

    /// The app writing to the S3 server's bucket `reports`.
    pub async fn start_s3(sim: &SimHandle, s3: &S3Server) -> Service {
        Service::start_s3_with(sim, s3, SECRET_KEY, &[]).await
    }

    /// The app writing to the S3 server's bucket `reports` with the S3 secret `secret`.
    pub async fn start_s3_with(
        sim: &SimHandle,
        s3: &S3Server,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let storage = [
            ("STORAGE_URL", "s3://reports".to_owned()),
            ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ];
        let files = s3.root.path().join("reports");
        Service::start_with(sim, tempfile::tempdir().unwrap(), files, &storage, extra).await
    }

    pub async fn start_with(
        sim: &SimHandle,
        data: tempfile::TempDir,
        files: PathBuf,
        storage: &[(&str, String)],
        extra: &[(&str, &str)],
    ) -> Service {
        logs::init();
        let redis = RedisServer::start();
        let mut vars: Vec<(&str, String)> = storage.to_vec();
        vars.extend([
            ("REDIS_URL", redis.url()),
            ("VKP_OPS__LISTEN", "127.0.0.1:0".to_owned()),
            ("VKP_STREAM__BLOCK", "100ms".to_owned()),
            ("VKP_STREAM__PROGRESS_INTERVAL", "100ms".to_owned()),
        ]);
        vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let settings = sim::settings(sim, &pairs);
        let app = App::build(settings).await.expect("app builds");
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { app.run_until_stopped(stop).await.expect("app runs") }
        });
        Service {
            redis,
            files,
            _data: data,
            stop,
            task,
        }
    }

    /// The service's streams on its Redis.
    pub async fn streams(&self) -> Streams {
        Streams::open(&self.redis.url()).await
    }

    /// Publishes `event_type` with `payload` on the input stream.
    pub async fn publish(&self, event_type: &str, payload: Value) {
        self.streams().await.publish(event_type, &payload).await;
    }

    /// Every status of `job`'s `stage` on the status stream so far, in order.
    pub async fn statuses(&self, job: &str, stage: u8) -> Vec<Value> {
        self.streams().await.statuses_of(job, stage).await
    }

    /// Waits for the final status of `job`'s `stage` and returns it.
    pub async fn final_status(&self, job: &str, stage: u8) -> Value {
        self.streams().await.final_status(job, stage).await
    }

    /// Publishes stage 1 of a report and waits for STAGE1_COMPLETED; returns that status.
    pub async fn run_stage1(&self, job: &str, kind: &str, seeds: &[u32], author: u32) -> Value {
        self.publish("ReportCreated", report_created(job, kind, seeds, author))
            .await;
        let s1 = self.final_status(job, 1).await;
        assert_eq!(s1["status"], "STAGE1_COMPLETED", "{s1}");
        s1
    }

    /// Runs stage 1 and stage 2 of a report; returns the two prefixes.
    pub async fn run_report(
        &self,
        job: &str,
        kind: &str,
        seeds: &[u32],
        author: u32,
    ) -> (String, String) {
        self.run_report_with(
            job,
            report_created(job, kind, seeds, author),
            stage2_created(job, kind, author),
        )
        .await
    }

    /// Runs a report from its two payloads; returns the two prefixes.
    pub async fn run_report_with(
        &self,
        job: &str,
        stage1: Value,
        stage2: Value,
    ) -> (String, String) {
        self.publish("ReportCreated", stage1).await;
        let s1 = self.final_status(job, 1).await;
        assert_eq!(s1["status"], "STAGE1_COMPLETED", "{s1}");
        self.publish("Stage2Created", stage2).await;
        let s2 = self.final_status(job, 2).await;
        assert_eq!(s2["status"], "COMPLETED", "{s2}");
        (
            s1["artifacts"]["prefix"].as_str().unwrap().to_owned(),
            s2["artifacts"]["prefix"].as_str().unwrap().to_owned(),
        )
    }

    pub fn table(&self, prefix: &str, name: &str) -> Table {
        let path: PathBuf = self.files.join(prefix).join(format!("{name}.parquet"));
        from_parquet(
            name,
            &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .unwrap()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// A table's rows as JSON values by column name (nulls as `null`).
pub fn table_rows(table: &Table) -> Vec<std::collections::BTreeMap<String, Value>> {
    use serde_json::json;
    use vk_parser::tables::ColumnData;
    (0..table.rows())
        .map(|i| {
            table
                .columns
                .iter()
                .map(|c| {
                    let v = match &c.data {
                        ColumnData::I64(v) => json!(v[i]),
                        ColumnData::OptI64(v) => json!(v[i]),
                        ColumnData::I8(v) => json!(v[i]),
                        ColumnData::Bool(v) => json!(v[i]),
                        ColumnData::F64(v) => json!(v[i]),
                        ColumnData::Str(v) => json!(v[i]),
                    };
                    (c.name.clone(), v)
                })
                .collect()
        })
        .collect()
}
