//! `vk-sim`: a deterministic VK API simulator with token-manager and proxy emulation.
//!
//! vk-parser is measured against this crate, so it must be no kinder than VK: same limits,
//! same error bodies, same privacy rules (see shared/vk-api.md). It shares no code with the
//! service; the service reaches it only over HTTP.
//!
//! Start one with [`spawn`] (tests start many in one process: there are no globals):
//!
//! ```no_run
//! # async fn demo() -> Result<(), vk_sim::SpawnError> {
//! let sim = vk_sim::spawn(vk_sim::SimConfig { users: 20_000, ..Default::default() }).await?;
//! println!("VK at {}, proxy at {}", sim.api_url(), sim.proxy_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Code map: `config` (settings), `graph` (the synthetic VK), `tokens` (token records, leases),
//! `state` (shared state: rate limiter, quotas, stats), `api` (the `/method` pipeline),
//! `methods` (VK methods), `wall` (wall.post, wall.getById, posts), `content` (generated
//! community walls: wall.get, wall.getComments, likes.getList, wall.getReposts), `membership`
//! (members per simulated day), `media` (upload servers,
//! saved photos and documents), `execute` (VKScript via the `vkscript` crate), `manager` (token
//! manager), `proxy` (proxy listener), `admin` (`/sim` controls), `server` (accept loop).
#![forbid(unsafe_code)]

mod admin;
mod api;
pub mod config;
mod content;
mod error;
mod execute;
pub mod graph;
mod manager;
mod media;
mod membership;
mod methods;
mod proxy;
mod server;
mod state;
mod tokens;
mod wall;

use std::sync::Arc;
use std::time::Instant;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, FaultKind, FaultRates, SimConfig};
pub use graph::{NamedCommunities, NamedUsers};
pub use tokens::RELEASE_REASONS;

use graph::Graph;
use state::{lock, Sim};
use tokens::{TokenKind, TokenRecord, TokenRegistry};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("graph generation failed: {0}")]
    Generate(String),
}

/// Tokens issued at start for tests.
#[derive(Debug, Clone)]
struct SpecialTokens {
    ip_bound: String,
    revoked: String,
    banned: String,
}

/// A running simulator. Dropping it stops the listeners.
pub struct SimHandle {
    sim: Arc<Sim>,
    special: SpecialTokens,
    pool: Vec<String>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    generation: std::time::Duration,
}

impl SimHandle {
    /// Base URL of simulated VK (`http://127.0.0.1:PORT`): methods at `{api_url}/method/{name}`,
    /// the token manager at `{api_url}/tokens/...`, controls at `{api_url}/sim/...`.
    pub fn api_url(&self) -> &str {
        &self.sim.api_url
    }

    /// Base URL of the token manager (the API listener).
    pub fn token_manager_url(&self) -> &str {
        &self.sim.api_url
    }

    /// Base URL of the proxy listener.
    pub fn proxy_url(&self) -> &str {
        &self.sim.proxy_url
    }

    /// The key the token manager requires (`X-Api-Key`).
    pub fn manager_api_key(&self) -> &str {
        &self.sim.settings.cfg.manager_api_key
    }

    /// The key the proxy requires (`X-Proxy-Key`).
    pub fn proxy_key(&self) -> &str {
        &self.sim.settings.cfg.proxy_key
    }

    /// The current user token of `user_id`, issued now if it has none (the same token the token
    /// manager hands out; IP-bound when `user_tokens_ip_bound` is set).
    ///
    /// # Panics
    /// If the graph has no such user.
    pub fn user_token(&self, user_id: u32) -> String {
        assert!(
            self.sim.graph.user(user_id).is_some(),
            "vk-sim has no user {user_id}"
        );
        let grant = self.sim.user_grant();
        lock(&self.sim.tokens).user_token(user_id, &grant)
    }

    /// The global pool's tokens (the token manager leases them).
    pub fn pool_tokens(&self) -> &[String] {
        &self.pool
    }

    /// A token bound to the proxy's address: direct use gives error 5 (another ip address).
    pub fn ip_bound_token(&self) -> &str {
        &self.special.ip_bound
    }

    /// A revoked token: error 5 (invalid access_token).
    pub fn revoked_token(&self) -> &str {
        &self.special.revoked
    }

    /// A token of a blocked user: error 5 (user is blocked).
    pub fn banned_token(&self) -> &str {
        &self.special.banned
    }

    /// The fixed users of the graph.
    pub fn named(&self) -> NamedUsers {
        self.sim.graph.named
    }

    /// The fixed communities of the graph (suggestions, admin, closed wall, private, ...).
    pub fn named_communities(&self) -> NamedCommunities {
        self.sim.graph.named_communities
    }

    /// Number of users in the graph.
    pub fn users(&self) -> u32 {
        self.sim.graph.n_users()
    }

    /// How long generating the graph took.
    pub fn generation_time(&self) -> std::time::Duration {
        self.generation
    }

    /// The generated graph (the ground truth `/sim/truth` reports), for direct checks.
    pub fn graph(&self) -> Arc<Graph> {
        Arc::clone(&self.sim.graph)
    }

    /// The `/sim/stats` document, without HTTP.
    pub fn stats(&self) -> serde_json::Value {
        admin::stats_json(&self.sim)
    }

    /// Moves the simulated day forward `days` days (quotas reset, membership churns), as
    /// `POST /sim/day` does; returns the new day.
    pub fn advance_day(&self, days: u64) -> u64 {
        self.sim.advance_day(days)
    }

    /// The current simulated day (`GET /sim/day`).
    pub fn day(&self) -> u64 {
        self.sim.current_day()
    }

    /// A token that stops the simulator when cancelled.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops both listeners and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("api_url", &self.sim.api_url)
            .field("proxy_url", &self.sim.proxy_url)
            .field("users", &self.sim.graph.n_users())
            .finish_non_exhaustive()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The router of the API listener.
fn api_router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/method/{name}",
            get(api::method_handler).post(api::method_handler),
        )
        .route("/tokens/user/{user_id}", get(manager::get_user_token))
        .route(
            "/tokens/user/{user_id}/refresh",
            post(manager::refresh_user_token),
        )
        .route("/tokens/global/lease", post(manager::lease))
        .route("/tokens/global/release", post(manager::release))
        .route("/tokens/stats", get(manager::stats))
        .route("/sim/stats", get(admin::stats))
        .route("/sim/reset", post(admin::reset))
        .route("/sim/truth", get(admin::truth_get).post(admin::truth_post))
        .route("/sim/truth/named", get(admin::named))
        .route("/sim/truth/path", get(admin::path))
        .route("/sim/truth/posts", get(admin::posts))
        .route("/sim/truth/members", get(admin::members))
        .route("/sim/truth/wall", get(admin::wall))
        .route("/sim/day", get(admin::day_get).post(admin::day_advance))
        .route("/upload/{kind}/{ticket}", post(media::upload_handler))
        .route("/sim/tokens", get(admin::tokens))
        .route("/sim/tokens/revoke", post(admin::revoke))
        .route("/sim/tokens/ban", post(admin::ban))
        .route("/sim/tokens/expire", post(admin::expire))
        .route("/sim/tokens/scopes", post(admin::scopes))
        .route("/sim/tokens/degrade", post(admin::degrade))
        .route(
            "/sim/faults",
            get(admin::faults_get).post(admin::faults_set),
        )
        .route("/sim/captcha", post(admin::captcha_set))
        .with_state(sim)
}

/// Owners for pool and special tokens: active, open users counted down from the last id that
/// are no friends of the closed named user (so their tokens meet its privacy).
fn token_owners(g: &Graph, count: usize) -> Vec<u32> {
    (7..=g.n_users())
        .rev()
        .filter(|&id| {
            g.user(id)
                .is_some_and(|u| u.deactivated.is_none() && !u.is_closed)
                && !g.are_friends(id, g.named.closed)
        })
        .take(count)
        .collect()
}

/// Starts a simulator: binds both listeners, generates the graph, issues the tokens.
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SpawnError> {
    let settings = config.validate()?;
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| SpawnError::Bind { addr, source })
    };
    let api_listener = bind(config.api_addr).await?;
    let proxy_listener = bind(config.proxy_addr).await?;
    let local = |l: &TcpListener, addr| {
        l.local_addr()
            .map_err(|source| SpawnError::Bind { addr, source })
    };
    let api_url = format!("http://{}", local(&api_listener, config.api_addr)?);
    let proxy_url = format!("http://{}", local(&proxy_listener, config.proxy_addr)?);

    let started = Instant::now();
    let cfg = config.clone();
    let graph = tokio::task::spawn_blocking(move || Graph::generate(&cfg))
        .await
        .map_err(|e| SpawnError::Generate(e.to_string()))?;
    let generation = started.elapsed();
    let active = graph
        .users
        .iter()
        .filter(|u| u.deactivated.is_none())
        .count();
    if config.big_community_members as usize > active {
        return Err(SpawnError::Config(config::config_err(
            "big_community_members",
            format!(
                "{} is more than the {active} active users",
                config.big_community_members
            ),
        )));
    }
    let graph = Arc::new(graph);

    let mut tokens = TokenRegistry::new(config.seed);
    let owners = token_owners(&graph, config.global_pool as usize + 3);
    let owner = |i: usize| owners.get(i).copied().unwrap_or(graph.named.open);
    let mut pool = Vec::new();
    for i in 0..config.global_pool as usize {
        let record = TokenRecord {
            owner: owner(i + 3),
            kind: TokenKind::Pool,
            bound_ip: None,
            revoked: false,
            banned: false,
            expires_at: None,
            scopes: settings.pool_scopes.clone(),
        };
        pool.push(tokens.issue("p", record));
    }
    tokens.pool = pool.clone();
    let special = |tokens: &mut TokenRegistry, owner: u32, bound_ip, revoked, banned| {
        tokens.issue(
            "s",
            TokenRecord {
                owner,
                kind: TokenKind::Special,
                bound_ip,
                revoked,
                banned,
                expires_at: None,
                scopes: settings.user_scopes.clone(),
            },
        )
    };
    let special = SpecialTokens {
        ip_bound: special(&mut tokens, owner(0), Some(config.proxy_ip), false, false),
        revoked: special(&mut tokens, owner(1), None, true, false),
        banned: special(&mut tokens, owner(2), None, false, true),
    };

    let sim = Arc::new(Sim::new(settings, graph, tokens, api_url, proxy_url));
    let api = api_router(Arc::clone(&sim));
    let proxy = Router::new()
        .fallback(proxy::forward)
        .with_state(proxy::Proxy {
            sim: Arc::clone(&sim),
            api: api.clone(),
        });
    tracing::info!(
        api_url = %sim.api_url,
        proxy_url = %sim.proxy_url,
        users = sim.graph.n_users(),
        generation_ms = generation.as_millis() as u64,
        "vk-sim started"
    );
    let shutdown = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(server::serve(api_listener, api, shutdown.clone())),
        tokio::spawn(server::serve(proxy_listener, proxy, shutdown.clone())),
    ];
    Ok(SimHandle {
        sim,
        special,
        pool,
        shutdown,
        tasks,
        generation,
    })
}
