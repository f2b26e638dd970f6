//! Every log line of the test binary, kept in memory.
//!
//! A thread-scoped subscriber (`set_default`) misses events when tests run in parallel: tracing
//! caches each callsite's interest globally, so a callsite first hit under the no-op dispatcher
//! can stay silent. One global subscriber, installed on first use, sees everything from then on
//! (in the production JSON format); tests that check what reaches the logs read it, and nothing
//! is printed unless `TEST_LOG` is set (below). vk-parser's own events are kept at every level;
//! every other crate's (reqwest, hyper, the AWS SDK, redis, ...) are kept, at every level too,
//! only while a test holds [`capture_everything`]'s guard: always on, they would fill memory in
//! every other test.
//!
//! `TEST_LOG=1` also prints the logs, in the readable format, through libtest's capture: a
//! failing test shows the lines of the services it ran (every test's with `--nocapture`).
//! `RUST_LOG` filters them (default `info`). [`init`] installs the subscriber then; the
//! in-process starts (`Service`, the simulator, the stream harness) call it. Child processes
//! (`vk-parser run` in the chaos and SIGTERM tests) keep their own output.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{filter, EnvFilter, Layer, Registry};

/// Tests currently holding a [`capture_everything`] guard.
static EVERYTHING: AtomicUsize = AtomicUsize::new(0);

/// A `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The process-wide log capture, installed on first call.
pub fn captured() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        // A dynamic filter: its interest is "sometimes", so the switch is read at every event
        // rather than cached per callsite.
        let keep = filter::dynamic_filter_fn(|meta, _| {
            meta.target().starts_with("vk_parser") || EVERYTHING.load(Ordering::SeqCst) > 0
        });
        let shown = test_log().then(|| {
            let level =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(level)
        });
        let subscriber = Registry::default()
            .with(vk_parser::telemetry::json_layer(logs.clone()).with_filter(keep))
            .with(shown);
        // Another test binary component may have installed one first: then logs go there.
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

/// Whether `TEST_LOG` asks for the logs (set, and neither empty nor `0`).
fn test_log() -> bool {
    std::env::var("TEST_LOG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// With `TEST_LOG` set, installs the subscriber now, so the logs of what the test starts next
/// are shown; without, nothing (the capture is installed by the tests that read it).
pub fn init() {
    if test_log() {
        captured();
    }
}

/// Keeps every crate's events, at every level, until dropped (see the module header).
#[must_use = "events are kept only while the guard lives"]
pub struct Everything(());

impl Drop for Everything {
    fn drop(&mut self) {
        EVERYTHING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installs the capture if needed and keeps every crate's events until the guard drops.
pub fn capture_everything() -> Everything {
    captured();
    EVERYTHING.fetch_add(1, Ordering::SeqCst);
    Everything(())
}
