//! The one way to call a partner (Graph API, InsurUp, Karel, Logo, Express): per-call timeouts,
//! retries with exponential backoff and jitter that honour `Retry-After`, one token refresh on
//! 401, a circuit breaker per tenant and partner, and exactly one integration-log record per
//! call with the request and response masked. Base URLs come from configuration
//! ([`endpoint`]), so local sandboxes stand in for partners.

mod breaker;
pub mod express;
pub mod graph;
pub mod insurup;
pub mod karel;
pub mod logo;
mod retry;
pub mod whatsapp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use onecrm_domain::ports::{Secret, SecretStore};
use onecrm_domain::tenant::TenantId;
use serde_json::{json, Value};

pub use breaker::{BreakerSettings, CircuitBreakers};
pub use retry::{retry_after, RetryPolicy};

/// A partner's base URL: `PARTNER_URL_<NAME>` when set (a local sandbox, a test server), else
/// the partner's real address.
pub fn endpoint(name: &str, default: &str) -> String {
    let variable = format!("PARTNER_URL_{}", name.to_ascii_uppercase());
    crate::config::optional(&variable)
        .unwrap_or_else(|| default.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// Where a bearer token comes from (Secrets Manager, an OAuth refresh); `refresh` after a 401.
#[async_trait]
pub trait TokenSource: Send + Sync {
    async fn token(&self, refresh: bool) -> Result<Secret, PortError>;
}

/// A bearer token kept in a tenant's secret as one JSON field (`{"page_access_token"}`,
/// `{"api_token"}`); a refresh after a 401 re-reads the secret (it may have been put again).
pub struct SecretToken<'a> {
    pub secrets: &'a dyn SecretStore,
    pub name: String,
    pub field: &'static str,
}

#[async_trait]
impl TokenSource for SecretToken<'_> {
    async fn token(&self, refresh: bool) -> Result<Secret, PortError> {
        let secret = if refresh {
            self.secrets.refresh(&self.name).await?
        } else {
            self.secrets.get(&self.name).await?
        };
        let parsed: Value = serde_json::from_str(secret.expose())
            .map_err(|_| PortError::Rejected(format!("secret {} is not JSON", self.name)))?;
        parsed
            .get(self.field)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                PortError::Unauthorized(format!("secret {} has no {}", self.name, self.field))
            })
    }
}

pub struct PartnerRequest<'a> {
    pub tenant: &'a TenantId,
    pub integration: Integration,
    /// `graph.lead.get`, `insurup.customer.get`, `karel.opportunity.create`...
    pub operation: &'static str,
    pub method: reqwest::Method,
    pub url: String,
    pub body: Option<Value>,
    pub trace: &'a TraceId,
    pub token: Option<&'a dyn TokenSource>,
    /// The partner's id of what this call is about, for the log.
    pub external_id: Option<String>,
    /// The partner's own reading of a non-2xx answer (Graph's error codes say more than its
    /// HTTP statuses); `None`, or a `None` answer, falls back to the status.
    pub classify: Option<fn(u16, &Value) -> Option<Verdict>>,
    /// Whether sending it twice is harmless. A create is not: after a timeout or a 5xx other
    /// than 503 it may have been done, so it is not retried and fails as `OutcomeUnknown`.
    pub idempotent: bool,
    /// A form-encoded body with Basic authentication (an OAuth token request such as Logo's),
    /// sent instead of `body`.
    pub form: Option<Form>,
}

/// A form-encoded request body. Only the fields named in `logged` reach the integration log;
/// the rest (passwords, refresh tokens) and the Basic credentials never do.
pub struct Form {
    pub fields: Vec<(&'static str, Secret)>,
    pub logged: &'static [&'static str],
    /// `Authorization: Basic base64(user:password)` (Logo's client id and secret).
    pub basic: Option<(String, Secret)>,
}

impl Form {
    fn for_log(&self) -> Value {
        let mut shown = serde_json::Map::new();
        for (name, value) in &self.fields {
            let text = if self.logged.contains(name) {
                value.expose().to_string()
            } else {
                "***".to_string()
            };
            shown.insert((*name).to_string(), Value::String(text));
        }
        Value::Object(shown)
    }
}

/// The reason of a request that never reached the partner (no connection): safe to send again.
const NOT_SENT: &str = "could not connect";

/// How a partner's non-2xx answer is treated, with the reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Retry(String),
    /// Our credentials: one refreshed token, then the call fails as unauthorized.
    Unauthorized(String),
    Final(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartnerResponse {
    pub status: u16,
    pub body: Value,
    /// The answer as received, for readers that must not go through `Value`'s floats (Logo's
    /// amounts are read from the text).
    pub raw: Vec<u8>,
}

/// A failed call with the partner's answer, when there was one.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerFailure {
    pub error: PortError,
    pub status: Option<u16>,
    pub body: Value,
}

pub struct PartnerClient {
    /// Built on the first call, not at init: a function's cold start does not pay for the TLS
    /// configuration of a partner it may not call.
    http: std::sync::OnceLock<reqwest::Client>,
    log: IntegrationLog,
    policy: RetryPolicy,
    breakers: CircuitBreakers,
}

/// Why one attempt did not succeed.
enum Failure {
    /// Worth another attempt, after at least this long (`Retry-After`).
    Retry {
        status: Option<u16>,
        body: Value,
        wait: Option<Duration>,
        reason: String,
    },
    Unauthorized {
        status: u16,
        body: Value,
        reason: String,
    },
    Final {
        status: Option<u16>,
        body: Value,
        reason: String,
    },
}

impl PartnerClient {
    pub fn new(
        log: IntegrationLog,
        policy: RetryPolicy,
        breaker: BreakerSettings,
    ) -> Result<Self, PortError> {
        Ok(Self {
            http: std::sync::OnceLock::new(),
            log,
            policy,
            breakers: CircuitBreakers::new(breaker),
        })
    }

    fn http(&self) -> Result<&reqwest::Client, PortError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(self.policy.connect_timeout)
            .timeout(self.policy.attempt_timeout)
            .user_agent("onecrm-integrations")
            .build()
            .map_err(|e| PortError::Rejected(format!("HTTP client: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    /// Sends the request; `Ok` is a 2xx answer. Exactly one log record is written per call.
    pub async fn send(&self, request: PartnerRequest<'_>) -> Result<PartnerResponse, PortError> {
        self.send_answered(request).await.map_err(|f| f.error)
    }

    /// [`PartnerClient::send`], keeping the partner's answer to a failed call (an error code
    /// the caller reads itself, such as Graph's send errors).
    pub async fn send_answered(
        &self,
        request: PartnerRequest<'_>,
    ) -> Result<PartnerResponse, PartnerFailure> {
        let started = Instant::now();
        let breaker_key = (request.tenant.clone(), request.integration);
        if let Err(open_for) = self.breakers.admit(&breaker_key) {
            let error = PortError::Unavailable(format!(
                "{} is failing for this tenant; calls paused for {}s",
                request.integration.as_str(),
                open_for.as_secs().max(1)
            ));
            self.record(&request, Err((&error, None, Value::Null)), 0, started)
                .await;
            return Err(PartnerFailure {
                error,
                status: None,
                body: Value::Null,
            });
        }
        let mut refreshed = false;
        // Only the attempt right after a 401 asks for a new token; later retries (a 429 after
        // it) use the renewed one instead of logging in again.
        let mut renew = false;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let token = match request.token {
                Some(source) => match source.token(std::mem::take(&mut renew)).await {
                    Ok(token) => Some(token),
                    Err(e) => break Err((e, None, Value::Null)),
                },
                None => None,
            };
            match self.attempt(&request, token.as_ref()).await {
                Ok(response) => break Ok(response),
                // One fresh token, then the same attempt again.
                Err(Failure::Unauthorized { .. }) if !refreshed && request.token.is_some() => {
                    refreshed = true;
                    renew = true;
                }
                Err(Failure::Unauthorized {
                    status,
                    body,
                    reason,
                }) => break Err((PortError::Unauthorized(reason), Some(status), body)),
                Err(Failure::Final {
                    status,
                    body,
                    reason,
                }) => break Err((PortError::Rejected(reason), status, body)),
                // Not sent (connection refused), throttled or unavailable before processing:
                // safe to send again even when it changes something.
                Err(Failure::Retry {
                    status,
                    body,
                    reason,
                    ..
                }) if !request.idempotent
                    && !matches!(status, Some(429 | 503))
                    && !reason.starts_with(NOT_SENT) =>
                {
                    break Err((PortError::OutcomeUnknown(reason), status, body))
                }
                Err(Failure::Retry {
                    status,
                    body,
                    wait,
                    reason,
                }) => {
                    let delay = self.policy.delay(attempt, wait);
                    let out_of_time = started.elapsed() + delay > self.policy.total_budget;
                    if attempt >= self.policy.max_attempts || out_of_time {
                        let reason = match wait {
                            Some(w) if out_of_time => {
                                format!("{reason}; partner asked to retry after {}s", w.as_secs())
                            }
                            _ => reason,
                        };
                        break Err((PortError::Unavailable(reason), status, body));
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        };
        match &result {
            Ok(_) => self.breakers.success(&breaker_key),
            Err((e, _, _)) if e.is_retryable() => self.breakers.failure(&breaker_key),
            Err(_) => {}
        }
        match result {
            Ok(response) => {
                self.record(&request, Ok(&response), attempt, started).await;
                Ok(response)
            }
            Err((error, status, body)) => {
                self.record(
                    &request,
                    Err((&error, status, body.clone())),
                    attempt,
                    started,
                )
                .await;
                Err(PartnerFailure {
                    error,
                    status,
                    body,
                })
            }
        }
    }

    async fn attempt(
        &self,
        request: &PartnerRequest<'_>,
        token: Option<&Secret>,
    ) -> Result<PartnerResponse, Failure> {
        let http = self.http().map_err(|e| Failure::Final {
            status: None,
            body: Value::Null,
            reason: e.to_string(),
        })?;
        let mut call = http.request(request.method.clone(), &request.url);
        if let Some(token) = token {
            call = call.bearer_auth(token.expose());
        }
        if let Some(form) = &request.form {
            if let Some((user, password)) = &form.basic {
                call = call.basic_auth(user, Some(password.expose()));
            }
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.fields.iter().map(|(k, v)| (*k, v.expose())))
                .finish();
            call = call
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded);
        } else if let Some(body) = &request.body {
            call = call.json(body);
        }
        let response = match call.send().await {
            Ok(response) => response,
            Err(e) => {
                // A connect error (a connect timeout too) means nothing was sent.
                let reason = if e.is_connect() {
                    format!("{NOT_SENT}: {}", without_url(e))
                } else if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    format!("connection failed: {}", without_url(e))
                };
                return Err(Failure::Retry {
                    status: None,
                    body: Value::Null,
                    wait: None,
                    reason,
                });
            }
        };
        let status = response.status().as_u16();
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => {
                let reason = if e.is_timeout() {
                    "timed out reading the answer".into()
                } else {
                    format!("answer cut off: {}", without_url(e))
                };
                return Err(Failure::Retry {
                    status: Some(status),
                    body: Value::Null,
                    wait: None,
                    reason,
                });
            }
        };
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&bytes).chars().take(2000).collect())
        });
        if !(200..=299).contains(&status) {
            match request
                .classify
                .and_then(|classify| classify(status, &body))
            {
                Some(Verdict::Retry(reason)) => {
                    return Err(Failure::Retry {
                        status: Some(status),
                        body,
                        wait,
                        reason,
                    })
                }
                Some(Verdict::Unauthorized(reason)) => {
                    return Err(Failure::Unauthorized {
                        status,
                        body,
                        reason,
                    })
                }
                Some(Verdict::Final(reason)) => {
                    return Err(Failure::Final {
                        status: Some(status),
                        body,
                        reason,
                    })
                }
                None => {}
            }
        }
        match status {
            200..=299 => Ok(PartnerResponse {
                status,
                body,
                raw: bytes.to_vec(),
            }),
            401 => Err(Failure::Unauthorized {
                status,
                body,
                reason: "the partner refused our credentials".into(),
            }),
            408 | 425 | 429 | 500 | 502 | 503 | 504 => Err(Failure::Retry {
                status: Some(status),
                body,
                wait,
                reason: format!("HTTP {status}"),
            }),
            _ => Err(Failure::Final {
                status: Some(status),
                body,
                reason: format!("HTTP {status}"),
            }),
        }
    }

    async fn record(
        &self,
        request: &PartnerRequest<'_>,
        outcome: Result<&PartnerResponse, (&PortError, Option<u16>, Value)>,
        attempts: u32,
        started: Instant,
    ) {
        let (result, status, response_body) = match &outcome {
            Ok(r) => (LogResult::Success, Some(r.status), r.body.clone()),
            Err((_, status, body)) => (LogResult::Error, *status, body.clone()),
        };
        let mut entry = LogEntry::new(
            request.tenant.clone(),
            request.integration,
            LogDirection::Outbound,
            request.operation,
            result,
            request.trace.clone(),
        )
        .attempt(attempts)
        .payload(json!({
            "request": { "method": request.method.as_str(), "url": redact_url(&request.url),
                "body": request.form.as_ref().map(Form::for_log).or_else(|| request.body.clone()) },
            "response": { "status": status, "body": response_body },
        }));
        entry.duration_ms = Some(started.elapsed().as_millis() as u64);
        if let Some(status) = status {
            entry = entry.http_status(status);
        }
        if let Some(id) = &request.external_id {
            entry = entry.external_id(id.clone());
        }
        if let Err((error, _, _)) = &outcome {
            entry = entry.error(error.code(), error.to_string());
        }
        self.log.write(entry).await;
    }
}

/// reqwest's errors name the URL, which may carry a token in its query.
fn without_url(e: reqwest::Error) -> String {
    let text = e.without_url().to_string();
    text.chars().take(200).collect()
}

/// Query parameters whose names look like credentials are replaced before the URL is logged.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.split('?').next().unwrap_or_default().to_string();
    };
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let secret = ["token", "secret", "key", "password", "signature", "code"]
                .iter()
                .any(|s| k.to_ascii_lowercase().contains(s));
            (
                k.into_owned(),
                if secret { "***".into() } else { v.into_owned() },
            )
        })
        .collect();
    if pairs.is_empty() {
        return parsed.to_string();
    }
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// Shared between functions so each builds one client (one connection pool, one TLS config).
pub type SharedPartnerClient = Arc<PartnerClient>;

#[cfg(test)]
mod tests;
