//! InsurUp (seed 004, contracts.md §3): policy, proposal, customer and consent events from its
//! webhooks onto customer cards.

mod customers;
mod effects;
pub mod event;
pub mod policy;
pub mod webhook;
pub mod worker;

#[cfg(test)]
mod tests;

/// The tenant's InsurUp secret (`<prefix><tenant>/insurup`): `{"webhook_secret", "email",
/// "password"}` — the webhook's signing secret and the agent user InsurUp issued.
pub const SECRET_INTEGRATION: &str = "insurup";
