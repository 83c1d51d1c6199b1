//! From a raw webhook body to validated [`WhatsAppEvent`]s, naming the exact field when
//! something is wrong (`entry[0].changes[0].value.messages[1].from`).

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::FieldError;
use crate::party::AdReferral;
use crate::phone::PhoneNumber;
use crate::tenant::TenantRoute;
use crate::time::from_unix_seconds;
use crate::whatsapp::event::{
    InboundMessage, Media, MessageContent, OrderItem, SharedContact, WaError, WhatsAppEvent,
};
use crate::whatsapp::status::{DeliveryStatus, MessageStatusUpdate};
use crate::whatsapp::wire;

pub const OBJECT: &str = "whatsapp_business_account";

/// One `changes[]` item of field `messages`, with its events in delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedChange {
    pub waba_id: String,
    pub phone_number_id: String,
    pub events: Vec<WhatsAppEvent>,
    /// Value-level errors Meta reported out of band.
    pub errors: Vec<WaError>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedDelivery {
    pub changes: Vec<ParsedChange>,
    /// `changes[].field` values we do not subscribe to handling (account_update...), kept for the log.
    pub ignored_fields: Vec<String>,
}

impl ParsedDelivery {
    pub fn event_count(&self) -> usize {
        self.changes.iter().map(|c| c.events.len()).sum()
    }
}

/// The routes that name this delivery's tenant(s): each entry's phone number ids, or its
/// WhatsApp Business Account id when a change carries no metadata (account updates).
pub fn routes(body: &str) -> Result<Vec<TenantRoute>, FieldError> {
    let routing: wire::Routing = serde_json::from_str(body).map_err(|e| json_error(&e))?;
    let mut routes = Vec::new();
    for entry in &routing.entry {
        let mut found = false;
        for change in &entry.changes {
            if let Some(id) = change
                .value
                .as_ref()
                .and_then(|v| v.metadata.as_ref())
                .and_then(|m| m.phone_number_id.clone())
            {
                push_unique(&mut routes, TenantRoute::WhatsAppPhoneNumberId(id));
                found = true;
            }
        }
        if !found {
            if let Some(waba) = &entry.id {
                push_unique(
                    &mut routes,
                    TenantRoute::WhatsAppBusinessAccount(waba.clone()),
                );
            }
        }
    }
    Ok(routes)
}

fn push_unique(routes: &mut Vec<TenantRoute>, route: TenantRoute) {
    if !routes.contains(&route) {
        routes.push(route);
    }
}

pub fn json_error(error: &serde_json::Error) -> FieldError {
    FieldError::new("body", "invalid_json", format!("malformed JSON: {error}"))
}

/// Parses and validates a whole delivery. Nothing is returned unless everything is valid, so a
/// bad delivery queues nothing.
pub fn parse_delivery(body: &str) -> Result<ParsedDelivery, Vec<FieldError>> {
    let mut de = serde_json::Deserializer::from_str(body);
    let notification: wire::Notification =
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let code = if inner.is_syntax() || inner.is_eof() {
                "invalid_json"
            } else {
                "invalid_field"
            };
            vec![FieldError::new(
                if path == "." { "body".into() } else { path },
                code,
                inner.to_string(),
            )]
        })?;
    if notification.object != OBJECT {
        return Err(vec![FieldError::new(
            "object",
            "invalid_value",
            format!("must be {OBJECT:?}"),
        )]);
    }
    let mut delivery = ParsedDelivery::default();
    let mut problems = Vec::new();
    for (e, entry) in notification.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            let at = format!("entry[{e}].changes[{c}]");
            if change.field != "messages" {
                delivery.ignored_fields.push(change.field);
                continue;
            }
            let Some(value) = change.value else {
                problems.push(FieldError::missing(format!("{at}.value")));
                continue;
            };
            match parse_change(&entry.id, value, &format!("{at}.value")) {
                Ok(parsed) => delivery.changes.push(parsed),
                Err(mut errors) => problems.append(&mut errors),
            }
        }
    }
    if problems.is_empty() {
        Ok(delivery)
    } else {
        Err(problems)
    }
}

fn parse_change(
    waba_id: &str,
    value: wire::ChangeValue,
    at: &str,
) -> Result<ParsedChange, Vec<FieldError>> {
    let metadata = value
        .metadata
        .ok_or_else(|| vec![FieldError::missing(format!("{at}.metadata"))])?;
    let mut problems = Vec::new();
    let mut events = Vec::new();
    for (i, message) in value.messages.into_iter().enumerate() {
        let profile_name = value
            .contacts
            .iter()
            .find(|c| c.wa_id == message.from)
            .or(value.contacts.first())
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.name.clone())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        match parse_message(
            message,
            profile_name,
            &metadata.phone_number_id,
            &format!("{at}.messages[{i}]"),
        ) {
            Ok(m) => events.push(WhatsAppEvent::Message(Box::new(m))),
            Err(mut errors) => problems.append(&mut errors),
        }
    }
    for (i, status) in value.statuses.into_iter().enumerate() {
        match parse_status(
            status,
            &metadata.phone_number_id,
            &format!("{at}.statuses[{i}]"),
        ) {
            Ok(s) => events.push(WhatsAppEvent::Status(s)),
            Err(error) => problems.push(error),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ParsedChange {
        waba_id: waba_id.to_string(),
        phone_number_id: metadata.phone_number_id,
        events,
        errors: value.errors.into_iter().map(wa_error).collect(),
    })
}

fn wa_error(error: wire::Error) -> WaError {
    WaError {
        code: error.code,
        title: error.title.or(error.message),
        details: error.error_data.and_then(|d| d.details),
    }
}

fn required<T>(value: Option<T>, field: String) -> Result<T, Vec<FieldError>> {
    value.ok_or_else(|| vec![FieldError::missing(field)])
}

fn media(m: wire::Media) -> Media {
    Media {
        media_id: m.id,
        mime_type: m.mime_type,
        sha256: m.sha256,
        caption: m.caption,
        filename: m.filename,
        voice: m.voice.unwrap_or(false),
    }
}

fn parse_message(
    m: wire::Message,
    profile_name: Option<String>,
    phone_number_id: &str,
    at: &str,
) -> Result<InboundMessage, Vec<FieldError>> {
    let mut problems = Vec::new();
    let from = PhoneNumber::from_international_digits(&m.from)
        .map_err(|e| {
            problems.push(FieldError::new(
                format!("{at}.from"),
                "invalid_phone",
                e.to_string(),
            ))
        })
        .ok();
    let sent_at = from_unix_seconds(&m.timestamp)
        .ok_or(())
        .map_err(|_| {
            problems.push(FieldError::new(
                format!("{at}.timestamp"),
                "invalid_timestamp",
                "must be Unix seconds",
            ))
        })
        .ok();
    if m.id.trim().is_empty() {
        problems.push(FieldError::missing(format!("{at}.id")));
    }
    let kind = m.kind.as_str();
    let field = |name: &str| format!("{at}.{name}");
    let content = match kind {
        "text" => required(m.text, field("text")).map(|t| MessageContent::Text { body: t.body }),
        "image" => required(m.image, field("image")).map(|x| MessageContent::Image(media(x))),
        "audio" => required(m.audio, field("audio")).map(|x| MessageContent::Audio(media(x))),
        "video" => required(m.video, field("video")).map(|x| MessageContent::Video(media(x))),
        "document" => {
            required(m.document, field("document")).map(|x| MessageContent::Document(media(x)))
        }
        "sticker" => {
            required(m.sticker, field("sticker")).map(|x| MessageContent::Sticker(media(x)))
        }
        "location" => required(m.location, field("location")).map(|l| MessageContent::Location {
            latitude: l.latitude,
            longitude: l.longitude,
            name: l.name,
            address: l.address,
            url: l.url,
        }),
        "contacts" => required(m.contacts, field("contacts")).map(|cs| MessageContent::Contacts {
            contacts: cs.into_iter().map(shared_contact).collect(),
        }),
        "interactive" => required(m.interactive, field("interactive"))
            .and_then(|i| interactive(i, &field("interactive"))),
        "button" => required(m.button, field("button")).map(|b| MessageContent::Button {
            payload: b.payload,
            text: b.text,
        }),
        "reaction" => required(m.reaction, field("reaction")).map(|r| MessageContent::Reaction {
            message_id: r.message_id,
            emoji: r.emoji.filter(|e| !e.is_empty()),
        }),
        "order" => required(m.order, field("order")).and_then(|o| order(o, &field("order"))),
        "system" => required(m.system, field("system")).map(|s| MessageContent::System {
            system_type: s.kind.unwrap_or_else(|| "system".into()),
            body: s.body,
            new_wa_id: s.new_wa_id.or(s.wa_id),
        }),
        other => Ok(MessageContent::Unsupported {
            // Meta sends `type: "unsupported"` with the real type inside; a brand-new type
            // arrives under its own name. Either way it is kept, never dropped.
            raw_type: m
                .unsupported
                .and_then(|u| u.kind)
                .unwrap_or_else(|| other.to_string()),
            errors: m.errors.into_iter().map(wa_error).collect(),
        }),
    };
    let content = content
        .map_err(|mut errors| problems.append(&mut errors))
        .ok();
    match (from, sent_at, content) {
        (Some(from), Some(sent_at), Some(content)) if problems.is_empty() => Ok(InboundMessage {
            wamid: m.id,
            from: from.as_str().to_string(),
            profile_name,
            sent_at,
            phone_number_id: phone_number_id.to_string(),
            content,
            replied_to: m.context.as_ref().and_then(|c| c.id.clone()),
            forwarded: m.context.as_ref().is_some_and(|c| {
                c.forwarded.unwrap_or(false) || c.frequently_forwarded.unwrap_or(false)
            }),
            referral: m.referral.map(|r| AdReferral {
                source_type: r.source_type,
                source_id: r.source_id,
                source_url: r.source_url,
                headline: r.headline,
                click_id: r.ctwa_clid,
            }),
        }),
        _ => Err(problems),
    }
}

fn shared_contact(c: wire::SharedContact) -> SharedContact {
    let name = c
        .name
        .map(|n| {
            n.formatted_name.unwrap_or_else(|| {
                [n.first_name, n.last_name]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_default();
    SharedContact {
        name,
        phones: c
            .phones
            .into_iter()
            .filter_map(|p| p.phone.or(p.wa_id))
            .collect(),
        emails: c.emails.into_iter().filter_map(|e| e.email).collect(),
        company: c.org.and_then(|o| o.company),
    }
}

fn interactive(i: wire::Interactive, at: &str) -> Result<MessageContent, Vec<FieldError>> {
    let reply_type = i.kind.clone();
    match i.kind.as_str() {
        "button_reply" => required(i.button_reply, format!("{at}.button_reply")),
        "list_reply" => required(i.list_reply, format!("{at}.list_reply")),
        "nfm_reply" => {
            let flow = required(i.nfm_reply, format!("{at}.nfm_reply"))?;
            Ok(wire::Reply {
                id: flow.name.unwrap_or_else(|| "flow".into()),
                title: flow.body.unwrap_or_else(|| "Flow yanıtı".into()),
                description: flow.response_json,
            })
        }
        other => Err(vec![FieldError::new(
            format!("{at}.type"),
            "invalid_value",
            format!("unknown interactive type {other:?}"),
        )]),
    }
    .map(|r| MessageContent::InteractiveReply {
        reply_type,
        id: r.id,
        title: r.title,
        description: r.description,
    })
}

fn order(o: wire::Order, at: &str) -> Result<MessageContent, Vec<FieldError>> {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in o.product_items.into_iter().enumerate() {
        let quantity = Decimal::from_str(&item.quantity.0);
        let price = Decimal::from_str(&item.item_price.0)
            .or_else(|_| Decimal::from_scientific(&item.item_price.0));
        match (quantity, price) {
            (Ok(quantity), Ok(item_price)) => items.push(OrderItem {
                product_retailer_id: item.product_retailer_id,
                quantity,
                item_price,
                currency: item.currency.trim().to_ascii_uppercase(),
            }),
            (Err(_), _) => problems.push(FieldError::new(
                format!("{at}.product_items[{i}].quantity"),
                "invalid_number",
                "must be a number",
            )),
            (_, Err(_)) => problems.push(FieldError::new(
                format!("{at}.product_items[{i}].item_price"),
                "invalid_number",
                "must be a decimal amount",
            )),
        }
    }
    if problems.is_empty() {
        Ok(MessageContent::Order {
            catalog_id: o.catalog_id,
            text: o.text,
            items,
        })
    } else {
        Err(problems)
    }
}

fn parse_status(
    s: wire::Status,
    phone_number_id: &str,
    at: &str,
) -> Result<MessageStatusUpdate, FieldError> {
    let when = from_unix_seconds(&s.timestamp).ok_or_else(|| {
        FieldError::new(
            format!("{at}.timestamp"),
            "invalid_timestamp",
            "must be Unix seconds",
        )
    })?;
    if s.id.trim().is_empty() {
        return Err(FieldError::missing(format!("{at}.id")));
    }
    Ok(MessageStatusUpdate {
        wamid: s.id,
        status: DeliveryStatus::parse(&s.status),
        at: when,
        // Group ids are not phones: keep only what is one.
        recipient: s
            .recipient_id
            .as_deref()
            .and_then(|r| PhoneNumber::from_international_digits(r).ok())
            .map(|p| p.as_str().to_string()),
        phone_number_id: phone_number_id.to_string(),
        errors: s.errors.into_iter().map(wa_error).collect(),
        pricing_category: s.pricing.and_then(|p| p.category),
    })
}
