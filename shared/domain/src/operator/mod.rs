//! The operator API (issue 11, seed 000 §6): what the operations team and sales reach from one
//! page, scoped to the caller's tenant by its API key: keys with scopes, the integration log
//! (filters, an event's whole path by trace id, payloads), leads by source and their
//! attribution, a card with its timeline, the call queue, nightly job reports, health, replay
//! from the dead-letter queues and outbound WhatsApp.

pub mod api;
mod health;
pub mod keys;
pub mod replay;
pub mod whatsapp;

#[cfg(test)]
mod send_tests;
#[cfg(test)]
mod tests;
