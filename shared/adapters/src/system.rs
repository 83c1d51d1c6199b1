//! Real clock and ids.

use chrono::{DateTime, Utc};
use onecrm_domain::ports::{Clock, IdGenerator};

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// UUID v7: unique, and ordered by creation time, which keeps log sort keys chronological.
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().to_string()
    }
}
