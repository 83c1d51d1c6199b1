//! WhatsApp events as the CRM understands them: what the webhook queues and the worker applies.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::party::AdReferral;
use crate::timeline::Attachment;
use crate::whatsapp::status::MessageStatusUpdate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WhatsAppEvent {
    Message(Box<InboundMessage>),
    Status(MessageStatusUpdate),
}

impl WhatsAppEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            WhatsAppEvent::Message(_) => "whatsapp.message",
            WhatsAppEvent::Status(_) => "whatsapp.status",
        }
    }

    /// Per sender for messages, per message for statuses.
    pub fn ordering_key(&self) -> String {
        match self {
            WhatsAppEvent::Message(m) => format!("whatsapp:{}", m.from),
            WhatsAppEvent::Status(s) => format!("whatsapp:{}", s.wamid),
        }
    }

    /// The idempotency key: a message's wamid; a status's wamid and status (one wamid gets
    /// `sent`, `delivered`, `read` as separate events).
    pub fn external_id(&self) -> String {
        match self {
            WhatsAppEvent::Message(m) => m.wamid.clone(),
            WhatsAppEvent::Status(s) => format!("{}:{}", s.wamid, s.status.as_str()),
        }
    }
}

/// A message a customer sent to the tenant's WhatsApp number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub wamid: String,
    /// The sender in E.164 (validated by the webhook).
    pub from: String,
    pub profile_name: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub phone_number_id: String,
    pub content: MessageContent,
    /// The wamid of our message this one answers (buttons, replies, reactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_to: Option<String>,
    #[serde(default)]
    pub forwarded: bool,
    /// A click-to-WhatsApp ad that started the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<AdReferral>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub media_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Audio recorded as a voice note.
    #[serde(default)]
    pub voice: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedContact {
    pub name: String,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_retailer_id: String,
    pub quantity: Decimal,
    pub item_price: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaError {
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    Image(Media),
    Audio(Media),
    Video(Media),
    Document(Media),
    Sticker(Media),
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
        url: Option<String>,
    },
    Contacts {
        contacts: Vec<SharedContact>,
    },
    /// A tap on an interactive button or list row (`reply_type`: button_reply, list_reply, nfm_reply).
    InteractiveReply {
        reply_type: String,
        id: String,
        title: String,
        description: Option<String>,
    },
    /// A tap on a template's quick-reply button.
    Button {
        payload: Option<String>,
        text: Option<String>,
    },
    /// `emoji` is absent when the customer removed the reaction.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    Order {
        catalog_id: Option<String>,
        text: Option<String>,
        items: Vec<OrderItem>,
    },
    /// E.g. `user_changed_number`; `new_wa_id` is the customer's new number.
    System {
        system_type: String,
        body: Option<String>,
        new_wa_id: Option<String>,
    },
    /// A type we do not (yet) understand, kept with its raw type and Meta's errors.
    Unsupported {
        raw_type: String,
        errors: Vec<WaError>,
    },
}

impl MessageContent {
    /// The message type as Meta names it (`unsupported` keeps the raw type).
    pub fn kind(&self) -> String {
        match self {
            MessageContent::Text { .. } => "text".into(),
            MessageContent::Image(_) => "image".into(),
            MessageContent::Audio(_) => "audio".into(),
            MessageContent::Video(_) => "video".into(),
            MessageContent::Document(_) => "document".into(),
            MessageContent::Sticker(_) => "sticker".into(),
            MessageContent::Location { .. } => "location".into(),
            MessageContent::Contacts { .. } => "contacts".into(),
            MessageContent::InteractiveReply { .. } => "interactive".into(),
            MessageContent::Button { .. } => "button".into(),
            MessageContent::Reaction { .. } => "reaction".into(),
            MessageContent::Order { .. } => "order".into(),
            MessageContent::System { .. } => "system".into(),
            MessageContent::Unsupported { raw_type, .. } => format!("unsupported:{raw_type}"),
        }
    }

    /// Whether a message of this kind from an unknown number should open a lead. Reactions
    /// and system notices are not conversations a salesperson can pick up.
    pub fn opens_lead(&self) -> bool {
        !matches!(
            self,
            MessageContent::Reaction { .. } | MessageContent::System { .. }
        )
    }

    /// The one line shown on the card's timeline, in Turkish as the CRM's users read it.
    pub fn summary(&self) -> String {
        fn with(label: &str, extra: Option<&str>) -> String {
            match extra.map(str::trim).filter(|e| !e.is_empty()) {
                Some(extra) => format!("[{label}] {extra}"),
                None => format!("[{label}]"),
            }
        }
        match self {
            MessageContent::Text { body } => body.clone(),
            MessageContent::Image(m) => with("Görsel", m.caption.as_deref()),
            MessageContent::Audio(m) if m.voice => with("Sesli mesaj", None),
            MessageContent::Audio(_) => with("Ses dosyası", None),
            MessageContent::Video(m) => with("Video", m.caption.as_deref()),
            MessageContent::Document(m) => {
                with("Belge", m.caption.as_deref().or(m.filename.as_deref()))
            }
            MessageContent::Sticker(_) => with("Çıkartma", None),
            MessageContent::Location {
                name,
                address,
                latitude,
                longitude,
                ..
            } => {
                let place = [name.as_deref(), address.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                if place.is_empty() {
                    format!("[Konum] {latitude}, {longitude}")
                } else {
                    format!("[Konum] {place}")
                }
            }
            MessageContent::Contacts { contacts } => with(
                "Kişi kartı",
                Some(
                    &contacts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ),
            MessageContent::InteractiveReply { title, .. } => with("Yanıt", Some(title)),
            MessageContent::Button { text, payload } => {
                with("Buton", text.as_deref().or(payload.as_deref()))
            }
            MessageContent::Reaction {
                emoji: Some(emoji), ..
            } => with("Tepki", Some(emoji)),
            MessageContent::Reaction { emoji: None, .. } => with("Tepki kaldırıldı", None),
            MessageContent::Order { items, text, .. } => {
                let lines = format!("{} ürün", items.len());
                with(
                    "Sipariş",
                    Some(
                        &text
                            .as_deref()
                            .map(|t| format!("{lines}: {t}"))
                            .unwrap_or(lines),
                    ),
                )
            }
            MessageContent::System {
                body, system_type, ..
            } => with("Sistem", body.as_deref().or(Some(system_type))),
            MessageContent::Unsupported { raw_type, .. } => {
                format!("[Desteklenmeyen mesaj türü: {raw_type}]")
            }
        }
    }

    pub fn attachment(&self) -> Option<Attachment> {
        match self {
            MessageContent::Image(m)
            | MessageContent::Audio(m)
            | MessageContent::Video(m)
            | MessageContent::Document(m)
            | MessageContent::Sticker(m) => Some(Attachment {
                media_id: m.media_id.clone(),
                mime_type: m.mime_type.clone(),
                filename: m.filename.clone(),
                caption: m.caption.clone(),
                sha256: m.sha256.clone(),
            }),
            _ => None,
        }
    }
}
