//! Outbound WhatsApp (seed 000 §2.3): a salesperson, or the CRM itself, sends a card an
//! approved template, or a text inside the 24-hour customer-service window. A send is a
//! request with its own id (the caller's idempotency key) that the route or the CRM queues;
//! the worker sends it once ([`super::outbound`]). The simple way is a `wa.me` link.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::FieldError;
use crate::phone::PhoneNumber;
use crate::timeline::{Channel, Direction, TimelineEntry};

/// The envelope kind of a queued send.
pub const KIND_SEND: &str = "whatsapp.send";
/// Meta's limit on a text body.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Meta's customer-service window: free-form messages only this long after the customer's
/// last message.
pub const SERVICE_WINDOW_HOURS: i64 = 24;
/// Parameters a template may take (a body has at most a few dozen; this bounds the item).
const MAX_PARAMETERS: usize = 50;
/// A parameter's length (Meta allows up to about a thousand characters in a body parameter).
const MAX_PARAMETER_CHARS: usize = 1024;

/// Template parameters: positional (`{{1}}`, `{{2}}`…, in order) or named (`{{first_name}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TemplateParameters {
    Positional(Vec<String>),
    Named(std::collections::BTreeMap<String, String>),
}

impl Default for TemplateParameters {
    fn default() -> Self {
        TemplateParameters::Positional(Vec::new())
    }
}

impl TemplateParameters {
    fn len(&self) -> usize {
        match self {
            TemplateParameters::Positional(p) => p.len(),
            TemplateParameters::Named(p) => p.len(),
        }
    }

    fn texts(&self) -> Vec<&str> {
        match self {
            TemplateParameters::Positional(p) => p.iter().map(String::as_str).collect(),
            TemplateParameters::Named(p) => p.values().map(String::as_str).collect(),
        }
    }

    /// Meta refuses empty parameters, new lines, tabs and more than four spaces in a row.
    fn validate(&self, field: &str) -> Result<(), FieldError> {
        if self.len() > MAX_PARAMETERS {
            return Err(FieldError::new(
                field,
                "too_many",
                format!("at most {MAX_PARAMETERS}"),
            ));
        }
        if let TemplateParameters::Named(named) = self {
            if let Some(bad) = named.keys().find(|k| !meta_name(k)) {
                return Err(FieldError::new(
                    format!("{field}.{bad}"),
                    "invalid",
                    "a parameter name: lowercase letters, digits and underscores",
                ));
            }
        }
        for (i, text) in self.texts().into_iter().enumerate() {
            let problem = if text.trim().is_empty() {
                Some("is empty (Meta refuses empty parameters)".to_string())
            } else if text.chars().count() > MAX_PARAMETER_CHARS {
                Some(format!("is longer than {MAX_PARAMETER_CHARS} characters"))
            } else if text.contains('\n') || text.contains('\t') || text.contains("     ") {
                Some(
                    "has a new line, a tab or more than 4 spaces in a row (Meta refuses them)"
                        .into(),
                )
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(FieldError::new(format!("{field}[{i}]"), "invalid", problem));
            }
        }
        Ok(())
    }

    fn to_meta(&self) -> Vec<Value> {
        match self {
            TemplateParameters::Positional(p) => p
                .iter()
                .map(|text| json!({ "type": "text", "text": text }))
                .collect(),
            TemplateParameters::Named(p) => p
                .iter()
                .map(|(name, text)| json!({ "type": "text", "parameter_name": name, "text": text }))
                .collect(),
        }
    }
}

/// What is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutboundContent {
    /// An approved template: its name, language (`tr`, `en_US`) and parameters.
    Template {
        name: String,
        language: String,
        #[serde(default, skip_serializing_if = "is_empty_parameters")]
        parameters: TemplateParameters,
        /// A text header's parameter, when the template has one (`["…"]`, or `{"name": "…"}`
        /// for a named-parameter template).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<TemplateParameters>,
    },
    /// Free text: only inside the customer-service window.
    Text { body: String },
}

fn is_empty_parameters(p: &TemplateParameters) -> bool {
    p.len() == 0
}

impl OutboundContent {
    pub fn is_template(&self) -> bool {
        matches!(self, OutboundContent::Template { .. })
    }

    /// One line for the card's timeline ("Şablon: randevu_hatirlatma (tr)").
    pub fn summary(&self) -> String {
        match self {
            OutboundContent::Template { name, language, .. } => {
                format!("[Şablon] {name} ({language})")
            }
            OutboundContent::Text { body } => body.chars().take(200).collect(),
        }
    }

    /// Graph's message body for a recipient (contracts §1.8). `biz_opaque_callback_data`
    /// carries our send id, so Meta's statuses name the send even before its wamid is stored.
    pub fn to_meta(&self, to: &PhoneNumber, send_id: &str) -> Value {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.digits(),
            "biz_opaque_callback_data": send_id,
        });
        match self {
            OutboundContent::Text { body: text } => {
                body["type"] = json!("text");
                body["text"] = json!({ "preview_url": false, "body": text });
            }
            OutboundContent::Template {
                name,
                language,
                parameters,
                header,
            } => {
                let mut components = Vec::new();
                if let Some(header) = header {
                    components.push(json!({ "type": "header", "parameters": header.to_meta() }));
                }
                if parameters.len() > 0 {
                    components.push(json!({ "type": "body", "parameters": parameters.to_meta() }));
                }
                body["type"] = json!("template");
                body["template"] = json!({
                    "name": name,
                    "language": { "code": language, "policy": "deterministic" },
                    "components": components,
                });
            }
        }
        body
    }

    /// Checks the fields Meta would refuse, so the caller hears about them at once.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            OutboundContent::Text { body } => {
                if body.trim().is_empty() {
                    return Err(FieldError::missing("message.body"));
                }
                let chars = body.chars().count();
                if chars > TEXT_MAX_CHARS {
                    return Err(FieldError::new(
                        "message.body",
                        "too_long",
                        format!("is {chars} characters; WhatsApp allows {TEXT_MAX_CHARS}"),
                    ));
                }
            }
            OutboundContent::Template {
                name,
                language,
                parameters,
                header,
            } => {
                if !meta_name(name) || name.len() > 512 {
                    return Err(FieldError::new(
                        "message.name",
                        "invalid",
                        "a template name: lowercase letters, digits and underscores",
                    ));
                }
                if !language_code_ok(language) {
                    return Err(FieldError::new(
                        "message.language",
                        "invalid",
                        "a language code such as tr, en or en_US",
                    ));
                }
                parameters.validate("message.parameters")?;
                if let Some(header) = header {
                    header.validate("message.header")?;
                    if header.len() != 1 {
                        return Err(FieldError::new(
                            "message.header",
                            "invalid",
                            "a text header takes one parameter",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Template and parameter names as Meta takes them: lowercase letters, digits, underscores.
fn meta_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `tr`, `en`, `en_US`, `pt_BR`: Meta's template language codes.
fn language_code_ok(code: &str) -> bool {
    let mut parts = code.split('_');
    let language = parts.next().unwrap_or_default();
    let region = parts.next();
    parts.next().is_none()
        && (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
}

/// A send as the route accepts it and the CRM queues it. Unknown fields are refused: a
/// misspelt `params` must not send a template without its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The caller's id for this send: the same id twice sends once. The route makes one up
    /// when it is absent.
    #[serde(default)]
    pub send_id: Option<String>,
    pub card_id: String,
    /// One of the card's phones; the card's first phone when absent.
    #[serde(default)]
    pub to: Option<String>,
    pub message: OutboundContent,
    /// Set by crm-api (the operator key's name; its record opened the trace). A send the
    /// CRM queues itself leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

impl SendRequest {
    /// Reads a request body, naming the field that is wrong.
    pub fn parse(body: &str) -> Result<SendRequest, FieldError> {
        let request: SendRequest = crate::ingress::json::strict(body, "")?;
        if let Some(id) = &request.send_id {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(FieldError::new(
                    "send_id",
                    "invalid",
                    "1 to 64 letters, digits, '-' or '_'",
                ));
            }
        }
        if request.card_id.trim().is_empty() {
            return Err(FieldError::missing("card_id"));
        }
        request.message.validate()?;
        Ok(request)
    }

    /// The recipient: `to` when it is one of the card's phones, else the card's first phone.
    pub fn recipient(&self, card_phones: &[PhoneNumber]) -> Result<PhoneNumber, FieldError> {
        match &self.to {
            Some(to) => {
                let phone = PhoneNumber::parse(to)
                    .map_err(|e| FieldError::new("to", e.code(), e.to_string()))?;
                if card_phones.contains(&phone) {
                    Ok(phone)
                } else {
                    Err(FieldError::new(
                        "to",
                        "not_on_card",
                        "is not one of the card's phones",
                    ))
                }
            }
            None => card_phones.first().cloned().ok_or_else(|| {
                FieldError::new("card_id", "no_phone", "the card has no phone number")
            }),
        }
    }
}

/// Whether a free-form text may go now: the customer wrote within the last 24 hours.
pub fn service_window_open(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_inbound.is_some_and(|at| now - at < Duration::hours(SERVICE_WINDOW_HOURS))
}

/// The customer's last WhatsApp message on the card's timeline (its own entries and its
/// phones' conversations).
pub fn last_inbound(timeline: &[TimelineEntry]) -> Option<DateTime<Utc>> {
    timeline
        .iter()
        .filter(|e| e.channel == Channel::WhatsApp && e.direction == Direction::Inbound)
        .map(|e| e.occurred_at)
        .max()
}

/// The click-to-chat link (seed 000 §2.3, "the simple way"): opens WhatsApp on the
/// salesperson's device with the number and, optionally, a text typed in.
pub fn wa_me_link(phone: &PhoneNumber, text: Option<&str>) -> String {
    let mut link = url::Url::parse("https://wa.me/").expect("a constant URL");
    link.set_path(phone.digits());
    if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
        link.query_pairs_mut().append_pair("text", text);
    }
    link.to_string()
}

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Accepted by us, waiting for the worker.
    Queued,
    /// A worker is calling Meta now.
    Sending,
    /// Meta accepted it (a wamid); delivery statuses follow on the message record.
    Sent,
    /// Refused for good (not on WhatsApp, template problem...): a person must change something.
    Failed,
    /// Not sent yet: rate limited, or our token was refused. Sent when it comes back.
    Waiting,
    /// The call to Meta got no clear answer: it may have gone out. Never sent again by itself.
    Uncertain,
}

impl SendState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SendState::Queued => "queued",
            SendState::Sending => "sending",
            SendState::Sent => "sent",
            SendState::Failed => "failed",
            SendState::Waiting => "waiting",
            SendState::Uncertain => "uncertain",
        }
    }
}

/// Why a send did not go, for the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendProblem {
    /// Our code (`whatsapp_not_on_whatsapp`...).
    pub code: String,
    /// Meta's error code, when Meta refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_code: Option<i64>,
    pub message: String,
    pub message_tr: String,
    /// Meta's own details, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Our record of one send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub send_id: String,
    pub card_id: String,
    /// E.164.
    pub to: String,
    pub phone_number_id: String,
    pub message: OutboundContent,
    pub state: SendState,
    /// Who asked: an operator key's name, or `crm` for a queued request.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<SendProblem>,
    pub trace_id: String,
}

impl SendRecord {
    /// The card's timeline entry of this send (its id is the send's, so writing it again
    /// changes nothing).
    pub fn timeline_entry(&self, at: DateTime<Utc>) -> TimelineEntry {
        let (kind, text) = match (&self.state, &self.problem) {
            (SendState::Failed, Some(problem)) => (
                "send_failed",
                format!("{} — {}", self.message.summary(), problem.message_tr),
            ),
            _ => (
                if self.message.is_template() {
                    "template"
                } else {
                    "text"
                },
                self.message.summary(),
            ),
        };
        TimelineEntry {
            entry_id: format!("wasend-{}", self.send_id),
            card_id: self.card_id.clone(),
            channel: Channel::WhatsApp,
            direction: Direction::Outbound,
            kind: kind.to_string(),
            text,
            external_id: self.wamid.clone(),
            attachment: None,
            details: json!({ "send_id": self.send_id, "to": self.to, "state": self.state.as_str() }),
            occurred_at: at,
            trace_id: self.trace_id.clone(),
        }
    }
}
