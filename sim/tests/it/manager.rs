//! Token manager (API key, user tokens, refresh, exclusive leases, release reasons) and the
//! proxy (key check, target check, forwarding as the proxy's address).

use serde_json::{json, Value};

use crate::{sim_get, sim_post, small_config, spawn_sim, Vk};

struct Manager {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Manager {
    fn new(sim: &vk_sim::SimHandle) -> Manager {
        Manager {
            http: reqwest::Client::new(),
            base: sim.token_manager_url().to_string(),
            key: sim.manager_api_key().to_string(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", &self.key)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-Api-Key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

/// Calls a method through the proxy.
pub(crate) async fn via_proxy(
    sim: &vk_sim::SimHandle,
    key: &str,
    target: Option<&str>,
    token: &str,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/method/users.get", sim.proxy_url()))
        .header("X-Proxy-Key", key)
        .form(&[("access_token", token), ("v", "5.199")]);
    if let Some(t) = target {
        req = req.header("X-Target-Host", t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn manager_requires_its_api_key() {
    let sim = spawn_sim(small_config()).await;
    let http = reqwest::Client::new();
    let no_key = http
        .get(format!("{}/tokens/user/6", sim.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(
        no_key.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized"})
    );
    let wrong = http
        .post(format!("{}/tokens/global/lease", sim.api_url()))
        .header("X-Api-Key", "wrong")
        .json(&json!({"job_id": "j"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let bearer = http
        .get(format!("{}/tokens/user/6", sim.api_url()))
        .header("Authorization", format!("Bearer {}", sim.manager_api_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn user_tokens_are_ip_bound_refreshable_and_expire() {
    let mut config = small_config();
    config.user_tokens_ip_bound = true;
    let sim = spawn_sim(config).await;
    let m = Manager::new(&sim);
    let (status, body) = m.get("/tokens/user/6").await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["proxy_url"], json!(sim.proxy_url()));
    assert_eq!(body["proxy_api_key"], json!(sim.proxy_key()));
    assert_eq!(body["expired"], json!(false));
    assert!(body["access_expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        m.get("/tokens/user/6").await.1["token"],
        json!(token),
        "stable until refreshed"
    );
    assert_eq!(m.get("/tokens/user/999999999").await.0, 404);
    // direct use: bound to another address
    let direct = Vk::new(&sim, &token).call("users.get", &[]).await;
    assert!(direct["error"]["error_msg"]
        .as_str()
        .unwrap()
        .contains("another ip address"));
    // through the proxy it works, as the token's owner
    let (status, body) = via_proxy(&sim, sim.proxy_key(), Some("api.vk.com"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"][0]["id"], json!(6));
    // expired: 1117 in 5.199, the manager says so, refresh gives a new working token
    sim_post(&sim, "/sim/tokens/expire", json!({"token": token})).await;
    let (_, body) = via_proxy(&sim, sim.proxy_key(), Some("api.vk.com"), &token).await;
    assert_eq!(body["error"]["error_code"], json!(1117));
    assert_eq!(m.get("/tokens/user/6").await.1["expired"], json!(true));
    let (status, fresh) = m.post("/tokens/user/6/refresh", json!({})).await;
    assert_eq!(status, 200);
    let fresh = fresh["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    let (_, body) = via_proxy(&sim, sim.proxy_key(), Some("api.vk.com"), &fresh).await;
    assert_eq!(body["response"][0]["id"], json!(6));
    let (_, old) = via_proxy(&sim, sim.proxy_key(), Some("api.vk.com"), &token).await;
    assert_eq!(old["error"]["error_code"], json!(5));
    // the IP-bound test token behaves the same
    let (_, body) = via_proxy(
        &sim,
        sim.proxy_key(),
        Some("api.vk.com"),
        sim.ip_bound_token(),
    )
    .await;
    assert!(body["response"].is_array());
}

#[tokio::test]
async fn leases_are_exclusive_until_released() {
    let mut config = small_config();
    config.global_pool = 2;
    let sim = spawn_sim(config).await;
    let m = Manager::new(&sim);
    let (s1, a) = m
        .post("/tokens/global/lease", json!({"job_id": "job-1"}))
        .await;
    let (s2, b) = m
        .post("/tokens/global/lease", json!({"job_id": "job-2"}))
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_ne!(a["token"], b["token"], "exclusive");
    let (s, missing) = m.post("/tokens/global/lease", json!({})).await;
    assert_eq!(s, 400);
    assert_eq!(missing["error"], json!("missing_job_id"));
    let (s3, c) = m
        .post("/tokens/global/lease", json!({"job_id": "job-3"}))
        .await;
    assert_eq!(s3, 409);
    assert_eq!(c["error"], json!("pool_exhausted"));
    let (s, bad) = m
        .post(
            "/tokens/global/release",
            json!({"lease_id": a["lease_id"], "reason": "bored"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(bad["error"], json!("invalid_reason"));
    let (s, _) = m
        .post(
            "/tokens/global/release",
            json!({"lease_id": a["lease_id"], "reason": "completed"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = m
        .post(
            "/tokens/global/release",
            json!({"lease_id": a["lease_id"], "reason": "completed"}),
        )
        .await;
    assert_eq!(s, 404, "a lease is released once");
    let (s4, d) = m
        .post("/tokens/global/lease", json!({"job_id": "job-3"}))
        .await;
    assert_eq!(s4, 200);
    assert_eq!(d["token"], a["token"], "the released token is leased again");
    // a token that died is retired from the pool when released
    sim_post(&sim, "/sim/tokens/revoke", json!({"token": b["token"]})).await;
    let (_, r) = m
        .post(
            "/tokens/global/release",
            json!({"lease_id": b["lease_id"], "reason": "auth_failed"}),
        )
        .await;
    assert_eq!(r["retired"], json!(true));
    let (s5, _) = m
        .post("/tokens/global/lease", json!({"job_id": "job-4"}))
        .await;
    assert_eq!(s5, 409, "only one live token, and it is leased");
    let stats = sim_get(&sim, "/sim/stats").await;
    let tm = &stats["token_manager"];
    assert_eq!(tm["outstanding"], json!(1));
    assert_eq!(tm["counters"]["granted"], json!(3));
    assert_eq!(tm["counters"]["exhausted"], json!(2));
    assert_eq!(
        tm["counters"]["released_by_reason"],
        json!({"completed": 1, "auth_failed": 1})
    );
}

#[tokio::test]
async fn proxy_checks_its_key_and_target() {
    let sim = spawn_sim(small_config()).await;
    let token = sim.pool_tokens()[0].clone();
    let (s, body) = via_proxy(&sim, "wrong", Some("api.vk.com"), &token).await;
    assert_eq!(s, 407);
    assert_eq!(body["error"], json!("bad_proxy_key"));
    let (s, _) = via_proxy(&sim, sim.proxy_key(), None, &token).await;
    assert_eq!(s, 400);
    let (s, _) = via_proxy(&sim, sim.proxy_key(), Some("evil.example.com"), &token).await;
    assert_eq!(s, 502);
    let api_host = sim.api_url().trim_start_matches("http://").to_string();
    for target in ["api.vk.com", "api.vk.ru", api_host.as_str()] {
        let (s, body) = via_proxy(&sim, sim.proxy_key(), Some(target), &token).await;
        assert_eq!(s, 200);
        assert!(body["response"].is_array(), "{target}: {body}");
    }
    let stats = sim_get(&sim, "/sim/stats").await;
    assert_eq!(stats["proxy_forwarded"], json!(3));
    assert_eq!(stats["proxy_rejected"], json!(3));
}

#[tokio::test]
async fn proxy_accepts_absolute_form_requests_of_an_http_proxy_client() {
    let mut config = small_config();
    config.user_tokens_ip_bound = true;
    let sim = spawn_sim(config).await;
    let token = sim.user_token(sim.named().open);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Proxy-Key", sim.proxy_key().parse().unwrap());
    headers.insert("X-Target-Host", "api.vk.com".parse().unwrap());
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(sim.proxy_url()).unwrap())
        .default_headers(headers)
        .build()
        .unwrap();
    let body: Value = client
        .post("http://api.vk.com/method/users.get")
        .form(&[("access_token", token.as_str()), ("v", "5.199")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["response"][0]["id"], json!(sim.named().open));
}
