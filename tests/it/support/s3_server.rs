//! A real S3-protocol server in-process (s3s-fs over a temp folder) on 127.0.0.1:0, with
//! signature checking on, so the S3 backend is tested against the wire protocol, not a stub.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

/// Access key accepted by the test server.
pub const ACCESS_KEY: &str = "test-access-key";
/// Secret key accepted by the test server.
pub const SECRET_KEY: &str = "test-secret-key-0123456789";

/// A running S3 server; stops when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The folder behind it (buckets are sub-folders).
    pub root: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Starts a server with `bucket` already created, accepting [`ACCESS_KEY`] / [`SECRET_KEY`].
    pub async fn start(bucket: &str) -> S3Server {
        S3Server::start_with_secret(bucket, SECRET_KEY).await
    }

    /// Starts a server with `bucket` already created, accepting [`ACCESS_KEY`] / `secret`.
    pub async fn start_with_secret(bucket: &str, secret: &str) -> S3Server {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, secret));
        let service = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            endpoint,
            root,
            task,
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
