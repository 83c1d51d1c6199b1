//! WhatsApp sends: `POST /{version}/{phone_number_id}/messages` with the tenant's system-user
//! token (`onecrm/tenants/<tenant>/whatsapp` = `{"verify_token", "access_token"}`), through the
//! partner client (one log record per call, backoff on 429/503, one re-read of the secret after
//! a refused token). Meta's error codes decide what a refusal means ([`MetaRefusal`]); the
//! call itself is never retried after Meta may have taken it (a create, not idempotent).
//!
//! Per-number throughput: sends through one phone number id are spaced so this process stays
//! under its share of the number's rate (`WHATSAPP_MPS_PER_NUMBER`, default 40: two concurrent
//! workers, the event source's `MaximumConcurrency`, stay under Meta's 80 per second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::meta::GraphError;
use onecrm_domain::ports::SecretStore;
use onecrm_domain::tenant::{secret_name, TenantId};
use onecrm_domain::whatsapp::outbound::{Accepted, MessageSender, SendFailure};
use onecrm_domain::whatsapp::refusal::MetaRefusal;
use onecrm_domain::whatsapp::SECRET_INTEGRATION;
use serde_json::Value;
use tokio::time::Instant;

use super::graph::DEFAULT_GRAPH_URL;
use super::{endpoint, PartnerClient, PartnerRequest, SecretToken, Verdict};

/// Sends per second per phone number from one process.
pub const DEFAULT_MPS_PER_NUMBER: u32 = 40;

pub struct GraphMessages {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    tenant_secret_prefix: String,
    base_url: String,
    version: String,
    pacer: Pacer,
}

impl GraphMessages {
    /// `PARTNER_URL_GRAPH` points it at a sandbox (tests, `make dev`).
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        tenant_secret_prefix: impl Into<String>,
        version: impl Into<String>,
        per_second: u32,
    ) -> Self {
        Self {
            partner,
            secrets,
            tenant_secret_prefix: tenant_secret_prefix.into(),
            base_url: endpoint("graph", DEFAULT_GRAPH_URL),
            version: version.into(),
            pacer: Pacer::new(per_second),
        }
    }

    /// The same client against another base URL (a stand-in), set explicitly.
    pub fn at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }
}

/// Only a refused token is worth the one re-read of the secret; every other answer with a
/// Graph code is Meta's verdict on this message, read by the domain. Without a code the
/// status decides (429 and 503: not taken, sent again; others: maybe taken, never again).
fn send_verdict(status: u16, body: &Value) -> Option<Verdict> {
    // A 5xx may come after Meta took the message, whatever its code says: the status decides
    // (503 is sent again; the others are an unknown outcome).
    if status >= 500 {
        return None;
    }
    let error = GraphError::from_body(body)?;
    Some(match error.code {
        Some(0 | 190) => Verdict::Unauthorized(error.describe()),
        _ => Verdict::Final(error.describe()),
    })
}

#[async_trait]
impl MessageSender for GraphMessages {
    async fn send(
        &self,
        tenant: &TenantId,
        phone_number_id: &str,
        body: &Value,
        send_id: &str,
        trace: &TraceId,
    ) -> Result<Accepted, SendFailure> {
        if phone_number_id.is_empty() || !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SendFailure::Port(PortError::Rejected(format!(
                "phone number id {phone_number_id:?} is not a Graph id"
            ))));
        }
        self.pacer.wait(phone_number_id).await;
        let token = SecretToken {
            secrets: self.secrets.as_ref(),
            name: secret_name(&self.tenant_secret_prefix, tenant, SECRET_INTEGRATION),
            field: "access_token",
        };
        let answer = self
            .partner
            .send_answered(PartnerRequest {
                tenant,
                integration: Integration::WhatsApp,
                operation: "graph.message.send",
                method: reqwest::Method::POST,
                url: format!(
                    "{}/{}/{phone_number_id}/messages",
                    self.base_url, self.version
                ),
                body: Some(body.clone()),
                trace,
                token: Some(&token),
                external_id: Some(send_id.to_string()),
                classify: Some(send_verdict),
                idempotent: false,
                form: None,
            })
            .await;
        match answer {
            Ok(response) => {
                let message = response.body.get("messages").and_then(|m| m.get(0));
                let wamid = message
                    .and_then(|m| m.get("id"))
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty());
                match wamid {
                    Some(wamid) => Ok(Accepted {
                        wamid: wamid.to_string(),
                        message_status: message
                            .and_then(|m| m.get("message_status"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    }),
                    // Meta took it but we cannot tell which message it is.
                    None => Err(SendFailure::Port(PortError::OutcomeUnknown(
                        "Meta answered 2xx without a message id".into(),
                    ))),
                }
            }
            // Maybe sent: never read as a refusal, whatever the body says.
            Err(failure) if matches!(failure.error, PortError::OutcomeUnknown(_)) => {
                Err(SendFailure::Port(failure.error))
            }
            Err(failure) => match GraphError::from_body(&failure.body) {
                Some(GraphError {
                    code: Some(code),
                    message,
                    error_data,
                    ..
                }) => Err(SendFailure::Refused(MetaRefusal {
                    code,
                    details: error_data.and_then(|d| d.details),
                    message,
                })),
                _ => Err(SendFailure::Port(failure.error)),
            },
        }
    }
}

/// Spaces calls per key (a phone number id) to at most `per_second`.
struct Pacer {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl Pacer {
    fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(HashMap::new()),
        }
    }

    async fn wait(&self, key: &str) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.get(key).copied().filter(|at| *at > now).unwrap_or(now);
            next.insert(key.to_string(), slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_through_one_number_are_spaced() {
        let pacer = Pacer::new(200);
        let start = Instant::now();
        for _ in 0..21 {
            pacer.wait("1001").await;
        }
        // 20 intervals of 5 ms after the first call.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        let other = Instant::now();
        pacer.wait("1002").await;
        assert!(
            other.elapsed() < Duration::from_millis(5),
            "another number has its own pace"
        );
    }
}
