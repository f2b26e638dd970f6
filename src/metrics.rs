//! The service's Prometheus metrics: a small registry and its text exposition (format 0.0.4).
//!
//! Owns every metric name, help text, label name and bucket layout, so the whole operations
//! vocabulary is readable in one file. Callers record through named methods
//! ([`Metrics::job_started`], [`Metrics::vk_request`], ...) and never build names or labels.
//!
//! Why not the `prometheus` crate: we export about a dozen metrics, and a registry this size is
//! shorter than the glue for a general one, has no global state (tests run many apps in one
//! process) and adds no dependency. Plain counters and gauges are atomics; labelled families sit
//! behind a `std::sync::Mutex` held only for a map update or a render, never across an `.await`.
//!
//! Label values come from our code but may carry anything (a VK method name, an error reason), so
//! they are escaped on output, truncated to [`MAX_LABEL_VALUE_BYTES`], and each family keeps at
//! most [`MAX_LABEL_SETS`] label sets: past that, new label sets are folded into one whose values
//! are all `other`, and `vkp_metrics_label_sets_folded_total` counts the folded samples. A bug
//! that invents label values therefore shows up on a dashboard instead of growing memory.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Most label sets one labelled metric keeps before folding new ones into `other`.
pub const MAX_LABEL_SETS: usize = 1_000;

/// Longest label value kept, in bytes; longer values are cut at a character boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// The value every label takes in the series that collects folded samples.
pub const OVERFLOW_LABEL_VALUE: &str = "other";

/// Upper bounds (seconds) of the finite job-duration buckets; `+Inf` is implied.
///
/// A stage runs from a second (a cached or skipped target) to an hour (a large stage 2 graph),
/// so the buckets are spread over that range rather than Prometheus' sub-second defaults.
pub const JOB_DURATION_BUCKETS: [f64; 7] = [1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// The registry: every metric the service exports, shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    jobs_started: Family<u64>,
    jobs_finished: Family<u64>,
    job_duration: Family<Histogram>,
    jobs_in_flight: AtomicI64,
    entries_reclaimed: AtomicU64,
    dead_lettered: Family<u64>,
    vk_requests: Family<u64>,
    // Nanoseconds, so concurrent adds are exact integer atomics; rendered as seconds.
    rate_limit_wait_nanos: AtomicU64,
    rate_limiter_errors: AtomicU64,
    group_lag: AtomicI64,
    group_pending: AtomicI64,
    label_sets_folded: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry: counters at zero, no label sets yet.
    pub fn new() -> Metrics {
        Metrics {
            jobs_started: Family::new(
                "vkp_jobs_started_total",
                "Job stages taken from the stream and started.",
                &["report_type", "stage"],
            ),
            jobs_finished: Family::new(
                "vkp_jobs_finished_total",
                "Job stage attempts finished, by outcome (completed, failed, retried, interrupted) and failure reason.",
                &["report_type", "stage", "outcome", "reason"],
            ),
            job_duration: Family::new(
                "vkp_job_duration_seconds",
                "Wall-clock time from start to finish of a job stage.",
                &["report_type", "stage"],
            ),
            jobs_in_flight: AtomicI64::new(0),
            entries_reclaimed: AtomicU64::new(0),
            dead_lettered: Family::new(
                "vkp_dead_lettered_total",
                "Stream entries moved to the dead-letter stream, by reason.",
                &["reason"],
            ),
            vk_requests: Family::new(
                "vkp_vk_requests_total",
                "Requests sent to the VK API, by method and outcome.",
                &["method", "outcome"],
            ),
            rate_limit_wait_nanos: AtomicU64::new(0),
            rate_limiter_errors: AtomicU64::new(0),
            group_lag: AtomicI64::new(0),
            group_pending: AtomicI64::new(0),
            label_sets_folded: AtomicU64::new(0),
        }
    }

    /// Counts a job stage that has started.
    pub fn job_started(&self, report_type: &str, stage: u8) {
        let stage = stage.to_string();
        self.jobs_started
            .update(&[report_type, &stage], &self.label_sets_folded, |v| {
                *v = v.saturating_add(1)
            });
    }

    /// Counts a finished job stage and records how long it took.
    pub fn job_finished(
        &self,
        report_type: &str,
        stage: u8,
        outcome: &str,
        reason: Option<&str>,
        duration: Duration,
    ) {
        let stage = stage.to_string();
        let reason = reason.unwrap_or("");
        self.jobs_finished.update(
            &[report_type, &stage, outcome, reason],
            &self.label_sets_folded,
            |v| *v = v.saturating_add(1),
        );
        self.job_duration
            .update(&[report_type, &stage], &self.label_sets_folded, |h| {
                h.observe(duration.as_secs_f64())
            });
    }

    /// Moves the in-flight job gauge by `delta` (+1 on start, -1 on finish).
    pub fn in_flight_add(&self, delta: i64) {
        self.jobs_in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts stream entries reclaimed from dead consumers.
    pub fn entries_reclaimed(&self, n: u64) {
        self.entries_reclaimed.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one entry sent to the dead-letter stream.
    pub fn dead_lettered(&self, reason: &str) {
        self.dead_lettered
            .update(&[reason], &self.label_sets_folded, |v| {
                *v = v.saturating_add(1)
            });
    }

    /// Counts one VK API request.
    pub fn vk_request(&self, method: &str, outcome: &str) {
        self.vk_requests
            .update(&[method, outcome], &self.label_sets_folded, |v| {
                *v = v.saturating_add(1)
            });
    }

    /// Adds time spent waiting for the VK rate limiter.
    pub fn rate_limit_wait(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        // Saturate rather than wrap: a counter that jumps back to zero reads as a restart.
        let _ = self.rate_limit_wait_nanos.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |total| Some(total.saturating_add(nanos)),
        );
    }

    /// Counts one request not sent because the shared rate limiter (Redis) failed.
    pub fn rate_limiter_error(&self) {
        self.rate_limiter_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the consumer group's lag (entries not yet delivered to any consumer).
    pub fn set_group_lag(&self, lag: i64) {
        self.group_lag.store(lag, Ordering::Relaxed);
    }

    /// Sets the consumer group's pending count (delivered, not yet acknowledged).
    pub fn set_pending(&self, pending: i64) {
        self.group_pending.store(pending, Ordering::Relaxed);
    }

    /// The whole registry in the Prometheus text format, metrics in a fixed order and label sets
    /// sorted, so two renders of the same state are byte-equal.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // `fmt::Write` for `String` never fails, so the result carries no information.
        let _ = self.write_exposition(&mut out);
        out
    }

    fn write_exposition(&self, out: &mut String) -> fmt::Result {
        self.jobs_started.write_counters(out)?;
        self.jobs_finished.write_counters(out)?;
        self.job_duration.write_histograms(out)?;
        write_single(
            out,
            "vkp_jobs_in_flight",
            "Job stages being worked on by this replica.",
            "gauge",
            self.jobs_in_flight.load(Ordering::Relaxed),
        )?;
        write_single(
            out,
            "vkp_entries_reclaimed_total",
            "Stream entries claimed from consumers that stopped answering.",
            "counter",
            self.entries_reclaimed.load(Ordering::Relaxed),
        )?;
        self.dead_lettered.write_counters(out)?;
        self.vk_requests.write_counters(out)?;
        let waited = self.rate_limit_wait_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        write_single(
            out,
            "vkp_rate_limit_wait_seconds_total",
            "Time spent waiting for the VK rate limiter.",
            "counter",
            FloatValue(waited),
        )?;
        write_single(
            out,
            "vkp_rate_limiter_errors_total",
            "VK requests not sent because the shared rate limiter (Redis) failed.",
            "counter",
            self.rate_limiter_errors.load(Ordering::Relaxed),
        )?;
        write_single(
            out,
            "vkp_group_lag",
            "Entries in the stream not yet delivered to the consumer group.",
            "gauge",
            self.group_lag.load(Ordering::Relaxed),
        )?;
        write_single(
            out,
            "vkp_group_pending",
            "Entries delivered to the consumer group and not yet acknowledged.",
            "gauge",
            self.group_pending.load(Ordering::Relaxed),
        )?;
        write_single(
            out,
            "vkp_metrics_label_sets_folded_total",
            "Samples folded into the `other` label set because their metric hit the label-set cap.",
            "counter",
            self.label_sets_folded.load(Ordering::Relaxed),
        )
    }
}

/// One labelled metric: its name, help, label names and a bounded map of label sets.
#[derive(Debug)]
struct Family<V> {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    // A BTreeMap rather than a HashMap so a render walks label sets in sorted order without
    // sorting; the map is small (capped) and updated at job and request rate, not in hot loops.
    series: Mutex<BTreeMap<Vec<String>, V>>,
}

impl<V: Default> Family<V> {
    fn new(name: &'static str, help: &'static str, label_names: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            label_names,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies `f` to the series for `values`, creating it, or folding it into `other` when the
    /// family is full.
    fn update(&self, values: &[&str], folded: &AtomicU64, f: impl FnOnce(&mut V)) {
        let key: Vec<String> = values.iter().map(|v| truncate_label(v)).collect();
        let mut series = lock(&self.series);
        if let Some(value) = series.get_mut(&key) {
            f(value);
            return;
        }
        // The overflow series may be the 1,001st entry: it is one fixed key, so the bound holds.
        let key = if series.len() < MAX_LABEL_SETS {
            key
        } else {
            folded.fetch_add(1, Ordering::Relaxed);
            vec![OVERFLOW_LABEL_VALUE.to_owned(); self.label_names.len()]
        };
        f(series.entry(key).or_default());
    }

    fn write_header(&self, out: &mut String, kind: &str) -> fmt::Result {
        writeln!(out, "# HELP {} {}", self.name, self.help)?;
        writeln!(out, "# TYPE {} {}", self.name, kind)
    }
}

impl Family<u64> {
    fn write_counters(&self, out: &mut String) -> fmt::Result {
        self.write_header(out, "counter")?;
        for (values, count) in lock(&self.series).iter() {
            write!(out, "{}", self.name)?;
            write_labels(out, self.label_names, values, None)?;
            writeln!(out, " {count}")?;
        }
        Ok(())
    }
}

impl Family<Histogram> {
    fn write_histograms(&self, out: &mut String) -> fmt::Result {
        self.write_header(out, "histogram")?;
        for (values, h) in lock(&self.series).iter() {
            // Buckets are kept per interval and made cumulative here, as the format requires.
            let mut cumulative = 0u64;
            for (bound, in_bucket) in JOB_DURATION_BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative = cumulative.saturating_add(*in_bucket);
                write!(out, "{}_bucket", self.name)?;
                let le = FloatValue(*bound).to_string();
                write_labels(out, self.label_names, values, Some(&le))?;
                writeln!(out, " {cumulative}")?;
            }
            write!(out, "{}_bucket", self.name)?;
            write_labels(out, self.label_names, values, Some("+Inf"))?;
            writeln!(out, " {}", h.count)?;
            write!(out, "{}_sum", self.name)?;
            write_labels(out, self.label_names, values, None)?;
            writeln!(out, " {}", FloatValue(h.sum))?;
            write!(out, "{}_count", self.name)?;
            write_labels(out, self.label_names, values, None)?;
            writeln!(out, " {}", h.count)?;
        }
        Ok(())
    }
}

/// One histogram series: observations per bucket interval (not cumulative), their count and sum.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; JOB_DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        // `le` is inclusive: an observation equal to a bound belongs to that bucket. Values above
        // the last bound (and NaN, which no Duration yields) land only in `+Inf`, i.e. `count`.
        if let Some(i) = JOB_DURATION_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] = self.buckets[i].saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum += seconds;
    }
}

/// A sample value in the exposition's float syntax (`+Inf`, `-Inf`, `NaN`, else Rust's `{}`,
/// which never uses exponent notation and prints whole numbers without a fraction).
struct FloatValue(f64);

impl fmt::Display for FloatValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(f, "{v}")
        }
    }
}

/// Writes an unlabelled metric: help, type and its one sample.
fn write_single(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    value: impl fmt::Display,
) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")?;
    writeln!(out, "{name} {value}")
}

/// Writes `{a="x",b="y"}`, with an `le` label last when given; nothing for an empty set.
fn write_labels(
    out: &mut String,
    names: &[&str],
    values: &[String],
    le: Option<&str>,
) -> fmt::Result {
    let pairs = names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .chain(le.map(|le| ("le", le)));
    let mut first = true;
    for (name, value) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        write!(out, "{name}=\"")?;
        write_escaped(out, value);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    Ok(())
}

/// Escapes a label value as the text format asks: backslash, double quote and line feed.
fn write_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The label value as stored: at most [`MAX_LABEL_VALUE_BYTES`], cut at a character boundary.
fn truncate_label(value: &str) -> String {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Locks a family's map. A poisoned lock only means a thread panicked mid-update of a counter;
/// the numbers are still worth exporting, so we take the data rather than propagate the panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The lines of `metric`'s block: its `# HELP`, `# TYPE` and samples, in rendered order.
    fn block(rendered: &str, metric: &str) -> Vec<String> {
        let help = format!("# HELP {metric} ");
        let start = rendered
            .lines()
            .position(|l| l.starts_with(&help))
            .unwrap_or_else(|| panic!("{metric} missing from:\n{rendered}"));
        rendered
            .lines()
            .skip(start)
            .enumerate()
            .take_while(|(i, l)| *i < 2 || !l.starts_with("# HELP"))
            .map(|(_, l)| l.to_owned())
            .collect()
    }

    #[test]
    fn unlabelled_counter_renders_help_type_and_value() {
        let m = Metrics::new();
        m.entries_reclaimed(3);
        m.entries_reclaimed(4);
        assert_eq!(
            block(&m.render(), "vkp_entries_reclaimed_total"),
            [
                "# HELP vkp_entries_reclaimed_total Stream entries claimed from consumers that stopped answering.",
                "# TYPE vkp_entries_reclaimed_total counter",
                "vkp_entries_reclaimed_total 7",
            ]
        );
    }

    #[test]
    fn gauges_go_both_ways_and_can_be_negative() {
        let m = Metrics::new();
        m.in_flight_add(2);
        m.in_flight_add(-1);
        m.set_group_lag(-5);
        m.set_pending(12);
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_jobs_in_flight"),
            [
                "# HELP vkp_jobs_in_flight Job stages being worked on by this replica.",
                "# TYPE vkp_jobs_in_flight gauge",
                "vkp_jobs_in_flight 1",
            ]
        );
        assert_eq!(block(&r, "vkp_group_lag")[2], "vkp_group_lag -5");
        assert_eq!(block(&r, "vkp_group_pending")[2], "vkp_group_pending 12");
    }

    #[test]
    fn labelled_counter_renders_sorted_label_sets() {
        let m = Metrics::new();
        m.vk_request("users.get", "ok");
        m.vk_request("friends.get", "ok");
        m.vk_request("friends.get", "ok");
        m.vk_request("friends.get", "error_6");
        assert_eq!(
            block(&m.render(), "vkp_vk_requests_total"),
            [
                "# HELP vkp_vk_requests_total Requests sent to the VK API, by method and outcome.",
                "# TYPE vkp_vk_requests_total counter",
                r#"vkp_vk_requests_total{method="friends.get",outcome="error_6"} 1"#,
                r#"vkp_vk_requests_total{method="friends.get",outcome="ok"} 2"#,
                r#"vkp_vk_requests_total{method="users.get",outcome="ok"} 1"#,
            ]
        );
    }

    #[test]
    fn labelled_family_without_samples_renders_only_its_header() {
        let r = Metrics::new().render();
        assert_eq!(block(&r, "vkp_dead_lettered_total").len(), 2);
    }

    #[test]
    fn job_finished_counts_with_empty_reason_when_none() {
        let m = Metrics::new();
        m.job_started("DEFAULT", 1);
        m.job_finished("DEFAULT", 1, "completed", None, Duration::from_secs(2));
        m.job_finished(
            "DEFAULT",
            1,
            "failed",
            Some("vk_access_denied"),
            Duration::ZERO,
        );
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_jobs_started_total")[2],
            r#"vkp_jobs_started_total{report_type="DEFAULT",stage="1"} 1"#
        );
        assert_eq!(
            block(&r, "vkp_jobs_finished_total")[2..],
            [
                r#"vkp_jobs_finished_total{report_type="DEFAULT",stage="1",outcome="completed",reason=""} 1"#,
                r#"vkp_jobs_finished_total{report_type="DEFAULT",stage="1",outcome="failed",reason="vk_access_denied"} 1"#,
            ]
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inf_equals_count() {
        let m = Metrics::new();
        // 0.5 s -> le=1; 1 s exactly -> le=1 (inclusive); 10 s -> le=15; 4000 s -> only +Inf.
        for secs in [0.5, 1.0, 10.0, 4000.0] {
            m.job_finished(
                "HANDSHAKES",
                2,
                "completed",
                None,
                Duration::from_secs_f64(secs),
            );
        }
        let l = r#"report_type="HANDSHAKES",stage="2""#;
        let expected: Vec<String> = [
            "# HELP vkp_job_duration_seconds Wall-clock time from start to finish of a job stage."
                .to_owned(),
            "# TYPE vkp_job_duration_seconds histogram".to_owned(),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="1"}} 2"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="5"}} 2"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="15"}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="60"}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="300"}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="900"}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="3600"}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{{l},le="+Inf"}} 4"#),
            format!(r#"vkp_job_duration_seconds_sum{{{l}}} 4011.5"#),
            format!(r#"vkp_job_duration_seconds_count{{{l}}} 4"#),
        ]
        .into();
        assert_eq!(block(&m.render(), "vkp_job_duration_seconds"), expected);
    }

    #[test]
    fn rate_limit_wait_renders_fractional_seconds() {
        let m = Metrics::new();
        m.rate_limit_wait(Duration::from_millis(250));
        m.rate_limit_wait(Duration::from_millis(1000));
        assert_eq!(
            block(&m.render(), "vkp_rate_limit_wait_seconds_total")[2],
            "vkp_rate_limit_wait_seconds_total 1.25"
        );
        // A huge wait saturates instead of wrapping the counter to a small number.
        m.rate_limit_wait(Duration::MAX);
        m.rate_limit_wait(Duration::MAX);
        assert_eq!(m.rate_limit_wait_nanos.load(Ordering::Relaxed), u64::MAX);
    }

    #[test]
    fn shared_limiter_failures_are_counted() {
        let m = Metrics::new();
        m.rate_limiter_error();
        m.rate_limiter_error();
        assert_eq!(
            block(&m.render(), "vkp_rate_limiter_errors_total")[2],
            "vkp_rate_limiter_errors_total 2"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.dead_lettered("back\\slash \"quoted\"\nnext line");
        assert_eq!(
            block(&m.render(), "vkp_dead_lettered_total")[2],
            r#"vkp_dead_lettered_total{reason="back\\slash \"quoted\"\nnext line"} 1"#
        );
    }

    #[test]
    fn long_label_values_are_cut_at_a_char_boundary() {
        let m = Metrics::new();
        // 'я' is two bytes, so byte 128 falls between characters only for an even prefix.
        let long = format!("x{}", "я".repeat(100));
        m.dead_lettered(&long);
        let stored = lock(&m.dead_lettered.series).keys().next().cloned();
        let stored = stored.expect("one label set")[0].clone();
        assert!(stored.len() <= MAX_LABEL_VALUE_BYTES);
        assert!(long.starts_with(&stored));
        assert_eq!(stored.len(), MAX_LABEL_VALUE_BYTES - 1);
    }

    #[test]
    fn label_sets_beyond_the_cap_fold_into_other() {
        let m = Metrics::new();
        let extra = 25;
        for i in 0..MAX_LABEL_SETS + extra {
            m.vk_request(&format!("method.{i:05}"), "ok");
        }
        // A label set admitted before the cap keeps counting on its own.
        m.vk_request("method.00000", "ok");
        let lines = block(&m.render(), "vkp_vk_requests_total");
        assert_eq!(lines.len(), 2 + MAX_LABEL_SETS + 1);
        assert!(lines.contains(&format!(
            r#"vkp_vk_requests_total{{method="other",outcome="other"}} {extra}"#
        )));
        assert!(lines.contains(
            &r#"vkp_vk_requests_total{method="method.00000",outcome="ok"} 2"#.to_owned()
        ));
        assert_eq!(
            block(&m.render(), "vkp_metrics_label_sets_folded_total")[2],
            format!("vkp_metrics_label_sets_folded_total {extra}")
        );
    }

    #[test]
    fn concurrent_increments_add_up() {
        let m = Arc::new(Metrics::new());
        let threads = 8;
        let per_thread = 5_000;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        m.vk_request("friends.get", "ok");
                        m.entries_reclaimed(1);
                        m.in_flight_add(1);
                        m.job_finished("DEFAULT", 1, "completed", None, Duration::from_secs(t));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker thread");
        }
        let total = threads * per_thread;
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_vk_requests_total")[2],
            format!(r#"vkp_vk_requests_total{{method="friends.get",outcome="ok"}} {total}"#)
        );
        assert_eq!(
            block(&r, "vkp_entries_reclaimed_total")[2],
            format!("vkp_entries_reclaimed_total {total}")
        );
        assert_eq!(
            block(&r, "vkp_jobs_in_flight")[2],
            format!("vkp_jobs_in_flight {total}")
        );
        assert!(r.contains(&format!(
            r#"vkp_job_duration_seconds_count{{report_type="DEFAULT",stage="1"}} {total}"#
        )));
        // Threads 0..8 wait 0..7 s each: sum = 5000 * (0+1+...+7) = 140000, exact in f64.
        assert!(
            r.contains(r#"vkp_job_duration_seconds_sum{report_type="DEFAULT",stage="1"} 140000"#)
        );
    }

    #[test]
    fn render_is_deterministic_and_ends_with_a_newline() {
        let m = Metrics::new();
        m.vk_request("b", "ok");
        m.vk_request("a", "ok");
        m.job_finished("DEFAULT", 1, "completed", None, Duration::from_secs(1));
        let first = m.render();
        assert_eq!(first, m.render());
        assert!(first.ends_with('\n'));
        // Every non-comment line is `name[{labels}] value`.
        for line in first.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(
                line.rsplit_once(' ').map(|(_, v)| v.parse::<f64>().is_ok()),
                Some(true),
                "{line}"
            );
        }
    }
}
