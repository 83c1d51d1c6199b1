//! The `whatsapp-inbound` use case: answer Meta's handshake, and for each signed delivery
//! validate it, queue one envelope per event, and only then answer 200.

use std::sync::Arc;

use serde_json::json;

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::{FieldError, PortError};
use crate::http::HttpReply;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::meta::{self, HandshakeQuery, SignatureError};
use crate::ports::{EventQueue, SecretStore, TenantDirectory};
use crate::tenant::{secret_name, TenantId, TenantRoute};
use crate::whatsapp::parse::{self, ParsedDelivery};
use crate::whatsapp::{WhatsAppSecrets, SECRET_INTEGRATION};

/// Meta documents deliveries of up to 3 MB; anything larger is not from Meta.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub secret_prefix: String,
    pub max_body_bytes: usize,
}

pub struct WhatsAppWebhook {
    tenants: Arc<dyn TenantDirectory>,
    secrets: Arc<dyn SecretStore>,
    queue: Arc<dyn EventQueue>,
    log: IntegrationLog,
    settings: WebhookSettings,
}

enum SecretProblem {
    Port(PortError),
    Malformed(String),
}

impl WhatsAppWebhook {
    pub fn new(
        tenants: Arc<dyn TenantDirectory>,
        secrets: Arc<dyn SecretStore>,
        queue: Arc<dyn EventQueue>,
        log: IntegrationLog,
        settings: WebhookSettings,
    ) -> Self {
        Self {
            tenants,
            secrets,
            queue,
            log,
            settings,
        }
    }

    fn entry(
        &self,
        tenant: &TenantId,
        operation: &str,
        result: LogResult,
        trace: &TraceId,
    ) -> LogEntry {
        LogEntry::new(
            tenant.clone(),
            Integration::WhatsApp,
            LogDirection::Inbound,
            operation,
            result,
            trace.clone(),
        )
    }

    async fn secrets_for(
        &self,
        tenant: &TenantId,
        refresh: bool,
    ) -> Result<WhatsAppSecrets, SecretProblem> {
        let name = secret_name(&self.settings.secret_prefix, tenant, SECRET_INTEGRATION);
        let secret = if refresh {
            self.secrets.refresh(&name).await
        } else {
            self.secrets.get(&name).await
        };
        let secret = secret.map_err(SecretProblem::Port)?;
        serde_json::from_str(secret.expose()).map_err(|e| {
            SecretProblem::Malformed(format!(
                "secret {name} is not WhatsApp secrets JSON: {:?}",
                e.classify()
            ))
        })
    }

    /// 5xx for our own failures: Meta retries those, so nothing is lost.
    async fn dependency_failure(
        &self,
        tenant: &TenantId,
        operation: &str,
        trace: &TraceId,
        code: &str,
        message: String,
    ) -> HttpReply {
        let reply = HttpReply::error(
            503,
            code,
            "temporarily unavailable, retry later",
            None,
            trace.as_str(),
        );
        self.log
            .write(
                self.entry(tenant, operation, LogResult::Error, trace)
                    .error(code, message)
                    .http_status(503),
            )
            .await;
        reply
    }

    /// GET: `hub.mode=subscribe`, the tenant's verify token, and the challenge echoed raw.
    pub async fn handshake(&self, query: &HandshakeQuery, trace: &TraceId) -> HttpReply {
        const OP: &str = "webhook.handshake";
        let forbidden =
            |code: &str, message: &str| HttpReply::error(403, code, message, None, trace.as_str());
        let Some(token) = query.verify_token.as_deref().filter(|t| !t.is_empty()) else {
            let reply = forbidden("handshake_token_missing", "hub.verify_token is required");
            self.log
                .write(
                    self.entry(&TenantId::unresolved(), OP, LogResult::Error, trace)
                        .error("handshake_token_missing", "no hub.verify_token")
                        .http_status(403),
                )
                .await;
            return reply;
        };
        let tenant = match self
            .tenants
            .resolve(&TenantRoute::whatsapp_verify_token(token))
            .await
        {
            Ok(Some(tenant)) => tenant,
            Ok(None) => {
                let reply = forbidden(
                    "handshake_token_mismatch",
                    "hub.verify_token does not match",
                );
                self.log
                    .write(
                        self.entry(&TenantId::unresolved(), OP, LogResult::Error, trace)
                            .error(
                                "handshake_token_mismatch",
                                "no tenant has this verify token",
                            )
                            .http_status(403),
                    )
                    .await;
                return reply;
            }
            Err(e) => {
                return self
                    .dependency_failure(&TenantId::unresolved(), OP, trace, e.code(), e.to_string())
                    .await
            }
        };
        let secrets = match self.secrets_for(&tenant, false).await {
            Ok(s) => s,
            Err(SecretProblem::Port(e)) => {
                return self
                    .dependency_failure(&tenant, OP, trace, e.code(), e.to_string())
                    .await
            }
            Err(SecretProblem::Malformed(m)) => {
                return self
                    .dependency_failure(&tenant, OP, trace, "secret_malformed", m)
                    .await
            }
        };
        match meta::check_handshake(query, &secrets.verify_token) {
            Ok(challenge) => {
                self.log
                    .write(
                        self.entry(&tenant, OP, LogResult::Success, trace)
                            .http_status(200),
                    )
                    .await;
                HttpReply::text(200, challenge)
            }
            Err(e) => {
                self.log
                    .write(
                        self.entry(&tenant, OP, LogResult::Error, trace)
                            .error(e.code(), e.to_string())
                            .http_status(403),
                    )
                    .await;
                forbidden(e.code(), &e.to_string())
            }
        }
    }

    /// POST: one Meta delivery. 200 only once every event is durable in the queue.
    pub async fn deliver(
        &self,
        signature: Option<&str>,
        body: &[u8],
        trace: &TraceId,
    ) -> HttpReply {
        const OP: &str = "webhook.delivery";
        let unresolved = TenantId::unresolved();
        if body.len() > self.settings.max_body_bytes {
            let message = format!(
                "body of {} bytes exceeds the {} byte limit",
                body.len(),
                self.settings.max_body_bytes
            );
            self.log
                .write(
                    self.entry(&unresolved, OP, LogResult::Error, trace)
                        .error("body_too_large", &message)
                        .http_status(413),
                )
                .await;
            return HttpReply::error(
                413,
                "body_too_large",
                &message,
                Some("body"),
                trace.as_str(),
            );
        }
        let Ok(text) = std::str::from_utf8(body) else {
            let error = FieldError::new("body", "invalid_encoding", "body is not UTF-8 JSON");
            return self.reject(&unresolved, trace, 400, &[error], None).await;
        };
        // Routing first (which tenant's secret signs this?), then authenticity, then the strict parse.
        let routes = match parse::routes(text) {
            Ok(routes) => routes,
            Err(error) => {
                return self
                    .reject(&unresolved, trace, 400, &[error], Some(text))
                    .await
            }
        };
        let mut tenants: Vec<TenantId> = Vec::new();
        for route in &routes {
            match self.tenants.resolve(route).await {
                Ok(Some(tenant)) if !tenants.contains(&tenant) => tenants.push(tenant),
                Ok(_) => {}
                Err(e) => {
                    return self
                        .dependency_failure(&unresolved, OP, trace, e.code(), e.to_string())
                        .await
                }
            }
        }
        let Some(first_tenant) = tenants.first().cloned() else {
            let error = FieldError::new(
                "entry[].changes[].value.metadata.phone_number_id",
                "unknown_tenant",
                "no tenant is connected to this WhatsApp number",
            );
            return self
                .reject(&unresolved, trace, 400, &[error], Some(text))
                .await;
        };
        for tenant in &tenants {
            if let Err(reply) = self.authenticate(tenant, signature, body, trace).await {
                return reply;
            }
        }
        let delivery = match parse::parse_delivery(text) {
            Ok(delivery) => delivery,
            Err(errors) => {
                return self
                    .reject(&first_tenant, trace, 400, &errors, Some(text))
                    .await
            }
        };
        self.enqueue(&tenants, routes, delivery, text, trace).await
    }

    /// Verifies the signature with the tenant's App Secret; on a mismatch, re-reads the secret
    /// once in case it was rotated since it was cached.
    async fn authenticate(
        &self,
        tenant: &TenantId,
        signature: Option<&str>,
        body: &[u8],
        trace: &TraceId,
    ) -> Result<(), HttpReply> {
        const OP: &str = "webhook.delivery";
        let mut refreshed = false;
        loop {
            let secrets = match self.secrets_for(tenant, refreshed).await {
                Ok(s) => s,
                Err(SecretProblem::Port(e)) => {
                    return Err(self
                        .dependency_failure(tenant, OP, trace, e.code(), e.to_string())
                        .await)
                }
                Err(SecretProblem::Malformed(m)) => {
                    return Err(self
                        .dependency_failure(tenant, OP, trace, "secret_malformed", m)
                        .await)
                }
            };
            match meta::verify_signature(secrets.app_secret.as_bytes(), body, signature) {
                Ok(()) => return Ok(()),
                Err(SignatureError::Mismatch) if !refreshed => refreshed = true,
                Err(error) => {
                    self.log
                        .write(
                            self.entry(tenant, OP, LogResult::Error, trace)
                                .error(error.code(), error.to_string())
                                .http_status(401),
                        )
                        .await;
                    return Err(HttpReply::error(
                        401,
                        error.code(),
                        &error.to_string(),
                        Some("X-Hub-Signature-256"),
                        trace.as_str(),
                    ));
                }
            }
        }
    }

    async fn reject(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        status: u16,
        errors: &[FieldError],
        body: Option<&str>,
    ) -> HttpReply {
        let reply = HttpReply::invalid(errors, trace.as_str());
        let first = errors.first();
        let mut entry = self
            .entry(tenant, "webhook.delivery", LogResult::Error, trace)
            .error(
                first.map(|e| e.code.as_str()).unwrap_or("invalid_request"),
                first
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .unwrap_or_default(),
            )
            .http_status(status);
        if let Some(body) = body {
            entry = entry.payload(payload_for_log(body));
        }
        self.log.write(entry).await;
        HttpReply { status, ..reply }
    }

    async fn enqueue(
        &self,
        tenants: &[TenantId],
        routes: Vec<TenantRoute>,
        delivery: ParsedDelivery,
        body: &str,
        trace: &TraceId,
    ) -> HttpReply {
        const OP: &str = "webhook.delivery";
        let received_at = self.log.clock().now();
        let mut envelopes = Vec::with_capacity(delivery.event_count());
        let mut tenant_of_change = Vec::with_capacity(delivery.changes.len());
        for change in &delivery.changes {
            let route = TenantRoute::WhatsAppPhoneNumberId(change.phone_number_id.clone());
            let tenant = match self.tenants.resolve(&route).await {
                Ok(t) => t,
                Err(e) => {
                    return self
                        .dependency_failure(&tenants[0], OP, trace, e.code(), e.to_string())
                        .await
                }
            };
            tenant_of_change.push(tenant.clone());
            // A change for a number no tenant owns (a shared app): logged below, not queued.
            let Some(tenant) = tenant else { continue };
            for event in &change.events {
                envelopes.push(Envelope {
                    v: ENVELOPE_VERSION,
                    tenant_id: tenant.clone(),
                    integration: Integration::WhatsApp,
                    kind: event.kind().to_string(),
                    external_id: event.external_id(),
                    trace_id: trace.clone(),
                    received_at,
                    ordering_key: Some(event.ordering_key()),
                    payload: serde_json::to_value(event).unwrap_or_default(),
                });
            }
        }
        if let Err(e) = self.queue.enqueue(&envelopes).await {
            return self
                .dependency_failure(&tenants[0], OP, trace, "enqueue_failed", e.to_string())
                .await;
        }
        let payload = payload_for_log(body);
        for tenant in tenants {
            let queued = envelopes.iter().filter(|e| &e.tenant_id == tenant).count();
            let mut summary = format!("{queued} event(s) queued");
            if !delivery.ignored_fields.is_empty() {
                summary.push_str(&format!(
                    "; fields not handled: {}",
                    delivery.ignored_fields.join(", ")
                ));
            }
            self.log
                .write(
                    self.entry(tenant, OP, LogResult::Success, trace)
                        .http_status(200)
                        .payload(payload.clone())
                        .external_message(summary),
                )
                .await;
        }
        for (change, tenant) in delivery.changes.iter().zip(&tenant_of_change) {
            match tenant {
                None => {
                    let entry = self.entry(&tenants[0], OP, LogResult::Error, trace).error(
                        "unknown_phone_number_id",
                        format!(
                            "phone_number_id {} belongs to no tenant; {} event(s) not queued",
                            change.phone_number_id,
                            change.events.len()
                        ),
                    );
                    self.log.write(entry).await;
                }
                Some(tenant) => {
                    for error in &change.errors {
                        let entry = self
                            .entry(tenant, "webhook.error", LogResult::Error, trace)
                            .error(
                                &error.code.to_string(),
                                error.title.clone().unwrap_or_default(),
                            )
                            .external_message(error.details.clone().unwrap_or_default());
                        self.log.write(entry).await;
                    }
                }
            }
        }
        tracing::debug!(trace_id = %trace, routes = routes.len(), "delivery accepted");
        HttpReply::json(
            200,
            &json!({ "status": "queued", "events": envelopes.len(), "trace_id": trace.as_str() }),
        )
    }
}

/// The raw body as JSON for the log (masked later by the log); non-JSON kept as text.
fn payload_for_log(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()))
}
