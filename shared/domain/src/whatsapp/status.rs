//! Delivery statuses of messages we sent, and the rule that they never go backwards.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::whatsapp::event::WaError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    /// First play of a voice message.
    Played,
    Failed,
    /// A status Meta added after this code was written; recorded, never ranked.
    #[serde(untagged)]
    Other(String),
}

impl DeliveryStatus {
    pub fn parse(text: &str) -> Self {
        match text {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "played" => DeliveryStatus::Played,
            "failed" => DeliveryStatus::Failed,
            other => DeliveryStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other(s) => s,
        }
    }

    /// Statuses only move up this ladder: a late `delivered` never overwrites `read`.
    /// `failed` is final. Unknown statuses rank 0 and so never replace a known one.
    pub fn rank(&self) -> u8 {
        match self {
            DeliveryStatus::Other(_) => 0,
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Played => 4,
            DeliveryStatus::Failed => 5,
        }
    }

    /// Whether a message now at `current` may move to `self`.
    pub fn advances(&self, current: Option<&DeliveryStatus>) -> bool {
        match current {
            None => true,
            Some(current) => self.rank() > current.rank(),
        }
    }
}

/// A status webhook for one of our outbound messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageStatusUpdate {
    pub wamid: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    /// E.164 of the recipient when it is a phone (not a group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub phone_number_id: String,
    /// Meta's errors on a `failed` status (code, title, details), kept as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WaError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_category: Option<String>,
}

/// Our record of a message we sent, as statuses shaped it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub wamid: String,
    pub status: DeliveryStatus,
    pub status_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<DateTime<Utc>>,
}

impl OutboundMessage {
    /// The record after `update`, or `None` when the update would move the status backwards.
    /// Adapters enforce the same rule with a conditional write on the rank.
    pub fn apply(
        current: Option<&OutboundMessage>,
        update: &MessageStatusUpdate,
    ) -> Option<OutboundMessage> {
        if !update.status.advances(current.map(|c| &c.status)) {
            return None;
        }
        let mut next = current.cloned().unwrap_or(OutboundMessage {
            wamid: update.wamid.clone(),
            status: update.status.clone(),
            status_at: update.at,
            recipient: None,
            error_code: None,
            error_title: None,
            error_details: None,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
        });
        next.status = update.status.clone();
        next.status_at = update.at;
        if next.recipient.is_none() {
            next.recipient = update.recipient.clone();
        }
        match update.status {
            DeliveryStatus::Sent => next.sent_at = Some(update.at),
            DeliveryStatus::Delivered => next.delivered_at = Some(update.at),
            DeliveryStatus::Read | DeliveryStatus::Played => {
                next.read_at = next.read_at.or(Some(update.at))
            }
            DeliveryStatus::Failed => {
                next.failed_at = Some(update.at);
                if let Some(error) = update.errors.first() {
                    next.error_code = Some(error.code);
                    next.error_title = error.title.clone();
                    next.error_details = error.details.clone();
                }
            }
            DeliveryStatus::Other(_) => {}
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn update(status: &str, secs: i64) -> MessageStatusUpdate {
        MessageStatusUpdate {
            wamid: "wamid.X".into(),
            status: DeliveryStatus::parse(status),
            at: Utc.timestamp_opt(secs, 0).unwrap(),
            recipient: Some("+905331234567".into()),
            phone_number_id: "1".into(),
            errors: vec![],
            pricing_category: None,
        }
    }

    #[test]
    fn statuses_never_regress() {
        let read = OutboundMessage::apply(None, &update("read", 30)).unwrap();
        assert_eq!(read.status, DeliveryStatus::Read);
        assert!(OutboundMessage::apply(Some(&read), &update("delivered", 20)).is_none());
        assert!(OutboundMessage::apply(Some(&read), &update("sent", 10)).is_none());
        assert!(
            OutboundMessage::apply(Some(&read), &update("read", 30)).is_none(),
            "duplicate changes nothing"
        );
        assert!(OutboundMessage::apply(Some(&read), &update("deleted", 40)).is_none());
    }

    #[test]
    fn failed_keeps_metas_error() {
        let mut failed = update("failed", 40);
        failed.errors = vec![WaError {
            code: 131026,
            title: Some("Message undeliverable".into()),
            details: Some("Message Undeliverable.".into()),
        }];
        let sent = OutboundMessage::apply(None, &update("sent", 10)).unwrap();
        let record = OutboundMessage::apply(Some(&sent), &failed).unwrap();
        assert_eq!(record.status, DeliveryStatus::Failed);
        assert_eq!(record.error_code, Some(131026));
        assert_eq!(record.error_title.as_deref(), Some("Message undeliverable"));
        assert_eq!(record.sent_at, sent.sent_at);
    }

    #[test]
    fn unknown_statuses_round_trip_as_plain_strings() {
        let json =
            serde_json::to_string(&DeliveryStatus::parse("held_for_quality_assessment")).unwrap();
        assert_eq!(json, "\"held_for_quality_assessment\"");
        assert_eq!(
            serde_json::to_string(&DeliveryStatus::Read).unwrap(),
            "\"read\""
        );
        let back: DeliveryStatus = serde_json::from_str("\"read\"").unwrap();
        assert_eq!(back, DeliveryStatus::Read);
    }
}
