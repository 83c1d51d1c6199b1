//! Meta Lead Ads (Facebook and Instagram lead forms): the `leadgen` webhook, the lead as Graph
//! returns it, what Graph's errors mean, and the worker that lands each lead on a card.

pub mod graph;
pub mod lead;
pub mod webhook;
pub mod worker;

/// `onecrm/tenants/<tenant>/meta` = `{"page_access_token", "verify_token"}`.
pub const SECRET_INTEGRATION: &str = "meta";

#[cfg(test)]
mod tests;
