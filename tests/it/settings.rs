//! Settings layering: defaults < file < environment, the seed's variable names, and the
//! messages a bad value gets.

use std::io::Write;
use std::num::NonZeroU32;
use std::time::Duration;

use vk_parser::key::KeyPrefix;
use vk_parser::settings::StorageLocation;
use vk_parser::settings::{Environment, RateLimiterKind, Settings, SettingsError};

use crate::support::env;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn defaults_match_the_seed_service() {
    let s = Settings::load(None, &env(&[("HOSTNAME", "worker-7")])).unwrap();
    assert_eq!(s.redis.stream_vk_parser, "stream:parser:vk");
    assert_eq!(s.redis.stream_status_change, "stream:report:status-change");
    assert_eq!(s.redis.stream_graph_worker, "stream:graph-worker");
    assert_eq!(s.redis.consumer_group, "cg_vk_parser");
    assert_eq!(
        s.redis.consumer_name,
        format!("worker-7-{}", std::process::id())
    );
    assert_eq!(s.service.max_concurrent_messages, nz(100));
    assert_eq!(s.service.max_retries, nz(3));
    assert_eq!(s.service.environment, Environment::Development);
    assert_eq!(s.vk.api_version, "5.199");
    assert_eq!(s.vk.calls_per_execute, 25);
    assert_eq!(s.vk.request_interval, Duration::from_millis(420));
    assert_eq!(s.storage.location, StorageLocation::Local("./data".into()));
    assert!(s.tokens.service_url.is_none());
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    let f = file(
        r#"
        [service]
        max_retries = 7
        environment = "production"
        [vk]
        request_interval = "500ms"
        calls_per_execute = 20
        "#,
    );
    let s = Settings::load(Some(f.path()), &env(&[])).unwrap();
    assert_eq!(s.service.max_retries, nz(7));
    assert_eq!(s.service.environment, Environment::Production);
    assert_eq!(s.vk.request_interval, Duration::from_millis(500));
    // Keys the file does not name keep their defaults.
    assert_eq!(s.service.max_concurrent_messages, nz(100));

    let s = Settings::load(
        Some(f.path()),
        &env(&[
            ("MAX_RETRIES", "9"),
            ("VKP_VK__CALLS_PER_EXECUTE", "12"),
            ("VKP_VK__REQUEST_INTERVAL", "1s"),
        ]),
    )
    .unwrap();
    assert_eq!(s.service.max_retries, nz(9));
    assert_eq!(s.vk.calls_per_execute, 12);
    assert_eq!(s.vk.request_interval, Duration::from_secs(1));
    assert_eq!(s.service.environment, Environment::Production);
}

#[test]
fn config_file_can_come_from_vkp_config_and_the_flag_wins() {
    let from_env = file("[service]\nmax_retries = 4\n");
    let from_flag = file("[service]\nmax_retries = 5\n");
    let vars = env(&[("VKP_CONFIG", from_env.path().to_str().unwrap())]);
    assert_eq!(
        Settings::load(None, &vars).unwrap().service.max_retries,
        nz(4)
    );
    assert_eq!(
        Settings::load(Some(from_flag.path()), &vars)
            .unwrap()
            .service
            .max_retries,
        nz(5)
    );
}

#[test]
fn seed_environment_names_work() {
    let s = Settings::load(
        None,
        &env(&[
            ("REDIS_URL", "redis://:hunter2@redis.internal:6380/0"),
            ("STREAM_VK_PARSER", "in"),
            ("STREAM_STATUS_CHANGE", "status"),
            ("STREAM_GRAPH_WORKER", "graph"),
            ("CG_VK_PARSER", "group"),
            ("CONSUMER_VK_PARSER", "consumer-1"),
            ("TOKEN_SERVICE_URL", "http://tokens.internal:8080"),
            ("TOKEN_SERVICE_API_KEY", "0123456789"),
            ("AWS_ACCESS_KEY_ID", "AKIA123"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-value"),
            ("AWS_ENDPOINT_URL", "http://minio:9000"),
            ("BUCKET_NAME", "vk-reports"),
            ("MAX_CONCURRENT_MESSAGES", "8"),
            ("MAX_RETRIES", "2"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.redis.url.expose(),
        "redis://:hunter2@redis.internal:6380/0"
    );
    assert_eq!(s.redis.stream_vk_parser, "in");
    assert_eq!(s.redis.stream_status_change, "status");
    assert_eq!(s.redis.stream_graph_worker, "graph");
    assert_eq!(s.redis.consumer_group, "group");
    assert_eq!(s.redis.consumer_name, "consumer-1");
    assert_eq!(
        s.tokens.service_url.as_ref().unwrap().as_str(),
        "http://tokens.internal:8080/"
    );
    // An all-digit key stays a string: environment values take the type of their key.
    assert_eq!(s.tokens.service_api_key.expose(), "0123456789");
    assert_eq!(s.storage.access_key_id.expose(), "AKIA123");
    assert_eq!(s.storage.secret_access_key.expose(), "s3cr3t-value");
    assert_eq!(
        s.storage.endpoint_url.as_ref().unwrap().as_str(),
        "http://minio:9000/"
    );
    assert_eq!(
        s.storage.location,
        StorageLocation::S3 {
            bucket: "vk-reports".into(),
            prefix: KeyPrefix::parse("").unwrap()
        }
    );
    assert_eq!(s.service.max_concurrent_messages, nz(8));
    assert_eq!(s.service.max_retries, nz(2));
}

#[test]
fn api_key_is_the_fallback_of_token_service_api_key() {
    let s = Settings::load(None, &env(&[("API_KEY", "fallback-key")])).unwrap();
    assert_eq!(s.tokens.service_api_key.expose(), "fallback-key");
    let s = Settings::load(
        None,
        &env(&[
            ("API_KEY", "fallback-key"),
            ("TOKEN_SERVICE_API_KEY", "primary-key"),
        ]),
    )
    .unwrap();
    assert_eq!(s.tokens.service_api_key.expose(), "primary-key");
}

#[test]
fn static_tokens_are_a_comma_list() {
    let s = Settings::load(
        None,
        &env(&[("VK_STATIC_TOKENS", "vk1.a.first-token, vk1.a.second-token,")]),
    )
    .unwrap();
    let tokens: Vec<&str> = s.tokens.static_tokens.iter().map(|t| t.expose()).collect();
    assert_eq!(tokens, ["vk1.a.first-token", "vk1.a.second-token"]);
}

#[test]
fn secrets_never_print() {
    let s = Settings::load(
        None,
        &env(&[
            ("REDIS_URL", "redis://:redis-password-1@host:6379"),
            ("TOKEN_SERVICE_API_KEY", "token-service-key-1"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-1"),
            ("AWS_ACCESS_KEY_ID", "aws-key-id-1"),
            ("VK_STATIC_TOKENS", "vk-token-secret-1"),
        ]),
    )
    .unwrap();
    let dump = format!("{s:?} {s:#?}");
    for secret in [
        "redis-password-1",
        "token-service-key-1",
        "aws-secret-1",
        "aws-key-id-1",
        "vk-token-secret-1",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked in settings Debug");
    }
    assert!(dump.contains("***"));
    assert_eq!(s.redis.url.to_string(), "redis://:***@host:6379");
}

/// (environment, the key the message must name, a phrase it must contain)
type BadValue = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

const BAD_VALUES: &[BadValue] = &[
    (
        &[("MAX_CONCURRENT_MESSAGES", "many")],
        "service.max_concurrent_messages",
        "expected an integer",
    ),
    (
        &[("MAX_CONCURRENT_MESSAGES", "0")],
        "service.max_concurrent_messages",
        "nonzero",
    ),
    (
        &[("MAX_RETRIES", "-1")],
        "service.max_retries",
        "MAX_RETRIES",
    ),
    (&[("REDIS_URL", "localhost:6379")], "redis.url", "redis://"),
    (&[("REDIS_URL", "http://x")], "redis.url", "scheme `http`"),
    (
        &[("VK_CALLS_PER_EXECUTE", "26")],
        "vk.calls_per_execute",
        "1 to 25",
    ),
    (
        &[("VK_REQUEST_INTERVAL", "fast")],
        "vk.request_interval",
        "VK_REQUEST_INTERVAL",
    ),
    (
        &[("VK_REQUEST_INTERVAL", "0s")],
        "vk.request_interval",
        "positive",
    ),
    (
        &[("TOKEN_SERVICE_URL", "not a url")],
        "tokens.service_url",
        "absolute URL",
    ),
    (
        &[("VKP_SERVICE__ENVIRONMENT", "staging")],
        "service.environment",
        "production",
    ),
    (&[("STORAGE_URL", "gs://bucket")], "storage.url", "s3://"),
    (&[("BUCKET_NAME", "Bad_Bucket")], "storage.url", "bucket"),
    (
        &[("STREAM_VK_PARSER", " ")],
        "redis.stream_vk_parser",
        "non-empty",
    ),
    (
        &[("VKP_VK__RATE_LIMITER", "memcached")],
        "vk.rate_limiter",
        "expected `local` or `redis`",
    ),
];

#[test]
fn the_rate_limiter_is_local_unless_set_to_redis() {
    let s = Settings::load(None, &env(&[])).unwrap();
    assert_eq!(s.vk.rate_limiter, RateLimiterKind::Local);
    let s = Settings::load(None, &env(&[("VKP_VK__RATE_LIMITER", "redis")])).unwrap();
    assert_eq!(s.vk.rate_limiter, RateLimiterKind::Redis);
}

#[test]
fn bad_values_name_their_key_and_what_was_expected() {
    for (vars, key, phrase) in BAD_VALUES {
        let err = Settings::load(None, &env(vars)).expect_err(key);
        let message = err.to_string();
        assert!(
            message.contains(key) && message.contains(phrase),
            "{vars:?}: message {message:?} should name `{key}` and say {phrase:?}"
        );
    }
}

#[test]
fn a_bad_value_in_a_file_names_the_file() {
    let f = file("[vk]\ncalls_per_execute = \"lots\"\n");
    let err = Settings::load(Some(f.path()), &env(&[])).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("vk.calls_per_execute"), "{message}");
    assert!(
        message.contains(&f.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let f = file("[service]\nmax_retriez = 3\n");
    let message = Settings::load(Some(f.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("max_retriez"), "{message}");

    let err = Settings::load(None, &env(&[("VKP_VK__CALLS_PER_EXEC", "5")])).unwrap_err();
    assert!(
        matches!(&err, SettingsError::UnknownEnv { var, .. } if var == "VKP_VK__CALLS_PER_EXEC"),
        "{err}"
    );

    let missing = Settings::load(
        Some(std::path::Path::new("/nonexistent/vkp.toml")),
        &env(&[]),
    );
    assert!(matches!(missing, Err(SettingsError::ReadFile { .. })));
    let broken = file("[service\n");
    assert!(matches!(
        Settings::load(Some(broken.path()), &env(&[])),
        Err(SettingsError::ParseFile { .. })
    ));
}

#[test]
fn a_bad_secret_value_is_not_echoed() {
    // A Redis URL that fails to parse must not bring its password into the message.
    let err = Settings::load(None, &env(&[("REDIS_URL", "redis://:pa ss@[bad")])).unwrap_err();
    assert!(!err.to_string().contains("pa ss"), "{err}");
}
