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
