//! Logo ERP (seed 000 §3, contracts.md §5): the nightly sync's rules. So far: current accounts
//! (cari) both ways, the conflict rule, invoices read exactly with their totals checked, and
//! invoice totals for the reconciliation report. The client, stock, the job (fan-out, pages,
//! checkpoints) and the stored report come next (issue 9).

pub mod arp;
pub mod invoice;
