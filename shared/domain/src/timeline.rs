//! A card's timeline: every interaction on any channel, newest first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[serde(rename = "whatsapp")]
    WhatsApp,
    Phone,
    Email,
    WebForm,
    MetaLeadAds,
    Note,
    System,
    #[serde(rename = "insurup")]
    InsurUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
}

/// A media file the partner holds for us (WhatsApp: fetch it with the media id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub media_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub entry_id: String,
    pub card_id: String,
    pub channel: Channel,
    pub direction: Direction,
    /// What happened, in the channel's words: `text`, `image`, `location`, `call_missed`...
    pub kind: String,
    /// A one-line summary for the card ("[Konum] Kadıköy İskele").
    pub text: String,
    /// The partner's id (WhatsApp wamid): the same event never lands twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Channel-specific details (coordinates, shared contacts, order lines).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    pub trace_id: String,
}
