//! Tenants (the CRM's customer companies), their per-integration settings, and how an incoming
//! call is routed to one.

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
    /// One optional section per integration: a tenant uses the ones it has connected.
    #[serde(default)]
    pub integrations: IntegrationSettings,
    pub created_at: DateTime<Utc>,
}

impl TenantConfig {
    /// What a route of this tenant leads to: the tenant, plus the app that signs the route's
    /// deliveries (WhatsApp and Lead Ads: the Meta app) and the PBX source allow-list.
    pub fn route_target(&self, route: &TenantRoute) -> RouteTarget {
        let mut target = RouteTarget::tenant(self.tenant_id.clone());
        let i = &self.integrations;
        match route {
            TenantRoute::WhatsAppPhoneNumberId(_) | TenantRoute::WhatsAppBusinessAccount(_) => {
                target.app_id = i.whatsapp.as_ref().map(|w| w.meta_app_id.clone());
            }
            TenantRoute::MetaPage(_) => {
                target.app_id = i.meta_lead_ads.as_ref().map(|m| m.meta_app_id.clone());
            }
            TenantRoute::PbxToken(_) => {
                target.allowed_sources = i
                    .pbx
                    .as_ref()
                    .map(|p| p.allowed_sources.clone())
                    .unwrap_or_default();
            }
            TenantRoute::MetaVerifyToken(_)
            | TenantRoute::InsurUpAccount(_)
            | TenantRoute::WebFormKey(_)
            | TenantRoute::WebFormOrigin(_) => {}
        }
        target
    }
}

/// Per-integration settings. Partner base URLs are deployment configuration, not tenant data,
/// so local sandboxes stand in for partners without touching tenants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsAppSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_lead_ads: Option<MetaLeadAdsSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_form: Option<WebFormSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx: Option<PbxSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurup: Option<InsurUpSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<LogoSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub express: Option<ExpressSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub karel: Option<KarelSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsAppSettings {
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// The Meta app whose App Secret signs this number's webhooks (shared by the app's tenants).
    pub meta_app_id: String,
    /// Seed 000 §2.3: creating a lead for an unknown number is configurable.
    #[serde(default = "yes")]
    pub create_lead_for_unknown_numbers: bool,
    /// Seed 000 §2.4: "assign a task to the salesperson" is optional.
    #[serde(default)]
    pub create_task_for_new_lead: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaLeadAdsSettings {
    pub page_ids: Vec<String>,
    pub meta_app_id: String,
    /// Form question key → lead field, on top of Meta's standard keys (`full_name`, `email`,
    /// `phone_number`...); keys in neither stay custom fields.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub field_mapping: std::collections::BTreeMap<String, crate::meta_lead::lead::LeadField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebFormSettings {
    /// Origins allowed by CORS (`https://www.ornek.com.tr`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Submissions one API key may make per minute, across every instance.
    #[serde(default = "default_submissions_per_minute")]
    pub submissions_per_minute: u32,
}

fn default_submissions_per_minute() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PbxSettings {
    /// `netgsm`, `karel`, `generic`...
    pub vendor: String,
    /// Source addresses or CIDR ranges the PBX posts from; empty allows any.
    #[serde(default)]
    pub allowed_sources: Vec<String>,
    /// PBX agent id → CRM user (seed 002: "IP santral agent ID" on the user card).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub agent_ids: std::collections::BTreeMap<String, String>,
    /// PBX extension (dahili) → CRM user, used when the agent id is absent or unmapped.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extensions: std::collections::BTreeMap<String, String>,
}

impl PbxSettings {
    /// The CRM user answering: by agent id first, then by extension.
    pub fn agent_user(&self, agent_id: Option<&str>, extension: Option<&str>) -> Option<&str> {
        agent_id
            .and_then(|a| self.agent_ids.get(a))
            .or_else(|| extension.and_then(|e| self.extensions.get(e)))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsurUpSettings {
    pub account_id: String,
}

/// Logo ERP (seed 000 §3): the firm and period the sync reads, and its rules. The URL and the
/// credentials are in the tenant's `logo` secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoSettings {
    pub firm_no: String,
    #[serde(default)]
    pub period_no: Option<String>,
    /// Who wins when a customer changed on both sides since the last run.
    #[serde(default)]
    pub conflict_rule: crate::logo::arp::ConflictRule,
    /// Prefix of the cari codes the CRM assigns to customers it creates in Logo.
    #[serde(default = "logo_code_prefix")]
    pub code_prefix: String,
    /// Records per Logo page.
    #[serde(default = "logo_page_size")]
    pub page_size: u32,
    /// Whether CRM customers without a Logo code are created in Logo.
    #[serde(default = "yes")]
    pub create_in_logo: bool,
    /// Whether product cards take Logo's stock (needs SQL read permission on the REST user).
    #[serde(default = "yes")]
    pub sync_stock: bool,
    /// Which Logo fields hold the phones, e-mail, address and city (the seed's by default).
    #[serde(default)]
    pub fields: crate::logo::arp::LogoFields,
}

impl LogoSettings {
    pub fn new(firm_no: &str, period_no: Option<&str>) -> Self {
        LogoSettings {
            firm_no: firm_no.to_string(),
            period_no: period_no.map(str::to_string),
            conflict_rule: Default::default(),
            code_prefix: logo_code_prefix(),
            page_size: logo_page_size(),
            create_in_logo: true,
            sync_stock: true,
            fields: Default::default(),
        }
    }
}

fn logo_code_prefix() -> String {
    "CRM.".into()
}

fn logo_page_size() -> u32 {
    100
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpressSettings {
    /// The lists the nightly poll reads (empty: every list of the account).
    #[serde(default)]
    pub list_ids: Vec<String>,
    /// The account has Express as its İYS integrator: members go with their İYS fields.
    #[serde(default)]
    pub iys_enabled: bool,
    /// Members and report rows per page.
    #[serde(default = "express_page_size")]
    pub page_size: u32,
}

fn express_page_size() -> u32 {
    500
}

/// Karel CRM (seed 003): how the CRM's opportunities map onto Karel's `PpOpportunities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KarelSettings {
    #[serde(default)]
    pub pipeline_id: Option<String>,
    /// CRM user → Karel representative card id (`RefRepresentativeCardId`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub representatives: std::collections::BTreeMap<String, i64>,
    /// For an opportunity whose owner has no mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_representative: Option<i64>,
    /// CRM card → Karel customer card id (`RefCustomerCardId`), for cards whose external ids
    /// do not carry it (`karel`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub customers: std::collections::BTreeMap<String, i64>,
    /// CRM stage → Karel pipeline stage id (`RefPipelineStageId`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stages: std::collections::BTreeMap<String, i64>,
    /// CRM field name → Karel custom field.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub custom_fields: std::collections::BTreeMap<String, KarelCustomField>,
    /// Karel's currency id for TRY (`RefCurrencyId`; 1 in Karel's example).
    #[serde(default = "karel_try")]
    pub currency_id: u8,
    /// Whether deleting an opportunity also deletes its collections (tahsilatlar). Karel's
    /// default is yes; ours is no: money records are not ours to remove.
    #[serde(default)]
    pub delete_collections: bool,
}

fn karel_try() -> u8 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KarelFieldKind {
    Text,
    Date,
    /// A dropdown: the CRM's value → Karel's option id.
    Option,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KarelCustomField {
    /// `CustomFieldId`.
    pub id: i64,
    /// `CustomFieldFieldLabel` as Karel shows it: how a stored value's `CustomFieldValueId` is
    /// told apart (Karel's GET does not return the field id).
    pub label: String,
    pub kind: KarelFieldKind,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub options: std::collections::BTreeMap<String, i64>,
}

fn yes() -> bool {
    true
}

/// A way an incoming call names its tenant. Each maps to one routing item, so resolving a
/// tenant is one key lookup whatever the integration. Tokens and keys are stored hashed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantRoute {
    /// WhatsApp Cloud API `metadata.phone_number_id`.
    WhatsAppPhoneNumberId(String),
    /// WhatsApp Business Account id (`entry[].id`), for changes without a phone number.
    WhatsAppBusinessAccount(String),
    /// SHA-256 of the verify token Meta echoes in the GET handshake (WhatsApp and Lead Ads).
    MetaVerifyToken(String),
    /// Facebook Page id of a Lead Ads delivery (`entry[].id`).
    MetaPage(String),
    /// InsurUp account id.
    InsurUpAccount(String),
    /// SHA-256 of a web-form API key.
    WebFormKey(String),
    /// A web site origin allowed to post a tenant's forms (`https://www.ornek.com.tr`), for the
    /// CORS preflight, which carries no API key.
    WebFormOrigin(String),
    /// SHA-256 of a PBX token.
    PbxToken(String),
}

impl TenantRoute {
    /// The token a Meta app (WhatsApp, Lead Ads) was subscribed with, by its hash.
    pub fn meta_verify_token(token: &str) -> Self {
        TenantRoute::MetaVerifyToken(sha256_hex(token))
    }

    pub fn web_form_key(key: &str) -> Self {
        TenantRoute::WebFormKey(sha256_hex(key))
    }

    /// A route several tenants may hold (a site hosting forms of several tenants): the
    /// preflight only asks whether some tenant allows the origin; the POST then checks the
    /// origin against its API key's own tenant. Every other route belongs to one tenant.
    pub fn is_shared(&self) -> bool {
        matches!(self, TenantRoute::WebFormOrigin(_))
    }

    /// Origins compare lower-case, without a trailing slash.
    pub fn web_form_origin(origin: &str) -> Self {
        TenantRoute::WebFormOrigin(origin.trim().trim_end_matches('/').to_ascii_lowercase())
    }

    pub fn pbx_token(token: &str) -> Self {
        TenantRoute::PbxToken(sha256_hex(token))
    }

    /// The routing key, unique across integrations.
    pub fn key(&self) -> String {
        match self {
            TenantRoute::WhatsAppPhoneNumberId(id) => format!("WHATSAPP_PHONE#{id}"),
            TenantRoute::WhatsAppBusinessAccount(id) => format!("WHATSAPP_WABA#{id}"),
            TenantRoute::MetaVerifyToken(hash) => format!("META_VERIFY#{hash}"),
            TenantRoute::MetaPage(id) => format!("META_PAGE#{id}"),
            TenantRoute::InsurUpAccount(id) => format!("INSURUP#{id}"),
            TenantRoute::WebFormKey(hash) => format!("WEBFORM_KEY#{hash}"),
            TenantRoute::WebFormOrigin(origin) => format!("WEBFORM_ORIGIN#{origin}"),
            TenantRoute::PbxToken(hash) => format!("PBX_TOKEN#{hash}"),
        }
    }

    /// The inverse of [`TenantRoute::key`] (held events name their route by key).
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, value) = key.split_once('#')?;
        let value = value.to_string();
        Some(match kind {
            "WHATSAPP_PHONE" => TenantRoute::WhatsAppPhoneNumberId(value),
            "WHATSAPP_WABA" => TenantRoute::WhatsAppBusinessAccount(value),
            "META_VERIFY" => TenantRoute::MetaVerifyToken(value),
            "META_PAGE" => TenantRoute::MetaPage(value),
            "INSURUP" => TenantRoute::InsurUpAccount(value),
            "WEBFORM_KEY" => TenantRoute::WebFormKey(value),
            "WEBFORM_ORIGIN" => TenantRoute::WebFormOrigin(value),
            "PBX_TOKEN" => TenantRoute::PbxToken(value),
            _ => return None,
        })
    }
}

/// Where a route leads: the tenant, and what authenticates requests arriving on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTarget {
    pub tenant_id: TenantId,
    /// The partner app whose secret signs deliveries on this route (a Meta app id). Tenants
    /// of one app share its secret, so rotating it is one update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Source addresses or CIDR ranges allowed on this route (PBX); empty allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_sources: Vec<String>,
}

impl RouteTarget {
    pub fn tenant(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            app_id: None,
            allowed_sources: Vec::new(),
        }
    }

    pub fn with_app(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Where a tenant's credentials for one integration live: `<prefix><tenant>/<integration>`.
pub fn secret_name(prefix: &str, tenant: &TenantId, integration: &str) -> String {
    format!("{prefix}{tenant}/{integration}")
}

/// Where a partner app's credentials live: `<prefix><partner>/<app id>` (a Meta App Secret).
pub fn app_secret_name(prefix: &str, partner: &str, app_id: &str) -> String {
    format!("{prefix}{partner}/{app_id}")
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
    fn tokens_and_keys_route_by_hash_only() {
        for (route, secret) in [
            (
                TenantRoute::meta_verify_token("demo-verify-token"),
                "demo-verify-token",
            ),
            (TenantRoute::web_form_key("wf_live_123"), "wf_live_123"),
            (TenantRoute::pbx_token("pbx-secret"), "pbx-secret"),
        ] {
            assert!(!route.key().contains(secret));
        }
    }

    #[test]
    fn route_keys_round_trip() {
        for route in [
            TenantRoute::WhatsAppPhoneNumberId("106540352242922".into()),
            TenantRoute::WhatsAppBusinessAccount("1".into()),
            TenantRoute::meta_verify_token("x"),
            TenantRoute::MetaPage("p#1".into()),
            TenantRoute::InsurUpAccount("a".into()),
            TenantRoute::web_form_key("k"),
            TenantRoute::pbx_token("t"),
        ] {
            assert_eq!(TenantRoute::from_key(&route.key()), Some(route));
        }
        assert_eq!(TenantRoute::from_key("NOPE#1"), None);
    }

    #[test]
    fn secret_names_follow_the_template_prefixes() {
        let t = TenantId::parse("demo").unwrap();
        assert_eq!(
            secret_name("onecrm/tenants/", &t, "whatsapp"),
            "onecrm/tenants/demo/whatsapp"
        );
        assert_eq!(
            app_secret_name("onecrm/apps/", "meta", "1234"),
            "onecrm/apps/meta/1234"
        );
    }
}
