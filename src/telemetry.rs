//! Logging set-up: a `tracing` subscriber built apart from being installed.
//!
//! `RUST_LOG` wins over the configured level, so an operator can turn up one module without a
//! redeploy. Production writes one JSON object per line (with the current span's fields, so
//! every line of a job carries report_id, job_id and stage); development writes readable lines.
//! Building returns the subscriber instead of installing it, so tests can scope one to a thread.

use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::settings::Environment;

/// A subscriber for `environment` writing to `sink`; the filter is `RUST_LOG` or else `default_level`.
pub fn subscriber<W>(
    environment: Environment,
    default_level: &str,
    sink: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    match environment {
        Environment::Production => {
            Box::new(Registry::default().with(filter).with(json_layer(sink)))
        }
        Environment::Development => Box::new(
            Registry::default()
                .with(filter)
                .with(fmt::layer().with_target(true).with_writer(sink)),
        ),
    }
}

/// The production line format: one JSON object per event with the current span's fields (so
/// every line of a job names it). Public so tests capture exactly what production writes.
pub fn json_layer<S, W>(sink: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(sink)
}

/// Installs `subscriber` for the whole process; call once, from `main`.
pub fn init(subscriber: Box<dyn Subscriber + Send + Sync>) -> Result<(), TelemetryError> {
    tracing::subscriber::set_global_default(subscriber).map_err(|_| TelemetryError::AlreadySet)
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Another subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadySet,
}
