//! Start-up: the app checks Redis and storage and says what is missing.

use vk_parser::app::{App, AppError};
use vk_parser::settings::Settings;

use crate::support::env;
use crate::support::redis_server::RedisServer;

#[tokio::test(flavor = "multi_thread")]
async fn builds_against_a_real_redis_and_a_local_folder() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let settings = Settings::load(
        None,
        &env(&[
            ("REDIS_URL", &redis.url()),
            ("STORAGE_URL", data.path().to_str().unwrap()),
            ("VKP_OPS__LISTEN", "127.0.0.1:0"),
        ]),
    )
    .unwrap();
    let app = App::build(settings).await.expect("app builds");
    assert!(app
        .storage()
        .describe()
        .contains(data.path().to_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn says_when_redis_is_unreachable_without_leaking_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(
        None,
        &env(&[
            ("REDIS_URL", "redis://:redis-pass-9@127.0.0.1:1/"),
            ("STORAGE_URL", dir.path().to_str().unwrap()),
            ("VKP_OPS__LISTEN", "127.0.0.1:0"),
        ]),
    )
    .unwrap();
    let err = App::build(settings).await.unwrap_err();
    // Refused at once, or (the connection manager retrying) no answer in time.
    assert!(
        matches!(err, AppError::Redis { .. } | AppError::RedisTimeout { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("REDIS_URL"), "{message}");
    assert!(!message.contains("redis-pass-9"), "{message}");
}
