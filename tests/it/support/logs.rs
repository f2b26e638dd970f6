//! Every log line of the test binary, kept in memory.
//!
//! A thread-scoped subscriber (`set_default`) misses events when tests run in parallel: tracing
//! caches each callsite's interest globally, so a callsite first hit under the no-op dispatcher
//! can stay silent. One global subscriber, installed on first use, sees everything from then on
//! (at trace level for vk_parser, in the production JSON format); tests that check what reaches
//! the logs read it, and nothing is printed.

use std::sync::{Arc, Mutex, OnceLock};

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
        let subscriber = vk_parser::telemetry::subscriber(
            vk_parser::settings::Environment::Production,
            "vk_parser=trace",
            logs.clone(),
        );
        // Another test binary component may have installed one first: then logs go there.
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}
