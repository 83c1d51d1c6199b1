//! Every key of both tables, in one place (see the table in `mod.rs`).

use onecrm_domain::log::Integration;
use onecrm_domain::party::{IdentityKey, LeadSource};
use onecrm_domain::ports::IdempotencyKey;
use onecrm_domain::tenant::{TenantId, TenantRoute};

pub fn tenant_config(t: &TenantId) -> String {
    format!("TENANT#{t}")
}
/// An operator API key, by the SHA-256 of the key (all tenants').
pub fn operator_key(hash: &str) -> String {
    format!("OPKEY#{hash}")
}
pub fn route(r: &TenantRoute) -> String {
    format!("ROUTE#{}", r.key())
}
pub fn identity(t: &TenantId, k: &IdentityKey) -> String {
    format!("{}{}", identities(t), k.key())
}
/// What every identity partition of a tenant starts with.
pub fn identities(t: &TenantId) -> String {
    format!("T#{t}#ID#")
}
/// The interactions that came through one identity (a phone's WhatsApp messages and calls).
pub fn conversation(t: &TenantId, k: &IdentityKey) -> String {
    format!("T#{t}#CONV#{}", k.key())
}
pub fn card(t: &TenantId, card_id: &str) -> String {
    format!("T#{t}#CARD#{card_id}")
}
pub fn leads(t: &TenantId, source: LeadSource) -> String {
    format!("T#{t}#LEADS#{}", source.as_str())
}
pub fn tasks(t: &TenantId, owner: &str) -> String {
    format!("T#{t}#TASKS#{owner}")
}
pub fn wa_message(t: &TenantId, wamid: &str) -> String {
    format!("T#{t}#WAMSG#{wamid}")
}
pub fn wa_send(t: &TenantId, send_id: &str) -> String {
    format!("T#{t}#WASEND#{send_id}")
}
pub fn idempotency(t: &TenantId, k: &IdempotencyKey) -> String {
    format!("T#{t}#IDEM#{}#{}", k.scope, k.key)
}
pub fn form_rate(t: &TenantId, key_hash: &str) -> String {
    format!("T#{t}#RATE#{key_hash}")
}
pub fn form_idempotency(t: &TenantId, key_hash: &str) -> String {
    format!("T#{t}#WFKEY#{key_hash}")
}
pub fn log(t: &TenantId, integration: Integration) -> String {
    format!("T#{t}#LOG#{}", integration.as_str())
}
pub fn trace(t: &TenantId, trace: &str) -> String {
    format!("T#{t}#TRACE#{trace}")
}
pub fn error_code(t: &TenantId, code: &str) -> String {
    format!("T#{t}#ERR#{code}")
}

/// The index partition of the tenants connected to a scheduled integration (all tenants').
pub fn connected(integration: Integration) -> String {
    format!("CONNECTED#{}", integration.as_str())
}
/// A nightly job's run (checkpoint, lease, watermark): `T#<t>#LOGO#RUN`, `T#<t>#EXPRESS#RUN`.
pub fn run(t: &TenantId, integration: Integration) -> String {
    format!("T#{t}#{}#RUN", integration.as_str().to_ascii_uppercase())
}
/// Logo sync: finished runs' reports, product cards, and the index partition of customers
/// waiting for a Logo code.
/// A nightly job's finished runs with their reports.
pub fn run_reports(t: &TenantId, integration: Integration) -> String {
    format!("T#{t}#{}#REPORT", integration.as_str().to_ascii_uppercase())
}
/// Express: what the CRM last learnt of a member, the account's campaigns, the segments' lists.
pub fn express_member(t: &TenantId, member_id: &str) -> String {
    format!("T#{t}#EXPRESS#MEMBER#{member_id}")
}
pub fn express_campaigns(t: &TenantId) -> String {
    format!("T#{t}#EXPRESS#CAMPAIGNS")
}
pub fn express_segments(t: &TenantId) -> String {
    format!("T#{t}#EXPRESS#SEGMENTS")
}
pub fn logo_pending(t: &TenantId) -> String {
    format!("T#{t}#LOGO#PENDING")
}
pub fn product(t: &TenantId, code: &str) -> String {
    format!("T#{t}#PRODUCT#{code}")
}

// The raw-event table (see `archive.rs`).
pub fn raw_delivery(t: &TenantId, trace: &str) -> String {
    format!("T#{t}#RAW#{trace}")
}
pub fn unparsed(t: &TenantId, integration: Integration) -> String {
    format!("T#{t}#UNPARSED#{}", integration.as_str())
}
pub fn parked(t: &TenantId, integration: Integration) -> String {
    format!("T#{t}#PARKED#{}", integration.as_str())
}
pub fn unrouted(integration: Integration, route: &TenantRoute) -> String {
    format!("UNROUTED#{}#{}", integration.as_str(), route.key())
}
pub fn unrouted_all(integration: Integration) -> String {
    format!("UNROUTED#{}", integration.as_str())
}
