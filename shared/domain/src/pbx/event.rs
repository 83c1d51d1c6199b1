//! A PBX call event as the two wire formats send it, read into one [`CallEvent`].
//!
//! - The seed's JSON (Logo CRM `IPS_callAnswered`, seed 002): `callUniqueId`, `extension`,
//!   `agentId`, `callerId`, `keypress` (a string or a number).
//! - NetGSM Netsantral's live-call push (contracts.md §6.1): `unique_id`, `internal_num`,
//!   `customer_num`, `scenario`, `digit` (or `Digit`), `timestamp` in Unix milliseconds (a
//!   string), and the `cdr` variant with Turkish keys (`bas`, `arayan`, `aranan`, `sure`,
//!   `sondurum`, `yon`, `clid`).
//!
//! Unknown fields are ignored; an unknown scenario is kept as [`CallEventKind::Other`] with the
//! vendor's name for it. Ids are accepted as strings or numbers (PBXs differ); any other type is
//! refused with the field's name.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::ingress::json::id_text;
use crate::phone::{PhoneError, PhoneNumber};

/// The longest id, extension or number we keep; longer is not a PBX value.
const MAX_VALUE_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PbxFormat {
    /// The seed's `IPS_callAnswered` JSON (any PBX can post it: Karel, generic).
    Seed,
    #[serde(rename = "netgsm")]
    NetGsm,
}

/// What happened on the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEventKind {
    /// The call reached an extension (the seed's event; NetGSM `Inbound_call`).
    Incoming,
    /// NetGSM `Outbound_call`: an agent dialled the customer.
    Outgoing,
    /// A key pressed in the IVR (NetGSM `DTMF`).
    Keypress,
    Answered,
    HungUp,
    /// The call detail record after the call (NetGSM `cdr`).
    Cdr,
    /// Entered a queue or a context (NetGSM `Queue`, `Context`).
    Routed,
    /// A scenario we do not know: stored with its name, no action.
    Other,
}

impl CallEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            CallEventKind::Incoming => "incoming",
            CallEventKind::Outgoing => "outgoing",
            CallEventKind::Keypress => "keypress",
            CallEventKind::Answered => "answered",
            CallEventKind::HungUp => "hung_up",
            CallEventKind::Cdr => "cdr",
            CallEventKind::Routed => "routed",
            CallEventKind::Other => "other",
        }
    }

    /// Events on which a keypress picks an action (a pop-up moment), as opposed to the call's
    /// later life (hang-up, CDR), which is recorded only.
    pub fn takes_action(&self) -> bool {
        matches!(
            self,
            CallEventKind::Incoming | CallEventKind::Keypress | CallEventKind::Answered
        )
    }
}

/// One call event, whatever PBX sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    pub format: PbxFormat,
    pub call_id: String,
    pub kind: CallEventKind,
    /// The vendor's own name of the event (`Inbound_call`, `cdr`...), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The customer's number as the PBX sent it (may be hidden, an extension, a 444 number).
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypress: Option<String>,
    /// When the PBX says it happened; the seed's JSON carries no time (the arrival is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Our PBX number the customer dialled (NetGSM `incoming_number`) or the CDR's callee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    /// The PBX's end state of the call (NetGSM CDR `sondurum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_state: Option<String>,
}

impl CallEvent {
    /// What makes a delivery of this event the same event, within its call. A key pressed
    /// on the call is one event however it arrives (the seed's JSON, NetGSM's `DTMF`, an
    /// `Answer` repeating the digit), so it opens at most one quote or ticket; keypress 2 and
    /// then 3 on one call are two events. Events without a key are one per kind.
    pub fn event_key(&self) -> String {
        match (&self.keypress, self.kind) {
            (Some(key), kind) if kind.takes_action() => format!("key:{key}"),
            (key, CallEventKind::Other) => format!(
                "{}:{}",
                self.scenario
                    .as_deref()
                    .unwrap_or("other")
                    .to_ascii_lowercase(),
                key.as_deref().unwrap_or("-")
            ),
            (key, kind) => format!("{}:{}", kind.as_str(), key.as_deref().unwrap_or("-")),
        }
    }

    /// The customer's number for matching, or why it cannot match anyone: hidden or empty
    /// caller ids, internal extensions and short service numbers (444 xx xx) never match.
    pub fn caller_number(&self) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(sip_user(&self.caller))
    }
}

/// The user part of a SIP address (`sip:05321112233@pbx.example`, `anonymous@host`).
fn sip_user(caller: &str) -> &str {
    let caller = caller.trim();
    let caller = caller
        .strip_prefix("sip:")
        .or_else(|| caller.strip_prefix("tel:"))
        .unwrap_or(caller);
    caller.split('@').next().unwrap_or(caller)
}

/// Why a caller number is kept without matching rather than refused.
pub fn is_unmatchable(error: &PhoneError) -> bool {
    matches!(
        error,
        PhoneError::Empty
            | PhoneError::Hidden
            | PhoneError::Extension { .. }
            | PhoneError::ShortNumber { .. }
    )
}

/// Reads one request body into a call event, naming the field of any problem.
pub fn parse_call_event(raw: &str) -> Result<CallEvent, Vec<FieldError>> {
    let value: Value = serde_json::from_str(raw).map_err(|e| {
        vec![FieldError::new(
            "body",
            "invalid_json",
            crate::ingress::json::capped(&e.to_string()),
        )]
    })?;
    let Value::Object(body) = value else {
        return Err(vec![FieldError::new(
            "body",
            "invalid_type",
            "expected a JSON object",
        )]);
    };
    let event = if body.contains_key("callUniqueId") || body.contains_key("callerId") {
        seed(&body)
    } else if body.contains_key("unique_id") || body.contains_key("scenario") {
        netgsm(&body)
    } else {
        Err(vec![FieldError::new(
            "callUniqueId",
            "missing",
            "is required (the seed's JSON) or send NetGSM's unique_id and scenario",
        )])
    }?;
    if let Err(e) = event.caller_number() {
        if !is_unmatchable(&e) {
            let field = match event.format {
                PbxFormat::Seed => "callerId",
                PbxFormat::NetGsm => "customer_num",
            };
            return Err(vec![FieldError::new(field, "invalid_phone", e.to_string())]);
        }
    }
    Ok(event)
}

/// Collects every problem of one body, so the answer names them all.
struct Reader<'a> {
    body: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn new(body: &'a Map<String, Value>) -> Self {
        Self {
            body,
            errors: Vec::new(),
        }
    }

    /// A string or a number, trimmed; `None` when absent or null. Other types are errors.
    fn text(&mut self, field: &str) -> Option<String> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(value @ (Value::String(_) | Value::Number(_))) => match id_text(value) {
                Some(text) if text.chars().count() <= MAX_VALUE_CHARS => Some(text),
                _ => {
                    self.errors.push(FieldError::new(
                        field,
                        "too_long",
                        format!("is longer than {MAX_VALUE_CHARS} characters"),
                    ));
                    None
                }
            },
            Some(value) => {
                self.errors.push(FieldError::new(
                    field,
                    "invalid_type",
                    format!("expected a string or a number, got {}", type_name(value)),
                ));
                None
            }
        }
    }

    fn first_text(&mut self, fields: &[&str]) -> Option<String> {
        fields.iter().find_map(|f| self.text(f))
    }

    fn required(&mut self, field: &str) -> String {
        self.text(field).unwrap_or_else(|| {
            if !self.errors.iter().any(|e| e.field == field) {
                self.errors.push(FieldError::missing(field));
            }
            String::new()
        })
    }

    /// A caller id that must be present, but may be empty or null (a hidden number).
    fn caller(&mut self, fields: &[&str]) -> Option<String> {
        let mut hidden = false;
        for field in fields {
            match self.body.get(*field) {
                Some(Value::String(s)) if s.trim().is_empty() => hidden = true,
                Some(Value::Null) => hidden = true,
                None => continue,
                Some(_) => return self.text(field),
            }
        }
        hidden.then(String::new)
    }

    fn keypress(&mut self, fields: &[&str]) -> Option<String> {
        let field = *fields
            .iter()
            .find(|f| self.body.contains_key(**f))
            .unwrap_or(&fields[0]);
        let key = self.text(field)?;
        if key
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            && key.len() <= 8
        {
            Some(key)
        } else {
            self.errors.push(FieldError::new(
                field,
                "invalid_keypress",
                "expected the key pressed: digits, '*' or '#'",
            ));
            None
        }
    }

    fn seconds(&mut self, field: &str) -> Option<u32> {
        let text = self.text(field)?;
        match text.parse::<u32>() {
            Ok(s) => Some(s),
            Err(_) => {
                self.errors.push(FieldError::new(
                    field,
                    "invalid_number",
                    "expected whole seconds",
                ));
                None
            }
        }
    }

    fn finish(self, event: CallEvent) -> Result<CallEvent, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(event)
        } else {
            Err(self.errors)
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn seed(body: &Map<String, Value>) -> Result<CallEvent, Vec<FieldError>> {
    let mut r = Reader::new(body);
    let call_id = r.required("callUniqueId");
    let caller = r.caller(&["callerId"]);
    if caller.is_none() && !r.errors.iter().any(|e| e.field == "callerId") {
        r.errors.push(FieldError::missing("callerId"));
    }
    let event = CallEvent {
        format: PbxFormat::Seed,
        call_id,
        kind: CallEventKind::Incoming,
        scenario: None,
        caller: caller.unwrap_or_default(),
        extension: r.text("extension"),
        agent_id: r.text("agentId"),
        keypress: r.keypress(&["keypress"]),
        occurred_at: None,
        dialled: None,
        duration_seconds: None,
        end_state: None,
    };
    r.finish(event)
}

fn netgsm_kind(scenario: &str) -> CallEventKind {
    match scenario.to_ascii_lowercase().as_str() {
        "inbound_call" => CallEventKind::Incoming,
        "outbound_call" => CallEventKind::Outgoing,
        "dtmf" => CallEventKind::Keypress,
        "answer" => CallEventKind::Answered,
        "hangup" => CallEventKind::HungUp,
        "cdr" => CallEventKind::Cdr,
        "queue" | "context" => CallEventKind::Routed,
        _ => CallEventKind::Other,
    }
}

/// NetGSM's `timestamp`: Unix milliseconds, sent as a string.
fn from_millis(text: &str) -> Option<DateTime<Utc>> {
    let ms: i64 = text.trim().parse().ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

/// NetGSM CDR `bas`: `YYYY-MM-DD HH:MM:SS`, Turkey time.
fn from_istanbul(text: &str) -> Option<DateTime<Utc>> {
    let local = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    local
        .and_local_timezone(Istanbul)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `"AYŞE YILMAZ" <05331234567>` → `05331234567`.
fn clid_number(clid: &str) -> Option<String> {
    let inner = clid.rsplit_once('<')?.1.split('>').next()?.trim();
    (!inner.is_empty()).then(|| inner.to_string())
}

fn netgsm(body: &Map<String, Value>) -> Result<CallEvent, Vec<FieldError>> {
    let mut r = Reader::new(body);
    let scenario = r.required("scenario");
    let kind = netgsm_kind(&scenario);
    let call_id = match kind {
        CallEventKind::Cdr => r
            .first_text(&["unique_id", "ortakkimlik", "kimlik", "asteriskId"])
            .unwrap_or_else(|| {
                r.errors.push(FieldError::missing("unique_id"));
                String::new()
            }),
        _ => r.required("unique_id"),
    };
    let caller = match kind {
        CallEventKind::Cdr => r.caller(&["customer_num", "arayan"]).or_else(|| {
            let clid = r.text("clid")?;
            clid_number(&clid)
        }),
        _ => r.caller(&["customer_num"]),
    };
    // A call's start or a key needs the customer's number; its later life (hang-up, queue,
    // context, CDR) is recorded without it when NetGSM leaves it out.
    let needs_caller = matches!(
        kind,
        CallEventKind::Incoming | CallEventKind::Outgoing | CallEventKind::Keypress
    );
    if caller.is_none() && needs_caller && !r.errors.iter().any(|e| e.field == "customer_num") {
        r.errors.push(FieldError::missing("customer_num"));
    }
    let timestamp = r.text("timestamp");
    let occurred_at = match timestamp.as_deref().map(from_millis) {
        Some(Some(at)) => Some(at),
        Some(None) => {
            r.errors.push(FieldError::new(
                "timestamp",
                "invalid_timestamp",
                "expected Unix milliseconds",
            ));
            None
        }
        None => r.text("bas").as_deref().and_then(from_istanbul),
    };
    let (duration_seconds, end_state, dialled) = if kind == CallEventKind::Cdr {
        (r.seconds("sure"), r.text("sondurum"), r.text("aranan"))
    } else {
        (r.seconds("talktime"), None, r.text("incoming_number"))
    };
    let event = CallEvent {
        format: PbxFormat::NetGsm,
        call_id,
        kind,
        scenario: Some(scenario),
        caller: caller.unwrap_or_default(),
        extension: r.text("internal_num"),
        agent_id: None,
        keypress: r.keypress(&["digit", "Digit"]),
        occurred_at,
        dialled,
        duration_seconds,
        end_state,
    };
    r.finish(event)
}
