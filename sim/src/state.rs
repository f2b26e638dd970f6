//! The shared state of one simulator: the immutable graph, the token registry, the per-token
//! rate limiter and daily quotas, runtime-adjustable fault and captcha settings, and the
//! counters `/sim/stats` reports, the generated walls and the day-by-day membership. No
//! globals: each `spawn` builds its own `Sim`. The simulated day (quotas, membership) is the
//! quota day plus the days `/sim/day` moved it forward.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::{FaultKind, FaultRates, Settings};
use crate::error::VkError;
use crate::graph::Graph;
use crate::media::Media;
use crate::tokens::{TokenRegistry, UserGrant};
use crate::wall::Wall;

/// Locks a mutex, ignoring poisoning (a panicking handler must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters of one token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenStats {
    pub requests: u64,
    pub by_method: BTreeMap<String, u64>,
    pub execute_calls: u64,
    pub inner_calls: u64,
    pub inner_by_method: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<i64, u64>,
    pub rate_limit_violations: u64,
    /// Requests of this token being answered right now, and the most there ever were at once.
    pub in_flight: u64,
    pub max_in_flight: u64,
}

/// Everything `/sim/stats` reports (besides the token manager's counters).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// HTTP requests to /method/*, direct or through the proxy.
    pub requests: u64,
    pub by_method: BTreeMap<String, u64>,
    pub execute_calls: u64,
    pub inner_calls: u64,
    pub inner_by_method: BTreeMap<String, u64>,
    /// Error codes sent as top-level error bodies.
    pub errors_by_code: BTreeMap<i64, u64>,
    /// Error codes of failed inner execute calls (sent inside `execute_errors`).
    pub inner_errors_by_code: BTreeMap<i64, u64>,
    /// Requests answered 6.
    pub rate_limit_violations: u64,
    /// Requests answered 9.
    pub flood_errors: u64,
    /// Injected faults by kind.
    pub faults: BTreeMap<String, u64>,
    /// Inner execute calls failed on their own with 10 (`inner_fault_rate`).
    pub inner_faults: u64,
    /// users.get calls of many ids that asked for `counters` (which VK sends only for one id).
    pub counters_ignored: u64,
    /// Answers changed for a degraded token (an error or emptied lists).
    pub degraded_answers: u64,
    /// POSTs to the upload servers by kind (`photo`, `doc`), and how many were refused.
    pub uploads: BTreeMap<String, u64>,
    pub uploads_refused: u64,
    /// Captchas (14) drawn for one method's own rate (`wall_post_captcha_rate`), by method.
    pub method_captchas: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub proxy_forwarded: u64,
    pub proxy_rejected: u64,
    pub per_token: BTreeMap<String, TokenStats>,
}

impl Stats {
    pub fn token(&mut self, token: &str) -> &mut TokenStats {
        if !self.per_token.contains_key(token) {
            self.per_token
                .insert(token.to_string(), TokenStats::default());
        }
        self.per_token.get_mut(token).expect("just inserted")
    }
}

/// Sliding-window state of one token.
#[derive(Debug, Default)]
struct Window {
    accepted: VecDeque<Instant>,
    violations: VecDeque<Instant>,
    flood_until: Option<Instant>,
}

/// Settings that tests may change while the simulator runs.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    pub faults: FaultRates,
    pub captcha_rate: f64,
    /// Captcha rates of single tokens (override `captcha_rate`).
    pub captcha_by_token: HashMap<String, f64>,
    /// A method's own captcha rate, drawn on top of the others (wall.post by default).
    pub captcha_by_method: HashMap<String, f64>,
    /// Tokens VK treats worse than others (`POST /sim/tokens/degrade`).
    pub degraded: HashMap<String, Degraded>,
    /// Users every token of whom VK treats worse (the same, by owner).
    pub degraded_owners: HashMap<u32, Degraded>,
}

/// How VK mistreats one token: what a shadow-limited or unlucky token sees, while other tokens
/// get the true answers (the seed service rotated tokens on error bursts and empty answers).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Degraded {
    /// friends.get, users.getFollowers and users.getSubscriptions answer empty lists.
    #[serde(default)]
    pub empty_lists: bool,
    /// Calls (direct and inside execute) answer this error: 10 or 100...
    #[serde(default)]
    pub error_code: Option<i64>,
    /// ...with this probability (1 when absent)...
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// ...for these methods only (every method when empty).
    #[serde(default)]
    pub methods: Vec<String>,
}

/// One simulator's state.
pub(crate) struct Sim {
    pub settings: Settings,
    pub graph: Arc<Graph>,
    pub tokens: Mutex<TokenRegistry>,
    limiter: Mutex<HashMap<String, Window>>,
    /// (token, method) -> (day index, calls that day).
    quotas: Mutex<HashMap<(String, String), (u64, u64)>>,
    pub stats: Mutex<Stats>,
    pub runtime: RwLock<Runtime>,
    rng: Mutex<ChaCha8Rng>,
    /// Separate streams for inner-call faults and latency jitter, so turning either on does
    /// not move the captcha and fault draws of the same requests.
    inner_rng: Mutex<ChaCha8Rng>,
    latency_rng: Mutex<ChaCha8Rng>,
    /// The methods' own captcha draws (wall.post), apart so they move no other draw.
    method_captcha_rng: Mutex<ChaCha8Rng>,
    pub wall: Mutex<Wall>,
    pub media: Mutex<Media>,
    /// The generated community walls (made on first use).
    pub content: crate::content::Content,
    /// Community membership per simulated day.
    pub membership: crate::membership::Membership,
    /// Days `/sim/day` moved the simulated day forward.
    day_offset: AtomicU64,
    pub start: Instant,
    pub api_url: String,
    pub proxy_url: String,
}

impl Sim {
    pub fn new(
        settings: Settings,
        graph: Arc<Graph>,
        tokens: TokenRegistry,
        api_url: String,
        proxy_url: String,
    ) -> Sim {
        let runtime = Runtime {
            faults: settings.faults.clone(),
            captcha_rate: settings.cfg.captcha_rate,
            captcha_by_token: HashMap::new(),
            captcha_by_method: HashMap::from([(
                "wall.post".to_string(),
                settings.cfg.wall_post_captcha_rate,
            )]),
            degraded: HashMap::new(),
            degraded_owners: HashMap::new(),
        };
        let seed = settings.cfg.seed;
        let rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa17_5eed);
        let content = crate::content::Content::new(seed, crate::tokens::unix_now() as u64, &graph);
        let membership =
            crate::membership::Membership::new(seed, settings.cfg.member_churn, &graph);
        Sim {
            settings,
            graph,
            tokens: Mutex::new(tokens),
            limiter: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            runtime: RwLock::new(runtime),
            rng: Mutex::new(rng),
            inner_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x1a7e_f417)),
            latency_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x1a7e_05c7)),
            method_captcha_rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0xca97_c4a0)),
            wall: Mutex::new(Wall::default()),
            media: Mutex::new(Media::new(seed)),
            content,
            membership,
            day_offset: AtomicU64::new(0),
            start: Instant::now(),
            api_url,
            proxy_url,
        }
    }

    /// How user tokens are issued now: lifetime, bound address, rights.
    pub fn user_grant(&self) -> UserGrant {
        let cfg = &self.settings.cfg;
        UserGrant {
            ttl: self.settings.user_token_ttl,
            bound_ip: cfg.user_tokens_ip_bound.then_some(cfg.proxy_ip),
            scopes: self.settings.user_scopes.clone(),
        }
    }

    /// The per-token sliding window: at most `rate_per_second` accepted requests in any
    /// window of one (scaled) second. Rejected requests do not enter the window, so of N+1
    /// requests sent at once exactly one is answered 6. A token that collects
    /// `flood_threshold` violations within `flood_window` gets 9 for `flood_penalty`.
    pub fn check_rate(&self, token: &str) -> Result<(), VkError> {
        self.check_rate_at(token, Instant::now())
    }

    /// [`Sim::check_rate`] at a given instant (instants must not go backwards per token).
    fn check_rate_at(&self, token: &str, now: Instant) -> Result<(), VkError> {
        let s = &self.settings;
        let mut limiter = lock(&self.limiter);
        let w = match limiter.get_mut(token) {
            Some(w) => w,
            None => limiter.entry(token.to_string()).or_default(),
        };
        if let Some(until) = w.flood_until {
            if now < until {
                return Err(VkError::flood());
            }
            w.flood_until = None;
        }
        while w
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= s.rate_window)
        {
            w.accepted.pop_front();
        }
        if w.accepted.len() >= s.cfg.rate_per_second as usize {
            while w
                .violations
                .front()
                .is_some_and(|t| now.duration_since(*t) >= s.flood_window)
            {
                w.violations.pop_front();
            }
            w.violations.push_back(now);
            if w.violations.len() >= s.cfg.flood_threshold as usize {
                w.violations.clear();
                w.flood_until = Some(now + s.flood_penalty);
            }
            return Err(VkError::too_many());
        }
        w.accepted.push_back(now);
        Ok(())
    }

    /// Counts one call of `method` by `token` against its daily quota (direct or inside
    /// execute); error 29 once the day's quota is used up.
    pub fn charge_quota(&self, token: &str, method: &str) -> Result<(), VkError> {
        let Some(&limit) = self.settings.quotas.get(method) else {
            return Ok(());
        };
        let day = self.quota_day();
        let mut q = lock(&self.quotas);
        let entry = q
            .entry((token.to_string(), method.to_string()))
            .or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        if entry.1 >= limit {
            return Err(VkError::quota());
        }
        entry.1 += 1;
        Ok(())
    }

    /// The current quota day (0 from start, plus the days `/sim/day` moved it forward).
    fn quota_day(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() / self.settings.day.as_secs_f64()) as u64
            + self.day_offset.load(Ordering::Relaxed)
    }

    /// The current simulated day: quotas reset and membership changes when it moves.
    pub fn current_day(&self) -> u64 {
        self.quota_day()
    }

    /// Moves the simulated day forward `days` days; returns the new day.
    pub fn advance_day(&self, days: u64) -> u64 {
        self.day_offset.fetch_add(days, Ordering::Relaxed);
        self.current_day()
    }

    /// Whether `user` is a member of community `gid` today.
    pub fn is_member(&self, gid: u32, user: u32) -> bool {
        self.membership
            .is_member(&self.graph, gid, user, self.current_day())
    }

    /// The members of community `gid` today, ascending.
    pub fn members(&self, gid: u32) -> Arc<Vec<u32>> {
        self.membership
            .members(&self.graph, gid, self.current_day())
    }

    /// Calls each token made today of each method that has a quota.
    pub fn quota_today(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let day = self.quota_day();
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((token, method), (d, n)) in lock(&self.quotas).iter() {
            if *d == day {
                out.entry(token.clone())
                    .or_default()
                    .insert(method.clone(), *n);
            }
        }
        out
    }

    /// Draws whether one inner execute call fails on its own (error 10).
    pub fn draw_inner_fault(&self) -> bool {
        let rate = self.settings.cfg.inner_fault_rate;
        rate > 0.0 && lock(&self.inner_rng).random_bool(rate.min(1.0))
    }

    /// How long (real milliseconds) an answer of `bytes` after `inner_calls` inner calls waits;
    /// 0 with `--latency off`.
    pub fn draw_latency_ms(&self, inner_calls: u32, bytes: usize) -> f64 {
        let Some(model) = self.settings.latency else {
            return 0.0;
        };
        let draw = if model.jitter > 0.0 {
            lock(&self.latency_rng).random_range(-1.0..=1.0)
        } else {
            0.0
        };
        model.wait_ms(inner_calls, bytes, draw)
    }

    /// Draws whether this request of `token` needs a captcha.
    pub fn draw_captcha(&self, token: &str) -> Option<VkError> {
        let rate = {
            let rt = self.runtime.read().unwrap_or_else(|e| e.into_inner());
            rt.captcha_by_token
                .get(token)
                .copied()
                .unwrap_or(rt.captcha_rate)
        };
        if rate <= 0.0 {
            return None;
        }
        let mut rng = lock(&self.rng);
        if rng.random_bool(rate.min(1.0)) {
            Some(VkError::captcha(rng.random_range(100_000_000..999_999_999)))
        } else {
            None
        }
    }

    /// Draws whether this call of `method` needs a captcha by the method's own rate (VK asks
    /// for one on posting far more often than on reads), direct or inside execute.
    pub fn draw_method_captcha(&self, method: &str) -> Option<VkError> {
        let rate = {
            let rt = self.runtime.read().unwrap_or_else(|e| e.into_inner());
            rt.captcha_by_method.get(method).copied().unwrap_or(0.0)
        };
        if rate <= 0.0 {
            return None;
        }
        let mut rng = lock(&self.method_captcha_rng);
        if !rng.random_bool(rate.min(1.0)) {
            return None;
        }
        let sid = rng.random_range(100_000_000..999_999_999);
        drop(rng);
        *lock(&self.stats)
            .method_captchas
            .entry(method.to_string())
            .or_default() += 1;
        Some(VkError::captcha(sid))
    }

    /// Draws the fault (if any) to inject into a request of `method`.
    pub fn draw_fault(&self, method: &str) -> Option<FaultKind> {
        let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
        if !runtime.faults.any() {
            return None;
        }
        let mut rng = lock(&self.rng);
        for kind in FaultKind::ALL {
            let rate = runtime.faults.rate(method, kind);
            if rate > 0.0 && rng.random_bool(rate.min(1.0)) {
                return Some(kind);
            }
        }
        None
    }

    /// What VK does to `token`'s call of `method` when the token is degraded: an error to
    /// answer instead, whether its lists come back empty.
    pub fn degradation(
        &self,
        token: &str,
        owner: u32,
        method: &str,
    ) -> (Option<crate::error::VkError>, bool) {
        let runtime = self.runtime.read().unwrap_or_else(|e| e.into_inner());
        let Some(d) = runtime
            .degraded
            .get(token)
            .or_else(|| runtime.degraded_owners.get(&owner))
        else {
            return (None, false);
        };
        let applies = d.methods.is_empty() || d.methods.iter().any(|m| m == method);
        let error = match d.error_code {
            Some(code) if applies => {
                let rate = d.error_rate.unwrap_or(1.0).clamp(0.0, 1.0);
                lock(&self.rng).random_bool(rate).then(|| match code {
                    100 => crate::error::VkError::param("the method changed"),
                    _ => crate::error::VkError::internal(),
                })
            }
            _ => None,
        };
        let empty = d.empty_lists && applies;
        if error.is_some() || empty {
            lock(&self.stats).degraded_answers += 1;
        }
        (error, empty)
    }

    /// Forgets counters, rate windows, flood penalties, quotas, wall posts and uploads.
    pub fn reset(&self) {
        *lock(&self.stats) = Stats::default();
        lock(&self.limiter).clear();
        lock(&self.quotas).clear();
        *lock(&self.wall) = Wall::default();
        *lock(&self.media) = Media::new(self.settings.cfg.seed);
        let mut tokens = lock(&self.tokens);
        tokens.stats = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::graph::Graph;

    fn sim(cfg: SimConfig) -> Sim {
        let settings = cfg.validate().unwrap();
        let graph = Arc::new(Graph::generate(&SimConfig {
            users: 100,
            groups: 5,
            ..SimConfig::default()
        }));
        Sim::new(
            settings,
            graph,
            TokenRegistry::new(1),
            String::new(),
            String::new(),
        )
    }

    #[test]
    fn sliding_window_rejects_exactly_the_excess_and_then_floods() {
        let s = sim(SimConfig {
            flood_threshold: 3,
            ..SimConfig::default()
        });
        let codes: Vec<Option<i64>> = (0..8)
            .map(|_| s.check_rate("t").err().map(|e| e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                None,
                None,
                None,
                Some(6),
                Some(6),
                Some(6),
                Some(9),
                Some(9)
            ]
        );
        assert!(
            s.check_rate("other").is_ok(),
            "tokens do not share a budget"
        );
    }

    #[test]
    fn spacing_of_exactly_333_ms_still_meets_6_and_340_ms_does_not() {
        // shared/vk-api.md: clients spacing requests at exactly 333 ms still see error 6;
        // 340 to 370 ms works. A sliding window of one second holding 3 requests does the same.
        let s = sim(SimConfig::default());
        let start = Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let codes: Vec<Option<i64>> = (0..4)
            .map(|k| s.check_rate_at("a", at(k * 333)).err().map(|e| e.code))
            .collect();
        assert_eq!(codes, vec![None, None, None, Some(6)]);
        for k in 0..20 {
            assert!(s.check_rate_at("b", at(k * 340)).is_ok(), "request {k}");
        }
    }

    #[test]
    fn the_window_slides() {
        let s = sim(SimConfig {
            time_scale: 50.0, // 20 ms window
            ..SimConfig::default()
        });
        for _ in 0..3 {
            s.check_rate("t").unwrap();
        }
        assert_eq!(s.check_rate("t").unwrap_err().code, 6);
        std::thread::sleep(std::time::Duration::from_millis(25));
        s.check_rate("t").unwrap();
    }

    #[test]
    fn quotas_are_per_token_and_method() {
        let s = sim(SimConfig {
            quotas: vec!["friends.get=2".into()],
            ..SimConfig::default()
        });
        assert!(s.charge_quota("a", "friends.get").is_ok());
        assert!(s.charge_quota("a", "friends.get").is_ok());
        assert_eq!(s.charge_quota("a", "friends.get").unwrap_err().code, 29);
        assert!(s.charge_quota("b", "friends.get").is_ok());
        assert!(s.charge_quota("a", "users.get").is_ok(), "no quota set");
        s.reset();
        assert!(s.charge_quota("a", "friends.get").is_ok());
    }
}
