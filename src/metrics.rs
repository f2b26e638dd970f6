//! The service's Prometheus metrics: one registry, rendered as OpenMetrics text for `/metrics`.
//!
//! Owns every metric name, help text, label name and bucket layout, so the whole operations
//! vocabulary is readable in one file. Callers record through named methods
//! ([`Metrics::job_started`], [`Metrics::vk_request`], ...) and never build names or labels.
//!
//! The registry is the `prometheus-client` crate's: the Prometheus project's own Rust client,
//! which encodes the OpenMetrics text format, keeps no global registry (the registry lives inside
//! [`Metrics`], so tests run many apps in one process) and takes typed label sets
//! (`#[derive(EncodeLabelSet)]` structs below) instead of lists of strings. Counters are
//! registered without their `_total` suffix and durations with [`Unit::Seconds`]; the crate adds
//! both, so the names Prometheus stores are the ones in docs/operations.md.
//!
//! What we add on top, because label values come from our code but may carry anything (a VK
//! method name, an error reason): each value is cut to [`MAX_LABEL_VALUE_BYTES`] (the crate
//! escapes it on output), and each labelled family keeps at most [`MAX_LABEL_SETS`] label sets.
//! The crate's `Family` has no such cap, so `Capped` (below) keeps the label sets seen so far
//! behind a `std::sync::Mutex` (held for one set lookup, never across an `.await`); past the
//! cap, new label sets are folded into one whose values are all `other`, and
//! `vkp_metrics_label_sets_folded_total` counts the folded samples. A bug that invents label
//! values therefore shows up on a dashboard instead of growing memory.
//!
//! One gauge is computed at render time rather than set by callers: `vkp_vk_tokens_benched`
//! counts the tokens whose bench (captcha, spent daily quota) has not ended yet, so a bench
//! expires from the gauge by itself, as it does for the sessions that use the token.
//!
//! The file runs past 600 lines for its unit tests (the exposition of every kind of metric, the
//! cap, truncation and escaping), which sit next to the code they pin; the code is under 550.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

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

/// Most benched tokens tracked per method; a bench beyond it is not counted by the gauge.
///
/// A pool holds thousands of tokens at most, so this is never reached in practice; it only keeps
/// a bug that benches made-up token ids from growing memory.
pub const MAX_BENCHED_TOKENS: usize = 100_000;

/// The longest bench the gauge tracks; VK's quota day is the longest real one.
const MAX_BENCH: Duration = Duration::from_secs(7 * 86_400);

/// The registry: every metric the service exports, shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    jobs_started: Capped<JobLabels, Counter>,
    jobs_finished: Capped<FinishedLabels, Counter>,
    job_duration: Capped<JobLabels, Histogram, fn() -> Histogram>,
    jobs_in_flight: Gauge,
    entries_reclaimed: Counter,
    dead_lettered: Capped<ReasonLabels, Counter>,
    vk_requests: Capped<RequestLabels, Counter>,
    // An f64 counter: the crate adds concurrently with a compare-and-swap loop, and a sum of
    // waits never gets near the range where f64 loses whole nanoseconds that matter here.
    rate_limit_wait: Counter<f64, AtomicU64>,
    rate_limiter_errors: Counter,
    quota_calls: Capped<MethodLabels, Counter>,
    posts: Capped<OutcomeLabels, Counter>,
    communities: Capped<CommunityLabels, Counter>,
    quota_exhausted: Capped<MethodLabels, Counter>,
    tokens_benched: Capped<MethodLabels, Gauge>,
    /// Per method: token id → when its bench ends. Read into `tokens_benched` on render.
    benches: Mutex<HashMap<MethodLabels, HashMap<String, Instant>>>,
    group_lag: Gauge,
    group_pending: Gauge,
    ready: Gauge,
    label_sets_folded: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry: counters at zero, no label sets yet.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        // The crate appends a period to every help text, so ours have none.
        let jobs_started = Capped::new(Family::default());
        registry.register(
            "vkp_jobs_started",
            "Job stages taken from the stream and started",
            jobs_started.family.clone(),
        );
        let jobs_finished = Capped::new(Family::default());
        registry.register(
            "vkp_jobs_finished",
            "Job stage attempts finished, by outcome (completed, failed, retried, interrupted) and failure reason",
            jobs_finished.family.clone(),
        );
        let job_duration: Capped<JobLabels, Histogram, fn() -> Histogram> =
            Capped::new(Family::new_with_constructor(job_duration_histogram));
        registry.register_with_unit(
            "vkp_job_duration",
            "Wall-clock time from start to finish of a job stage",
            Unit::Seconds,
            job_duration.family.clone(),
        );
        let jobs_in_flight = Gauge::default();
        registry.register(
            "vkp_jobs_in_flight",
            "Job stages being worked on by this replica",
            jobs_in_flight.clone(),
        );
        let entries_reclaimed = Counter::default();
        registry.register(
            "vkp_entries_reclaimed",
            "Stream entries claimed from consumers that stopped answering",
            entries_reclaimed.clone(),
        );
        let dead_lettered = Capped::new(Family::default());
        registry.register(
            "vkp_dead_lettered",
            "Stream entries moved to the dead-letter stream, by reason",
            dead_lettered.family.clone(),
        );
        let vk_requests = Capped::new(Family::default());
        registry.register(
            "vkp_vk_requests",
            "Requests sent to the VK API, by method and outcome",
            vk_requests.family.clone(),
        );
        let rate_limit_wait = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "vkp_rate_limit_wait",
            "Time spent waiting for the VK rate limiter",
            Unit::Seconds,
            rate_limit_wait.clone(),
        );
        let rate_limiter_errors = Counter::default();
        registry.register(
            "vkp_rate_limiter_errors",
            "VK requests not sent because the shared rate limiter (Redis) failed",
            rate_limiter_errors.clone(),
        );
        let posts = Capped::new(Family::default());
        registry.register(
            "vkp_posts",
            "Communities of finished campaigns, by outcome (published, suggested, skipped, deferred, unknown)",
            posts.family.clone(),
        );
        let communities = Capped::new(Family::default());
        registry.register(
            "vkp_communities",
            "Communities of finished community tasks, by task kind, status (complete, failed) and reason",
            communities.family.clone(),
        );
        let quota_calls = Capped::new(Family::default());
        registry.register(
            "vkp_vk_quota_calls",
            "VK API calls counted against the per-token daily quota, by method (inner calls of an execute included)",
            quota_calls.family.clone(),
        );
        let quota_exhausted = Capped::new(Family::default());
        registry.register(
            "vkp_vk_quota_exhausted",
            "VK answers saying a token's daily quota for a method is spent (error 29), by method",
            quota_exhausted.family.clone(),
        );
        let tokens_benched = Capped::new(Family::default());
        registry.register(
            "vkp_vk_tokens_benched",
            "Tokens this replica has benched for a method (captcha, spent daily quota) whose bench has not ended",
            tokens_benched.family.clone(),
        );
        let group_lag = Gauge::default();
        registry.register(
            "vkp_group_lag",
            "Entries in the stream not yet delivered to the consumer group",
            group_lag.clone(),
        );
        let group_pending = Gauge::default();
        registry.register(
            "vkp_group_pending",
            "Entries delivered to the consumer group and not yet acknowledged",
            group_pending.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "vkp_ready",
            "1 when the last readiness check (run by /readyz and by every scrape of /metrics) passed, else 0",
            ready.clone(),
        );
        let label_sets_folded = Counter::default();
        registry.register(
            "vkp_metrics_label_sets_folded",
            "Samples folded into the `other` label set because their metric hit the label-set cap",
            label_sets_folded.clone(),
        );
        Metrics {
            registry,
            jobs_started,
            jobs_finished,
            job_duration,
            jobs_in_flight,
            entries_reclaimed,
            dead_lettered,
            vk_requests,
            rate_limit_wait,
            rate_limiter_errors,
            quota_calls,
            posts,
            communities,
            quota_exhausted,
            tokens_benched,
            benches: Mutex::new(HashMap::new()),
            group_lag,
            group_pending,
            ready,
            label_sets_folded,
        }
    }

    /// Counts a job stage that has started.
    pub fn job_started(&self, report_type: &str, stage: u8) {
        let labels = JobLabels::new(report_type, stage);
        self.jobs_started
            .with(labels, &self.label_sets_folded, |c| c.inc());
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
        let labels = FinishedLabels {
            report_type: label_value(report_type),
            stage: stage.to_string(),
            outcome: label_value(outcome),
            reason: label_value(reason.unwrap_or("")),
        };
        self.jobs_finished
            .with(labels, &self.label_sets_folded, |c| c.inc());
        let labels = JobLabels::new(report_type, stage);
        self.job_duration
            .with(labels, &self.label_sets_folded, |h| {
                h.observe(duration.as_secs_f64())
            });
    }

    /// Moves the in-flight job gauge by `delta` (+1 on start, -1 on finish).
    pub fn in_flight_add(&self, delta: i64) {
        self.jobs_in_flight.inc_by(delta);
    }

    /// Counts stream entries reclaimed from dead consumers.
    pub fn entries_reclaimed(&self, n: u64) {
        self.entries_reclaimed.inc_by(n);
    }

    /// Counts one entry sent to the dead-letter stream.
    pub fn dead_lettered(&self, reason: &str) {
        let labels = ReasonLabels {
            reason: label_value(reason),
        };
        self.dead_lettered
            .with(labels, &self.label_sets_folded, |c| c.inc());
    }

    /// Counts one VK API request.
    pub fn vk_request(&self, method: &str, outcome: &str) {
        let labels = RequestLabels {
            method: label_value(method),
            outcome: label_value(outcome),
        };
        self.vk_requests
            .with(labels, &self.label_sets_folded, |c| c.inc());
    }

    /// Adds time spent waiting for the VK rate limiter.
    pub fn rate_limit_wait(&self, waited: Duration) {
        self.rate_limit_wait.inc_by(waited.as_secs_f64());
    }

    /// Counts one request not sent because the shared rate limiter (Redis) failed.
    pub fn rate_limiter_error(&self) {
        self.rate_limiter_errors.inc();
    }

    /// Counts one community of a finished campaign under its outcome.
    pub fn post_outcome(&self, outcome: &str) {
        self.posts
            .with(OutcomeLabels::new(outcome), &self.label_sets_folded, |c| {
                c.inc()
            });
    }

    /// Counts one community of a finished community task under its kind, status and reason.
    pub fn community_outcome(&self, kind: &str, status: &str, reason: &str) {
        self.communities.with(
            CommunityLabels {
                kind: label_value(kind),
                status: label_value(status),
                reason: label_value(reason),
            },
            &self.label_sets_folded,
            |c| c.inc(),
        );
    }

    /// Counts `calls` calls of `method` sent on some token, against its daily quota.
    pub fn quota_calls(&self, method: &str, calls: u64) {
        self.quota_calls
            .with(MethodLabels::new(method), &self.label_sets_folded, |c| {
                c.inc_by(calls)
            });
    }

    /// Counts one VK answer saying a token's daily quota for `method` is spent (error 29).
    pub fn quota_exhausted(&self, method: &str) {
        self.quota_exhausted
            .with(MethodLabels::new(method), &self.label_sets_folded, |c| {
                c.inc()
            });
    }

    /// Records that `token` (a non-secret id, such as its hash) is benched for `method` for
    /// `bench` from now; a later bench of the same pair that ends later extends it.
    pub fn token_benched(&self, token: &str, method: &str, bench: Duration) {
        let labels = self
            .tokens_benched
            .admit(MethodLabels::new(method), &self.label_sets_folded);
        let now = Instant::now();
        let until = now + bench.min(MAX_BENCH);
        let mut benches = lock(&self.benches);
        let tokens = benches.entry(labels).or_default();
        tokens.retain(|_, ends| *ends > now);
        if let Some(ends) = tokens.get_mut(token) {
            *ends = (*ends).max(until);
        } else if tokens.len() < MAX_BENCHED_TOKENS {
            tokens.insert(token.to_owned(), until);
        }
        // The gauge itself is set from this map on the next render.
    }

    /// Sets the consumer group's lag (entries not yet delivered to any consumer).
    pub fn set_group_lag(&self, lag: i64) {
        self.group_lag.set(lag);
    }

    /// Sets the consumer group's pending count (delivered, not yet acknowledged).
    pub fn set_pending(&self, pending: i64) {
        self.group_pending.set(pending);
    }

    /// Records the outcome of a readiness check.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The whole registry in the OpenMetrics text format, ending with `# EOF`. Metrics come in
    /// a fixed order; two renders of the same state are byte-equal.
    pub fn render(&self) -> String {
        self.refresh_benched();
        let mut out = String::with_capacity(8192);
        // `fmt::Write` for `String` never fails, and our label sets encode without error, so
        // the result carries no information.
        let _ = text::encode(&mut out, &self.registry);
        out
    }

    /// Drops ended benches and sets the benched-token gauge of every method seen from what is
    /// left (0 for a method whose benches have all ended).
    fn refresh_benched(&self) {
        let now = Instant::now();
        let mut benches = lock(&self.benches);
        for (labels, tokens) in benches.iter_mut() {
            tokens.retain(|_, ends| *ends > now);
            self.tokens_benched
                .family
                .get_or_create(labels)
                .set(gauge_value(tokens.len()));
        }
    }
}

/// A gauge value from a count (counts here are far below `i64::MAX`).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The job-duration histogram of one label set, with [`JOB_DURATION_BUCKETS`].
fn job_duration_histogram() -> Histogram {
    Histogram::new(JOB_DURATION_BUCKETS)
}

/// A label set that knows its overflow value: every label `other`.
trait Foldable: EncodeLabelSet + Clone + Hash + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The label set folded samples are counted under.
    fn folded() -> Self;
}

/// `report_type` and `stage` of a job stage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    report_type: String,
    stage: String,
}

impl JobLabels {
    fn new(report_type: &str, stage: u8) -> JobLabels {
        JobLabels {
            report_type: label_value(report_type),
            stage: stage.to_string(),
        }
    }
}

impl Foldable for JobLabels {
    fn folded() -> Self {
        JobLabels {
            report_type: OVERFLOW_LABEL_VALUE.to_owned(),
            stage: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// A finished attempt: its job's labels, its `outcome` and failure `reason` (empty when none).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    report_type: String,
    stage: String,
    outcome: String,
    reason: String,
}

impl Foldable for FinishedLabels {
    fn folded() -> Self {
        FinishedLabels {
            report_type: OVERFLOW_LABEL_VALUE.to_owned(),
            stage: OVERFLOW_LABEL_VALUE.to_owned(),
            outcome: OVERFLOW_LABEL_VALUE.to_owned(),
            reason: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// Why an entry was dead-lettered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

impl Foldable for ReasonLabels {
    fn folded() -> Self {
        ReasonLabels {
            reason: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// A VK request's `method` and `outcome` (`ok`, `error_<code>`, `http_<status>`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    outcome: String,
}

impl Foldable for RequestLabels {
    fn folded() -> Self {
        RequestLabels {
            method: OVERFLOW_LABEL_VALUE.to_owned(),
            outcome: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// A VK API method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

impl MethodLabels {
    fn new(method: &str) -> MethodLabels {
        MethodLabels {
            method: label_value(method),
        }
    }
}

impl Foldable for MethodLabels {
    fn folded() -> Self {
        MethodLabels {
            method: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// What became of a campaign's community.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

impl OutcomeLabels {
    fn new(outcome: &str) -> OutcomeLabels {
        OutcomeLabels {
            outcome: label_value(outcome),
        }
    }
}

impl Foldable for OutcomeLabels {
    fn folded() -> Self {
        OutcomeLabels {
            outcome: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// What became of a community task's community.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommunityLabels {
    kind: String,
    status: String,
    reason: String,
}

impl Foldable for CommunityLabels {
    fn folded() -> Self {
        CommunityLabels {
            kind: OVERFLOW_LABEL_VALUE.to_owned(),
            status: OVERFLOW_LABEL_VALUE.to_owned(),
            reason: OVERFLOW_LABEL_VALUE.to_owned(),
        }
    }
}

/// A `Family` with at most [`MAX_LABEL_SETS`] label sets of its own plus the overflow one.
#[derive(Debug)]
struct Capped<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    // The label sets admitted so far. A std Mutex, held for one lookup or insert; the family
    // keeps its own lock for the metrics, so this is only the admission decision.
    seen: Mutex<HashSet<L>>,
}

impl<L: Foldable, M: Clone, C: MetricConstructor<M>> Capped<L, M, C> {
    fn new(family: Family<L, M, C>) -> Self {
        Capped {
            family,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The label set samples for `labels` are recorded under: `labels` itself while the family
    /// has room (or already has it), else the overflow set, counting the fold in `folded`.
    fn admit(&self, labels: L, folded: &Counter) -> L {
        let mut seen = lock(&self.seen);
        if seen.contains(&labels) {
            return labels;
        }
        // The overflow set is not counted in `seen`: it is one fixed extra, so the bound holds.
        if seen.len() < MAX_LABEL_SETS {
            seen.insert(labels.clone());
            return labels;
        }
        drop(seen);
        folded.inc();
        L::folded()
    }

    /// Applies `f` to the metric of `labels` (or of the overflow set when the family is full).
    fn with<R>(&self, labels: L, folded: &Counter, f: impl FnOnce(&M) -> R) -> R {
        let labels = self.admit(labels, folded);
        f(&self.family.get_or_create(&labels))
    }
}

/// The label value as stored: at most [`MAX_LABEL_VALUE_BYTES`], cut at a character boundary.
fn label_value(value: &str) -> String {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Locks a map of ours. A poisoned lock only means a thread panicked mid-update of a metric;
/// the numbers are still worth exporting, so we take the data rather than propagate the panic.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The lines of `metric`'s block: `# HELP`, `# TYPE` (and `# UNIT`), then its samples
    /// sorted, since the crate renders a family's label sets in hash-map order.
    fn block(rendered: &str, metric: &str) -> Vec<String> {
        let help = format!("# HELP {metric} ");
        let start = rendered
            .lines()
            .position(|l| l.starts_with(&help))
            .unwrap_or_else(|| panic!("{metric} missing from:\n{rendered}"));
        let lines: Vec<&str> = rendered
            .lines()
            .skip(start)
            .enumerate()
            .take_while(|(i, l)| *i == 0 || !(l.starts_with("# HELP") || l.starts_with("# EOF")))
            .map(|(_, l)| l)
            .collect();
        let (header, samples): (Vec<&str>, Vec<&str>) =
            lines.into_iter().partition(|l| l.starts_with('#'));
        let mut samples: Vec<String> = samples.into_iter().map(str::to_owned).collect();
        samples.sort();
        header
            .into_iter()
            .map(str::to_owned)
            .chain(samples)
            .collect()
    }

    #[test]
    fn unlabelled_counter_renders_help_type_and_a_total_sample() {
        let m = Metrics::new();
        m.entries_reclaimed(3);
        m.entries_reclaimed(4);
        assert_eq!(
            block(&m.render(), "vkp_entries_reclaimed"),
            [
                "# HELP vkp_entries_reclaimed Stream entries claimed from consumers that stopped answering.",
                "# TYPE vkp_entries_reclaimed counter",
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
    fn labelled_counter_renders_one_sample_per_label_set() {
        let m = Metrics::new();
        m.vk_request("users.get", "ok");
        m.vk_request("friends.get", "ok");
        m.vk_request("friends.get", "ok");
        m.vk_request("friends.get", "error_6");
        assert_eq!(
            block(&m.render(), "vkp_vk_requests"),
            [
                "# HELP vkp_vk_requests Requests sent to the VK API, by method and outcome.",
                "# TYPE vkp_vk_requests counter",
                r#"vkp_vk_requests_total{method="friends.get",outcome="error_6"} 1"#,
                r#"vkp_vk_requests_total{method="friends.get",outcome="ok"} 2"#,
                r#"vkp_vk_requests_total{method="users.get",outcome="ok"} 1"#,
            ]
        );
    }

    #[test]
    fn labelled_family_appears_with_its_first_sample() {
        // The crate leaves a family with no label set out of the exposition entirely.
        let m = Metrics::new();
        assert!(!m.render().contains("vkp_dead_lettered"));
        m.dead_lettered("max_retries");
        assert_eq!(block(&m.render(), "vkp_dead_lettered").len(), 3);
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
            Some("VK_ACCESS_DENIED"),
            Duration::ZERO,
        );
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_jobs_started")[2],
            r#"vkp_jobs_started_total{report_type="DEFAULT",stage="1"} 1"#
        );
        assert_eq!(
            block(&r, "vkp_jobs_finished")[2..],
            [
                r#"vkp_jobs_finished_total{report_type="DEFAULT",stage="1",outcome="completed",reason=""} 1"#,
                r#"vkp_jobs_finished_total{report_type="DEFAULT",stage="1",outcome="failed",reason="VK_ACCESS_DENIED"} 1"#,
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
        let mut expected: Vec<String> = vec![
            "# HELP vkp_job_duration_seconds Wall-clock time from start to finish of a job stage."
                .to_owned(),
            "# TYPE vkp_job_duration_seconds histogram".to_owned(),
            "# UNIT vkp_job_duration_seconds seconds".to_owned(),
        ];
        let mut samples = vec![
            format!(r#"vkp_job_duration_seconds_sum{{{l}}} 4011.5"#),
            format!(r#"vkp_job_duration_seconds_count{{{l}}} 4"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="1.0",{l}}} 2"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="5.0",{l}}} 2"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="15.0",{l}}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="60.0",{l}}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="300.0",{l}}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="900.0",{l}}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="3600.0",{l}}} 3"#),
            format!(r#"vkp_job_duration_seconds_bucket{{le="+Inf",{l}}} 4"#),
        ];
        samples.sort();
        expected.extend(samples);
        assert_eq!(block(&m.render(), "vkp_job_duration_seconds"), expected);
    }

    #[test]
    fn rate_limit_wait_renders_fractional_seconds() {
        let m = Metrics::new();
        m.rate_limit_wait(Duration::from_millis(250));
        m.rate_limit_wait(Duration::from_millis(1000));
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_rate_limit_wait_seconds")[1..],
            [
                "# TYPE vkp_rate_limit_wait_seconds counter",
                "# UNIT vkp_rate_limit_wait_seconds seconds",
                "vkp_rate_limit_wait_seconds_total 1.25",
            ]
        );
        // A huge wait neither wraps the counter to a small number nor panics.
        m.rate_limit_wait(Duration::MAX);
        m.rate_limit_wait(Duration::MAX);
        assert!(m.rate_limit_wait.get() >= Duration::MAX.as_secs_f64());
    }

    #[test]
    fn campaign_communities_are_counted_by_outcome() {
        let m = Metrics::new();
        m.post_outcome("published");
        m.post_outcome("published");
        m.post_outcome("deferred");
        let lines = block(&m.render(), "vkp_posts");
        assert!(
            lines.contains(&r#"vkp_posts_total{outcome="published"} 2"#.to_owned()),
            "{lines:?}"
        );
        assert!(lines.contains(&r#"vkp_posts_total{outcome="deferred"} 1"#.to_owned()));
    }

    #[test]
    fn shared_limiter_failures_are_counted() {
        let m = Metrics::new();
        m.rate_limiter_error();
        m.rate_limiter_error();
        assert_eq!(
            block(&m.render(), "vkp_rate_limiter_errors")[2],
            "vkp_rate_limiter_errors_total 2"
        );
    }

    #[test]
    fn quota_calls_and_exhaustion_are_counted_by_method() {
        let m = Metrics::new();
        m.quota_calls("friends.get", 25);
        m.quota_calls("friends.get", 5);
        m.quota_calls("wall.get", 1);
        m.quota_exhausted("wall.get");
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_vk_quota_calls")[2..],
            [
                r#"vkp_vk_quota_calls_total{method="friends.get"} 30"#,
                r#"vkp_vk_quota_calls_total{method="wall.get"} 1"#,
            ]
        );
        assert_eq!(
            block(&r, "vkp_vk_quota_exhausted")[2..],
            [r#"vkp_vk_quota_exhausted_total{method="wall.get"} 1"#]
        );
    }

    #[test]
    fn benched_tokens_are_counted_per_method_until_their_bench_ends() {
        let m = Metrics::new();
        let hour = Duration::from_secs(3600);
        m.token_benched("t1", "wall.get", hour);
        m.token_benched("t2", "wall.get", hour);
        // The same pair again is still one token.
        m.token_benched("t1", "wall.get", hour);
        m.token_benched("t1", "friends.get", hour);
        let r = m.render();
        assert_eq!(
            block(&r, "vkp_vk_tokens_benched")[2..],
            [
                r#"vkp_vk_tokens_benched{method="friends.get"} 1"#,
                r#"vkp_vk_tokens_benched{method="wall.get"} 2"#,
            ]
        );
        // A bench of no length has ended by the next render: the series stays, at 0.
        m.token_benched("t3", "users.get", Duration::ZERO);
        assert!(m
            .render()
            .contains("vkp_vk_tokens_benched{method=\"users.get\"} 0\n"));
    }

    #[test]
    fn readiness_is_a_zero_or_one_gauge() {
        let m = Metrics::new();
        assert_eq!(block(&m.render(), "vkp_ready")[2], "vkp_ready 0");
        m.set_ready(true);
        assert_eq!(block(&m.render(), "vkp_ready")[2], "vkp_ready 1");
        m.set_ready(false);
        assert_eq!(block(&m.render(), "vkp_ready")[2], "vkp_ready 0");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.dead_lettered("back\\slash \"quoted\"\nnext line");
        assert_eq!(
            block(&m.render(), "vkp_dead_lettered")[2],
            r#"vkp_dead_lettered_total{reason="back\\slash \"quoted\"\nnext line"} 1"#
        );
    }

    #[test]
    fn long_label_values_are_cut_at_a_char_boundary() {
        let m = Metrics::new();
        // 'я' is two bytes, so byte 128 falls between characters only for an even prefix.
        let long = format!("x{}", "я".repeat(100));
        m.dead_lettered(&long);
        let stored = lock(&m.dead_lettered.seen).iter().next().cloned();
        let stored = stored.expect("one label set").reason;
        assert!(stored.len() <= MAX_LABEL_VALUE_BYTES);
        assert!(long.starts_with(&stored));
        assert_eq!(stored.len(), MAX_LABEL_VALUE_BYTES - 1);
        assert!(m.render().contains(&format!("{{reason=\"{stored}\"}} 1\n")));
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
        let lines = block(&m.render(), "vkp_vk_requests");
        assert_eq!(lines.len(), 2 + MAX_LABEL_SETS + 1);
        assert!(lines.contains(&format!(
            r#"vkp_vk_requests_total{{method="other",outcome="other"}} {extra}"#
        )));
        assert!(lines.contains(
            &r#"vkp_vk_requests_total{method="method.00000",outcome="ok"} 2"#.to_owned()
        ));
        assert_eq!(
            block(&m.render(), "vkp_metrics_label_sets_folded")[2],
            format!("vkp_metrics_label_sets_folded_total {extra}")
        );
    }

    #[test]
    fn benches_beyond_the_cap_fold_into_other_too() {
        let m = Metrics::new();
        for i in 0..MAX_LABEL_SETS + 2 {
            m.token_benched("t", &format!("method.{i:05}"), Duration::from_secs(60));
        }
        let r = m.render();
        assert!(
            r.contains("vkp_vk_tokens_benched{method=\"other\"} 1\n"),
            "{r}"
        );
        assert_eq!(
            block(&r, "vkp_metrics_label_sets_folded")[2],
            "vkp_metrics_label_sets_folded_total 2"
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
            block(&r, "vkp_vk_requests")[2],
            format!(r#"vkp_vk_requests_total{{method="friends.get",outcome="ok"}} {total}"#)
        );
        assert_eq!(
            block(&r, "vkp_entries_reclaimed")[2],
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
            r.contains(r#"vkp_job_duration_seconds_sum{report_type="DEFAULT",stage="1"} 140000.0"#)
        );
    }

    #[test]
    fn render_is_deterministic_and_ends_with_the_eof_marker() {
        let m = Metrics::new();
        m.vk_request("b", "ok");
        m.vk_request("a", "ok");
        m.job_finished("DEFAULT", 1, "completed", None, Duration::from_secs(1));
        let first = m.render();
        assert_eq!(first, m.render());
        assert!(first.ends_with("\n# EOF\n"));
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
