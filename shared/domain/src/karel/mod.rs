//! Karel CRM (seed 003): the CRM's opportunities pushed to Karel's `PpOpportunities`.

pub mod opportunity;
pub mod worker;

#[cfg(test)]
mod tests;

/// The tenant's Karel secret (`<prefix><tenant>/karel`): `{"api_token"}`, the bearer token of
/// a Karel user with the `PpApiUser` role.
pub const SECRET_INTEGRATION: &str = "karel";
/// Queued opportunity changes.
pub const EVENT_KIND: &str = "karel.opportunity";

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::log::Integration;
use crate::tenant::TenantId;

/// The queued form of a change, on the trace of the event that caused it; one opportunity's
/// changes are applied in order.
pub fn envelope(
    tenant: &TenantId,
    trace: &TraceId,
    received_at: chrono::DateTime<chrono::Utc>,
    change: &opportunity::OpportunityChange,
) -> Envelope {
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: tenant.clone(),
        integration: Integration::Karel,
        kind: EVENT_KIND.into(),
        external_id: format!("{}@{}", change.opportunity_id, change.version),
        trace_id: trace.clone(),
        received_at,
        ordering_key: Some(change.opportunity_id.clone()),
        replay_of: None,
        payload: serde_json::to_value(change).unwrap_or_default(),
    }
}
