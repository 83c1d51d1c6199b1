//! The `whatsapp-inbound` use case: the shared Meta webhook ([`MetaWebhook`]: handshake,
//! signed deliveries through the ingress) with WhatsApp's router and parser.

use std::sync::Arc;

use crate::error::FieldError;
use crate::ingress::{InboundRequest, IngressPorts, Parsed, Unit, WebhookSpec};
use crate::log::Integration;
use crate::whatsapp::parse;
use crate::whatsapp::SECRET_INTEGRATION;

/// Meta documents deliveries of up to 3 MB; anything larger is not from Meta.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

use crate::meta_webhook::MetaWebhook;
pub use crate::meta_webhook::WebhookSettings;

/// WhatsApp's part of the ingress: routing by phone number id (or WABA id), parsing per event.
pub struct WhatsAppSpec {
    pub max_body_bytes: usize,
}

impl WebhookSpec for WhatsAppSpec {
    fn integration(&self) -> Integration {
        Integration::WhatsApp
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError> {
        parse::split(request.body)
    }

    fn parse(&self, unit: &Unit) -> Vec<Parsed> {
        parse::parse_unit(unit)
    }
}

/// The WhatsApp Cloud API webhook: the Meta webhook with WhatsApp's router and parser.
pub struct WhatsAppWebhook(MetaWebhook);

impl WhatsAppWebhook {
    pub fn new(ports: IngressPorts, settings: WebhookSettings) -> Self {
        let spec = Arc::new(WhatsAppSpec {
            max_body_bytes: settings.max_body_bytes,
        });
        Self(MetaWebhook::new(spec, SECRET_INTEGRATION, ports, settings))
    }
}

impl std::ops::Deref for WhatsAppWebhook {
    type Target = MetaWebhook;

    fn deref(&self) -> &MetaWebhook {
        &self.0
    }
}
