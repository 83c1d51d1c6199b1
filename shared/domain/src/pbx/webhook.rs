//! `pbx-call`'s webhook: the shared ingress with a PBX token as the credential and the call
//! desk answering at once (a CTI pop-up cannot wait for a queue).
//!
//! The token comes in the `X-PBX-Token` header, as `Authorization: Bearer <token>`, or as the
//! last path segment (`/pbx/<token>`) for PBXs that cannot set headers; it is stored only as its
//! SHA-256 (the tenant route), so finding the route is the proof. The tenant's optional source
//! allow-list is checked next. Unknown or missing token, or a source off the list: 401, nothing
//! stored.

use std::sync::Arc;

use crate::envelope::TraceId;
use crate::error::FieldError;
use crate::http::HttpReply;
use crate::ingress::auth::RouteCredential;
use crate::ingress::{
    InboundRequest, Ingress, IngressEvent, IngressPorts, IngressSettings, Parsed, Unit, WebhookSpec,
};
use crate::log::Integration;
use crate::pbx::desk::CallDesk;
use crate::pbx::event::parse_call_event;
use crate::tenant::TenantRoute;

/// A call event is a few hundred bytes; 16 KiB leaves room for any PBX's extra fields.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
pub const TOKEN_HEADER: &str = "x-pbx-token";
pub const EVENT_KIND: &str = "pbx.call";

/// The token a request presents, wherever the PBX could put it.
pub fn presented_token<'a>(request: &InboundRequest<'a>) -> Option<&'a str> {
    let bearer = request.header("authorization").and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    });
    // A header the PBX chose to send wins over a path segment that may be part of the route.
    request
        .header(TOKEN_HEADER)
        .or(bearer)
        .or(request.path_token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

pub struct PbxSpec;

impl WebhookSpec for PbxSpec {
    fn integration(&self) -> Integration {
        Integration::Pbx
    }

    fn max_body_bytes(&self) -> usize {
        MAX_BODY_BYTES
    }

    fn credential_field(&self) -> Option<&'static str> {
        Some("token")
    }

    /// One request is one event; the body is read only after the token checks out.
    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError> {
        let token = presented_token(request).ok_or_else(|| {
            FieldError::new(
                "token",
                "token_missing",
                "send the PBX token in X-PBX-Token, as a Bearer token, or as the URL's last segment",
            )
        })?;
        Ok(vec![Unit {
            route: TenantRoute::pbx_token(token),
            path: "body".into(),
            raw: String::from_utf8_lossy(request.body).into_owned(),
            context: None,
        }])
    }

    fn parse(&self, unit: &Unit) -> Vec<Parsed> {
        match parse_call_event(&unit.raw) {
            Ok(event) => {
                let external_id = format!("{}#{}", event.call_id, event.event_key());
                vec![Parsed::Event(IngressEvent {
                    kind: EVENT_KIND.into(),
                    external_id,
                    ordering_key: Some(event.call_id.clone()),
                    payload: serde_json::to_value(&event).unwrap_or_default(),
                })]
            }
            Err(errors) => vec![Parsed::Unparsed {
                path: unit.path.clone(),
                raw: unit.raw.clone(),
                errors,
            }],
        }
    }
}

pub struct PbxCallWebhook {
    ingress: Ingress,
    desk: CallDesk,
}

impl PbxCallWebhook {
    pub fn new(ports: IngressPorts, desk: CallDesk, retention_days: i64) -> Self {
        let ingress = Ingress::new(
            Arc::new(PbxSpec),
            Arc::new(RouteCredential),
            ports,
            IngressSettings {
                default_app_id: None,
                retention_days,
            },
        );
        Self { ingress, desk }
    }

    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    pub async fn handle(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        self.ingress.answer(request, trace, &self.desk).await
    }
}
