//! From a raw webhook body to validated [`WhatsAppEvent`]s, naming the exact field when
//! something is wrong (`entry[0].changes[0].value.messages[1].from`).

use std::str::FromStr;

use rust_decimal::Decimal;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::FieldError;
use crate::ingress::json::{id_text, split_meta_changes, strict, unparsed};
use crate::ingress::{IngressEvent, Parsed, Unit};
use crate::party::AdReferral;
use crate::phone::PhoneNumber;
use crate::tenant::TenantRoute;
use crate::time::from_unix_seconds;
use crate::whatsapp::event::{
    InboundMessage, Media, MessageContent, OrderItem, SharedContact, WhatsAppEvent,
};
use crate::whatsapp::status::{DeliveryStatus, MessageStatusUpdate};
use crate::whatsapp::wire;

pub const OBJECT: &str = "whatsapp_business_account";
/// Parts one delivery may have: Meta batches far fewer; a forged body cannot make millions.
pub const MAX_UNITS: usize = 5000;

/// The units of a delivery: one per `entry[].changes[]` item, routed by its
/// `metadata.phone_number_id`, or by the entry's WhatsApp Business Account id when the change
/// has none (account updates). Only the outer shape is checked here; a unit that does not parse
/// later is kept whole, never refused.
pub fn split(body: &[u8]) -> Result<Vec<Unit>, FieldError> {
    split_meta_changes(body, OBJECT, MAX_UNITS, |change, waba| {
        phone_number_id(change)
            .map(TenantRoute::WhatsAppPhoneNumberId)
            .or_else(|| waba.map(|w| TenantRoute::WhatsAppBusinessAccount(w.to_string())))
    })
}

fn phone_number_id(change: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        value: Option<ProbeValue>,
    }
    #[derive(Deserialize)]
    struct ProbeValue {
        metadata: Option<ProbeMetadata>,
    }
    #[derive(Deserialize)]
    struct ProbeMetadata {
        phone_number_id: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(change).ok()?;
    probe
        .value?
        .metadata?
        .phone_number_id
        .as_ref()
        .and_then(id_text)
}

/// One unit, event by event: every message and status that validates becomes an event; each
/// one that does not is kept whole with the path and reason; a change whose frame is broken
/// (no metadata) is kept whole as one.
pub fn parse_unit(unit: &Unit) -> Vec<Parsed> {
    #[derive(Deserialize)]
    struct Change<'a> {
        field: String,
        #[serde(borrow, default)]
        value: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Value<'a> {
        #[serde(default)]
        metadata: Option<wire::Metadata>,
        #[serde(borrow, default)]
        contacts: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        messages: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        statuses: Vec<&'a RawValue>,
        #[serde(borrow, default)]
        errors: Vec<&'a RawValue>,
    }
    let at = unit.path.as_str();
    let change: Change = match strict(&unit.raw, at) {
        Ok(change) => change,
        Err(error) => return vec![unparsed(at, &unit.raw, vec![error])],
    };
    if change.field != "messages" {
        return vec![Parsed::Ignored(change.field)];
    }
    let value_at = format!("{at}.value");
    let Some(raw_value) = change.value else {
        return vec![unparsed(at, &unit.raw, vec![FieldError::missing(value_at)])];
    };
    let value: Value = match strict(raw_value.get(), &value_at) {
        Ok(value) => value,
        Err(error) => return vec![unparsed(at, &unit.raw, vec![error])],
    };
    let Some(metadata) = value.metadata else {
        let missing = FieldError::missing(format!("{value_at}.metadata"));
        return vec![unparsed(at, &unit.raw, vec![missing])];
    };
    let contacts: Vec<wire::Contact> = value
        .contacts
        .iter()
        .filter_map(|c| serde_json::from_str(c.get()).ok())
        .collect();
    let mut out = Vec::new();
    for (i, raw) in value.messages.iter().enumerate() {
        let path = format!("{value_at}.messages[{i}]");
        let parsed = strict::<wire::Message>(raw.get(), &path)
            .map_err(|e| vec![e])
            .and_then(|message| {
                // The sender's own contact; a lone contact is the sender's (Meta sends one per sender).
                let profile_name = contacts
                    .iter()
                    .find(|c| c.wa_id == message.from)
                    .or(if contacts.len() == 1 {
                        contacts.first()
                    } else {
                        None
                    })
                    .and_then(|c| c.profile.as_ref())
                    .and_then(|p| p.name.clone())
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty());
                parse_message(message, profile_name, &metadata.phone_number_id, &path)
            });
        out.push(match parsed {
            Ok(m) => event(WhatsAppEvent::Message(Box::new(m))),
            Err(errors) => unparsed(&path, raw.get(), errors),
        });
    }
    for (i, raw) in value.statuses.iter().enumerate() {
        let path = format!("{value_at}.statuses[{i}]");
        let parsed = strict::<wire::Status>(raw.get(), &path)
            .and_then(|s| parse_status(s, &metadata.phone_number_id, &path));
        out.push(match parsed {
            Ok(s) => event(WhatsAppEvent::Status(s)),
            Err(error) => unparsed(&path, raw.get(), vec![error]),
        });
    }
    for raw in &value.errors {
        match serde_json::from_str::<wire::Error>(raw.get()) {
            Ok(error) => {
                let error = wa_error(error);
                out.push(Parsed::Notice {
                    code: error.code.to_string(),
                    title: error.title.unwrap_or_default(),
                    details: error.details,
                });
            }
            Err(_) => out.push(unparsed(
                &format!("{value_at}.errors"),
                raw.get(),
                vec![FieldError::new(
                    &value_at,
                    "invalid_field",
                    "error object of unknown shape",
                )],
            )),
        }
    }
    out
}

fn event(event: WhatsAppEvent) -> Parsed {
    Parsed::Event(IngressEvent {
        kind: event.kind().to_string(),
        external_id: event.external_id(),
        ordering_key: Some(event.ordering_key()),
        payload: serde_json::to_value(&event).unwrap_or_default(),
    })
}

/// Every unit of a body, parsed (tests and tools; the webhook goes through the ingress).
pub fn parse_body(body: &str) -> Result<Vec<Parsed>, FieldError> {
    Ok(split(body.as_bytes())?
        .iter()
        .flat_map(parse_unit)
        .collect())
}

fn wa_error(error: wire::Error) -> crate::whatsapp::event::WaError {
    use crate::whatsapp::event::WaError;
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
