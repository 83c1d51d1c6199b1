//! A Meta webhook (WhatsApp, Lead Ads), written once: signed POST deliveries through the shared
//! [`Ingress`] with the integration's [`WebhookSpec`] and the app's `X-Hub-Signature-256`, and
//! the GET verification handshake: the verify token finds the tenant (by its hash), the
//! tenant's secret holds the token to compare, and the challenge is echoed raw.

use std::sync::Arc;

use serde::Deserialize;

use crate::envelope::TraceId;
use crate::error::PortError;
use crate::http::HttpReply;
use crate::ingress::auth::MetaSignature;
use crate::ingress::{InboundRequest, Ingress, IngressPorts, IngressSettings, WebhookSpec};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::meta::{self, HandshakeQuery};
use crate::ports::{SecretStore, TenantDirectory};
use crate::tenant::{secret_name, TenantId, TenantRoute};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub tenant_secret_prefix: String,
    pub app_secret_prefix: String,
    pub max_body_bytes: usize,
    /// The deployment's own Meta app: authenticates deliveries for routes not registered yet.
    pub default_app_id: Option<String>,
    pub retention_days: i64,
}

pub struct MetaWebhook {
    ingress: Ingress,
    handshake: MetaHandshake,
}

impl MetaWebhook {
    /// `secret_integration` names the tenant secret holding the handshake's `verify_token`.
    pub fn new(
        spec: Arc<dyn WebhookSpec>,
        secret_integration: &'static str,
        ports: IngressPorts,
        settings: WebhookSettings,
    ) -> Self {
        let handshake = MetaHandshake {
            tenants: ports.tenants.clone(),
            secrets: ports.secrets.clone(),
            log: ports.log.clone(),
            tenant_secret_prefix: settings.tenant_secret_prefix.clone(),
            integration: spec.integration(),
            secret_integration,
        };
        let ingress = Ingress::new(
            spec,
            Arc::new(MetaSignature {
                app_secret_prefix: settings.app_secret_prefix,
            }),
            ports,
            IngressSettings {
                default_app_id: settings.default_app_id,
                retention_days: settings.retention_days,
            },
        );
        Self { ingress, handshake }
    }

    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    /// POST: one Meta delivery. 200 only once every event is durable (queued or kept).
    pub async fn deliver(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        self.ingress.deliver(request, trace).await
    }

    /// Events held for a route that is now registered go to its tenant.
    pub async fn release(&self, route: &TenantRoute) -> Result<usize, PortError> {
        self.ingress.release_unrouted(route).await
    }

    /// GET: `hub.mode=subscribe`, the tenant's verify token, and the challenge echoed raw.
    pub async fn handshake(&self, query: &HandshakeQuery, trace: &TraceId) -> HttpReply {
        self.handshake.answer(query, trace).await
    }
}

/// The part of a tenant's secret the handshake reads.
#[derive(Deserialize)]
struct VerifyToken {
    verify_token: String,
}

struct MetaHandshake {
    tenants: Arc<dyn TenantDirectory>,
    secrets: Arc<dyn SecretStore>,
    log: IntegrationLog,
    tenant_secret_prefix: String,
    integration: Integration,
    /// The tenant secret holding `verify_token` (`whatsapp`, `meta`).
    secret_integration: &'static str,
}

impl MetaHandshake {
    async fn log_handshake(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        status: u16,
        error: Option<(&str, String)>,
    ) {
        let result = if error.is_some() {
            LogResult::Error
        } else {
            LogResult::Success
        };
        let mut entry = LogEntry::new(
            tenant.clone(),
            self.integration,
            LogDirection::Inbound,
            "webhook.handshake",
            result,
            trace.clone(),
        )
        .http_status(status);
        if let Some((code, message)) = error {
            entry = entry.error(code, message);
        }
        self.log.write(entry).await;
    }

    /// GET: `hub.mode=subscribe`, the tenant's verify token, and the challenge echoed raw.
    pub async fn answer(&self, query: &HandshakeQuery, trace: &TraceId) -> HttpReply {
        let forbidden =
            |code: &str, message: &str| HttpReply::error(403, code, message, None, trace.as_str());
        let nobody = TenantId::unresolved();
        let Some(token) = query.verify_token.as_deref().filter(|t| !t.is_empty()) else {
            self.log_handshake(
                &nobody,
                trace,
                403,
                Some(("handshake_token_missing", "no hub.verify_token".into())),
            )
            .await;
            return forbidden("handshake_token_missing", "hub.verify_token is required");
        };
        let unavailable = |e: &PortError| {
            HttpReply::error(
                503,
                e.code(),
                "temporarily unavailable, retry later",
                None,
                trace.as_str(),
            )
        };
        let tenant = match self
            .tenants
            .resolve(&TenantRoute::meta_verify_token(token))
            .await
        {
            Ok(Some(target)) => target.tenant_id,
            Ok(None) => {
                self.log_handshake(
                    &nobody,
                    trace,
                    403,
                    Some((
                        "handshake_token_mismatch",
                        "no tenant has this verify token".into(),
                    )),
                )
                .await;
                return forbidden(
                    "handshake_token_mismatch",
                    "hub.verify_token does not match",
                );
            }
            Err(e) => {
                self.log_handshake(&nobody, trace, 503, Some((e.code(), e.to_string())))
                    .await;
                return unavailable(&e);
            }
        };
        let name = secret_name(&self.tenant_secret_prefix, &tenant, self.secret_integration);
        let secrets: VerifyToken = match self.secrets.get(&name).await {
            Ok(secret) => match serde_json::from_str(secret.expose()) {
                Ok(s) => s,
                Err(e) => {
                    let e = PortError::Rejected(format!(
                        "secret {name} has no verify_token: {:?}",
                        e.classify()
                    ));
                    self.log_handshake(
                        &tenant,
                        trace,
                        503,
                        Some(("secret_malformed", e.to_string())),
                    )
                    .await;
                    return unavailable(&e);
                }
            },
            Err(e) => {
                self.log_handshake(&tenant, trace, 503, Some((e.code(), e.to_string())))
                    .await;
                return unavailable(&e);
            }
        };
        match meta::check_handshake(query, &secrets.verify_token) {
            Ok(challenge) => {
                self.log_handshake(&tenant, trace, 200, None).await;
                HttpReply::text(200, challenge)
            }
            Err(e) => {
                self.log_handshake(&tenant, trace, 403, Some((e.code(), e.to_string())))
                    .await;
                forbidden(e.code(), &e.to_string())
            }
        }
    }
}
