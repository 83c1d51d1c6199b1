//! Ports: what the domain needs from the outside world. Adapters implement them for DynamoDB,
//! SQS, Secrets Manager and partners; `testing` implements them in memory for unit tests.

use std::fmt;

use async_trait::async_trait;

use crate::consent::ConsentRecord;
use chrono::{DateTime, Utc};

use crate::envelope::Envelope;
use crate::error::PortError;
use crate::ingress::{HeldEvent, Kept};
use crate::log::{Integration, LogRecord};
use crate::page::{Page, PageRequest};
use crate::party::{Card, CardRef, IdentityKey, LeadSource, Note, Touch};
use crate::task::Task;
use crate::tenant::{RouteTarget, TenantConfig, TenantId, TenantRoute};
use crate::timeline::TimelineEntry;
use crate::whatsapp::status::{MessageStatusUpdate, OutboundMessage};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub trait IdGenerator: Send + Sync {
    /// A new unique id whose string order follows creation time (UUID v7).
    fn new_id(&self) -> String;
}

/// A secret value. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret's current value, from an in-process cache while it is fresh.
    async fn get(&self, name: &str) -> Result<Secret, PortError>;
    /// A fresh read after a credential was refused (rotation). Reads the store at most once a
    /// minute per secret, so a stream of forged signatures cannot turn into a stream of reads.
    async fn refresh(&self, name: &str) -> Result<Secret, PortError>;
}

#[async_trait]
pub trait TenantDirectory: Send + Sync {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantConfig>, PortError>;
    async fn resolve(&self, route: &TenantRoute) -> Result<Option<RouteTarget>, PortError>;
    /// Resolves past any cache: a route registered a moment ago must be seen now.
    async fn resolve_fresh(&self, route: &TenantRoute) -> Result<Option<RouteTarget>, PortError> {
        self.resolve(route).await
    }
    /// Tenants connected to a scheduled integration (Logo, Express), for the nightly fan-out.
    async fn connected(&self, integration: Integration) -> Result<Vec<TenantId>, PortError> {
        let _ = integration;
        Ok(vec![])
    }
}

/// The raw-event archive: authenticated deliveries as received (unmasked, encrypted, readable
/// only by the roles that replay), and the events held instead of processed.
#[async_trait]
pub trait EventArchive: Send + Sync {
    /// Durable once this returns `Ok`. Keeping the same held event twice keeps it once.
    async fn keep(&self, items: &[Kept]) -> Result<(), PortError>;
    /// Events held for routes no tenant owned, oldest first; `route` narrows to one route.
    async fn unrouted(
        &self,
        integration: Integration,
        route: Option<&TenantRoute>,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError>;
    /// A tenant's events that did not parse, oldest first.
    async fn unparsed(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError>;
    /// A tenant's parked events (queued envelopes waiting for an operator), oldest first.
    async fn parked(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError>;
    /// Forgets a held event once it has been delivered.
    async fn release(&self, held: &HeldEvent) -> Result<(), PortError>;
}

#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Durable once this returns `Ok`: every envelope was accepted by the queue.
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), PortError>;
}

#[async_trait]
pub trait LogSink: Send + Sync {
    async fn put(&self, record: &LogRecord) -> Result<(), PortError>;
}

/// Log queries the operator screen needs; each is one index query per tenant.
#[async_trait]
pub trait LogReader: Send + Sync {
    async fn by_integration(
        &self,
        tenant: &TenantId,
        integration: Integration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError>;
    async fn by_trace(
        &self,
        tenant: &TenantId,
        trace_id: &str,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError>;
    async fn by_error_code(
        &self,
        tenant: &TenantId,
        code: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError>;
}

/// Marks an effect as done exactly once: written in the same transaction as the effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// `whatsapp.message`, `meta.leadgen`, ...
    pub scope: String,
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// How an effect is kept exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedupe {
    /// The interaction came through this identity (the sender's phone): its timeline entry is
    /// stored in that identity's conversation under a key derived from the partner's event id,
    /// so the entry is its own idempotency key: one conditional write, whatever card it lands on,
    /// and a retry that would match another card still finds it.
    Conversation(IdentityKey),
    /// A separate idempotency key written in the same transaction as the effect.
    Key(IdempotencyKey),
}

/// An inbound interaction on a card that already exists.
#[derive(Debug, Clone)]
pub struct CardInteraction {
    pub dedupe: Dedupe,
    pub card: CardRef,
    pub entry: TimelineEntry,
    /// Updates the lead's last touch when the card is a lead.
    pub touch: Touch,
    /// Consent given with the interaction (a ticked form box), İYS-shaped.
    pub consents: Vec<ConsentRecord>,
}

/// A new lead with everything that comes with it, written all-or-nothing.
#[derive(Debug, Clone)]
pub struct NewLead {
    pub dedupe: Dedupe,
    pub card: Card,
    /// The keys this lead claims (E.164 phone for WhatsApp): a claim is a conditional write,
    /// so two racing first messages from one number make one lead.
    pub identities: Vec<IdentityKey>,
    pub note: Option<Note>,
    pub entry: TimelineEntry,
    pub task: Option<Task>,
    pub consents: Vec<ConsentRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Applied,
    /// The idempotency key was already taken: nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewLeadOutcome {
    Created,
    Duplicate,
    /// Another card claimed one of the identities first (a concurrent first message).
    IdentityTaken,
}

/// A note on a card that another card may be the same party (keys that disagreed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PossibleDuplicate {
    pub card_id: String,
    pub other: CardRef,
    pub reason: String,
    pub flagged_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    Applied,
    /// An equal or later status is already recorded (duplicate or out-of-order delivery).
    Stale,
}

#[async_trait]
pub trait CrmRepository: Send + Sync {
    /// Every card this key belongs to (see [`crate::identity::CardMatcher`] for the best one).
    async fn find_cards(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
    ) -> Result<Vec<CardRef>, PortError>;
    async fn record_interaction(
        &self,
        tenant: &TenantId,
        write: &CardInteraction,
    ) -> Result<WriteOutcome, PortError>;
    async fn create_lead(
        &self,
        tenant: &TenantId,
        write: &NewLead,
    ) -> Result<NewLeadOutcome, PortError>;
    /// Creates a customer or contact card with its identity keys (tenant onboarding, imports).
    /// Phones and e-mails may be shared with other cards; a tax id or partner id is claimed and
    /// belongs to one card only.
    async fn create_card(
        &self,
        tenant: &TenantId,
        card: &Card,
    ) -> Result<NewLeadOutcome, PortError>;
    /// Records on both cards that they may be the same party. Repeating it changes nothing.
    async fn flag_possible_duplicate(
        &self,
        tenant: &TenantId,
        card: &CardRef,
        other: &CardRef,
        reason: &str,
    ) -> Result<(), PortError>;
    async fn possible_duplicates(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<PossibleDuplicate>, PortError>;
    async fn apply_message_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError>;

    async fn card(&self, tenant: &TenantId, card_id: &str) -> Result<Option<Card>, PortError>;
    /// Several cards at once (a caller's candidates); missing ones are left out.
    async fn cards(&self, tenant: &TenantId, card_ids: &[String]) -> Result<Vec<Card>, PortError> {
        let mut cards = Vec::with_capacity(card_ids.len());
        for id in card_ids {
            if let Some(card) = self.card(tenant, id).await? {
                cards.push(card);
            }
        }
        Ok(cards)
    }
    /// Newest first.
    async fn timeline(
        &self,
        tenant: &TenantId,
        card_id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError>;
    async fn notes(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Note>, PortError>;
    async fn tasks(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Task>, PortError>;
    /// Leads of one source created in `[from, to)`, newest first.
    async fn leads_by_source(
        &self,
        tenant: &TenantId,
        source: LeadSource,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<Card>, PortError>;
    async fn outbound_message(
        &self,
        tenant: &TenantId,
        wamid: &str,
    ) -> Result<Option<OutboundMessage>, PortError>;
}

/// InsurUp policies (their events, in endorsement order) and InsurUp objects linked to cards.
#[async_trait]
pub trait PolicyRepository: Send + Sync {
    /// The event with its timeline entry, all-or-nothing; the event (policy + endorsement) is
    /// its own idempotency key.
    async fn record_policy_event(
        &self,
        tenant: &TenantId,
        write: &crate::insurup::policy::PolicyWrite,
    ) -> Result<WriteOutcome, PortError>;
    async fn policy(
        &self,
        tenant: &TenantId,
        policy_id: &str,
    ) -> Result<Option<crate::insurup::policy::Policy>, PortError>;
    /// The ids of a card's policies.
    async fn policies_of(&self, tenant: &TenantId, card_id: &str)
        -> Result<Vec<String>, PortError>;
    /// Remembers which card an InsurUp object (`proposal`) belongs to.
    async fn link(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        card_id: &str,
    ) -> Result<(), PortError>;
    async fn linked(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, PortError>;
}

/// Call events (the call queue) and what keypresses opened.
#[async_trait]
pub trait CallRepository: Send + Sync {
    /// Everything the event writes, all-or-nothing, numbering an opened quote or ticket from
    /// the tenant's counter (distinct numbers under concurrency, no gaps).
    async fn record_call(
        &self,
        tenant: &TenantId,
        write: &crate::pbx::call::CallWrite,
    ) -> Result<crate::pbx::call::CallWriteOutcome, PortError>;
    /// A stored call event, read consistently.
    async fn call_event(
        &self,
        tenant: &TenantId,
        call_id: &str,
        event_key: &str,
    ) -> Result<Option<crate::pbx::call::CallRecord>, PortError>;
    /// The call queue, newest first: the tenant's, or one agent's (`USER#<id>` / `EXT#<ext>`).
    async fn call_queue(
        &self,
        tenant: &TenantId,
        agent: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<crate::pbx::call::CallRecord>, PortError>;
    /// Writes a call's timeline entry where it belongs (the same key as before: harmless if there).
    async fn ensure_entry(&self, tenant: &TenantId, entry: &TimelineEntry)
        -> Result<(), PortError>;
    /// The quotes and tickets opened on a card.
    async fn opened_on(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<crate::pbx::call::Opened>, PortError>;
}
