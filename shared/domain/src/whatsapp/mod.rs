//! WhatsApp Cloud API: inbound messages become leads and timeline entries, statuses update
//! our outbound messages.

pub mod event;
pub mod outbound;
pub mod parse;
pub mod refusal;
pub mod send;
pub mod status;
pub mod webhook;
pub mod wire;
pub mod worker;

/// The name of a tenant's WhatsApp secret under the tenant secret prefix.
pub const SECRET_INTEGRATION: &str = "whatsapp";

/// A tenant's WhatsApp credentials, stored as one JSON secret. The App Secret that signs
/// webhooks is the Meta app's, shared by its tenants (`<app prefix>meta/<app id>`).
#[derive(Clone, serde::Deserialize, serde::Serialize)]
pub struct WhatsAppSecrets {
    /// The token typed into the App Dashboard for the GET handshake.
    pub verify_token: String,
    /// System-user token for the Graph API (outbound messages, media downloads).
    #[serde(default)]
    pub access_token: Option<String>,
}

impl std::fmt::Debug for WhatsAppSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WhatsAppSecrets(***)")
    }
}

#[cfg(test)]
mod send_tests;
#[cfg(test)]
mod tests;
