//! Euromsg Express (seed 001, contracts.md §4): the CRM's consenting people pushed into
//! Express lists, and every night the members' consent states and the campaigns' per-person
//! results brought back onto the cards.

pub mod campaign;
pub mod job;
pub mod member;
pub mod ports;
pub mod push;
pub mod run;
mod steps;
pub mod worker;

#[cfg(test)]
mod tests;

/// The tenant secret holding the tenant's Express API key (`<prefix><tenant>/express`,
/// `{"api_key": "..."}`).
pub const SECRET_INTEGRATION: &str = "express";
/// The integrator's own Express credentials (`<app prefix>express/integrator`,
/// `{"client_name", "password"}`): one for every tenant.
pub const INTEGRATOR_APP: &str = "integrator";
