//! `insurup-policy-webhook`: InsurUp's webhook deliveries through the shared [`Ingress`].
//!
//! The tenant is named by the URL (`/insurup/<account>`: the account id given when the webhook
//! was created in InsurUp's agent panel; InsurUp's body names no account); the delivery is
//! checked with the tenant's webhook secret (`x-webhook-signature`, lowercase hex HMAC-SHA256
//! of the raw body, constant time) and must carry `x-webhook-delivery`, its idempotency key.
//! One body is one event, routed on its `$event`; an event we do not know is kept whole, the
//! synchronous `proposal_premium.purchasing` (InsurUp never sends it outside) is answered as
//! not supported.

use std::sync::Arc;

use serde::Deserialize;

use crate::envelope::TraceId;
use crate::error::FieldError;
use crate::http::HttpReply;
use crate::ingress::auth::{InsurUpSignature, INSURUP_DELIVERY_HEADER};
use crate::ingress::json::id_text;
use crate::ingress::{
    InboundRequest, Ingress, IngressEvent, IngressPorts, IngressSettings, Parsed, Unit, WebhookSpec,
};
use crate::insurup::event::{InsurUpEvent, KNOWN_EVENTS, SYNC_ONLY_EVENT};
use crate::log::Integration;
use crate::tenant::TenantRoute;

/// InsurUp's payloads are a few KB; a customer model with every field stays far below this.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const EVENT_KIND_PREFIX: &str = "insurup.";

pub struct InsurUpSpec;

/// The ids an event is ordered by: one policy's (or customer's) events in arrival order.
#[derive(Deserialize)]
struct Keys {
    #[serde(rename = "$event", default)]
    event: Option<String>,
    #[serde(rename = "policyId", default)]
    policy_id: Option<serde_json::Value>,
    #[serde(rename = "customerId", default)]
    customer_id: Option<serde_json::Value>,
    #[serde(rename = "proposalId", default)]
    proposal_id: Option<serde_json::Value>,
}

impl WebhookSpec for InsurUpSpec {
    fn integration(&self) -> Integration {
        Integration::InsurUp
    }

    fn max_body_bytes(&self) -> usize {
        MAX_BODY_BYTES
    }

    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError> {
        let account = request
            .path_token
            .map(str::trim)
            .filter(|a| !a.is_empty() && a.len() <= 64)
            .ok_or_else(|| {
                FieldError::new(
                    "account",
                    "route_missing",
                    "post to /insurup/<account>: the account id the webhook was registered with",
                )
            })?;
        Ok(vec![Unit {
            route: TenantRoute::InsurUpAccount(account.to_string()),
            path: "body".into(),
            raw: String::from_utf8_lossy(request.body).into_owned(),
            // The delivery id: the event's idempotency key (the authenticator requires it).
            context: request
                .header(INSURUP_DELIVERY_HEADER)
                .map(|d| d.trim().chars().take(128).collect()),
        }])
    }

    fn parse(&self, unit: &Unit) -> Vec<Parsed> {
        let unparsed = |errors: Vec<FieldError>| Parsed::Unparsed {
            path: unit.path.clone(),
            raw: unit.raw.clone(),
            errors,
        };
        let keys: Keys = match serde_json::from_str(&unit.raw) {
            Ok(keys) => keys,
            Err(e) => {
                return vec![unparsed(vec![FieldError::new(
                    "body",
                    "invalid_json",
                    crate::ingress::json::capped(&e.to_string()),
                )])]
            }
        };
        let Some(event) = keys.event else {
            return vec![unparsed(vec![FieldError::missing("$event")])];
        };
        if event == SYNC_ONLY_EVENT {
            return vec![Parsed::Ignored(format!(
                "{SYNC_ONLY_EVENT} (synchronous, InsurUp-internal: not supported)"
            ))];
        }
        if !KNOWN_EVENTS.contains(&event.as_str()) {
            return vec![unparsed(vec![FieldError::new(
                "$event",
                "unknown_event",
                format!("{event:?} is not an InsurUp event we know; kept for a replay"),
            )])];
        }
        if let Err(error) = InsurUpEvent::parse(&unit.raw) {
            return vec![unparsed(vec![error])];
        }
        let Some(delivery) = unit.context.clone().filter(|d| !d.is_empty()) else {
            return vec![unparsed(vec![FieldError::missing("x-webhook-delivery")])];
        };
        let ordering_key = [keys.policy_id, keys.proposal_id, keys.customer_id]
            .iter()
            .flatten()
            .find_map(id_text);
        vec![Parsed::Event(IngressEvent {
            kind: format!("{EVENT_KIND_PREFIX}{event}"),
            external_id: delivery,
            ordering_key,
            // The body as received: the worker reads it the same way, so no amount ever
            // passes through a float.
            payload: serde_json::json!({ "event": event, "body": unit.raw }),
        })]
    }
}

pub struct InsurUpWebhook {
    ingress: Ingress,
}

impl InsurUpWebhook {
    pub fn new(ports: IngressPorts, tenant_secret_prefix: &str, retention_days: i64) -> Self {
        Self {
            ingress: Ingress::new(
                Arc::new(InsurUpSpec),
                Arc::new(InsurUpSignature {
                    tenant_secret_prefix: tenant_secret_prefix.to_string(),
                }),
                ports,
                IngressSettings {
                    default_app_id: None,
                    retention_days,
                },
            ),
        }
    }

    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    pub async fn deliver(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        self.ingress.deliver(request, trace).await
    }
}
