//! Idempotency: every event's effect is written together with a key `scope + external id`
//! (the adapters' transaction builder puts it first, with `attribute_not_exists`), and a
//! duplicate is reported the same way by every worker.

use chrono::{DateTime, Duration, Utc};

use crate::log::LogEntry;
use crate::ports::IdempotencyKey;

/// Partners retry for days (Meta: up to 7); keys outlive that comfortably.
pub const IDEMPOTENCY_DAYS: i64 = 30;

pub const DUPLICATE_MESSAGE: &str = "already processed; nothing changed";

/// The key of one event: `scope` names the kind (`whatsapp.message`, `meta.leadgen`,
/// `insurup.delivery`), `external_id` is the partner's id of the event.
pub fn idempotency_key(scope: &str, external_id: &str, now: DateTime<Utc>) -> IdempotencyKey {
    IdempotencyKey {
        scope: scope.to_string(),
        key: external_id.to_string(),
        expires_at: now + Duration::days(IDEMPOTENCY_DAYS),
    }
}

/// How every worker logs a duplicate.
pub fn duplicate(entry: LogEntry) -> LogEntry {
    entry.external_message(DUPLICATE_MESSAGE)
}
