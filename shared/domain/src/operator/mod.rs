//! The operator API (issue 11, seed 000 §6): what the operations team and sales reach from one
//! page, scoped to the caller's tenant by its API key. This first part: keys with scopes, the
//! integration log (filters, an event's whole path by trace id), leads by source, a card with
//! its timeline, and the call queue.

pub mod api;
mod health;
pub mod keys;
pub mod replay;

#[cfg(test)]
mod tests;
