//! One HTTP request to VK: form POST to `{base}/method/{name}`, parsed into an answer or a
//! [`VkError`]. No pacing and no retries here (the [`client`](super::client) does both), so this
//! layer stays a plain translation between HTTP and VK's JSON.
//!
//! Tokens with a proxy go to the proxy instead, with `X-Target-Host` (VK's host) and
//! `X-Proxy-Key`. Each proxy gets its own connection pool; when a proxy connection fails, that
//! pool is dropped and rebuilt on the next request, so a proxy restart does not leave us with
//! dead keep-alive connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::error::{ApiError, VkError};
use super::tokens::{ProxyRoute, Token};

/// Form parameters of one call (without `access_token` and `v`, which are added here).
pub type Params = Vec<(String, String)>;

/// One entry of `execute_errors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecuteErrorEntry {
    /// The inner method that failed.
    #[serde(default)]
    pub method: String,
    /// Its error code.
    pub error_code: i64,
    /// Its message.
    #[serde(default)]
    pub error_msg: String,
}

/// A successful answer: `response`, plus `execute_errors` for `execute`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The `response` member.
    pub response: Value,
    /// Failed inner calls of an execute (empty otherwise).
    pub execute_errors: Vec<ExecuteErrorEntry>,
    /// Bytes received, for statistics.
    pub bytes: usize,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    execute_errors: Vec<ExecuteErrorEntry>,
}

/// The HTTP side of the VK client.
#[derive(Debug)]
pub struct VkHttp {
    direct: reqwest::Client,
    proxies: Mutex<HashMap<String, reqwest::Client>>,
    base: Url,
    target_host: String,
    version: String,
    timeout: Duration,
}

impl VkHttp {
    /// A client for the API at `base` (e.g. `https://api.vk.ru`), sending `v = version`.
    pub fn new(base: Url, version: String, timeout: Duration) -> Result<VkHttp, VkError> {
        let target_host = match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(VkError::Transport {
                    method: String::new(),
                    message: "the VK API base URL has no host".to_owned(),
                })
            }
        };
        Ok(VkHttp {
            direct: build_client(timeout)?,
            proxies: Mutex::new(HashMap::new()),
            base,
            target_host,
            version,
            timeout,
        })
    }

    /// Sends one call with `token` and parses the answer.
    pub async fn send(
        &self,
        token: &Token,
        method: &str,
        params: &Params,
    ) -> Result<Answer, VkError> {
        let (client, url) = match &token.proxy {
            None => (self.direct.clone(), method_url(&self.base, method)?),
            Some(proxy) => (self.proxy_client(proxy)?, method_url(&proxy.url, method)?),
        };
        let mut form: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.push(("v", &self.version));
        form.push(("access_token", token.secret.expose()));
        let mut request = client.post(url).form(&form);
        if let Some(proxy) = &token.proxy {
            request = request
                .header("X-Target-Host", &self.target_host)
                .header("X-Proxy-Key", proxy.key.expose());
        }
        let transport = |e: reqwest::Error| VkError::Transport {
            method: method.to_owned(),
            // Without the URL: a proxy URL may carry credentials, and VK's is known anyway.
            message: e.without_url().to_string(),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                if let Some(proxy) = &token.proxy {
                    if e.is_connect() || e.is_request() {
                        self.forget_proxy(proxy);
                    }
                }
                return Err(transport(e));
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Err(VkError::Http {
                method: method.to_owned(),
                status,
            });
        }
        let body = response.bytes().await.map_err(transport)?;
        parse_answer(method, &body)
    }

    /// Posts one file to an upload server's `upload_url` as multipart `field` (through the
    /// token's proxy when it has one: VK binds an upload to the address that asked for it) and
    /// returns the server's JSON. Not an API method: no token is sent and no pace applies.
    pub async fn upload(
        &self,
        token: &Token,
        upload_url: &str,
        field: &'static str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> Result<Value, VkError> {
        const METHOD: &str = "upload";
        let url = Url::parse(upload_url).map_err(|e| VkError::Upload {
            message: format!("the upload server gave an unusable url: {e}"),
        })?;
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned());
        let form = reqwest::multipart::Form::new().part(field, part);
        let request = match &token.proxy {
            None => self.direct.post(url),
            Some(proxy) => {
                let host = match (url.host_str(), url.port()) {
                    (Some(host), Some(port)) => format!("{host}:{port}"),
                    (Some(host), None) => host.to_owned(),
                    (None, _) => {
                        return Err(VkError::Upload {
                            message: "the upload url has no host".to_owned(),
                        })
                    }
                };
                let mut routed = proxy.url.clone();
                routed.set_path(url.path());
                routed.set_query(url.query());
                self.proxy_client(proxy)?
                    .post(routed)
                    .header("X-Target-Host", host)
                    .header("X-Proxy-Key", proxy.key.expose())
            }
        };
        let transport = |e: reqwest::Error| VkError::Transport {
            method: METHOD.to_owned(),
            message: e.without_url().to_string(),
        };
        let response = request.multipart(form).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(VkError::Http {
                method: METHOD.to_owned(),
                status,
            });
        }
        let body = response.bytes().await.map_err(transport)?;
        serde_json::from_slice(&body).map_err(|e| VkError::Decode {
            method: METHOD.to_owned(),
            message: e.to_string(),
        })
    }

    fn proxy_client(&self, proxy: &ProxyRoute) -> Result<reqwest::Client, VkError> {
        let mut pools = self.proxies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = pools.get(proxy.url.as_str()) {
            return Ok(client.clone());
        }
        let client = build_client(self.timeout)?;
        pools.insert(proxy.url.as_str().to_owned(), client.clone());
        Ok(client)
    }

    fn forget_proxy(&self, proxy: &ProxyRoute) {
        let mut pools = self.proxies.lock().unwrap_or_else(|p| p.into_inner());
        pools.remove(proxy.url.as_str());
        tracing::warn!("proxy connection failed: its http session will be re-created");
    }
}

fn build_client(timeout: Duration) -> Result<reqwest::Client, VkError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| VkError::Transport {
            method: String::new(),
            message: format!("cannot build http client: {e}"),
        })
}

fn method_url(base: &Url, method: &str) -> Result<Url, VkError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| VkError::Transport {
            method: method.to_owned(),
            message: "the base URL cannot carry a path".to_owned(),
        })?
        .pop_if_empty()
        .push("method")
        .push(method);
    Ok(url)
}

/// Parses VK's JSON: `{"response": …}` (with `execute_errors` for execute) or `{"error": …}`.
pub fn parse_answer(method: &str, body: &[u8]) -> Result<Answer, VkError> {
    let decode = |message: String| VkError::Decode {
        method: method.to_owned(),
        message,
    };
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| decode(e.to_string()))?;
    if let Some(error) = envelope.error {
        return Err(VkError::Api {
            method: method.to_owned(),
            error,
        });
    }
    let response = envelope
        .response
        .ok_or_else(|| decode("neither `response` nor `error`".to_owned()))?;
    Ok(Answer {
        response,
        execute_errors: envelope.execute_errors,
        bytes: body.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_errors() {
        let ok = parse_answer("friends.get", br#"{"response":{"count":1,"items":[5]}}"#).unwrap();
        assert_eq!(ok.response["items"][0], 5);
        let exec = parse_answer(
            "execute",
            br#"{"response":[false],"execute_errors":[{"method":"friends.get","error_code":30,"error_msg":"This profile is private"}]}"#,
        )
        .unwrap();
        assert_eq!(exec.execute_errors[0].error_code, 30);
        let err = parse_answer(
            "users.get",
            br#"{"error":{"error_code":6,"error_msg":"Too many requests per second","request_params":[]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(6));
        for broken in [&b"{\"response\":[1,2"[..], b"", b"null", b"{}", b"<html>"] {
            assert!(
                matches!(parse_answer("m", broken), Err(VkError::Decode { .. })),
                "{broken:?}"
            );
        }
        // None of the methods we call answers `response: null`: treat it as unreadable.
        assert!(matches!(
            parse_answer("m", br#"{"response":null}"#),
            Err(VkError::Decode { .. })
        ));
    }

    #[test]
    fn method_urls() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            method_url(&base, "friends.get").unwrap().as_str(),
            "http://127.0.0.1:8080/method/friends.get"
        );
        let nested = Url::parse("https://proxy.example/vk/").unwrap();
        assert_eq!(
            method_url(&nested, "execute").unwrap().as_str(),
            "https://proxy.example/vk/method/execute"
        );
    }
}
