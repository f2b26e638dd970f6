//! The whole app in-process, as the report tests and the bad-input catalogue run it: a private
//! redis-server, local storage in a temp folder (or the S3 server), the simulator over HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vk_parser::app::App;
use vk_parser::tables::{from_parquet, Table};
use vk_sim::SimHandle;

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

    pub async fn publish(&self, event_type: &str, payload: Value) {
        let mut conn = redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: String = redis::cmd("XADD")
            .arg("stream:parser:vk")
            .arg("*")
            .arg("event_type")
            .arg(event_type)
            .arg("payload")
            .arg(payload.to_string())
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    /// Every status of `job`'s `stage` on the status stream so far, in order.
    pub async fn statuses(&self, job: &str, stage: u8) -> Vec<Value> {
        let mut conn = redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let entries: Vec<(String, BTreeMap<String, String>)> = redis::cmd("XRANGE")
            .arg("stream:report:status-change")
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        entries
            .iter()
            .filter_map(|(_, f)| serde_json::from_str::<Value>(f.get("payload")?).ok())
            .filter(|s| s["jobId"] == job && s["stage"] == stage)
            .collect()
    }

    /// Waits for the final status of `job`'s `stage` and returns it.
    pub async fn final_status(&self, job: &str, stage: u8) -> Value {
        for _ in 0..1200 {
            let finals: Vec<Value> = self
                .statuses(job, stage)
                .await
                .into_iter()
                .filter(|s| s["status"] != "IN_PROGRESS")
                .collect();
            if let Some(status) = finals.first() {
                assert_eq!(finals.len(), 1, "one final status per stage");
                return status.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no final status for {job} stage {stage}");
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
