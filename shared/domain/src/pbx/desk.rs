//! The call desk: answers one call event at once for the agent's pop-up. Matches the caller,
//! maps the agent, does what the keypress asks (seed 002: 1 card, 2 quote, 3 ticket), stores
//! the call-queue entry with everything in one all-or-nothing write, and answers. A repeated
//! delivery of the same event (even a concurrent one) finds the stored entry and repeats it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::envelope::{Envelope, TraceId};
use crate::error::PortError;
use crate::http::HttpReply;
use crate::ingress::SyncHandler;
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
use crate::party::{Card, CardKind, IdentityKey, LeadDetails, LeadSource, LeadStatus, Touch};
use crate::pbx::call::*;
use crate::pbx::event::{is_unmatchable, CallEvent, CallEventKind};
use crate::phone::PhoneNumber;
use crate::ports::{CallRepository, Clock, CrmRepository, IdGenerator, TenantDirectory};
use crate::tenant::{TenantConfig, TenantId};
use crate::timeline::{Channel, Direction, TimelineEntry};

/// Cards read to rank a shared number's candidates, and cards the pop-up lists.
pub const MAX_CANDIDATES_READ: usize = 25;
pub const MAX_CANDIDATES_SHOWN: usize = 10;

pub const OPERATION: &str = "pbx.call";

pub struct CallDesk {
    pub tenants: Arc<dyn TenantDirectory>,
    pub crm: Arc<dyn CrmRepository>,
    pub calls: Arc<dyn CallRepository>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

/// Best first: a contact person before its company, companies before leads, then the most
/// recent touch (a lead's last touch, else the card's last change).
pub fn rank_callers(cards: &mut [Card]) {
    fn rank(kind: CardKind) -> u8 {
        match kind {
            CardKind::Contact => 0,
            CardKind::Customer => 1,
            CardKind::Lead => 2,
        }
    }
    fn touched(card: &Card) -> DateTime<Utc> {
        card.lead
            .as_ref()
            .map(|l| l.last_touch.at)
            .unwrap_or(card.updated_at)
    }
    cards.sort_by(|a, b| {
        rank(a.kind)
            .cmp(&rank(b.kind))
            .then_with(|| touched(b).cmp(&touched(a)))
            .then_with(|| a.card_id.cmp(&b.card_id))
    });
}

/// The pop-up's answer, built from the stored record so a repeat says the same.
pub fn popup(record: &CallRecord, repeated: bool) -> serde_json::Value {
    let open = record
        .opened
        .as_ref()
        .map(|o| o.open.clone())
        .or_else(|| record.cards.first().map(|c| c.open.clone()));
    json!({
        "status": if repeated { "repeated" } else { "ok" },
        "call_id": record.call_id,
        "event": record.event_key,
        "keypress": record.keypress,
        "caller": {
            "number": record.number.as_ref().map(PhoneNumber::masked),
            "matchable": record.number.is_some(),
            "reason": record.unmatchable,
        },
        "agent": {
            "user_id": record.agent_user,
            "extension": record.extension,
            "agent_id": record.agent_id,
        },
        "cards": record.cards,
        "action": record.action.as_str(),
        "record": record.opened,
        "new_lead": record.new_lead,
        "open": open,
        "trace_id": record.trace_id,
    })
}

impl CallDesk {
    async fn tenant(&self, id: &TenantId) -> Result<TenantConfig, PortError> {
        self.tenants
            .tenant(id)
            .await?
            .ok_or_else(|| PortError::Rejected(format!("tenant {id} has no configuration")))
    }

    /// Every card the number belongs to, best first.
    async fn candidates(
        &self,
        tenant: &TenantId,
        number: &PhoneNumber,
    ) -> Result<Vec<Card>, PortError> {
        let mut refs = self
            .crm
            .find_cards(tenant, &IdentityKey::Phone(number.clone()))
            .await?;
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        // Kind first, newest card first (ids are time-ordered), so a number shared by many
        // cards keeps its likeliest ones when the read is capped.
        refs.sort_by(|a, b| {
            crate::identity::kind_rank(a.kind)
                .cmp(&crate::identity::kind_rank(b.kind))
                .then_with(|| b.card_id.cmp(&a.card_id))
        });
        let ids: Vec<String> = refs
            .into_iter()
            .take(MAX_CANDIDATES_READ)
            .map(|r| r.card_id)
            .collect();
        let mut cards = self.crm.cards(tenant, &ids).await?;
        rank_callers(&mut cards);
        Ok(cards)
    }

    /// Builds the write for this event with the cards found now.
    fn plan(
        &self,
        tenant: &TenantConfig,
        event: &CallEvent,
        envelope: &Envelope,
        number: Option<&PhoneNumber>,
        unmatchable: Option<String>,
        cards: &[Card],
    ) -> CallWrite {
        let now = self.clock.now();
        let occurred_at = event.occurred_at.unwrap_or(envelope.received_at);
        let agent_user = tenant
            .integrations
            .pbx
            .as_ref()
            .and_then(|p| p.agent_user(event.agent_id.as_deref(), event.extension.as_deref()))
            .map(str::to_string);
        let owner = agent_user.clone().or_else(|| tenant.default_owner.clone());
        let action = CallAction::for_event(event.kind, event.keypress.as_deref());
        let shown: Vec<CallCard> = match number {
            Some(n) => cards
                .iter()
                .take(MAX_CANDIDATES_SHOWN)
                .map(|c| CallCard::of(c, n))
                .collect(),
            None => Vec::new(),
        };
        // A quote or ticket needs a card: the best match, or a new lead for an unknown caller.
        let lead = match (action.counter(), cards.first()) {
            (Some(_), None) => Some(self.new_lead(number, owner.clone(), event, occurred_at, now)),
            _ => None,
        };
        let target = cards.first().or(lead.as_ref());
        let opened = match (action, target) {
            (CallAction::NewQuote, Some(card)) => Some(Opened::new_quote(
                self.ids.new_id(),
                &card.card_id,
                owner.clone(),
                &event.call_id,
                now,
            )),
            (CallAction::NewTicket, Some(card)) => Some(Opened::new_ticket(
                self.ids.new_id(),
                &card.card_id,
                owner.clone(),
                &event.call_id,
                format!("Telefon: {} numaralı çağrı", event.call_id),
                now,
            )),
            _ => None,
        };
        let opened_record = opened.as_ref().map(|o| {
            let id = match o {
                Opened::Quote(q) => q.quote_id.clone(),
                Opened::Ticket(t) => t.ticket_id.clone(),
            };
            OpenedRecord {
                kind: o.kind(),
                open: o.kind().path(o.card_id(), &id),
                id,
                card_id: o.card_id().to_string(),
                number: 0,
                readable_number: String::new(),
            }
        });
        let entry = target.map(|card| {
            call_entry(
                event,
                &card.card_id,
                occurred_at,
                summary(event, action, opened.is_some()),
                agent_user.as_deref(),
                &envelope.trace_id,
            )
        });
        let record = CallRecord {
            call_id: event.call_id.clone(),
            event_key: event.event_key(),
            format: event.format,
            kind: event.kind,
            scenario: event.scenario.clone(),
            occurred_at,
            number: number.cloned(),
            unmatchable,
            caller: event.caller.clone(),
            extension: event.extension.clone(),
            agent_id: event.agent_id.clone(),
            agent_user,
            keypress: event.keypress.clone(),
            cards: shown,
            action,
            opened: opened_record,
            new_lead: lead.as_ref().map(|l| l.card_id.clone()),
            duration_seconds: event.duration_seconds,
            end_state: event.end_state.clone(),
            trace_id: envelope.trace_id.to_string(),
        };
        let touch = cards
            .first()
            .filter(|c| c.kind == CardKind::Lead)
            .map(|_| Touch {
                channel: Channel::Phone,
                at: occurred_at,
                external_id: Some(event.call_id.clone()),
                referral: None,
                utm: None,
            });
        CallWrite {
            record,
            entry,
            lead,
            opened,
            touch,
        }
    }

    fn new_lead(
        &self,
        number: Option<&PhoneNumber>,
        owner: Option<String>,
        event: &CallEvent,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Card {
        let touch = Touch {
            channel: Channel::Phone,
            at,
            external_id: Some(event.call_id.clone()),
            referral: None,
            utm: None,
        };
        Card {
            card_id: self.ids.new_id(),
            kind: CardKind::Lead,
            display_name: match number {
                Some(n) => format!("Arayan {}", n.national_display()),
                None => format!("Gizli numara ({})", event.call_id),
            },
            phones: number.cloned().into_iter().collect(),
            emails: vec![],
            owner,
            external_ids: Default::default(),
            profile: Default::default(),
            lead: Some(LeadDetails {
                source: LeadSource::Phone,
                status: LeadStatus::New,
                utm: Default::default(),
                campaign: None,
                first_touch: touch.clone(),
                last_touch: touch,
            }),
            customer: None,
            contact: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn log_entry(&self, envelope: &Envelope, record: &CallRecord, repeated: bool) -> LogEntry {
        let result = match (repeated, record.action) {
            (true, _) => LogResult::Duplicate,
            (false, CallAction::UnknownKeypress) => LogResult::Warning,
            (false, _) if record.kind == CallEventKind::Other => LogResult::Warning,
            _ => LogResult::Success,
        };
        let mut entry = LogEntry::new(
            envelope.tenant_id.clone(),
            Integration::Pbx,
            LogDirection::Inbound,
            OPERATION,
            result,
            envelope.trace_id.clone(),
        )
        .starts_trace(envelope.received_at)
        .external_id(format!("{}#{}", record.call_id, record.event_key))
        .payload(envelope.payload.clone())
        .external_message(describe(record, repeated));
        if let Some(card) = record
            .opened
            .as_ref()
            .map(|o| o.card_id.clone())
            .or_else(|| record.cards.first().map(|c| c.card_id.clone()))
        {
            entry = entry.card_id(card);
        }
        if !repeated {
            if record.action == CallAction::UnknownKeypress {
                entry = entry.error(
                    "unknown_keypress",
                    format!(
                        "keypress {} has no action (1 card, 2 quote, 3 ticket); stored only",
                        record.keypress.as_deref().unwrap_or("")
                    ),
                );
            } else if record.kind == CallEventKind::Other {
                entry = entry.error(
                    "unknown_scenario",
                    format!(
                        "scenario {} is not one we know; stored only",
                        record.scenario.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        entry
    }
}

/// The call on the card's timeline; its key comes from the call and the time, so writing it
/// again (a repeat repairing a stopped first delivery) lands on the same item.
fn call_entry(
    event: &CallEvent,
    card_id: &str,
    occurred_at: DateTime<Utc>,
    text: String,
    agent_user: Option<&str>,
    trace: &crate::envelope::TraceId,
) -> TimelineEntry {
    TimelineEntry {
        entry_id: format!("pbx:{}:{}", event.call_id, event.event_key()),
        card_id: card_id.to_string(),
        channel: Channel::Phone,
        direction: if event.kind == CallEventKind::Outgoing {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        kind: format!("call_{}", event.kind.as_str()),
        text,
        external_id: Some(event.call_id.clone()),
        attachment: None,
        details: json!({
            "call_id": event.call_id,
            "extension": event.extension,
            "agent_user": agent_user,
            "keypress": event.keypress,
            "duration_seconds": event.duration_seconds,
        }),
        occurred_at,
        trace_id: trace.to_string(),
    }
}

fn summary(event: &CallEvent, action: CallAction, opens: bool) -> String {
    let what = match event.kind {
        CallEventKind::Outgoing => "Giden arama",
        CallEventKind::HungUp => "Arama sona erdi",
        CallEventKind::Cdr => "Arama kaydı",
        CallEventKind::Answered => "Arama cevaplandı",
        _ => "Gelen arama",
    };
    let mut text = match &event.extension {
        Some(ext) => format!("{what} (dahili {ext})"),
        None => what.to_string(),
    };
    if let Some(seconds) = event.duration_seconds {
        text.push_str(&format!(", {seconds} sn"));
    }
    match (action, opens) {
        (CallAction::NewQuote, true) => {
            text.push_str(&format!(": yeni teklif {NUMBER_PLACEHOLDER}"))
        }
        (CallAction::NewTicket, true) => {
            text.push_str(&format!(": yeni destek kaydı {NUMBER_PLACEHOLDER}"))
        }
        _ => {}
    }
    text
}

fn describe(record: &CallRecord, repeated: bool) -> String {
    let mut text = format!(
        "{} {}: {} card(s) matched, {}",
        record.kind.as_str(),
        record.keypress.as_deref().unwrap_or("-"),
        record.cards.len(),
        record.action.as_str()
    );
    if let Some(opened) = &record.opened {
        text.push_str(&format!(
            " {} {}",
            opened.kind.as_str(),
            opened.readable_number
        ));
    }
    if record.new_lead.is_some() {
        text.push_str(" on a new lead");
    }
    if let Some(reason) = &record.unmatchable {
        text.push_str(&format!("; caller not matched: {reason}"));
    }
    if record.agent_user.is_none() {
        text.push_str("; agent not mapped to a CRM user");
    }
    if repeated {
        text.push_str("; repeated delivery, stored answer repeated");
    }
    text
}

#[async_trait::async_trait]
impl SyncHandler for CallDesk {
    async fn answer(&self, envelope: &Envelope) -> Result<(HttpReply, LogEntry), PortError> {
        let event: CallEvent = serde_json::from_value(envelope.payload.clone())
            .map_err(|e| PortError::Rejected(format!("queued call event does not read: {e}")))?;
        let tenant_id = &envelope.tenant_id;
        let event_key = event.event_key();
        let repeat = |record: CallRecord| {
            let reply = HttpReply::json(200, &popup(&record, true));
            let entry = self.log_entry(envelope, &record, true);
            (reply, entry)
        };
        // A repeat finds its answer in one read; the conditional write below settles races.
        if let Some(stored) = self
            .calls
            .call_event(tenant_id, &event.call_id, &event_key)
            .await?
        {
            // A call that opened nothing wrote its timeline entry apart from the call event:
            // if the first delivery stopped between the two, the repeat puts it back.
            if stored.opened.is_none() && stored.new_lead.is_none() {
                if let Some(card) = stored.cards.first() {
                    let entry = call_entry(
                        &event,
                        &card.card_id,
                        stored.occurred_at,
                        summary(&event, stored.action, false),
                        stored.agent_user.as_deref(),
                        &TraceId::new(stored.trace_id.clone()),
                    );
                    self.calls.ensure_entry(tenant_id, &entry).await?;
                }
            }
            return Ok(repeat(stored));
        }
        let tenant = self.tenant(tenant_id).await?;
        let (number, unmatchable) = match event.caller_number() {
            Ok(n) => (Some(n), None),
            Err(e) if is_unmatchable(&e) => (None, Some(e.code().to_string())),
            Err(e) => return Err(PortError::Rejected(format!("caller number: {e}"))),
        };
        for _ in 0..2 {
            let cards = match &number {
                Some(n) => self.candidates(tenant_id, n).await?,
                None => Vec::new(),
            };
            let write = self.plan(
                &tenant,
                &event,
                envelope,
                number.as_ref(),
                unmatchable.clone(),
                &cards,
            );
            match self.calls.record_call(tenant_id, &write).await? {
                CallWriteOutcome::Applied(record) => {
                    let reply = HttpReply::json(200, &popup(&record, false));
                    return Ok((reply, self.log_entry(envelope, &record, false)));
                }
                CallWriteOutcome::Duplicate(record) => return Ok(repeat(record)),
                // Another call from this number opened its lead first: that lead is the match.
                CallWriteOutcome::IdentityTaken => continue,
            }
        }
        Err(PortError::Unavailable(
            "the caller's lead was created concurrently and is not readable yet; retry".into(),
        ))
    }
}
