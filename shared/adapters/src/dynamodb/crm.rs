//! The CRM table's cards: identity keys, cards, timelines, notes and tasks.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::consent::ConsentRecord;
use onecrm_domain::error::PortError;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, CardKind, CardRef, IdentityKey, LeadSource, Note, Touch};
use onecrm_domain::ports::*;
use onecrm_domain::task::Task;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;
use onecrm_domain::timeline::TimelineEntry;
use onecrm_domain::whatsapp::status::{MessageStatusUpdate, OutboundMessage};

use super::cursor;
use super::identity::CLAIM;
use super::tenants::TenantCache;
use super::tx::{Committed, Transaction};
use super::*;

/// The CRM table: implements [`TenantDirectory`] and [`CrmRepository`].
pub struct CrmStore {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) cache: TenantCache,
}

impl CrmStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            cache: TenantCache::default(),
        }
    }

    /// Puts the item, whatever was there (keys that are their own idempotency).
    pub(super) async fn put_item(&self, item: Item) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    /// Another handle on the same table (its own tenant cache), for a port that wants ownership.
    pub fn handle(&self) -> Self {
        Self::new(self.client.clone(), self.table.clone())
    }

    /// A transaction on this table that starts with what makes the event's effect happen once:
    /// its entry in the sender's conversation, or a separate idempotency key.
    pub(super) fn idempotent(
        &self,
        tenant: &TenantId,
        dedupe: &Dedupe,
        entry: &TimelineEntry,
    ) -> Result<Transaction, PortError> {
        match dedupe {
            Dedupe::Conversation(identity) => Transaction::idempotent_on(
                &self.table,
                "conversation entry",
                self.conversation_item(tenant, identity, entry)?,
            ),
            Dedupe::Key(key) => {
                let mut tx = Transaction::idempotent(&self.table, tenant, key)?;
                tx.put("timeline entry", self.timeline_item(tenant, entry)?, None)?;
                Ok(tx)
            }
        }
    }

    pub(super) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item)
    }

    pub(super) async fn query_prefix(
        &self,
        pk: String,
        sk_prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, PortError> {
        self.query_prefix_of_card(pk, sk_prefix, newest_first, limit, None)
            .await
    }

    /// [`Self::query_prefix`] keeping only the items of one card (a shared conversation); pages
    /// on until `limit` of them are found, since DynamoDB filters after its own limit.
    pub(super) async fn query_prefix_of_card(
        &self,
        pk: String,
        sk_prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
        card_id: Option<&str>,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .scan_index_forward(!newest_first)
                // What was just written is seen: a card a racing event created, a claim's card.
                .consistent_read(true)
                .set_limit(limit.map(|l| l.min(1000) as i32))
                .set_exclusive_start_key(start);
            if let Some(card) = card_id {
                query = query
                    .filter_expression("card_id = :card")
                    .expression_attribute_values(":card", s(card));
            }
            let out = query.send().await.map_err(|e| port_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    /// [`Self::query_prefix`], each item read back as `T`.
    pub(super) async fn query_as<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk_prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<T>, PortError> {
        self.query_prefix(pk, sk_prefix, newest_first, limit)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub(super) fn card_item(&self, tenant: &TenantId, card: &Card) -> Result<Item, PortError> {
        let mut keys = vec![
            ("pk", keys::card(tenant, &card.card_id)),
            ("sk", "PROFILE".to_string()),
        ];
        if let Some(lead) = &card.lead {
            keys.push(("gsi1pk", keys::leads(tenant, lead.source)));
            keys.push((
                "gsi1sk",
                format!("{}#{}", to_sortable(&card.created_at), card.card_id),
            ));
        }
        if onecrm_domain::logo::customer::awaits_logo_code(card) {
            // Sparse index of the customers the Logo sync creates in Logo.
            keys.push(("gsi2pk", keys::logo_pending(tenant)));
            keys.push((
                "gsi2sk",
                format!("{}#{}", to_sortable(&card.created_at), card.card_id),
            ));
        }
        let mut item = item(card, "card", &keys)?;
        if let Some(lead) = &card.lead {
            // A number, so "is this touch newer?" is a plain condition (see record_interaction).
            item.insert(
                "last_touch_ms".into(),
                n(lead.last_touch.at.timestamp_millis()),
            );
        }
        Ok(item)
    }

    /// Moves a lead's last touch forward (never back). Older than the recorded touch, or a lead
    /// card without its details: nothing to move, the entry stands. A vanished card is refused.
    pub(super) async fn move_last_touch(
        &self,
        tenant: &TenantId,
        card_id: &str,
        touch: &Touch,
    ) -> Result<(), PortError> {
        let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(touch)
            .map_err(|e| PortError::Rejected(e.to_string()))?;
        let moved = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::card(tenant, card_id)))
            .key("sk", s("PROFILE"))
            // `lead` is a DynamoDB reserved word. Only the touch moves: the profile is not rewritten.
            .update_expression("SET updated_at = :now, #lead.last_touch = :touch, last_touch_ms = :ms")
            .condition_expression("attribute_exists(pk) AND attribute_exists(#lead) AND (attribute_not_exists(last_touch_ms) OR last_touch_ms <= :ms)")
            .expression_attribute_names("#lead", "lead")
            .expression_attribute_values(":touch", value)
            .expression_attribute_values(":ms", n(touch.at.timestamp_millis()))
            .expression_attribute_values(":now", s(to_sortable(&touch.at)))
            .send()
            .await;
        match moved {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.get(keys::card(tenant, card_id), "PROFILE").await? {
                    Some(_) => Ok(()),
                    // Retrying cannot bring a deleted card back: the DLQ way, for an operator.
                    None => Err(PortError::Rejected(format!(
                        "card {card_id} does not exist (deleted?)"
                    ))),
                }
            }
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    /// An interaction kept in the conversation of the identity it came through; `card_id` says
    /// which card's timeline shows it.
    pub(super) fn conversation_item(
        &self,
        tenant: &TenantId,
        identity: &IdentityKey,
        entry: &TimelineEntry,
    ) -> Result<Item, PortError> {
        item(
            entry,
            "timeline",
            &[
                ("pk", keys::conversation(tenant, identity)),
                (
                    "sk",
                    format!("TL#{}#{}", to_sortable(&entry.occurred_at), entry.entry_id),
                ),
            ],
        )
    }

    pub(super) fn timeline_item(
        &self,
        tenant: &TenantId,
        entry: &TimelineEntry,
    ) -> Result<Item, PortError> {
        item(
            entry,
            "timeline",
            &[
                ("pk", keys::card(tenant, &entry.card_id)),
                (
                    "sk",
                    format!("TL#{}#{}", to_sortable(&entry.occurred_at), entry.entry_id),
                ),
            ],
        )
    }
}

#[async_trait]
impl CrmRepository for CrmStore {
    async fn find_cards(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
    ) -> Result<Vec<CardRef>, PortError> {
        self.identity_cards(tenant, key).await
    }

    async fn flag_possible_duplicate(
        &self,
        tenant: &TenantId,
        card: &CardRef,
        other: &CardRef,
        reason: &str,
    ) -> Result<(), PortError> {
        self.flag_duplicate(tenant, card, other, reason).await
    }

    async fn possible_duplicates(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<PossibleDuplicate>, PortError> {
        self.query_as(keys::card(tenant, card_id), "DUP#", false, None)
            .await
    }

    /// The entry exactly once (in the sender's conversation: one conditional write; otherwise
    /// with an idempotency key in one transaction), then a lead's last touch.
    async fn record_interaction(
        &self,
        tenant: &TenantId,
        write: &CardInteraction,
    ) -> Result<WriteOutcome, PortError> {
        let mut tx = self.idempotent(tenant, &write.dedupe, &write.entry)?;
        for consent in &write.consents {
            tx.put(
                "consent",
                consent_item(tenant, &write.card.card_id, consent)?,
                None,
            )?;
        }
        let outcome = match tx.commit(&self.client).await? {
            Committed::Applied => WriteOutcome::Applied,
            Committed::Duplicate => WriteOutcome::Duplicate,
            Committed::ConditionFailed(what) => {
                return Err(PortError::Rejected(format!("{what} failed its condition")))
            }
        };
        // Only a lead's card changes (its last touch), in a small write of its own that only
        // moves forward. Not after a duplicate: a duplicate changes nothing (the card matched
        // now need not be the one the original landed on). A customer's or contact's card is
        // not written at all: the identity look-up just found it.
        if outcome == WriteOutcome::Applied && write.card.kind == CardKind::Lead {
            self.move_last_touch(tenant, &write.card.card_id, &write.touch)
                .await?;
        }
        Ok(outcome)
    }

    async fn create_lead(
        &self,
        tenant: &TenantId,
        write: &NewLead,
    ) -> Result<NewLeadOutcome, PortError> {
        let card_ref = write.card.as_ref();
        let mut tx = self.idempotent(tenant, &write.dedupe, &write.entry)?;
        for key in &write.identities {
            self.add_identity(&mut tx, tenant, key, &card_ref, true)?;
        }
        tx.put(
            "card",
            self.card_item(tenant, &write.card)?,
            Some("attribute_not_exists(pk)"),
        )?;
        if let Some(note) = &write.note {
            tx.put("note", note_item(tenant, note)?, None)?;
        }
        for consent in &write.consents {
            tx.put(
                "consent",
                consent_item(tenant, &write.card.card_id, consent)?,
                None,
            )?;
        }
        if let Some(task) = &write.task {
            tx.put("task", task_item(tenant, task)?, None)?;
        }
        match tx.commit(&self.client).await? {
            Committed::Applied => Ok(NewLeadOutcome::Created),
            Committed::Duplicate => Ok(NewLeadOutcome::Duplicate),
            Committed::ConditionFailed(CLAIM) => Ok(NewLeadOutcome::IdentityTaken),
            Committed::ConditionFailed(other) => Err(PortError::Rejected(format!(
                "new lead {}: {other} already exists",
                write.card.card_id
            ))),
        }
    }

    async fn create_card(
        &self,
        tenant: &TenantId,
        card: &Card,
    ) -> Result<NewLeadOutcome, PortError> {
        let card_ref = card.as_ref();
        let mut tx = Transaction::new(&self.table);
        for key in card.identity_keys() {
            self.add_identity(&mut tx, tenant, &key, &card_ref, key.is_exclusive())?;
        }
        tx.put(
            "card",
            self.card_item(tenant, card)?,
            Some("attribute_not_exists(pk)"),
        )?;
        match tx.commit(&self.client).await? {
            Committed::Applied => Ok(NewLeadOutcome::Created),
            // The card exists already (an import run again): nothing changed.
            Committed::ConditionFailed("card") => Ok(NewLeadOutcome::Duplicate),
            Committed::Duplicate | Committed::ConditionFailed(_) => {
                Ok(NewLeadOutcome::IdentityTaken)
            }
        }
    }

    async fn apply_message_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        self.apply_status(tenant, update).await
    }

    async fn cards(&self, tenant: &TenantId, card_ids: &[String]) -> Result<Vec<Card>, PortError> {
        self.cards_by_id(tenant, card_ids).await
    }

    async fn card(&self, tenant: &TenantId, card_id: &str) -> Result<Option<Card>, PortError> {
        self.get(keys::card(tenant, card_id), "PROFILE")
            .await?
            .map(from_item)
            .transpose()
    }

    /// The card's own entries and its share of the conversations of its phones and e-mails
    /// (a number shared by several cards shows each card what landed on it), merged.
    async fn timeline(
        &self,
        tenant: &TenantId,
        card_id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError> {
        let mut entries: Vec<TimelineEntry> = self
            .query_as(keys::card(tenant, card_id), "TL#", true, Some(limit))
            .await?;
        let card = self.card(tenant, card_id).await?;
        let conversations = card
            .iter()
            .flat_map(|c| c.identity_keys())
            .filter(|k| matches!(k, IdentityKey::Phone(_) | IdentityKey::Email(_)));
        for identity in conversations {
            let found = self
                .query_prefix_of_card(
                    keys::conversation(tenant, &identity),
                    "TL#",
                    true,
                    Some(limit),
                    Some(card_id),
                )
                .await?;
            for item in found {
                entries.push(from_item(item)?);
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
        entries.truncate(limit);
        Ok(entries)
    }

    async fn notes(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Note>, PortError> {
        self.query_as(keys::card(tenant, card_id), "NOTE#", false, None)
            .await
    }

    async fn tasks(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Task>, PortError> {
        self.query_as(keys::card(tenant, card_id), "TASK#", false, None)
            .await
    }

    async fn leads_by_source(
        &self,
        tenant: &TenantId,
        source: LeadSource,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        let partition = keys::leads(tenant, source);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(partition.clone()))
            .expression_attribute_values(":from", s(to_sortable(&from)))
            // '#' sorts before any id character, so this excludes leads created exactly at `to`.
            .expression_attribute_values(":to", s(format!("{}#", to_sortable(&to))))
            .scan_index_forward(false);
        let (items, next) = cursor::query_page(query, "gsi1pk", &partition, &page).await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn outbound_message(
        &self,
        tenant: &TenantId,
        wamid: &str,
    ) -> Result<Option<OutboundMessage>, PortError> {
        self.get(keys::wa_message(tenant, wamid), "WAMSG")
            .await?
            .map(from_item)
            .transpose()
    }
}

/// The latest consent of one recipient on one channel (İYS keeps one state per pair); the
/// timeline entry that carried it keeps the history.
pub(super) fn consent_item(
    tenant: &TenantId,
    card_id: &str,
    consent: &ConsentRecord,
) -> Result<Item, PortError> {
    let mut item = item(
        consent,
        "consent",
        &[
            ("pk", keys::card(tenant, card_id)),
            (
                "sk",
                format!("CONSENT#{}#{}", consent.channel.as_str(), consent.recipient),
            ),
        ],
    )?;
    item.insert("card_id".into(), s(card_id));
    Ok(item)
}

fn note_item(tenant: &TenantId, note: &Note) -> Result<Item, PortError> {
    item(
        note,
        "note",
        &[
            ("pk", keys::card(tenant, &note.card_id)),
            (
                "sk",
                format!("NOTE#{}#{}", to_sortable(&note.created_at), note.note_id),
            ),
        ],
    )
}

fn task_item(tenant: &TenantId, task: &Task) -> Result<Item, PortError> {
    item(
        task,
        "task",
        &[
            ("pk", keys::card(tenant, &task.card_id)),
            ("sk", format!("TASK#{}", task.task_id)),
            ("gsi1pk", keys::tasks(tenant, &task.owner)),
            (
                "gsi1sk",
                format!("{}#{}", to_sortable(&task.due_at), task.task_id),
            ),
        ],
    )
}
