//! Tenants (the CRM's customer companies) and how an incoming call is routed to one.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tenant id: 1-64 characters of `a-z`, `0-9` and `-`, so it is safe inside keys and names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Owner of log records for calls that could not be tied to a tenant (bad signature with an
    /// unknown number, an unparseable queue message). Not a valid tenant id, so never a real one.
    pub fn unresolved() -> Self {
        TenantId("_unresolved".into())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(TenantId(text.to_string()))
        } else {
            Err(format!(
                "invalid tenant id {text:?}: use 1-64 of a-z, 0-9, '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == "_unresolved" {
            return Ok(TenantId::unresolved());
        }
        TenantId::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's settings. Secrets are not here: they live in the secret store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantConfig {
    pub tenant_id: TenantId,
    pub name: String,
    /// CRM user who owns new leads and their tasks when no rule says otherwise.
    #[serde(default)]
    pub default_owner: Option<String>,
    #[serde(default)]
    pub whatsapp: Option<WhatsAppSettings>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsAppSettings {
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// Seed 000 §2.3: creating a lead for an unknown number is configurable.
    #[serde(default = "yes")]
    pub create_lead_for_unknown_numbers: bool,
    /// Seed 000 §2.4: "assign a task to the salesperson" is optional.
    #[serde(default)]
    pub create_task_for_new_lead: bool,
}

fn yes() -> bool {
    true
}

/// A way an incoming call names its tenant. Each maps to one routing item, so resolving a
/// tenant is one key lookup whatever the integration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantRoute {
    /// WhatsApp Cloud API `metadata.phone_number_id`.
    WhatsAppPhoneNumberId(String),
    /// WhatsApp Business Account id (`entry[].id`), for changes without a phone number.
    WhatsAppBusinessAccount(String),
    /// SHA-256 of the verify token Meta echoes in the GET handshake (stored hashed).
    WhatsAppVerifyToken(String),
}

impl TenantRoute {
    pub fn whatsapp_verify_token(token: &str) -> Self {
        TenantRoute::WhatsAppVerifyToken(sha256_hex(token))
    }

    /// The routing key, unique across integrations.
    pub fn key(&self) -> String {
        match self {
            TenantRoute::WhatsAppPhoneNumberId(id) => format!("WHATSAPP_PHONE#{id}"),
            TenantRoute::WhatsAppBusinessAccount(id) => format!("WHATSAPP_WABA#{id}"),
            TenantRoute::WhatsAppVerifyToken(hash) => format!("WHATSAPP_VERIFY#{hash}"),
        }
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Where a tenant's credentials for one integration live: `<prefix><tenant>/<integration>`.
pub fn secret_name(prefix: &str, tenant: &TenantId, integration: &str) -> String {
    format!("{prefix}{tenant}/{integration}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_key_safe() {
        assert!(TenantId::parse("demo").is_ok());
        assert!(TenantId::parse("acme-sigorta-2").is_ok());
        for bad in ["", "Demo", "a#b", "a/b", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verify_tokens_route_by_hash_only() {
        let route = TenantRoute::whatsapp_verify_token("demo-verify-token");
        assert!(!route.key().contains("demo-verify-token"));
        assert!(route.key().starts_with("WHATSAPP_VERIFY#"));
    }

    #[test]
    fn secret_names_follow_the_template_prefix() {
        let t = TenantId::parse("demo").unwrap();
        assert_eq!(
            secret_name("onecrm/tenants/", &t, "whatsapp"),
            "onecrm/tenants/demo/whatsapp"
        );
    }
}
