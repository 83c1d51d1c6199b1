//! Website forms (`web-form`): a tenant's API key in a header, CORS for its own origins, a
//! per-key rate limit shared by every instance, an `Idempotency-Key` that makes a resubmission
//! answer what the first one did, validation that names each bad field, a honeypot for bots;
//! 202 once the submission is queued. `web-form-worker` lands it like a Lead Ads lead.

pub mod form;
pub mod intake;
pub mod worker;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::PortError;
use crate::tenant::TenantId;

pub const EVENT_KIND: &str = "web_form.submission";
/// The idempotency scope of a submission's effect.
pub const SCOPE: &str = "web_form.submission";
/// The header carrying the tenant's API key.
pub const API_KEY_HEADER: &str = "x-api-key";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// A form post is a few KB; anything much larger is not a form.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// An Idempotency-Key is remembered this long (a browser retry, a double click, a resubmit).
pub const IDEMPOTENCY_HOURS: i64 = 24;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// Who used an Idempotency-Key first, and with what body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub trace_id: String,
    /// SHA-256 of the submission's body: the same key with another body is refused.
    pub fingerprint: String,
}

/// The verdict on one submission's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Allowed,
    /// Over the key's limit for this window: try again after this many seconds.
    Limited {
        retry_after_secs: u64,
    },
}

/// Shared state the intake needs across instances (DynamoDB in the adapters).
#[async_trait]
pub trait SubmissionGuard: Send + Sync {
    /// Counts one submission of `key_hash` in the current minute (an atomic, conditional
    /// counter: concurrent instances cannot both take the last slot).
    async fn admit(
        &self,
        tenant: &TenantId,
        key_hash: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<Rate, PortError>;
    /// Claims an Idempotency-Key for `trace` and the body's `fingerprint`: `None` if this is
    /// the first use, else the first submission's claim.
    async fn claim(
        &self,
        tenant: &TenantId,
        idempotency_key: &str,
        claim: &Claim,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Claim>, PortError>;
    /// Gives a claim back when its submission could not be queued (so a retry can succeed).
    async fn release(&self, tenant: &TenantId, idempotency_key: &str) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests;
