//! Logo ERP (seed 000 §3, contracts.md §5): the nightly sync. Current accounts (cari) both
//! ways with a conflict rule, invoices and stock into the CRM, page by page with checkpoints,
//! and the reconciliation report each run leaves.

mod ahead;
pub mod arp;
mod cari;
mod check;
pub mod customer;
pub mod invoice;
pub mod job;
pub mod ports;
pub mod run;
pub mod stock;
pub mod worker;

#[cfg(test)]
mod tests;

/// The tenant secret holding the Logo URL and credentials (`<prefix><tenant>/logo`).
pub const SECRET_INTEGRATION: &str = "logo";
