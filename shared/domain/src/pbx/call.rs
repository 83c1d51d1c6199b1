//! What a call event leaves behind: its call-queue entry (what the agent's pop-up showed, kept
//! so a call the agent could not take can be opened later), and the quote or support ticket a
//! keypress opened.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::party::{Card, CardKind};
use crate::pbx::event::{CallEventKind, PbxFormat};
use crate::phone::PhoneNumber;
use crate::timeline::TimelineEntry;

/// What the keypress asked for (seed 002: 1 shows the card, 2 a new quote, 3 a new ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAction {
    /// Keypress 1 (or none on a ringing call): the matched card on screen, nothing written
    /// beyond the call itself.
    ShowCard,
    NewQuote,
    NewTicket,
    /// A key with no meaning here: stored, no action, a warning record.
    UnknownKeypress,
    /// The call's later life (hang-up, CDR) or an unknown scenario: recorded only.
    RecordOnly,
}

impl CallAction {
    pub fn for_event(kind: CallEventKind, keypress: Option<&str>) -> Self {
        if !kind.takes_action() {
            return CallAction::RecordOnly;
        }
        match keypress {
            None | Some("1") => CallAction::ShowCard,
            Some("2") => CallAction::NewQuote,
            Some("3") => CallAction::NewTicket,
            Some(_) => CallAction::UnknownKeypress,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CallAction::ShowCard => "show_card",
            CallAction::NewQuote => "new_quote",
            CallAction::NewTicket => "new_ticket",
            CallAction::UnknownKeypress => "unknown_keypress",
            CallAction::RecordOnly => "record_only",
        }
    }

    /// The per-tenant counter that numbers what this action opens.
    pub fn counter(&self) -> Option<RecordKind> {
        match self {
            CallAction::NewQuote => Some(RecordKind::Quote),
            CallAction::NewTicket => Some(RecordKind::Ticket),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Quote,
    Ticket,
}

impl RecordKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Quote => "quote",
            RecordKind::Ticket => "ticket",
        }
    }

    /// The readable number users quote on the phone: `T-000123` for support tickets (seed
    /// 002), `TKL-000031` for quotes (teklif).
    pub fn readable(&self, number: u64) -> String {
        match self {
            RecordKind::Quote => format!("TKL-{number:06}"),
            RecordKind::Ticket => format!("T-{number:06}"),
        }
    }

    /// Where the CRM opens it.
    pub fn path(&self, card_id: &str, id: &str) -> String {
        format!("/cards/{card_id}/{}s/{id}", self.as_str())
    }
}

/// A card the caller probably is, as the pop-up lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCard {
    pub card_id: String,
    pub kind: CardKind,
    pub name: String,
    /// The matched number, masked (the pop-up may be on a shared screen).
    pub phone: String,
    /// A contact's company card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_card_id: Option<String>,
    /// Where the CRM opens it.
    pub open: String,
}

impl CallCard {
    pub fn of(card: &Card, phone: &PhoneNumber) -> Self {
        Self {
            card_id: card.card_id.clone(),
            kind: card.kind,
            name: card.display_name.clone(),
            phone: phone.masked(),
            company_card_id: card.contact.as_ref().map(|c| c.customer_card_id.clone()),
            open: format!("/cards/{}", card.card_id),
        }
    }
}

/// The quote or ticket a keypress opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedRecord {
    pub kind: RecordKind,
    pub id: String,
    pub card_id: String,
    /// From the tenant's counter; set when stored.
    pub number: u64,
    pub readable_number: String,
    pub open: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteState {
    /// "Devam ediyor".
    InProgress,
}

/// A draft quote (teklif) opened from a call: the agent fills in the lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub quote_id: String,
    pub card_id: String,
    pub number: u64,
    pub readable_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub date: DateTime<Utc>,
    pub state: QuoteState,
    /// No lines yet: zero in TRY (seed 002: "Teklif Ücreti 0,00 TL").
    pub total: Money,
    pub call_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
}

/// A support ticket (destek kaydı) opened from a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub card_id: String,
    pub number: u64,
    pub readable_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub title: String,
    pub state: TicketState,
    /// Seed 002: "ÖNCELİK: Normal".
    pub priority: String,
    pub call_id: String,
    pub created_at: DateTime<Utc>,
}

/// Stored flat with a `record` tag (`quote`, `ticket`) beside the item's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Opened {
    Quote(Quote),
    Ticket(Ticket),
}

impl Opened {
    pub fn kind(&self) -> RecordKind {
        match self {
            Opened::Quote(_) => RecordKind::Quote,
            Opened::Ticket(_) => RecordKind::Ticket,
        }
    }

    pub fn card_id(&self) -> &str {
        match self {
            Opened::Quote(q) => &q.card_id,
            Opened::Ticket(t) => &t.card_id,
        }
    }

    pub fn new_quote(
        id: String,
        card_id: &str,
        owner: Option<String>,
        call_id: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Opened::Quote(Quote {
            quote_id: id,
            card_id: card_id.into(),
            number: 0,
            readable_number: String::new(),
            owner,
            date: now,
            state: QuoteState::InProgress,
            total: Money::new(Decimal::ZERO, "TRY"),
            call_id: call_id.into(),
            created_at: now,
        })
    }

    pub fn new_ticket(
        id: String,
        card_id: &str,
        owner: Option<String>,
        call_id: &str,
        title: String,
        now: DateTime<Utc>,
    ) -> Self {
        Opened::Ticket(Ticket {
            ticket_id: id,
            card_id: card_id.into(),
            number: 0,
            readable_number: String::new(),
            owner,
            title,
            state: TicketState::Open,
            priority: "normal".into(),
            call_id: call_id.into(),
            created_at: now,
        })
    }
}

/// A call-queue entry: one per call event (call id + what happened + key), newest first per
/// tenant and per agent. It is also what the pop-up answered, so a repeated delivery repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub event_key: String,
    pub format: PbxFormat,
    pub kind: CallEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The caller in E.164 when it is a number that can match a card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<PhoneNumber>,
    /// Why the caller matched nobody by design (hidden, extension, 444 number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatchable: Option<String>,
    /// The caller id as the PBX sent it.
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The CRM user the extension or agent id maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypress: Option<String>,
    /// Probable callers, best first.
    #[serde(default)]
    pub cards: Vec<CallCard>,
    pub action: CallAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened: Option<OpenedRecord>,
    /// A lead opened for an unknown caller to carry the quote or ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_lead: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_state: Option<String>,
    pub trace_id: String,
}

impl CallRecord {
    /// The queue's per-agent key: the mapped CRM user, else the extension.
    pub fn agent_key(&self) -> Option<String> {
        self.agent_user
            .as_ref()
            .map(|u| format!("USER#{u}"))
            .or_else(|| self.extension.as_ref().map(|e| format!("EXT#{e}")))
    }
}

/// Everything one call event writes, all-or-nothing; the call-queue entry goes first and is the
/// idempotency key (call id + event key).
#[derive(Debug, Clone, PartialEq)]
pub struct CallWrite {
    pub record: CallRecord,
    /// The call on the card's timeline (none when nobody matched).
    pub entry: Option<TimelineEntry>,
    /// A lead for an unknown caller whose keypress opens a quote or ticket; claims the number.
    pub lead: Option<Card>,
    pub opened: Option<Opened>,
    /// Moves the last touch of the lead the call landed on (an existing lead only).
    pub touch: Option<crate::party::Touch>,
}

impl CallWrite {
    /// Numbers the opened record from the tenant's counter (the store calls this with the
    /// value it is about to commit).
    pub fn numbered(&mut self, number: u64) {
        let Some(opened) = &mut self.opened else {
            return;
        };
        let kind = opened.kind();
        let readable = kind.readable(number);
        match opened {
            Opened::Quote(q) => {
                q.number = number;
                q.readable_number = readable.clone();
            }
            Opened::Ticket(t) => {
                t.number = number;
                t.readable_number = readable.clone();
            }
        }
        if let Some(record) = &mut self.record.opened {
            record.number = number;
            record.readable_number = readable.clone();
        }
        if let Some(entry) = &mut self.entry {
            entry.text = entry.text.replace(NUMBER_PLACEHOLDER, &readable);
            if let Some(details) = entry.details.as_object_mut() {
                details.insert("number".into(), readable.into());
            }
        }
    }
}

/// Stands for the record's number in a timeline text until the counter gives it.
pub const NUMBER_PLACEHOLDER: &str = "{number}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallWriteOutcome {
    /// Stored as given (numbered).
    Applied(CallRecord),
    /// This call event was stored before: the stored record, unchanged.
    Duplicate(CallRecord),
    /// The new lead's number was claimed by another card meanwhile: match again.
    IdentityTaken,
}
