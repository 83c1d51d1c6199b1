//! IP PBX call events (seed 002): the caller matched to cards, keypress actions (1 card,
//! 2 quote, 3 support ticket), and the call queue.

pub mod call;
pub mod desk;
pub mod event;
pub mod webhook;

#[cfg(test)]
mod tests;
