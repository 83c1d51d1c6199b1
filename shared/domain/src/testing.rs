//! In-memory implementations of the ports, for unit tests without I/O. They follow the same
//! rules as the real adapters (conditional writes, never-regressing statuses), so a use case
//! tested here behaves the same against DynamoDB.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::Envelope;
use crate::error::PortError;
use crate::ingress::{HeldEvent, Hold, Kept};
use crate::log::Integration;
use crate::log::{LogRecord, MAX_RETENTION_DAYS};
use crate::page::{Page, PageRequest};
use crate::party::{Card, CardRef, IdentityKey, LeadSource, Note};
use crate::ports::*;
use crate::task::Task;
use crate::tenant::{RouteTarget, TenantConfig, TenantId, TenantRoute};

use crate::timeline::TimelineEntry;
use crate::whatsapp::status::{MessageStatusUpdate, OutboundMessage};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(rfc3339: &str) -> Self {
        let at = DateTime::parse_from_rfc3339(rfc3339)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        FixedClock(Mutex::new(at))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> String {
        format!("id-{:06}", self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[derive(Default)]
pub struct MemoryLogSink(Mutex<Vec<LogRecord>>);

impl MemoryLogSink {
    pub fn records(&self) -> Vec<LogRecord> {
        lock(&self.0).clone()
    }
}

#[async_trait]
impl LogSink for MemoryLogSink {
    async fn put(&self, record: &LogRecord) -> Result<(), PortError> {
        assert!(record.expires_at - record.occurred_at.timestamp() <= MAX_RETENTION_DAYS * 86_400);
        lock(&self.0).push(record.clone());
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryTenants {
    tenants: Mutex<HashMap<TenantId, TenantConfig>>,
    routes: Mutex<HashMap<String, RouteTarget>>,
    /// Route look-ups served, to prove how much an unauthenticated request costs.
    pub lookups: AtomicU64,
}

impl MemoryTenants {
    /// Adds the tenant; its routes are signed by `app_id` (a Meta app), if any.
    pub fn add(&self, config: TenantConfig, routes: &[TenantRoute], app_id: Option<&str>) {
        for route in routes {
            let mut target = config.route_target(route);
            if app_id.is_some() {
                target.app_id = app_id.map(str::to_string);
            }
            lock(&self.routes).insert(route.key(), target);
        }
        lock(&self.tenants).insert(config.tenant_id.clone(), config);
    }
}

#[async_trait]
impl TenantDirectory for MemoryTenants {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantConfig>, PortError> {
        Ok(lock(&self.tenants).get(id).cloned())
    }

    async fn resolve(&self, route: &TenantRoute) -> Result<Option<RouteTarget>, PortError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.routes).get(&route.key()).cloned())
    }
}

#[derive(Default)]
pub struct MemorySecrets {
    current: Mutex<HashMap<String, Secret>>,
    cached: Mutex<HashMap<String, Secret>>,
    pub refreshes: AtomicU64,
}

impl MemorySecrets {
    /// Changes the stored value; `get` keeps answering the cached one until `refresh`.
    pub fn set(&self, name: &str, value: &str) {
        lock(&self.current).insert(name.into(), Secret::new(value));
    }
}

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn get(&self, name: &str) -> Result<Secret, PortError> {
        if let Some(s) = lock(&self.cached).get(name) {
            return Ok(s.clone());
        }
        self.refresh(name).await
    }

    async fn refresh(&self, name: &str) -> Result<Secret, PortError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let secret = lock(&self.current)
            .get(name)
            .cloned()
            .ok_or_else(|| PortError::Rejected(format!("no secret {name}")))?;
        lock(&self.cached).insert(name.into(), secret.clone());
        Ok(secret)
    }
}

#[derive(Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<Envelope>>,
    /// How many of `sent` a worker has taken.
    taken: Mutex<usize>,
    pub failing: AtomicBool,
}

impl MemoryQueue {
    pub fn sent(&self) -> Vec<Envelope> {
        lock(&self.sent).clone()
    }

    /// What was queued since the last take (a worker's next batch).
    pub fn take(&self) -> Vec<Envelope> {
        let mut sent = lock(&self.sent);
        let taken = sent.split_off(*lock(&self.taken));
        sent.extend(taken.iter().cloned());
        *lock(&self.taken) = sent.len();
        taken
    }
}

#[async_trait]
impl EventQueue for MemoryQueue {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), PortError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("queue down".into()));
        }
        lock(&self.sent).extend_from_slice(envelopes);
        Ok(())
    }
}

#[derive(Default)]
struct CrmState {
    idempotency: HashSet<String>,
    /// Identity → every card it belongs to.
    identities: HashMap<(TenantId, String), Vec<CardRef>>,
    /// Identity → the card that claimed it (new leads; tax ids and partner ids).
    claims: HashMap<(TenantId, String), String>,
    duplicates: Vec<(TenantId, PossibleDuplicate)>,
    cards: BTreeMap<(TenantId, String), Card>,
    timeline: Vec<(TenantId, TimelineEntry)>,
    notes: Vec<(TenantId, Note)>,
    tasks: Vec<(TenantId, Task)>,
    messages: HashMap<(TenantId, String), OutboundMessage>,
    consents: Vec<(TenantId, String, crate::consent::ConsentRecord)>,
    calls: BTreeMap<(TenantId, String), crate::pbx::call::CallRecord>,
    opened: Vec<(TenantId, crate::pbx::call::Opened)>,
    counters: HashMap<(TenantId, &'static str), u64>,
    policy_events: BTreeMap<(TenantId, String, i64), crate::insurup::policy::PolicyEvent>,
    card_policies: Vec<(TenantId, String, String)>,
    links: HashMap<(TenantId, String), String>,
    karel: HashMap<(TenantId, String), crate::karel::worker::KarelLink>,
    karel_leases: HashMap<(TenantId, String), DateTime<Utc>>,
}

/// A CRM store with DynamoDB's all-or-nothing transaction semantics.
#[derive(Default)]
pub struct MemoryCrm(Mutex<CrmState>);

impl MemoryCrm {
    pub fn cards(&self, tenant: &TenantId) -> Vec<Card> {
        lock(&self.0)
            .cards
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Puts the card as it is (a batch writer's upsert), with its identities and `claims`.
    pub fn upsert_card(&self, tenant: &TenantId, card: &Card, claims: &[IdentityKey]) {
        let mut state = lock(&self.0);
        for key in card.identity_keys() {
            let members = state
                .identities
                .entry((tenant.clone(), key.key()))
                .or_default();
            members.retain(|m| m.card_id != card.card_id);
            members.push(card.as_ref());
        }
        for key in claims {
            state
                .claims
                .insert((tenant.clone(), key.key()), card.card_id.clone());
        }
        state
            .cards
            .insert((tenant.clone(), card.card_id.clone()), card.clone());
    }

    /// The card that claimed this key.
    pub fn claimant(&self, tenant: &TenantId, key: &IdentityKey) -> Option<String> {
        lock(&self.0)
            .claims
            .get(&(tenant.clone(), key.key()))
            .cloned()
    }

    /// The consent records stored on a card.
    pub fn consents(&self, tenant: &TenantId, card_id: &str) -> Vec<crate::consent::ConsentRecord> {
        lock(&self.0)
            .consents
            .iter()
            .filter(|(t, c, _)| t == tenant && c == card_id)
            .map(|(_, _, r)| r.clone())
            .collect()
    }
}

fn idem_key(tenant: &TenantId, dedupe: &Dedupe, entry: &TimelineEntry) -> String {
    match dedupe {
        Dedupe::Conversation(identity) => {
            format!("{tenant}#CONV#{}#{}", identity.key(), entry.entry_id)
        }
        Dedupe::Key(key) => format!("{tenant}#{}#{}", key.scope, key.key),
    }
}

#[async_trait]
impl CrmRepository for MemoryCrm {
    async fn find_cards(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
    ) -> Result<Vec<CardRef>, PortError> {
        Ok(lock(&self.0)
            .identities
            .get(&(tenant.clone(), key.key()))
            .cloned()
            .unwrap_or_default())
    }

    async fn flag_possible_duplicate(
        &self,
        tenant: &TenantId,
        card: &CardRef,
        other: &CardRef,
        reason: &str,
    ) -> Result<(), PortError> {
        let mut state = lock(&self.0);
        for (on, about) in [(card, other), (other, card)] {
            let flag = PossibleDuplicate {
                card_id: on.card_id.clone(),
                other: about.clone(),
                reason: reason.to_string(),
                flagged_at: Utc::now(),
            };
            let exists = state.duplicates.iter().any(|(t, d)| {
                t == tenant && d.card_id == flag.card_id && d.other.card_id == flag.other.card_id
            });
            if !exists {
                state.duplicates.push((tenant.clone(), flag));
            }
        }
        Ok(())
    }

    async fn possible_duplicates(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<PossibleDuplicate>, PortError> {
        Ok(lock(&self.0)
            .duplicates
            .iter()
            .filter(|(t, d)| t == tenant && d.card_id == card_id)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn record_interaction(
        &self,
        tenant: &TenantId,
        write: &CardInteraction,
    ) -> Result<WriteOutcome, PortError> {
        let mut state = lock(&self.0);
        if !state
            .idempotency
            .insert(idem_key(tenant, &write.dedupe, &write.entry))
        {
            return Ok(WriteOutcome::Duplicate);
        }
        if let Some(card) = state
            .cards
            .get_mut(&(tenant.clone(), write.card.card_id.clone()))
        {
            // The last touch only moves forward, as in the DynamoDB adapter.
            if let Some(lead) = card
                .lead
                .as_mut()
                .filter(|l| l.last_touch.at <= write.touch.at)
            {
                lead.last_touch = write.touch.clone();
            }
        }
        state.timeline.push((tenant.clone(), write.entry.clone()));
        for consent in &write.consents {
            state
                .consents
                .push((tenant.clone(), write.card.card_id.clone(), consent.clone()));
        }
        Ok(WriteOutcome::Applied)
    }

    async fn create_lead(
        &self,
        tenant: &TenantId,
        write: &NewLead,
    ) -> Result<NewLeadOutcome, PortError> {
        let mut state = lock(&self.0);
        if state
            .idempotency
            .contains(&idem_key(tenant, &write.dedupe, &write.entry))
        {
            return Ok(NewLeadOutcome::Duplicate);
        }
        if write
            .identities
            .iter()
            .any(|k| state.claims.contains_key(&(tenant.clone(), k.key())))
        {
            return Ok(NewLeadOutcome::IdentityTaken);
        }
        state
            .idempotency
            .insert(idem_key(tenant, &write.dedupe, &write.entry));
        for consent in &write.consents {
            state
                .consents
                .push((tenant.clone(), write.card.card_id.clone(), consent.clone()));
        }
        for key in &write.identities {
            let at = (tenant.clone(), key.key());
            state.claims.insert(at.clone(), write.card.card_id.clone());
            state
                .identities
                .entry(at)
                .or_default()
                .push(write.card.as_ref());
        }
        state.cards.insert(
            (tenant.clone(), write.card.card_id.clone()),
            write.card.clone(),
        );
        state.timeline.push((tenant.clone(), write.entry.clone()));
        if let Some(note) = &write.note {
            state.notes.push((tenant.clone(), note.clone()));
        }
        if let Some(task) = &write.task {
            state.tasks.push((tenant.clone(), task.clone()));
        }
        Ok(NewLeadOutcome::Created)
    }

    async fn create_card(
        &self,
        tenant: &TenantId,
        card: &Card,
    ) -> Result<NewLeadOutcome, PortError> {
        let mut state = lock(&self.0);
        let keys = card.identity_keys();
        if keys
            .iter()
            .filter(|k| k.is_exclusive())
            .any(|k| state.claims.contains_key(&(tenant.clone(), k.key())))
        {
            return Ok(NewLeadOutcome::IdentityTaken);
        }
        for key in keys {
            let at = (tenant.clone(), key.key());
            if key.is_exclusive() {
                state.claims.insert(at.clone(), card.card_id.clone());
            }
            state.identities.entry(at).or_default().push(card.as_ref());
        }
        state
            .cards
            .insert((tenant.clone(), card.card_id.clone()), card.clone());
        Ok(NewLeadOutcome::Created)
    }

    async fn apply_message_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        let mut state = lock(&self.0);
        let key = (tenant.clone(), update.wamid.clone());
        match OutboundMessage::apply(state.messages.get(&key), update) {
            Some(next) => {
                state.messages.insert(key, next);
                Ok(StatusOutcome::Applied)
            }
            None => Ok(StatusOutcome::Stale),
        }
    }

    async fn card(&self, tenant: &TenantId, card_id: &str) -> Result<Option<Card>, PortError> {
        Ok(lock(&self.0)
            .cards
            .get(&(tenant.clone(), card_id.to_string()))
            .cloned())
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        card_id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError> {
        let mut entries: Vec<TimelineEntry> = lock(&self.0)
            .timeline
            .iter()
            .filter(|(t, e)| t == tenant && e.card_id == card_id)
            .map(|(_, e)| e.clone())
            .collect();
        entries.sort_by(|a, b| {
            b.occurred_at
                .cmp(&a.occurred_at)
                .then(b.entry_id.cmp(&a.entry_id))
        });
        entries.truncate(limit);
        Ok(entries)
    }

    async fn notes(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Note>, PortError> {
        Ok(lock(&self.0)
            .notes
            .iter()
            .filter(|(t, n)| t == tenant && n.card_id == card_id)
            .map(|(_, n)| n.clone())
            .collect())
    }

    async fn tasks(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Task>, PortError> {
        Ok(lock(&self.0)
            .tasks
            .iter()
            .filter(|(t, x)| t == tenant && x.card_id == card_id)
            .map(|(_, x)| x.clone())
            .collect())
    }

    async fn leads_by_source(
        &self,
        tenant: &TenantId,
        source: LeadSource,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        let mut leads: Vec<Card> = self
            .cards(tenant)
            .into_iter()
            .filter(|c| {
                c.lead.as_ref().is_some_and(|l| l.source == source)
                    && c.created_at >= from
                    && c.created_at < to
            })
            .collect();
        leads.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(page_of(leads, &page))
    }

    async fn outbound_message(
        &self,
        tenant: &TenantId,
        wamid: &str,
    ) -> Result<Option<OutboundMessage>, PortError> {
        Ok(lock(&self.0)
            .messages
            .get(&(tenant.clone(), wamid.to_string()))
            .cloned())
    }
}

/// Offset cursors over an in-memory list: enough to exercise callers that follow `next`.
pub fn page_of<T>(items: Vec<T>, page: &PageRequest) -> Page<T> {
    let start: usize = page
        .cursor
        .as_deref()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let end = (start + page.size()).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Page {
        items: items.into_iter().skip(start).take(end - start).collect(),
        next,
    }
}

/// The raw-event archive in memory: deliveries and held events, held events by content id.
#[derive(Default)]
pub struct MemoryArchive {
    kept: Mutex<Vec<Kept>>,
    pub failing: AtomicBool,
}

impl MemoryArchive {
    pub fn kept(&self) -> Vec<Kept> {
        lock(&self.kept).clone()
    }

    fn held_as(&self, integration: Integration, hold: Hold) -> Vec<HeldEvent> {
        self.held()
            .into_iter()
            .filter(|h| h.integration == integration && h.hold == hold)
            .collect()
    }

    pub fn held(&self) -> Vec<HeldEvent> {
        lock(&self.kept)
            .iter()
            .filter_map(|k| match k {
                Kept::Held(h) => Some(h.clone()),
                Kept::Delivery(_) => None,
            })
            .collect()
    }
}

#[async_trait]
impl EventArchive for MemoryArchive {
    async fn keep(&self, items: &[Kept]) -> Result<(), PortError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("archive down".into()));
        }
        let mut kept = lock(&self.kept);
        for item in items {
            if let Kept::Held(h) = item {
                kept.retain(|k| !matches!(k, Kept::Held(o) if o.hold == h.hold && o.id == h.id));
            }
            kept.push(item.clone());
        }
        Ok(())
    }

    async fn unrouted(
        &self,
        integration: Integration,
        route: Option<&TenantRoute>,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        let held = self
            .held()
            .into_iter()
            .filter(|h| h.integration == integration)
            .filter(|h| match (&h.hold, route) {
                (Hold::Unrouted(r), Some(want)) => r == want,
                (Hold::Unrouted(_), None) => true,
                _ => false,
            })
            .collect();
        Ok(page_of(held, &page))
    }

    async fn unparsed(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        Ok(page_of(
            self.held_as(integration, Hold::Unparsed(tenant.clone())),
            &page,
        ))
    }

    async fn parked(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        Ok(page_of(
            self.held_as(integration, Hold::Parked(tenant.clone())),
            &page,
        ))
    }

    async fn release(&self, held: &HeldEvent) -> Result<(), PortError> {
        lock(&self.kept)
            .retain(|k| !matches!(k, Kept::Held(o) if o.hold == held.hold && o.id == held.id));
        Ok(())
    }
}

/// Rate counters and Idempotency-Key claims, as the DynamoDB guard keeps them (one counter per
/// key and minute; a claim is first-writer-wins).
#[derive(Default)]
pub struct MemoryGuard {
    counts: Mutex<HashMap<(TenantId, String, i64), u32>>,
    claims: Mutex<HashMap<(TenantId, String), crate::web_form::Claim>>,
}

#[async_trait]
impl crate::web_form::SubmissionGuard for MemoryGuard {
    async fn admit(
        &self,
        tenant: &TenantId,
        key_hash: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<crate::web_form::Rate, PortError> {
        let minute = now.timestamp() / 60;
        let mut counts = lock(&self.counts);
        let count = counts
            .entry((tenant.clone(), key_hash.to_string(), minute))
            .or_default();
        if *count >= per_minute {
            return Ok(crate::web_form::Rate::Limited {
                retry_after_secs: (60 - now.timestamp() % 60) as u64,
            });
        }
        *count += 1;
        Ok(crate::web_form::Rate::Allowed)
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        idempotency_key: &str,
        claim: &crate::web_form::Claim,
        _expires_at: DateTime<Utc>,
    ) -> Result<Option<crate::web_form::Claim>, PortError> {
        let mut claims = lock(&self.claims);
        let at = (tenant.clone(), idempotency_key.to_string());
        if let Some(first) = claims.get(&at) {
            return Ok(Some(first.clone()));
        }
        claims.insert(at, claim.clone());
        Ok(None)
    }

    async fn release(&self, tenant: &TenantId, idempotency_key: &str) -> Result<(), PortError> {
        lock(&self.claims).remove(&(tenant.clone(), idempotency_key.to_string()));
        Ok(())
    }
}

// The later integrations' stores (calls, policies, Karel links) on the same in-memory CRM.
mod logs;
mod partners;
mod runs;
mod sends;

pub use runs::MemoryRuns;
pub use sends::{MemorySends, ScriptedSender};
