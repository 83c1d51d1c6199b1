//! The CRM table's cards: identity keys, cards, timelines, notes and tasks.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Update;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, CardKind, CardRef, IdentityKey, LeadSource, Note};
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

    /// A transaction on this table that starts with the event's idempotency key.
    pub(super) fn idempotent(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Transaction, PortError> {
        Transaction::idempotent(&self.table, tenant, key)
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
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .scan_index_forward(!newest_first)
                .set_limit(limit.map(|l| l.min(1000) as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
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

    /// Idempotency key + timeline entry (+ a lead's last touch), in one transaction. A lead's
    /// last touch only moves forward: when the message is older than the recorded touch, the
    /// touch condition cancels the first attempt and the entry is recorded without it.
    async fn record_interaction(
        &self,
        tenant: &TenantId,
        write: &CardInteraction,
    ) -> Result<WriteOutcome, PortError> {
        let card_key = || {
            Update::builder()
                .key("pk", s(keys::card(tenant, &write.card.card_id)))
                .key("sk", s("PROFILE"))
        };
        let touch = if write.card.kind == CardKind::Lead {
            let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(&write.touch)
                .map_err(|e| PortError::Rejected(e.to_string()))?;
            // `lead` is a DynamoDB reserved word. Only the touch moves: the profile is not rewritten.
            Some(card_key()
                .update_expression("SET updated_at = :now, #lead.last_touch = :touch, last_touch_ms = :ms")
                // A lead card without its lead details cannot take a touch: the fallback records the entry.
                .condition_expression("attribute_exists(pk) AND attribute_exists(#lead) AND (attribute_not_exists(last_touch_ms) OR last_touch_ms <= :ms)")
                .expression_attribute_names("#lead", "lead")
                .expression_attribute_values(":touch", value)
                .expression_attribute_values(":ms", n(write.touch.at.timestamp_millis()))
                .expression_attribute_values(":now", s(to_sortable(&write.entry.occurred_at))))
        } else {
            None
        };
        for with_touch in [touch.is_some(), false] {
            let mut tx = self.idempotent(tenant, &write.idempotency)?;
            tx.put(
                "timeline entry",
                self.timeline_item(tenant, &write.entry)?,
                None,
            )?;
            // Only a lead's card changes (its last touch). A customer's or contact's card is not
            // touched at all: the identity look-up just found it, and checking it again would
            // cost 2 write units per message (a transactional ConditionCheck) for nothing.
            if let (Some(touch), true) = (&touch, with_touch) {
                tx.update("lead's last touch", touch.clone())?;
            }
            match tx.commit(&self.client).await? {
                Committed::Applied => return Ok(WriteOutcome::Applied),
                Committed::Duplicate => return Ok(WriteOutcome::Duplicate),
                // Older than the lead's last touch: once more, without moving the touch.
                Committed::ConditionFailed("lead's last touch") => continue,
                Committed::ConditionFailed(_) => break,
            }
        }
        // Retrying cannot bring a deleted card back; the message goes the DLQ way for an operator.
        Err(PortError::Rejected(format!(
            "card {} does not exist (deleted?)",
            write.card.card_id
        )))
    }

    async fn create_lead(
        &self,
        tenant: &TenantId,
        write: &NewLead,
    ) -> Result<NewLeadOutcome, PortError> {
        let card_ref = write.card.as_ref();
        let mut tx = self.idempotent(tenant, &write.idempotency)?;
        for key in &write.identities {
            self.add_identity(&mut tx, tenant, key, &card_ref, true)?;
        }
        tx.put(
            "card",
            self.card_item(tenant, &write.card)?,
            Some("attribute_not_exists(pk)"),
        )?;
        tx.put(
            "timeline entry",
            self.timeline_item(tenant, &write.entry)?,
            None,
        )?;
        if let Some(note) = &write.note {
            tx.put("note", note_item(tenant, note)?, None)?;
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

    async fn card(&self, tenant: &TenantId, card_id: &str) -> Result<Option<Card>, PortError> {
        self.get(keys::card(tenant, card_id), "PROFILE")
            .await?
            .map(from_item)
            .transpose()
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        card_id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError> {
        self.query_as(keys::card(tenant, card_id), "TL#", true, Some(limit))
            .await
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
