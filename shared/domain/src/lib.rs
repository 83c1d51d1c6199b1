//! The ONE CRM integration domain: types, rules and ports.
//!
//! This crate knows nothing of Lambda, AWS or HTTP clients. Adapters (`onecrm-adapters`)
//! implement the traits in [`ports`]; function crates wire adapters to the use cases here.

pub mod attribution;
pub mod batch;
pub mod capture;
pub mod consent;
pub mod envelope;
pub mod error;
pub mod express;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod ingress;
pub mod insurup;
pub mod karel;
pub mod log;
pub mod logo;
pub mod mask;
pub mod meta;
pub mod meta_lead;
pub mod meta_webhook;
pub mod money;
pub mod nightly;
pub mod operator;
pub mod page;
pub mod party;
pub mod pbx;
pub mod phone;
pub mod ports;
pub mod task;
pub mod tax_id;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod time;
pub mod timeline;
pub mod web_form;
pub mod whatsapp;
