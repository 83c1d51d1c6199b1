//! The queued form of every accepted event: one envelope per event, whatever the partner.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::log::Integration;
use crate::tenant::TenantId;

/// Carried from the webhook through SQS to the worker and onto every log line and record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceId(String);

impl TraceId {
    pub fn new(id: impl Into<String>) -> Self {
        TraceId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the trace began, if the id says so: the ids we mint are UUIDv7, whose first 48 bits
    /// are the Unix time in milliseconds. Log records of such a trace are stored under this time,
    /// so a trace path is found from the id alone, without an index.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        let id = self.0.as_bytes();
        let uuid_shaped =
            id.len() == 36 && [8, 13, 18, 23].iter().all(|&i| id[i] == b'-') && id[14] == b'7';
        if !uuid_shaped {
            return None;
        }
        let hex = format!("{}{}", &self.0[0..8], &self.0[9..13]);
        let millis = i64::from_str_radix(&hex, 16).ok()?;
        DateTime::from_timestamp_millis(millis)
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub const ENVELOPE_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u8,
    pub tenant_id: TenantId,
    pub integration: Integration,
    /// `whatsapp.message`, `whatsapp.status`, ...
    pub kind: String,
    /// The partner's id of this event (wamid, leadgen id): the idempotency key.
    pub external_id: String,
    pub trace_id: TraceId,
    pub received_at: DateTime<Utc>,
    /// Events with the same key are applied in queue order (a sender's messages: the first
    /// one becomes the new lead's note); different keys run concurrently. Also the
    /// `MessageGroupId` should a FIFO queue ever be needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// Set when an operator replayed the event from its dead-letter queue: the message id it
    /// had there. The trace id stays the event's own, so its path shows the replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    pub payload: serde_json::Value,
}

impl Envelope {
    pub fn to_json(&self) -> String {
        // Serializing plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if envelope.v != ENVELOPE_VERSION {
            return Err(format!("unsupported envelope version {}", envelope.v));
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_v7_trace_id_tells_when_it_started_and_other_ids_do_not() {
        let trace = TraceId::new("01a215a6-46a0-776e-82d6-bf74a2f91fbe");
        assert_eq!(
            trace.started_at().unwrap().timestamp_millis(),
            0x01a2_15a6_46a0
        );
        for other in [
            "trace-1",
            "sqs-5fea7756-0ea4-451a-a703-a558b933e274",
            "5fea7756-0ea4-451a-a703-a558b933e274",
        ] {
            assert!(TraceId::new(other).started_at().is_none(), "{other}");
        }
    }
}
